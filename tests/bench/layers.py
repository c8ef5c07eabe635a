"""Where a request's CPU goes, layer by layer, without a profiler: each middleware's own time (its
work before and after the layers inside it), each `process_view` hook, URL resolving, the view,
each context processor, and a few lazy steps (the session read, the user, the menu, the CSRF
token) that run inside whichever layer first asks for them.

Used by `python -m tests.bench.profile --layers`. Each boundary is timed with the thread's CPU
clock (`time.thread_time`) and nothing else, so the figures are close to the unprofiled cost (a
boundary costs well under a microsecond); medians over the requests, per request.
"""

import statistics
import time
from collections import defaultdict
from importlib import import_module

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.template import engines
from django.template.backends.django import Template

# Inclusive steps that run inside whichever layer first needs them: (label, module, attribute).
# SESSION stands for the configured session engine's module.
LAZY_STEPS = [
    ("session read (cache, or the row)", "SESSION", "SessionStore.load"),
    ("user (cache copy, or the row)", "portal.user_cache", "user_from_session"),
    ("menu items (the reader's best role)", "portal.context_processors", "_nav_items"),
    ("CSRF token masked", "portal.csrf", "csrf_token_masked"),
    ("session saved", "SESSION", "SessionStore.save"),
    ("request log line and metrics", "portal.middleware", "request_observe"),
]


class Layers:
    """Per-request CPU seconds by label, collected while `active`."""

    def __init__(self):
        self.active = False
        self.order: list[str] = []
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.current: dict[str, float] = defaultdict(float)

    def timed(self, label: str, fn):
        if label not in self.order:
            self.order.append(label)

        def wrapper(*args, **kwargs):
            if not self.active:
                return fn(*args, **kwargs)
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current[label] += time.thread_time() - started

        wrapper.__wrapped__ = fn
        return wrapper

    def run(self, fn) -> None:
        """One request, its boundaries collected."""
        self.current = defaultdict(float)
        self.active = True
        started = time.thread_time()
        try:
            fn()
        finally:
            self.active = False
        self.current["whole"] = time.thread_time() - started
        for label in ["whole", *self.order]:
            self.samples[label].append(self.current.get(label, 0.0))

    def median_ms(self, label: str) -> float:
        values = self.samples.get(label) or [0.0]
        return 1000 * statistics.median(values)


def install(layers: Layers) -> None:
    """Wrap the handler's layers (as each handler loads its middleware), the context processors
    and the lazy steps; they measure only while `layers.active`."""
    original_load = BaseHandler.load_middleware

    def load_middleware(handler, is_async=False):
        original_load(handler, is_async)
        _wrap_handler(handler, layers)

    BaseHandler.load_middleware = load_middleware

    engine = engines["django"].engine
    engine.__dict__["template_context_processors"] = tuple(
        layers.timed(f"cp {p.__module__}.{p.__name__}", p)
        for p in engine.template_context_processors
    )
    Template.render = layers.timed(
        "template rendering (context processors included)", Template.render
    )
    for label, module_name, attribute in LAZY_STEPS:
        if module_name == "SESSION":
            module_name = settings.SESSION_ENGINE
        module = import_module(module_name)
        owner_name, _, name = attribute.rpartition(".")
        owner = getattr(module, owner_name) if owner_name else module
        setattr(owner, name, layers.timed(f"lazy {label}", getattr(owner, name)))


def _wrap_handler(handler, layers: Layers) -> None:
    """Time every middleware boundary: label i is everything inside middleware i (inclusive)."""
    chain = []
    callable_ = handler._middleware_chain
    # Walk inwards: each middleware holds the next layer as `get_response` (behind Django's
    # convert_exception_to_response wrapper, whose __wrapped__ is the next middleware).
    holder = handler
    attribute = "_middleware_chain"
    while True:
        instance = getattr(callable_, "__wrapped__", None)
        if instance is None or not hasattr(instance, "get_response"):
            break
        label = f"mw {type(instance).__module__}.{type(instance).__name__}"
        chain.append(label)
        setattr(holder, attribute, layers.timed(f"incl {label}", callable_))
        holder, attribute = instance, "get_response"
        callable_ = instance.get_response
    setattr(holder, attribute, layers.timed("incl view stage", callable_))
    layers.chain = chain
    handler.resolve_request = layers.timed("view stage: URL resolved", handler.resolve_request)
    handler._view_middleware = [
        layers.timed(f"view stage: {type(m.__self__).__name__}.process_view", m)
        for m in handler._view_middleware
    ]
    original_atomic = handler.make_view_atomic
    handler.make_view_atomic = lambda view: layers.timed(
        "view stage: the view", original_atomic(view)
    )


def table(layers: Layers) -> str:
    """Own time per middleware (inclusive minus the next one inside), then the view stage's parts,
    the context processors and the lazy steps (inclusive, inside the layer that asked)."""
    chain = getattr(layers, "chain", [])
    rows = [("whole request (client → response)", layers.median_ms("whole"))]
    inclusive = [f"incl {label}" for label in chain] + ["incl view stage"]
    outside = [
        w - c for w, c in zip(layers.samples["whole"], layers.samples[inclusive[0]], strict=True)
    ]
    rows.append(("  outside the middleware (handler, signals, test client)", _ms(outside)))
    for label, outer, inner in zip(chain, inclusive, inclusive[1:], strict=False):
        own = [o - i for o, i in zip(layers.samples[outer], layers.samples[inner], strict=True)]
        rows.append((f"  {label.removeprefix('mw ')}", _ms(own)))
    rows.append(
        ("  view stage (resolve, process_view, view, render)", layers.median_ms(inclusive[-1]))
    )
    for label in layers.order:
        if label.startswith("view stage: "):
            rows.append((f"    {label.removeprefix('view stage: ')}", layers.median_ms(label)))
    rows.append(
        (
            "  template rendering, inside the view",
            layers.median_ms("template rendering (context processors included)"),
        )
    )
    for label in layers.order:
        if label.startswith("cp "):
            rows.append((f"    context processor {label[3:]}", layers.median_ms(label)))
    rows.append(("lazy steps (inclusive, counted in the layer that first asked)", None))
    for label in layers.order:
        if label.startswith("lazy "):
            rows.append((f"  {label[5:]}", layers.median_ms(label)))
    width = max(len(label) for label, _ in rows)
    return "\n".join(
        f"{label.ljust(width)}  {'' if ms is None else f'{ms:7.3f} ms'}" for label, ms in rows
    )


def _ms(values: list[float]) -> float:
    return 1000 * statistics.median(values) if values else 0.0
