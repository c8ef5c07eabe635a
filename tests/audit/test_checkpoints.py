"""Audit checkpoints: each tenant's chain head, signed and kept outside the database, lets
`verify_audit --checkpoints` catch what the chain alone cannot — records removed from the end, a
chain rolled back — and refuses a checkpoint whose signature does not match."""

import io
import json
import logging

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils.module_loading import import_string

from portal.checks import audit_checkpoint_key_check
from portal.schedules import schedule_get
from tests.factories import audit_attempt
from trunks.audit.checkpoints import audit_checkpoints_write
from trunks.models import AuditRecord

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
KEY = "checkpoint-key-for-tests-0123456789abcdef"


@pytest.fixture(autouse=True)
def checkpoint_key(settings):
    settings.AUDIT_CHECKPOINT_KEY = KEY
    settings.AUDIT_CHECKPOINT_PATH = ""


@pytest.fixture
def sealed(tenant_a, tenant_b, alice, bob):
    a = [audit_attempt(tenant=tenant_a, actor=alice) for _ in range(4)]
    b = [audit_attempt(tenant=tenant_b, actor=bob)]
    return a, b


def _verify(path) -> str:
    out = io.StringIO()
    call_command("verify_audit", "--checkpoints", str(path), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _verify_fails(path) -> str:
    err = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit", "--checkpoints", str(path), stdout=io.StringIO(), stderr=err)
    return f"{excinfo.value}\n{err.getvalue()}"


def _delete_behind_the_apps_back(record: AuditRecord) -> None:
    """As someone with the database would: on PostgreSQL, the append-only trigger switched off
    first (ALTER TABLE … DISABLE TRIGGER, as the tables' owner — the test's role)."""
    with connection.cursor() as cursor:
        if ON_POSTGRES:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "ALTER TABLE trunks_auditrecord DISABLE TRIGGER trunks_auditrecord_append_only"
            )
        cursor.execute("DELETE FROM trunks_auditrecord WHERE id = %s", [record.pk])
        if ON_POSTGRES:
            cursor.execute(
                "ALTER TABLE trunks_auditrecord ENABLE TRIGGER trunks_auditrecord_append_only"
            )


def test_a_checkpoint_goes_to_the_log_and_is_appended_to_the_file(sealed, tmp_path, caplog):
    path = tmp_path / "checkpoints.jsonl"
    path.write_text("")
    with caplog.at_level(logging.INFO, logger="trunks.audit.checkpoints"):
        call_command("audit_checkpoint", "--path", str(path), stdout=io.StringIO())
        call_command("audit_checkpoint", "--path", str(path), stdout=io.StringIO())
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(c["tenant_slug"], c["chain_seq"]) for c in lines] == [
        ("alpha", 4),
        ("bravo", 1),
    ] * 2
    a, _ = sealed
    assert lines[0]["record_hash"] == AuditRecord.objects.get(pk=a[-1].pk).record_hash
    assert len(lines[0]["signature"]) == 64 and lines[0]["head_at"]
    logged = [r.audit_checkpoint for r in caplog.records if hasattr(r, "audit_checkpoint")]
    assert logged == lines


def test_a_directory_gets_a_file_a_month(sealed, tmp_path, settings):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path)
    audit_checkpoints_write()
    [file] = tmp_path.iterdir()
    assert file.name.startswith("audit-checkpoints-") and file.suffix == ".jsonl"
    assert "OK:" in _verify(tmp_path)


