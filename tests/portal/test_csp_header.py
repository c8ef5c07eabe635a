"""The CSP header built once per policy (portal/csp.py) reads as Django's build_policy writes it."""

from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.csp import CSP, LazyNonce, build_policy

from portal.csp import ContentSecurityPolicyMiddleware


def test_the_header_is_djangos_with_this_requests_nonce(settings):
    middleware = ContentSecurityPolicyMiddleware(lambda request: HttpResponse())
    seen = set()
    for _ in range(3):
        request = RequestFactory().get("/")
        middleware.process_request(request)
        nonce = str(request._csp_nonce)  # a page used it
        response = middleware.process_response(request, HttpResponse())
        assert response[CSP.HEADER_ENFORCE] == build_policy(settings.SECURE_CSP, nonce)
        assert f"'nonce-{nonce}'" in response[CSP.HEADER_ENFORCE]
        seen.add(nonce)
    assert len(seen) == 3


def test_without_a_used_nonce_the_header_names_none(settings):
    middleware = ContentSecurityPolicyMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/")
    middleware.process_request(request)
    response = middleware.process_response(request, HttpResponse())
    assert response[CSP.HEADER_ENFORCE] == build_policy(settings.SECURE_CSP, LazyNonce())
    assert "nonce-" not in response[CSP.HEADER_ENFORCE]


def test_a_changed_policy_and_a_responses_own_are_built_anew(settings):
    # A copy of the portal's (the fixture restores the setting, not a change made in place).
    settings.SECURE_CSP = {key: list(value) for key, value in settings.SECURE_CSP.items()}
    middleware = ContentSecurityPolicyMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/")
    middleware.process_request(request)
    middleware.process_response(request, HttpResponse())
    settings.SECURE_CSP["img-src"].append("https://images.example")  # changed in place
    response = middleware.process_response(request, HttpResponse())
    assert "https://images.example" in response[CSP.HEADER_ENFORCE]
    own = HttpResponse()
    own._csp_config = {"default-src": [CSP.NONE]}
    response = middleware.process_response(request, own)
    assert response[CSP.HEADER_ENFORCE] == "default-src 'none'"
    settings.SECURE_CSP_REPORT_ONLY = {"script-src": [CSP.SELF, CSP.NONCE]}
    str(request._csp_nonce)
    response = middleware.process_response(request, HttpResponse())
    assert response[CSP.HEADER_REPORT_ONLY] == build_policy(
        settings.SECURE_CSP_REPORT_ONLY, request._csp_nonce
    )
