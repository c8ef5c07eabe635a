"""A serving process settles once loaded: Django and the portal out of the garbage collector's
sight, its youngest generation collected less often (portal/runtime.py, issue 17)."""

import gc
import importlib
import sys
import weakref

import pytest

from portal import runtime


@pytest.fixture
def gc_restored():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settling_freezes_what_is_loaded_and_raises_the_youngest_threshold(gc_restored):
    kept = object.__new__(type("Kept", (), {}))  # a container alive before settling
    runtime.process_settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == runtime.GC_THRESHOLDS
    assert runtime.GC_THRESHOLDS[0] > 700  # less often than Python's default
    assert gc.is_tracked(kept)


def test_a_cycle_made_after_settling_is_still_collected(gc_restored):
    runtime.process_settle()

    class Node:
        pass

    node = Node()
    node.me = node
    gone = weakref.ref(node)
    del node
    assert gone() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert gone() is None


def test_the_wsgi_application_settles_its_worker_after_its_checks(monkeypatch):
    calls = []
    monkeypatch.setattr("django.core.management.call_command", lambda name: calls.append(name))
    monkeypatch.setattr(runtime, "process_settle", lambda: calls.append("settled"))
    monkeypatch.delitem(sys.modules, "portal.wsgi", raising=False)
    module = importlib.import_module("portal.wsgi")
    assert calls == ["check", "settled"]
    assert callable(module.application)
