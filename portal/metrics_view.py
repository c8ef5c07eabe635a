"""/metrics for Prometheus: answered only to a caller with METRICS_TOKEN or from an allowed network.

Anyone else gets the portal's ordinary 404, so the endpoint's existence is not advertised.
"""

import hmac
import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from portal.clientip import client_ip
from portal.metrics import scrape_registry


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def metrics_caller_allowed(request: HttpRequest) -> bool:
    """A matching bearer token, or a client address inside METRICS_ALLOWED_NETWORKS."""
    expected = settings.METRICS_TOKEN
    offered = _bearer_token(request)
    if expected and offered and hmac.compare_digest(offered.encode(), expected.encode()):
        return True
    networks = settings.METRICS_ALLOWED_NETWORKS
    address = client_ip(request)
    if not networks or not address:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(net) for net in networks)


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_caller_allowed(request):
        raise Http404
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
