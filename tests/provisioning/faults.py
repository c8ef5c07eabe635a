"""The upstream fault table: every way Crazytel can answer a trunk create, and what the portal makes of it.

One row per fault drives every level that tests it:
- the service (tests/provisioning/test_services.py: trunk_create against the row's mocked `reply`),
- the form (tests/provisioning/test_views.py: the trunk view, plain and htmx, same mocked reply),
- real HTTP (tests/provisioning/test_fault_matrix.py: the form posted to the sandbox over live_server
  with the row's `sandbox` faults injected),
- the browser (tests/e2e/test_staff_journey.py: the staff journey's failure cases).
CHANGE_FAULTS, at the end, are the same faults met while changing an existing trunk.

A row with `reply=None` has no mocked form (only the sandbox makes it happen, e.g. a delay that
outlasts the read timeout), one with `sandbox=None` cannot be injected into the sandbox by a fault
switch (the browser journey makes a 400 and a 401 in its own ways).
"""

from dataclasses import dataclass
from typing import Any

import requests

from tests.trunk_fixtures import CANARY
from trunks.crazytel.errors import (
    CrazytelError,
    NumberRejected,
    OutcomeUnknown,
    RateLimited,
    RejectedKey,
    Unreachable,
    UpstreamError,
    ValidationFailed,
)
from trunks.models import AuditStatus
from trunks.provisioning.messages import (
    MESSAGE_CHANGE_UNKNOWN,
    MESSAGE_CHANGE_UNREACHABLE,
    MESSAGE_REJECTED_KEY,
    MESSAGE_TRUNK_MISSING,
    MESSAGE_UNKNOWN,
    MESSAGE_UNREACHABLE,
)

# The sandbox fault that stands for "nothing listens at Crazytel's address any more".
CLOSED_PORT = {"closed_port": True}

# The real-HTTP levels' read timeouts (seconds): an ordinary call's, and the shorter one they set
# for a call whose answer a fault delays past it (`outlasts_timeout`), so that waiting it out costs
# little. The delay, SLOW_MS, ends 0.6 s after READ_TIMEOUT: more than a busy machine holds a thread
# back. Only those calls get the short timeout: an ordinary answer on a busy machine can take longer.
ORDINARY_TIMEOUT = 1.0
READ_TIMEOUT = 0.4
SLOW_MS = 1000


def outlasts_timeout(sandbox_faults: dict | None) -> bool:
    """Whether these sandbox faults answer only after READ_TIMEOUT (a delay of SLOW_MS or more)."""
    faults = sandbox_faults or {}
    return bool(faults.get("create_then_timeout")) or faults.get("latency_ms", 0) >= SLOW_MS


@dataclass(frozen=True)
class Fault:
    id: str
    # How to make it happen: keyword arguments for `responses.add` (a mocked Crazytel), and for
    # `sandbox_faults_set` (the built-in sandbox; CLOSED_PORT: point the tenant at a closed port).
    reply: dict[str, Any] | None
    sandbox: dict[str, Any] | None
    # What the portal makes of it: the typed error the client raises (None: the trunk is created),
    # the audit status, a phrase of the message a person reads, the field Crazytel named.
    error: type[CrazytelError] | None
    status: AuditStatus
    message: str
    field: str | None = None
    # Trunks the sandbox holds at the end (it may create one and still not answer in time).
    trunks: int = 0

    @property
    def category(self) -> str | None:
        return self.error.category if self.error else None

    def __str__(self) -> str:
        return self.id


PASSWORD_REFUSED_422 = {
    "detail": [
        {
            "loc": ["body", "password"],
            "msg": "Password must contain at least 1 uppercase letter",
            "type": "value_error",
            "input": CANARY,
        }
    ]
}

