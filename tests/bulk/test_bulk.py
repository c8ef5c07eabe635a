"""Bulk provisioning: checking a file, the worker creating each row once, cancel, 401, the one download."""

import json

import pytest
from django.urls import reverse

from tests.trunk_fixtures import CANARY, TRUNKS_URL, create_calls, created
from trunks.bulk.checks import MAX_ROWS, bulk_file_check, bulk_template_csv
from trunks.bulk.services import (
    BulkError,
    bulk_job_cancel,
    bulk_job_confirm,
    bulk_job_create,
    bulk_jobs_revive,
    bulk_passwords_erase,
    bulk_results_download,
)
from trunks.bulk.work import bulk_job_work
from trunks.models import AuditKind, AuditRecord, AuditStatus, BulkJobStatus, BulkRowStatus
from trunks.provisioning.numbers import verified_numbers_get

HEADER = "caller_id_number,sms_sender,password,description,area_code,enabled\n"


def good_rows(n: int, *, password: str = "") -> str:
    return "".join(f"61298765432,,{password},Desk {i},02,true\n" for i in range(n))


def check(keyed, text: str | bytes, name="desks.csv"):
    raw = text.encode() if isinstance(text, str) else text
    return bulk_file_check(raw=raw, name=name, numbers=verified_numbers_get(tenant=keyed))


@pytest.fixture
def numbers_ok(crazytel, keyed_a):
    return crazytel


def test_the_template_header_is_the_apis_field_names():
    header = bulk_template_csv().splitlines()[0].split(",")
    assert "caller_id_number" in header and "softphone_sync_sms" in header


def test_a_good_file_with_bom_and_semicolons_passes(numbers_ok, keyed_a):
    text = "\ufeff" + (HEADER + good_rows(3)).replace(",", ";")
    checked = check(keyed_a, text)
    assert checked.ok, checked.errors + [r.errors for r in checked.rows]
    assert [r.index for r in checked.rows] == [2, 3, 4]
    assert checked.rows[0].data["caller_id_number"] == "61298765432"


def test_bad_rows_are_named_by_row_and_column(numbers_ok, keyed_a):
    text = (
        HEADER
        + good_rows(2)
        + "61200000000,,,Desk x,02,true\n"
        + "61298765432,,weak,Desk y,02,maybe\n"
    )
    checked = check(keyed_a, text)
    assert not checked.ok and checked.bad_rows == 2
    bad = {r.index: " ".join(r.errors) for r in checked.rows if r.errors}
    assert "Row 4, column caller_id_number" in bad[4]
    assert "Row 5, column password" in bad[5] and "Row 5, column enabled" in bad[5]


def test_duplicated_rows_are_refused(numbers_ok, keyed_a):
    checked = check(keyed_a, HEADER + "61298765432,,,Same,02,true\n" * 2)
    assert "Row 3 repeats row 2" in checked.rows[1].errors[0]


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"caller_id_number,colour\n61298765432,red\n", "Unknown column"),
        (b"description\nDesk\n", "Missing column"),
        (b"", "empty"),
        (b"caller_id_number\n", "no rows"),
        ("caller_id_number,description\n61298765432,Caf\xe9\n".encode("latin-1"), "not UTF-8"),
        (("caller_id_number\n" + "61298765432\n" * (MAX_ROWS + 1)).encode(), "limit is 1,000"),
    ],
)
def test_bad_files_get_a_clear_message(numbers_ok, keyed_a, raw, said):
    checked = check(keyed_a, raw)
    assert not checked.ok
    assert said in " ".join(checked.errors)


def make_job(alice, keyed_a, n=3, password=""):
    checked = check(keyed_a, HEADER + good_rows(n, password=password))
    assert checked.ok
    return bulk_job_create(actor=alice, tenant=keyed_a, checked=checked)


