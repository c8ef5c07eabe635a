"""Writes a development .env with fresh random secrets, once. Used by `make run` and `make test`.

Run as `python -m portal.devenv [PATH]`; it never overwrites an existing file.
"""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

TEMPLATE = """\
# Written by `make` for local development ({path}). Not for production; git-ignored.
DEBUG=true
SECRET_KEY={secret_key}
CREDENTIALS_ENCRYPTION_KEYS={fernet_key}
AUDIT_CHECKPOINT_KEY={checkpoint_key}
SANDBOX_ENABLED=true
"""


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else ".env")
    if path.exists():
        # A .env from before audit checkpoints (issue 18) gets their key added; nothing else changes.
        text = path.read_text()
        if "AUDIT_CHECKPOINT_KEY=" not in text:
            with path.open("a") as env:
                newline = "" if not text or text.endswith("\n") else "\n"
                env.write(f"{newline}AUDIT_CHECKPOINT_KEY={secrets.token_urlsafe(48)}\n")
            print(f"Added AUDIT_CHECKPOINT_KEY to {path}.")
        return 0
    path.write_text(
        TEMPLATE.format(
            path=path,
            secret_key=secrets.token_urlsafe(50),
            fernet_key=Fernet.generate_key().decode(),
            checkpoint_key=secrets.token_urlsafe(48),
        )
    )
    path.chmod(0o600)
    print(f"Wrote {path} with fresh development secrets.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