FAULTS = [
    Fault(
        "latency-under-timeout",
        reply=None,
        sandbox={"latency_ms": 200},
        error=None,
        status=AuditStatus.SUCCEEDED,
        message="created",
        trunks=1,
    ),
    Fault(
        "422-password",
        reply=dict(status=422, json=PASSWORD_REFUSED_422),
        sandbox={"forced_status": 422},
        error=ValidationFailed,
        status=AuditStatus.FAILED,
        message="Crazytel refused the values",
        field="password",
    ),
    Fault(
        "400-number",
        reply=dict(status=400, json={"detail": "Caller ID number is not verified"}),
        sandbox=None,
        error=NumberRejected,
        status=AuditStatus.FAILED,
        message="Crazytel refused a number",
        field="caller_id_number",
    ),
    Fault(
        "401",
        reply=dict(status=401, json={"detail": "Invalid API key"}),
        sandbox=None,
        error=RejectedKey,
        status=AuditStatus.FAILED,
        message=MESSAGE_REJECTED_KEY,
    ),
    Fault(
        "429",
        reply=dict(status=429, json={"detail": "Too many"}, headers={"Retry-After": "30"}),
        sandbox={"forced_status": 429, "retry_after": 30},
        error=RateLimited,
        status=AuditStatus.FAILED,
        message="Crazytel is busy; try again in 30 seconds. Nothing was created.",
    ),
    Fault(
        "500",
        reply=dict(status=500, json={"detail": "backend down"}),
        sandbox={"forced_status": 500},
        error=UpstreamError,
        status=AuditStatus.UNKNOWN,
        message=MESSAGE_UNKNOWN,
    ),
    Fault(
        "html-502",
        reply=dict(
            status=502, body="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html"
        ),
        sandbox={"html_error": True, "forced_status": 502},
        error=UpstreamError,
        status=AuditStatus.UNKNOWN,
        message=MESSAGE_UNKNOWN,
    ),
    Fault(
        "503-retry-after",
        reply=dict(status=503, json={"detail": "maintenance"}, headers={"Retry-After": "30"}),
        sandbox={"forced_status": 503, "retry_after": 30},
        error=UpstreamError,
        status=AuditStatus.UNKNOWN,
        message=MESSAGE_UNKNOWN,
    ),
    Fault(
        "malformed-json",
        reply=dict(
            status=200, body='{"detail": "ok", "username": "CT12', content_type="application/json"
        ),
        sandbox={"malformed_json": True},
        error=UpstreamError,
        status=AuditStatus.UNKNOWN,
        message=MESSAGE_UNKNOWN,
    ),
    Fault(
        "200-invalid-username",
        reply=dict(status=200, json={"id": "x", "user": "nobody"}),
        sandbox={"invalid_username": True},
        error=UpstreamError,
        status=AuditStatus.UNKNOWN,
        message=MESSAGE_UNKNOWN,
    ),
    Fault(
        "unreachable",
        reply=dict(body=requests.ConnectTimeout("connect timed out")),
        sandbox=CLOSED_PORT,
        error=Unreachable,
        status=AuditStatus.FAILED,
        message=MESSAGE_UNREACHABLE,
    ),
    Fault(
        "connection-reset",
        reply=dict(body=requests.ConnectionError("Connection aborted: reset by peer")),
        sandbox={"drop_connection": True},
        error=OutcomeUnknown,
        status=AuditStatus.UNKNOWN,
        message=MESSAGE_UNKNOWN,
    ),
    Fault(
        # The request was sent, no answer came in time: Crazytel may have created the trunk.
        "read-timeout",
        reply=dict(body=requests.ReadTimeout("read timed out")),
        sandbox={"latency_ms": SLOW_MS},
        error=OutcomeUnknown,
        status=AuditStatus.UNKNOWN,
        message=MESSAGE_UNKNOWN,
        trunks=1,
    ),
    Fault(
        "timeout-after-create",
        reply=None,
        sandbox={"create_then_timeout": True, "timeout_sleep_ms": SLOW_MS},
        error=OutcomeUnknown,
        status=AuditStatus.UNKNOWN,
        message=MESSAGE_UNKNOWN,
        trunks=1,
    ),
]

