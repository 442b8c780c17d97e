"""A guest without an account joins by link: the doctor makes the link on the call page, a
signed-out browser opens it, gives a name, passes the device check, waits and is admitted;
the doctor, the patient and the guest each decode the two others' video. Recording waits
for the guest's consent too, and stops when the guest withdraws it."""

from __future__ import annotations

import pytest

from tests.browser.calls import call_people, signed_in_page, wait_for_decoded

pytestmark = pytest.mark.browser


async def test_a_signed_out_guest_joins_doctor_and_patient_by_link(live_server, browser):
    doctor, patient, secret, appointment = await call_people()
    call_url = f"{live_server.url}/consultations/{appointment.id}"
    doctor_page = await signed_in_page(browser, live_server.url, "doc@example.org", secret)
    patient_page = await signed_in_page(browser, live_server.url, "pat@example.org")

    # the doctor joins and makes a link for an interpreter from the call page
    await doctor_page.goto(call_url)
    await doctor_page.get_by_role("button", name="Join the consultation").click()
    await doctor_page.get_by_label("They join as").select_option(label="Interpreter")
    await doctor_page.get_by_label("Who is it for?").fill("Portuguese interpreter")
    await doctor_page.get_by_role("button", name="Create a single-use link").click()
    link_box = doctor_page.locator("#guest-link")
    await link_box.get_by_text("/consultations/guest#").wait_for()
    link = await link_box.text_content()
    links = doctor_page.get_by_role("list", name="Guest links")
    await links.get_by_text("Portuguese interpreter (interpreter) — not opened yet").wait_for()

    await patient_page.goto(call_url)
    await patient_page.get_by_role("button", name="Join the consultation").click()
    await patient_page.get_by_role("heading", name="Waiting room").wait_for()
    await doctor_page.get_by_role("button", name="Admit Pat Patient").click()

    # a fresh browser, signed out: the link, a name, the device check, the waiting room
    guest_context = await browser.new_context()
    guest_page = await guest_context.new_page()
    await guest_page.goto(link)
    await guest_page.get_by_label("Your name, as the others in the call will see it").fill("Ana Silva")
    await guest_page.get_by_role("button", name="Continue to the device check").click()
    await guest_page.wait_for_url("**/consultations/guest/call")
    assert "joining as Ana Silva (interpreter)" in await guest_page.locator("main").inner_text()
    await guest_page.locator("#preview").evaluate("v => new Promise(r => v.readyState >= 2 ? r() : v.onloadeddata = r)")
    await guest_page.get_by_role("button", name="Join the consultation").click()
    await guest_page.get_by_role("heading", name="Waiting room").wait_for()
    await links.get_by_text("opened: Ana Silva").wait_for()

    # the doctor admits the guest: everyone decodes the two others
    await doctor_page.get_by_role("button", name="Admit Ana Silva (interpreter)").click()
    for page in (doctor_page, patient_page, guest_page):
        assert len(await wait_for_decoded(page, 2)) >= 2

    # the guest sees what is said now, and nothing from before: no history, no notes, no posting
    await patient_page.get_by_label("Message").fill("Hello everyone")
    await patient_page.get_by_role("button", name="Send").click()
    await guest_page.locator("#chat-log").get_by_text("Hello everyone").wait_for()
    assert await guest_page.locator("#chat-form").is_hidden()
    assert await guest_page.locator("#notes").count() == 0 and await guest_page.locator("#recordings").count() == 0
    assert await guest_page.locator("#call-warning").is_hidden()

    # recording: the doctor and the patient agree; it waits for the guest
    await doctor_page.get_by_label("I agree to this call being recorded").check()
    await patient_page.get_by_label("I agree to this call being recorded").check()
    waiting_for_guest = "Recording needs the consent of: Ana Silva (interpreter)."
    await doctor_page.locator("#consent-missing").get_by_text(waiting_for_guest, exact=True).wait_for()
    assert await doctor_page.locator("#recording-banner").is_hidden()
    await guest_page.get_by_label("I agree to this call being recorded").check()
    for page in (doctor_page, patient_page, guest_page):
        await page.get_by_text("This consultation is being recorded.").wait_for()
    await guest_page.get_by_label("I agree to this call being recorded").uncheck()
    for page in (doctor_page, patient_page, guest_page):
        await page.get_by_text("This consultation is being recorded.").wait_for(state="hidden")
    await patient_page.locator("#consent-missing").get_by_text("Ana Silva (interpreter)").wait_for()

    # a second browser cannot reuse the link
    other = await (await browser.new_context()).new_page()
    await other.goto(link)
    await other.get_by_label("Your name, as the others in the call will see it").fill("Eve")
    await other.get_by_role("button", name="Continue to the device check").click()
    await other.get_by_text("This invitation link is invalid, used, revoked or expired").wait_for()
    for page in (other, guest_page, patient_page, doctor_page):
        await page.context.close()
