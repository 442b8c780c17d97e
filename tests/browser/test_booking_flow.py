"""The whole telehealth path in real browsers: a doctor applies, an admin approves (the
doctor's page changes live), the doctor publishes hours, a patient buys credits and books
(both dashboards update live), the patient cancels (the doctor's dashboard updates live)."""

from __future__ import annotations

import re

import pyotp
import pytest
from fpdf import FPDF

from caretrack.core.roles import Role
from tests.browser.helpers import live_ready, sign_in
from tests.helpers import make_user

pytestmark = pytest.mark.browser


def licence_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Registration certificate")
    return bytes(pdf.output())


async def test_apply_approve_publish_buy_book_cancel(live_server, browser):
    base = live_server.url
    doctor_secret, admin_secret = pyotp.random_base32(), pyotp.random_base32()
    await make_user(Role.DOCTOR, "dana@example.org", name="Dr Dana", totp_secret=doctor_secret)
    await make_user(Role.ADMIN, "ada@example.org", name="Ada Admin", totp_secret=admin_secret)
    await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient", time_zone="America/New_York")

    doctor = await sign_in(browser, base, "dana@example.org", doctor_secret)
    await doctor.wait_for_url("**/doctor")
    await doctor.get_by_label("Licence number").fill("GMC7654321")
    await doctor.get_by_label("Issuing body").fill("General Medical Council")
    await doctor.get_by_label("Licence expiry").fill("2031-01-31")
    await doctor.get_by_label("Specialty").fill("Dermatology")
    await doctor.get_by_label("Languages").fill("English, Spanish")
    await doctor.get_by_label("Biography").fill("Skin specialist with fifteen years of practice.")
    await doctor.get_by_label("Fee in credits").fill("20")
    await doctor.get_by_label(re.compile("Licence document")).set_input_files(
        {"name": "licence.pdf", "mimeType": "application/pdf", "buffer": licence_pdf()})
    await doctor.get_by_role("button", name="Submit application").click()
    await doctor.get_by_text("Your application is waiting for review").wait_for()
    await live_ready(doctor)

    admin = await sign_in(browser, base, "ada@example.org", admin_secret)
    await admin.wait_for_url("**/admin")
    await admin.get_by_role("link", name="Doctor applications").click()
    await admin.get_by_role("link", name="Dr Dana").click()
    await admin.get_by_role("button", name="Approve").click()
    await admin.get_by_text("Decision saved").wait_for()

    # the doctor's page changes without a reload
    await doctor.locator("#application-state").get_by_text("Approved").wait_for(timeout=10000)
    assert await doctor.locator("#dashboard").get_attribute("data-refreshed") is not None
    await doctor.get_by_label("Your time zone").fill("Europe/London")
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        await doctor.get_by_label(f"{day} from").fill("00:00")
        await doctor.get_by_label(f"{day} to").fill("23:30")
    await doctor.get_by_label("Minimum notice (minutes)").fill("0")
    await doctor.get_by_label("Free cancellation until (hours before)").fill("1")
    await doctor.get_by_role("button", name="Publish hours").click()
    await doctor.get_by_text("Your hours are published.").wait_for()
    await live_ready(doctor)

    patient = await sign_in(browser, base, "pat@example.org")
    await patient.wait_for_url("**/patient")
    dashboard = await patient.context.new_page()  # a second tab that must update by itself
    await dashboard.goto(base + "/patient")
    await live_ready(dashboard)
    await patient.get_by_role("link", name="Credits").first.click()
    await patient.get_by_label("Credits to buy").fill("50")
    await patient.get_by_role("button", name="Buy credits").click()
    await patient.get_by_text("50 credits added.").wait_for()
    await dashboard.locator("#balance").get_by_text("50").wait_for(timeout=10000)

    await patient.goto(base + "/doctors?specialty=derma&language=spanish")
    await patient.get_by_role("link", name="Dr Dana").click()
    slot = patient.locator("button[data-slot]").nth(3)
    when = (await slot.inner_text()).strip()
    await slot.click()
    await patient.get_by_text("This time is held for you").wait_for()
    await patient.get_by_role("button", name="Pay 20 credits and book").click()
    await patient.locator("#appointment-status").get_by_text("booked").wait_for()
    assert when in await patient.locator("#appointment-time").inner_text()  # shown in the patient's zone

    await dashboard.locator("#upcoming").get_by_text("Dr Dana").wait_for(timeout=10000)
    assert await dashboard.locator("#balance").inner_text() == "30"
    await doctor.locator("#upcoming").get_by_text("Pat Patient").wait_for(timeout=10000)

    await patient.get_by_role("button", name="Cancel appointment").click()
    await patient.locator("#appointment-status").get_by_text("cancelled").wait_for()
    await doctor.locator("#upcoming").get_by_text("None yet.").wait_for(timeout=10000)
    await dashboard.locator("#balance").get_by_text("50").wait_for(timeout=10000)
    for page in (doctor, admin, patient):
        await page.context.close()
