"""What the trunk pages say about Crazytel's outcomes, written once for the services that say it."""

import math

from trunks.crazytel.errors import CrazytelError
from trunks.errors import PortalError

MESSAGE_REJECTED_KEY = "This tenant's Crazytel key was rejected; an admin must replace it."
MESSAGE_UNREACHABLE = "Crazytel could not be reached, so nothing was created; try again."
MESSAGE_UNKNOWN = "We could not confirm whether Crazytel created the trunk; check the account before trying again."
MESSAGE_CREDENTIALS = "This tenant's stored Crazytel key cannot be read; nothing was sent. An admin must set it again."

# The same outcomes for a change to an existing trunk (trunks.lifecycle).
MESSAGE_CHANGE_UNREACHABLE = "Crazytel could not be reached, so nothing was changed; try again."
MESSAGE_CHANGE_UNKNOWN = (
    "We could not confirm whether Crazytel applied the change. Sending the same values again is "
    "harmless: use Send again."
)
MESSAGE_TRUNK_MISSING = (
    "Crazytel no longer has this trunk (it answered 404 for its id), so nothing was changed. It is "
    "marked missing upstream."
)


class TrunkError(PortalError):
    """A trunk action the portal refuses before anything goes upstream. `.message` is for a person."""


def retry_seconds(error: CrazytelError) -> int:
    retry_after = getattr(error, "retry_after", None)
    if retry_after is None or retry_after <= 0:
        # Crazytel's limit is per minute: a minute always clears it.
        return 60
    return max(1, math.ceil(retry_after))
