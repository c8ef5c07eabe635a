"""export (placeholder)."""

from .harness import FeatureMissing

SECTION = "4"
FIGURES = [("export", "", "")]


def run(ctx):
    raise FeatureMissing("export")
