"""Shared pieces of the journeys: the sandbox as a tenant's Crazytel, and how people are set up."""

from __future__ import annotations

import socket

from tests.factories import tenant_key_set

SANDBOX_PATH = "/sandbox/api/v1"


def sandbox_url(live_server) -> str:
    """The built-in Crazytel sandbox, served by the same live server as the portal."""
    return live_server.url + SANDBOX_PATH


def closed_port_url() -> str:
    """A base URL nothing listens on: connection refused, the request surely never arrived."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1"


def tenant_connect(tenant, *, base_url: str, api_key: str):
    """Point `tenant` at a Crazytel (`base_url`) with `api_key`, as an admin would have done."""
    return tenant_key_set(tenant, api_key, base_url=base_url)
