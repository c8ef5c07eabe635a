"""Fixtures for the operations tests: the portal's own log lines, as production writes them."""

import json
import logging

import pytest

from portal.logs import PortalJsonFormatter, RequestIdFilter


class JsonLines(logging.Handler):
    """Every record reaching the root logger, formatted exactly as LOG_FORMAT=json writes it."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(PortalJsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))

    def objects(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]

    def requests(self) -> list[dict]:
        return [o for o in self.objects() if o["logger"] == "portal.request"]


@pytest.fixture
def json_log():
    handler = JsonLines()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)
