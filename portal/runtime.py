"""The Python runtime of a long-running portal process: a gunicorn worker (portal/wsgi.py) or a
task worker (`manage.py worker`).

Python's cyclic garbage collector runs its youngest generation after every 700 net allocations of
container objects, and now and then an older one, which walks every object the process holds:
Django, the portal, their modules and caches, loaded once and alive for the process's life. In a
create that was ~0.4 to 0.6 ms of the request's CPU (measured with `gc.callbacks`, issue 17). Once the
process has loaded what it serves with, those objects are moved out of the collector's sight
(`gc.freeze`, as CPython's documentation suggests for pre-forked servers), and the youngest
generation is collected after 10,000 net allocations instead of 700. A request's own objects are
freed by reference counting as before; the collector is still there for cycles, only less often.
Not higher: at 50,000 the cyclic garbage a bulk worker leaves between collections raised its peak
memory by 7.5 MB from a 100-row job to 1,000 rows more (bench section 8's flatness check); at
10,000, by 2.0 MB.
"""

import gc

# (youngest, middle, oldest): see gc.set_threshold.
GC_THRESHOLDS = (10_000, 10, 10)


def process_settle() -> None:
    """Call once the process has loaded what it serves with (the WSGI application, its checks)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
