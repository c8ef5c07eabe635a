"""audit_scale (placeholder)."""

from .harness import FeatureMissing

SECTION = "3"
FIGURES = [("audit_scale", "", "")]


def run(ctx):
    raise FeatureMissing("audit_scale")