BY_ID = {fault.id: fault for fault in FAULTS}
MOCKED = [fault for fault in FAULTS if fault.reply is not None]
IN_SANDBOX = [fault for fault in FAULTS if fault.sandbox is not None]
FAILURES = [fault for fault in MOCKED if fault.error is not None]


# --- A change to a trunk the portal made (PATCH /sip-trunks/{id}) --------------------------------
# The same faults, met while changing an existing trunk (trunks.lifecycle), and what its page shows.
# One row per outcome the issue names; they drive the view level (tests/lifecycle/test_views.py)
# and the browser (tests/e2e/test_trunk_lifecycle_journey.py). The sandbox applies its "create"
# fault scope to changes too (both are writes).


@dataclass(frozen=True)
class ChangeFault:
    id: str
    # sandbox_faults_set keyword arguments, or CLOSED_PORT (point the tenant at a closed port).
    sandbox: dict[str, Any]
    status: AuditStatus
    # The outcome panel's title and a phrase of its message.
    heading: str
    message: str
    # The form of the trunk's page that meets it ("settings": a new caller ID; "password": a new
    # password; "suspend"), and the field Crazytel's refusal is shown beside.
    action: str = "settings"
    field: str | None = None

    @property
    def upstream_status(self) -> int | None:
        """The HTTP status the audit record keeps (None: no answer came)."""
        return self.sandbox.get("forced_status")

    def __str__(self) -> str:
        return self.id


NOTHING_CHANGED = "Nothing was changed"
UNCONFIRMED = "Change unconfirmed"

CHANGE_FAULTS = [
    ChangeFault(
        "400-number",
        sandbox={"forced_status": 400},
        status=AuditStatus.FAILED,
        heading=NOTHING_CHANGED,
        message="Crazytel refused a number",
        field="caller_id_number",
    ),
    ChangeFault(
        "401",
        sandbox={"forced_status": 401},
        status=AuditStatus.FAILED,
        heading=NOTHING_CHANGED,
        message=MESSAGE_REJECTED_KEY,
        action="suspend",
    ),
    ChangeFault(
        "404",
        sandbox={"forced_status": 404},
        status=AuditStatus.FAILED,
        heading=NOTHING_CHANGED,
        message=MESSAGE_TRUNK_MISSING,
        action="suspend",
    ),
    ChangeFault(
        "422-password",
        sandbox=BY_ID["422-password"].sandbox,
        status=AuditStatus.FAILED,
        heading=NOTHING_CHANGED,
        message="Crazytel refused the values",
        action="password",
        field="password",
    ),
    ChangeFault(
        "429",
        sandbox=BY_ID["429"].sandbox,
        status=AuditStatus.FAILED,
        heading=NOTHING_CHANGED,
        message="Crazytel is busy; try again in 30 seconds. Nothing was changed.",
    ),
    ChangeFault(
        "500",
        sandbox=BY_ID["500"].sandbox,
        status=AuditStatus.UNKNOWN,
        heading=UNCONFIRMED,
        message=MESSAGE_CHANGE_UNKNOWN,
    ),
    ChangeFault(
        "html-502",
        sandbox=BY_ID["html-502"].sandbox,
        status=AuditStatus.UNKNOWN,
        heading=UNCONFIRMED,
        message=MESSAGE_CHANGE_UNKNOWN,
        action="password",
    ),
    ChangeFault(
        "unreachable",
        sandbox=CLOSED_PORT,
        status=AuditStatus.FAILED,
        heading=NOTHING_CHANGED,
        message=MESSAGE_CHANGE_UNREACHABLE,
        action="suspend",
    ),
    ChangeFault(
        # The change was made; the answer came after the portal stopped waiting (READ_TIMEOUT).
        "timeout-after-sending",
        sandbox=BY_ID["timeout-after-create"].sandbox,
        status=AuditStatus.UNKNOWN,
        heading=UNCONFIRMED,
        message=MESSAGE_CHANGE_UNKNOWN,
    ),
]
