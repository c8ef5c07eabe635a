"""upstream_budget (placeholder)."""

from .harness import FeatureMissing

SECTION = "6"
FIGURES = [("upstream_budget", "", "")]


def run(ctx):
    raise FeatureMissing("upstream_budget")
