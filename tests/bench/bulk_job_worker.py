"""Bulk jobs worked by the real `manage.py worker`, in a process of its own, with the upstream timed.

`python -m tests.bench.bulk_job_worker JOB_ID [JOB_ID …]` confirms each draft job in turn and runs
`manage.py worker --batch` until the queue is empty (the job worked to its end), the same command
`make run` and docker-compose start. Every `CrazytelClient.create_sip_trunk` call is timed where the
worker makes it, so the rest of each row's time is the portal's own. After each job it notes its
wall and CPU time, the upstream's share, the calls made, the SQL statements and Redis commands sent
and the process's peak RSS (VmHWM, which only grows: a job that leaks per row raises it). Prints one
JSON line.

With BENCH_PROFILE=<path> set, each job is worked under cProfile and its statistics written to
<path>.<job id> (read them with `python -m pstats`): where a row's time goes, from the worker itself.
"""

import cProfile
import json
import os
import sys
import time

from .harness import peak_rss_mb
from .portal import _TRANSACTION_CONTROL


class UpstreamTimer:
    """Wraps the client's create call (and counts every HTTP call the client makes)."""

    def __init__(self):
        self.ms = 0.0
        self.cpu_ms = 0.0
        self.creates = 0
        self.calls = 0

    def install(self) -> None:
        from trunks.crazytel.client import CrazytelClient

        create, call = CrazytelClient.create_sip_trunk, CrazytelClient._call
        timer = self

        def timed_create(client, payload):
            wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
            try:
                return create(client, payload)
            finally:
                timer.ms += (time.perf_counter_ns() - wall) / 1e6
                timer.cpu_ms += (time.thread_time_ns() - cpu) / 1e6
                timer.creates += 1

        def counted_call(client, *args, **kwargs):
            timer.calls += 1
            return call(client, *args, **kwargs)

        CrazytelClient.create_sip_trunk = timed_create
        CrazytelClient._call = counted_call

    def snapshot(self) -> dict:
        return {"ms": self.ms, "cpu_ms": self.cpu_ms, "creates": self.creates, "calls": self.calls}


class StatementCounter:
    """Counts SQL statements (transaction control left out, as queries_during does) without
    keeping them: a 1,000-row job runs ~14,000, whose text would raise the peak RSS measured."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        if not _TRANSACTION_CONTROL.match(sql):
            self.count += 1
        return execute(sql, params, many, context)

    def __enter__(self):
        from django.db import connection

        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        return self._wrapper.__exit__(*exc)


class RedisCounter:
    """Counts the commands the process sends to Redis (a pipeline's commands one by one)."""

    def __init__(self):
        self.count = 0

    def install(self) -> None:
        try:
            from redis.client import Pipeline, Redis
        except ImportError:
            return
        execute_command, execute = Redis.execute_command, Pipeline.execute
        counter = self

        def counted_command(client, *args, **options):
            counter.count += 1
            return execute_command(client, *args, **options)

        def counted_pipeline(pipeline, *args, **kwargs):
            counter.count += len(pipeline.command_stack)
            return execute(pipeline, *args, **kwargs)

        Redis.execute_command = counted_command
        Pipeline.execute = counted_pipeline


def job_work(job_id: int, timer: UpstreamTimer, redis: RedisCounter) -> dict:
    from django.core.management import call_command

    from trunks.bulk.services import bulk_job_confirm, bulk_job_counts
    from trunks.models import BulkJob

    job = BulkJob.objects.select_related("owner").get(pk=job_id)
    bulk_job_confirm(actor=job.owner, job=job)  # queued: the worker finds it in the database
    before, redis_before = timer.snapshot(), redis.count
    profile_path = os.environ.get("BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    with StatementCounter() as queries:
        if profiler:
            profiler.enable()
        call_command(
            "worker", "--batch", "--no-startup-delay", "--no-scheduler", "--no-reload", verbosity=0
        )
        if profiler:
            profiler.disable()
    wall_ms = (time.perf_counter_ns() - wall) / 1e6
    if profiler:
        profiler.dump_stats(f"{profile_path}.{job_id}")
    cpu_ms = (time.process_time_ns() - cpu) / 1e6
    after = timer.snapshot()
    job.refresh_from_db()
    return {
        "rows": job.row_count,
        "status": job.status,
        "counts": bulk_job_counts(job),
        "wall_ms": wall_ms,
        "cpu_ms": cpu_ms,
        "upstream_ms": after["ms"] - before["ms"],
        "upstream_cpu_ms": after["cpu_ms"] - before["cpu_ms"],
        "creates": after["creates"] - before["creates"],
        "calls": after["calls"] - before["calls"],
        "queries": queries.count,
        "redis_commands": redis.count - redis_before,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str]) -> int:
    from .environment import django_setup

    django_setup()
    timer = UpstreamTimer()
    timer.install()
    redis = RedisCounter()
    redis.install()
    baseline = peak_rss_mb()
    jobs = [job_work(int(job_id), timer, redis) for job_id in argv]
    print(json.dumps({"baseline_rss_mb": baseline, "jobs": jobs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
