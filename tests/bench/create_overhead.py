"""create_overhead (placeholder)."""

from .harness import FeatureMissing

SECTION = "2"
FIGURES = [("create_overhead", "", "")]


def run(ctx):
    raise FeatureMissing("create_overhead")
