"""Bulk provisioning in Chromium, against the built-in sandbox: upload a file with bad rows and read
the preview, paste the fixed rows, confirm, watch the progress land without reloading, download the
usernames and passwords once; and cancel a job."""

import re
from pathlib import Path

from playwright.sync_api import expect

from trunks.bulk.work import bulk_job_work
from trunks.models import BulkJob, BulkRow
from trunks.sandbox.models import SandboxTrunk

HEADER = "caller_id_number,sms_sender,password,description,area_code,enabled\n"
GOOD = "".join(f"61298765432,,,Desk {i},02,true\n" for i in range(4))
BAD = "61200000000,,,Desk bad,02,true\n61298765432,,weak,Desk weak,02,true\n"


def test_upload_preview_confirm_progress_and_the_one_download(portal, alice, alpha, tmp_path):
    portal.login_as(alice)
    portal.goto("/trunks/bulk/")
    expect(portal.page.get_by_text("1000 rows")).to_be_visible()
    bad = tmp_path / "desks.csv"
    bad.write_text(HEADER + GOOD + BAD)
    portal.page.get_by_label("CSV file").set_input_files(str(bad))
    portal.page.get_by_role("button", name="Check the rows").click()
    portal.settled()
    preview = portal.page.locator("#bulk-preview")
    expect(preview).to_contain_text("2 of 6 rows have problems")
    expect(preview).to_contain_text("Row 6, column caller_id_number")
    expect(preview).to_contain_text("Row 7, column password")
    portal.check("bulk-preview")

    portal.page.get_by_label("Or paste rows (header first)").fill(HEADER + GOOD)
    portal.page.get_by_role("button", name="Check the rows").click()
    portal.settled()
    portal.page.get_by_role("button", name="Create 4 trunks").click()
    portal.settled()
    expect(portal.page.locator("#bulk-status")).to_have_text("Queued")
    portal.check("bulk-queued")

    job = BulkJob.objects.get()
    assert bulk_job_work(job_id=job.pk) == "ended"  # the worker's part, in this process
    # The page follows by itself (htmx polling), then stops polling.
    expect(portal.page.locator("#bulk-status")).to_have_text("Finished", timeout=15000)
    expect(portal.page.locator("#bulk-counts")).to_contain_text("Done 4")
    expect(portal.page.locator("#bulk-rows")).to_contain_text(re.compile(r"CT\d{6}"))
    portal.check("bulk-finished")

    with portal.page.expect_download() as download:
        portal.page.get_by_role("button", name=re.compile("Download usernames")).click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert len(lines) == 5 and all(re.search(r",CT\d{6},\w{20},", line) for line in lines[1:])
    assert SandboxTrunk.objects.count() == 4
    assert not BulkRow.objects.filter(password_ciphertext__isnull=False).exists()
    portal.goto(f"/trunks/bulk/{job.uuid}/")
    expect(portal.page.locator("#bulk-downloaded")).to_contain_text("downloaded")
    expect(portal.page.get_by_role("button", name=re.compile("Download"))).to_have_count(0)


def test_cancel_stops_the_rows_not_sent(portal, alice, alpha):
    portal.login_as(alice)
    portal.goto("/trunks/bulk/")
    portal.page.get_by_label("Or paste rows (header first)").fill(HEADER + GOOD)
    portal.page.get_by_role("button", name="Check the rows").click()
    portal.settled()
    portal.page.get_by_role("button", name="Create 4 trunks").click()
    portal.settled()
    portal.page.get_by_role("button", name="Cancel the remaining rows").click()
    portal.settled()
    expect(portal.page.locator("#bulk-status")).to_have_text("Cancelled")
    expect(portal.page.locator("#bulk-counts")).to_contain_text("cancelled 4")
    portal.check("bulk-cancelled")
    assert SandboxTrunk.objects.count() == 0
