"""Messaging in real browsers: a patient opens the conversation from their appointment, the
doctor's unread badge rises live on another page, the doctor opens the thread (the badge
clears, the patient's message shows "Read" live), the reply reaches the patient's open thread
without a reload, and another patient opening the thread's address gets a 404."""

from __future__ import annotations

import re

import pyotp
import pytest

from caretrack.core.roles import Role
from tests.browser.helpers import live_ready, sign_in
from tests.helpers import make_user
from tests.messaging.conftest import booked

pytestmark = pytest.mark.browser


async def test_patient_and_doctor_exchange_messages_live(live_server, browser):
    base = live_server.url
    secret = pyotp.random_base32()
    doctor_user = await make_user(Role.DOCTOR, "dana@example.org", name="Dr Dana", totp_secret=secret)
    patient_user = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    await make_user(Role.PATIENT, "sam@example.org", name="Sam Stranger")
    appointment = await booked(patient_user, doctor_user)

    doctor = await sign_in(browser, base, "dana@example.org", secret)
    await doctor.wait_for_url("**/doctor")
    await live_ready(doctor)
    badge = doctor.locator("#unread-badge")
    await badge.wait_for(state="hidden")

    patient = await sign_in(browser, base, "pat@example.org")
    await patient.wait_for_url("**/patient")
    await patient.goto(f"{base}/appointments/{appointment.id}")
    await patient.get_by_role("button", name="Message Dr Dana").click()
    await patient.wait_for_url(re.compile(r".*/messages/\d+$"))
    thread_url = patient.url
    await live_ready(patient)
    await patient.get_by_label("Message", exact=True).fill("My rash is spreading")
    await patient.get_by_role("button", name="Send").click()
    mine = patient.locator("#messages li").filter(has_text="My rash is spreading")
    await mine.wait_for()
    assert (await mine.locator("[data-receipt]").inner_text()).strip() == "Sent"

    # the doctor's badge rises on the dashboard, without a reload
    await badge.get_by_text("1").wait_for(timeout=10000)
    await doctor.get_by_role("link", name=re.compile(r"^Messages")).click()
    await doctor.get_by_role("link", name="Pat Patient").click()
    await doctor.locator("#messages").get_by_text("My rash is spreading").wait_for()
    await doctor.locator("#unread-badge").wait_for(state="hidden", timeout=10000)  # read: the count clears
    # the patient sees it was read
    await mine.locator("[data-receipt]").get_by_text(re.compile(r"^Read ")).wait_for(timeout=10000)

    # the reply reaches the patient's open thread live, and is read there at once
    await live_ready(doctor)
    await doctor.get_by_label("Message", exact=True).fill("Please send a photo")
    await doctor.get_by_role("button", name="Send").click()
    await patient.locator("#messages").get_by_text("Please send a photo").wait_for(timeout=10000)
    reply = doctor.locator("#messages li").filter(has_text="Please send a photo")
    await reply.locator("[data-receipt]").get_by_text(re.compile(r"^Read ")).wait_for(timeout=10000)
    await patient.locator("#unread-badge").wait_for(state="hidden", timeout=10000)

    # a message while the doctor is on the list of conversations: the list and the badge update
    await doctor.goto(base + "/messages")
    await live_ready(doctor)
    await patient.get_by_label("Message", exact=True).fill("Sending it now")
    await patient.get_by_role("button", name="Send").click()
    await doctor.locator("#unread-badge").get_by_text("1").wait_for(timeout=10000)
    await doctor.locator("#threads li").filter(has_text="Pat Patient").get_by_text("1 unread").wait_for(timeout=10000)

    stranger = await sign_in(browser, base, "sam@example.org")
    await stranger.wait_for_url("**/patient")
    response = await stranger.goto(thread_url)
    assert response.status == 404
    assert "My rash is spreading" not in await stranger.content()
    for page in (doctor, patient, stranger):
        await page.context.close()
