"""In Chromium, at a pinned instant: a patient downloads the appointment's .ics from its page
(on the doctor's Berlin wall clock, with the join link), and an expired hold's page says when it
expired and takes the patient back to the doctor's free times."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from caretrack.booking import service
from caretrack.booking.schemas import BookSlot, HoldSlot
from tests.booking.test_times import AT, SLOT, berlin_doctor, london_patient
from tests.browser.helpers import sign_in

pytestmark = pytest.mark.browser


async def test_the_ics_link_downloads_and_an_expired_hold_explains_itself(live_server, browser):
    base = live_server.url
    live_server.app.state.clock = lambda: AT
    doctor, _ = await berlin_doctor()
    patient = await london_patient()
    booked = await service.do_book(live_server.settings, patient, BookSlot(doctor_id=doctor.id, starts_at=SLOT),
                                   at=AT)
    hold = await service.do_hold(patient, HoldSlot(doctor_id=doctor.id, starts_at=SLOT + timedelta(minutes=30)),
                                 at=AT)

    page = await sign_in(browser, base, patient.email)
    await page.wait_for_url("**/patient")
    await page.goto(f"{base}/appointments/{booked.id}")
    assert await page.locator("#appointment-time").inner_text() == \
        "Wednesday, 2 December 2026, 08:05–08:35 (Europe/London)"
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Add to calendar (.ics)").click()
    download = await download_info.value
    assert download.suggested_filename == f"appointment-{booked.id}.ics"
    ics = Path(await download.path()).read_text()
    assert "DTSTART;TZID=Europe/Berlin:20261202T090500" in ics and "BEGIN:VTIMEZONE" in ics
    assert f"{base}/consultations/{booked.id}" in ics.replace("\r\n ", "")

    live_server.app.state.clock = lambda: AT + timedelta(minutes=6)  # the 5-minute hold has lapsed
    await page.goto(f"{base}/appointments/{hold.id}")
    assert await page.locator("#appointment-status").inner_text() == "Hold expired"
    assert (await page.locator("#hold-expired").inner_text()).startswith(
        "This hold expired at 08:05 (Europe/London), Tue 1 Dec")
    assert await page.get_by_role("button", name="Pay 10 credits and book").count() == 0
    await page.get_by_role("link", name="Choose a time again").click()
    await page.wait_for_url(f"**/doctors/{doctor.id}")
    await page.get_by_role("heading", name="Free times (Europe/London)").wait_for()
    # the lapsed hold's time is free again, shown on the patient's clock
    await page.locator(f"button[data-slot='{(SLOT + timedelta(minutes=30)).isoformat()}']").wait_for()
    assert await page.locator(f"button[data-slot='{(SLOT + timedelta(minutes=30)).isoformat()}']").inner_text() \
        == "08:35"
    await page.context.close()
