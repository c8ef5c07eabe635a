"""Until tests/conftest.py logs tenant admins and superusers in with a verified second factor,
the older tests (which force_login them) run with SECOND_FACTOR_REQUIRED off. Tests that prove
the second factor carry @pytest.mark.second_factor and get production's setting (on)."""

import pytest


@pytest.fixture(autouse=True)
def _second_factor_requirement(request, settings):
    settings.SECOND_FACTOR_REQUIRED = request.node.get_closest_marker("second_factor") is not None