@pytest.mark.postgres
def test_records_deleted_from_the_end_are_caught_with_the_tenant_and_range(sealed, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    audit_checkpoints_write(path=str(path))
    a, _ = sealed
    _delete_behind_the_apps_back(a[-1])
    _delete_behind_the_apps_back(a[-2])
    # The chain alone still links up: this is what the checkpoint is for.
    call_command("verify_audit", stdout=io.StringIO())
    message = _verify_fails(path)
    tenant = a[0].tenant
    assert (
        f"tenant 'alpha' (id {tenant.pk}): positions 3 to 4 are missing from the end of the chain "
        "(it now ends at position 2;" in message
    )
    assert "bravo" not in message


@pytest.mark.postgres
def test_a_chain_rolled_back_and_grown_again_is_caught(sealed, tmp_path, alice):
    path = tmp_path / "checkpoints.jsonl"
    audit_checkpoints_write(path=str(path))
    a, _ = sealed
    _delete_behind_the_apps_back(a[-1])
    audit_attempt(tenant=a[0].tenant, actor=alice)  # a new record at position 4
    call_command("verify_audit", stdout=io.StringIO())
    message = _verify_fails(path)
    assert "tenant 'alpha'" in message
    assert "the chain was rolled back or rewritten: position 4 now holds hash" in message


def test_the_latest_checkpoint_counts_and_growth_after_it_is_fine(sealed, tmp_path, alice):
    path = tmp_path / "checkpoints.jsonl"
    audit_checkpoints_write(path=str(path))
    a, _ = sealed
    audit_attempt(tenant=a[0].tenant, actor=alice)
    audit_checkpoints_write(path=str(path))
    audit_attempt(tenant=a[0].tenant, actor=alice)
    out = _verify(path)
    assert "every chain reaches its latest of 4 signed checkpoint(s)" in out


def test_a_forged_checkpoint_is_refused(sealed, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    audit_checkpoints_write(path=str(path))
    lines = path.read_text().splitlines()
    forged = json.loads(lines[0])
    forged["chain_seq"] = 2  # someone hiding records 3 and 4 before deleting them
    path.write_text("\n".join([json.dumps(forged), *lines[1:]]) + "\n")
    message = _verify_fails(path)
    assert (
        "checkpoints.jsonl line 1: the signature does not match AUDIT_CHECKPOINT_KEY — a forged "
        "or altered checkpoint, refused"
    ) in message


def test_a_checkpoint_signed_with_another_key_is_refused(sealed, tmp_path, settings):
    path = tmp_path / "checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_KEY = "someone-elses-key-" + "y" * 30
    audit_checkpoints_write(path=str(path))
    settings.AUDIT_CHECKPOINT_KEY = KEY
    assert "signature does not match" in _verify_fails(path)


def test_without_a_key_nothing_is_signed(sealed, tmp_path, settings):
    settings.AUDIT_CHECKPOINT_KEY = ""
    with pytest.raises(CommandError, match="AUDIT_CHECKPOINT_KEY is not set"):
        call_command("audit_checkpoint", "--path", str(tmp_path / "c"), stdout=io.StringIO())
    assert not (tmp_path / "c").exists()


def test_a_missing_checkpoint_file_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match="No checkpoint file or directory"):
        call_command("verify_audit", "--checkpoints", str(tmp_path / "nope"), stdout=io.StringIO())


def test_the_workers_write_checkpoints_on_a_schedule(sealed, tmp_path, settings):
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "c.jsonl")
    schedule = schedule_get("audit-checkpoint")
    import_string(schedule.function)(**schedule.kwargs)
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 2


def test_the_key_is_required_in_production_and_is_not_the_secret_key(settings):
    settings.DEBUG = False
    settings.AUDIT_CHECKPOINT_KEY = ""
    assert [e.id for e in audit_checkpoint_key_check()] == ["portal.E030"]
    settings.AUDIT_CHECKPOINT_KEY = settings.SECRET_KEY
    assert [e.id for e in audit_checkpoint_key_check()] == ["portal.E031"]
    settings.AUDIT_CHECKPOINT_KEY = KEY
    assert audit_checkpoint_key_check() == []
    settings.DEBUG = True
    settings.AUDIT_CHECKPOINT_KEY = ""
    assert [e.id for e in audit_checkpoint_key_check()] == ["portal.W030"]