def confirm(job, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        return bulk_job_confirm(actor=alice, job=job)


def test_each_row_is_created_once_and_linked_to_its_attempt(
    numbers_ok,
    keyed_a,
    alice,
    django_capture_on_commit_callbacks,
):
    for i in range(3):
        numbers_ok.post(TRUNKS_URL, json=created(f"CT00000{i}"))
    job = confirm(make_job(alice, keyed_a, 3), alice, django_capture_on_commit_callbacks)
    assert bulk_job_work(job_id=job.pk) == "ended"
    job.refresh_from_db()
    assert job.status == BulkJobStatus.FINISHED
    rows = list(job.rows.order_by("index"))
    assert [r.status for r in rows] == [BulkRowStatus.CREATED] * 3
    assert len(create_calls(numbers_ok)) == 3
    for row in rows:
        assert row.audit_record.status == AuditStatus.SUCCEEDED
        assert row.audit_record.submission_token == f"bulk:{job.uuid}:{row.index}"
        assert "password" not in row.audit_record.data
    events = AuditRecord.objects.filter(kind=AuditKind.BULK_JOB).order_by("pk")
    assert [e.data.get("ended") for e in events] == [None, "finished"]
    assert events[1].data["counts"]["created"] == 3
    # a second run sends nothing
    assert bulk_job_work(job_id=job.pk) == "ended"
    assert len(create_calls(numbers_ok)) == 3


def test_the_download_works_once_and_erases_every_password(
    numbers_ok,
    keyed_a,
    alice,
    mallory,
    django_capture_on_commit_callbacks,
):
    numbers_ok.post(TRUNKS_URL, json=created("CT000001"))
    numbers_ok.post(TRUNKS_URL, status=400, json={"detail": "caller ID not verified"})
    job = confirm(
        make_job(alice, keyed_a, 2, password=CANARY), alice, django_capture_on_commit_callbacks
    )
    bulk_job_work(job_id=job.pk)
    sent = json.loads(create_calls(numbers_ok)[0].request.body)
    assert sent["password"] == CANARY
    with pytest.raises(BulkError):
        bulk_results_download(actor=mallory, job=job)
    body = bulk_results_download(actor=alice, job=job)
    assert "CT000001" in body and CANARY in body
    assert body.count(CANARY) == 1  # only the created row's password
    assert not job.rows.filter(password_ciphertext__isnull=False).exists()
    with pytest.raises(BulkError, match="downloaded already"):
        bulk_results_download(actor=alice, job=job)
    for record in AuditRecord.objects.all():
        assert CANARY not in json.dumps([record.data, record.response, record.error_message])


def test_passwords_are_erased_an_hour_after_the_job_ends(
    numbers_ok,
    keyed_a,
    alice,
    django_capture_on_commit_callbacks,
):
    from datetime import timedelta

    from django.utils import timezone

    job = make_job(alice, keyed_a, 2)
    bulk_job_cancel(job=job)
    assert bulk_passwords_erase() == 0
    job.refresh_from_db()
    type(job).objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(hours=2))
    assert bulk_passwords_erase() == 2
    assert not job.rows.filter(password_ciphertext__isnull=False).exists()


def test_a_rejected_key_stops_the_job_and_flags_the_tenant(
    numbers_ok,
    keyed_a,
    alice,
    django_capture_on_commit_callbacks,
):
    numbers_ok.post(TRUNKS_URL, status=401, json={"detail": "bad key"})
    job = confirm(make_job(alice, keyed_a, 3), alice, django_capture_on_commit_callbacks)
    assert bulk_job_work(job_id=job.pk) == "ended"
    job.refresh_from_db()
    keyed_a.refresh_from_db()
    assert job.status == BulkJobStatus.STOPPED_AUTH
    assert keyed_a.connection_ok is False
    assert len(create_calls(numbers_ok)) == 1
    assert list(job.rows.values_list("status", flat=True).order_by("index")) == [
        "failed",
        "cancelled",
        "cancelled",
    ]


def test_a_run_of_unknown_outcomes_pauses_the_job(
    numbers_ok,
    keyed_a,
    alice,
    django_capture_on_commit_callbacks,
):
    for _ in range(4):
        numbers_ok.post(TRUNKS_URL, status=500, body="boom")
    job = confirm(make_job(alice, keyed_a, 4), alice, django_capture_on_commit_callbacks)
    assert bulk_job_work(job_id=job.pk) == "paused"
    assert job.rows.filter(status=BulkRowStatus.UNKNOWN).count() == 3
    assert job.rows.filter(status=BulkRowStatus.READY).count() == 1


def test_cancel_stops_the_rows_not_yet_sent(
    numbers_ok,
    keyed_a,
    alice,
    django_capture_on_commit_callbacks,
):
    job = confirm(make_job(alice, keyed_a, 3), alice, django_capture_on_commit_callbacks)
    bulk_job_cancel(job=job)
    assert bulk_job_work(job_id=job.pk) == "ended"
    assert create_calls(numbers_ok) == []
    assert job.rows.filter(status=BulkRowStatus.CANCELLED).count() == 3


def test_a_row_left_claimed_by_a_crash_is_never_sent_again(
    numbers_ok,
    keyed_a,
    alice,
    django_capture_on_commit_callbacks,
):
    from datetime import timedelta

    from django.utils import timezone

    from trunks.audit.tasks import pending_attempts_expire
    from trunks.audit.writer import audit_attempt_start

    numbers_ok.post(TRUNKS_URL, json=created("CT000009"))
    job = confirm(make_job(alice, keyed_a, 2), alice, django_capture_on_commit_callbacks)
    crashed = job.rows.get(index=2)
    # A worker claimed row 2, recorded its attempt, and died during the call.
    audit_attempt_start(
        tenant=keyed_a,
        actor=alice,
        request=None,
        data=crashed.data,
        submission_token=f"bulk:{job.uuid}:2",
    )
    long_ago = timezone.now() - timedelta(hours=1)
    job.rows.filter(pk=crashed.pk).update(status=BulkRowStatus.CLAIMED, claimed_at=long_ago)
    AuditRecord.objects.filter(status=AuditStatus.PENDING).update(started_at=long_ago)
    assert bulk_job_work(job_id=job.pk) == "wait:5"  # row 3 done; row 2 still claimed
    pending_attempts_expire(older_than=timedelta(minutes=10))
    with django_capture_on_commit_callbacks(execute=False):
        bulk_jobs_revive()
    crashed.refresh_from_db()
    assert crashed.status == BulkRowStatus.UNKNOWN
    assert bulk_job_work(job_id=job.pk) == "ended"
    assert len(create_calls(numbers_ok)) == 1


def test_pages_upload_preview_confirm_and_progress(
    client,
    numbers_ok,
    keyed_a,
    alice,
    bob,
    django_capture_on_commit_callbacks,
):
    client.force_login(alice)
    url = reverse("trunks:bulk")
    assert "1000 rows" in client.get(url).content.decode()
    bad = client.post(url, {"tenant": "alpha", "rows": HEADER + "61200000000,,,x,02,true\n"})
    assert bad.status_code == 400 and "Row 2, column caller_id_number" in bad.content.decode()
    ok = client.post(url, {"tenant": "alpha", "rows": HEADER + good_rows(2, password=CANARY)})
    assert ok.status_code == 302
    page = client.get(ok.url).content.decode()
    assert "Create 2 trunks" in page and CANARY not in page
    job_uuid = ok.url.rstrip("/").split("/")[-1]
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("trunks:bulk-confirm", args=[job_uuid]))
    poll = client.get(ok.url, headers={"HX-Request": "true"})
    assert poll.status_code == 200 and "Queued" in poll.content.decode()
    client.post(reverse("trunks:bulk-cancel", args=[job_uuid]))
    ended = client.get(ok.url, headers={"HX-Request": "true"})
    assert ended.status_code == 286  # htmx stops polling
    client.force_login(bob)
    assert client.get(ok.url).status_code == 404


def test_managers_filter_the_audit_log_by_job(
    client,
    numbers_ok,
    keyed_a,
    alice,
    mallory,
    django_capture_on_commit_callbacks,
):
    numbers_ok.post(TRUNKS_URL, json=created("CT000071"))
    numbers_ok.post(TRUNKS_URL, json=created("CT000072"))
    job = confirm(make_job(alice, keyed_a, 2), alice, django_capture_on_commit_callbacks)
    bulk_job_work(job_id=job.pk)
    client.force_login(mallory)
    assert (
        f"?job={job.uuid}"
        in client.get(reverse("trunks:bulk-job", args=[job.uuid])).content.decode()
    )
    page = client.get(reverse("audit:list"), {"job": str(job.uuid)}).content.decode()
    assert "CT000071" in page and "CT000072" in page
    other = client.get(reverse("audit:list"), {"job": "00000000-0000-0000-0000-000000000000"})
    assert "CT000071" not in other.content.decode()
