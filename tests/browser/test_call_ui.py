"""The call page says what is wrong and shows what is true: no stale tiles after a screen
share stops or someone leaves, the others' microphone and camera state on their tile, a
pre-call network check with a verdict, its own message for each device failure, and on an
origin that is not a secure context, why calls cannot work there and what to set."""

from __future__ import annotations

import re
import socket
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import expect

from caretrack.site.app import create_app
from tests.browser.calls import call_people, in_call, signed_in_page, wait_for_decoded
from tests.conftest import free_port, serve_in_loop, stop_serving

pytestmark = pytest.mark.browser


def own_address() -> str:
    """This machine's non-loopback address (the one its default route leaves from)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("203.0.113.1", 9))  # no packet is sent: this only picks the route
        address = probe.getsockname()[0]
    assert not address.startswith("127."), "the browser tests need a non-loopback address"
    return address


@asynccontextmanager
async def serving(settings, host: str = "127.0.0.1"):
    """The app with `settings` on http://`host`:port (its base URL); yields that URL."""
    port = free_port()
    served = settings.replace(base_url=f"http://{host}:{port}")
    task, stop = await serve_in_loop(create_app(served), port, host=host)
    try:
        yield served.base_url
    finally:
        await stop_serving(task, stop)


async def test_screen_share_stop_and_leave_leave_no_stale_tiles_and_mute_shows(live_server, browser):
    doctor_page, patient_page, patient = await in_call(browser, live_server.url)
    patients_tiles = doctor_page.locator(f'#videos .tile[data-participant="{patient.id}"]')
    patients_audio = doctor_page.locator(f'#videos audio[data-participant="{patient.id}"]')
    await expect(patients_tiles).to_have_count(1)
    await expect(patients_audio).to_have_count(1)
    camera_tile = patients_tiles.first

    # a screen share adds a tile on the doctor's page, named as the patient's screen
    await patient_page.get_by_role("button", name="Share screen").click()
    await wait_for_decoded(doctor_page, 2)
    await expect(patients_tiles).to_have_count(2)
    screen_tile = patients_tiles.filter(has_text="Pat Patient (screen)")
    await expect(screen_tile).to_have_count(1)
    await expect(camera_tile.locator("figcaption")).to_have_text("Pat Patient")

    # the camera goes off: the doctor sees it on the camera's tile, not on the screen's
    await expect(camera_tile.get_by_text("Camera off")).to_be_hidden()
    await patient_page.get_by_role("button", name="Camera off").click()
    await expect(camera_tile.get_by_text("Camera off")).to_be_visible()
    await expect(screen_tile.get_by_text("Camera off")).to_be_hidden()

    # stopping the share takes its tile away on the doctor's page
    await patient_page.get_by_role("button", name="Stop sharing").click()
    await expect(patients_tiles).to_have_count(1)
    await expect(camera_tile.locator("figcaption")).to_have_text("Pat Patient")

    # mute and unmute, camera back on: the doctor's page follows
    await expect(camera_tile.get_by_text("Microphone off")).to_be_hidden()
    await patient_page.get_by_role("button", name="Mute").click()
    await expect(camera_tile.get_by_text("Microphone off")).to_be_visible()
    await patient_page.get_by_role("button", name="Unmute").click()
    await expect(camera_tile.get_by_text("Microphone off")).to_be_hidden()
    await expect(camera_tile.get_by_text("Camera off")).to_be_visible()
    await patient_page.get_by_role("button", name="Camera on").click()
    await expect(camera_tile.get_by_text("Camera off")).to_be_hidden()
    await wait_for_decoded(doctor_page, 1)  # the camera still plays

    # the patient leaves: their video and audio go from the doctor's page
    await patient_page.get_by_role("button", name="Leave").click()
    await patient_page.get_by_text("You left the consultation").wait_for()
    await expect(patients_tiles).to_have_count(0)
    await expect(patients_audio).to_have_count(0)
    await expect(doctor_page.locator("#videos .tile")).to_have_count(1)  # the doctor's own view
    await doctor_page.context.close()
    await patient_page.context.close()


async def test_a_late_joiner_sees_an_earlier_mute(live_server, browser):
    """The mute state comes with the participants list too, not only as it changes."""
    doctor, patient, secret, appointment = await call_people()
    call_url = f"{live_server.url}/consultations/{appointment.id}"
    doctor_page = await signed_in_page(browser, live_server.url, "doc@example.org", secret)
    await doctor_page.goto(call_url)
    await doctor_page.get_by_role("button", name="Join the consultation").click()
    await doctor_page.get_by_role("button", name="Mute").click()
    patient_page = await signed_in_page(browser, live_server.url, "pat@example.org")
    await patient_page.goto(call_url)
    await patient_page.get_by_role("button", name="Join the consultation").click()
    await doctor_page.get_by_role("button", name="Admit Pat Patient").click()
    doctors_tile = patient_page.locator(f'#videos .tile[data-participant="{doctor.id}"]')
    await expect(doctors_tile.get_by_text("Microphone off")).to_be_visible(timeout=30000)
    await expect(doctors_tile.get_by_text("Camera off")).to_be_hidden()
    await doctor_page.context.close()
    await patient_page.context.close()


async def test_the_network_check_reaches_the_relay_and_says_good(live_server, browser):
    doctor, patient, secret, appointment = await call_people()
    page = await signed_in_page(browser, live_server.url, "pat@example.org")
    await page.goto(f"{live_server.url}/consultations/{appointment.id}")
    verdict = page.locator("#network-verdict")
    await expect(verdict).to_have_text(re.compile(r"^Good: round trip \d+ ms, no test packets lost\.$"),
                                       timeout=20000)
    assert live_server.app.state.signalling.consultations == {}  # a check joins nothing
    await page.get_by_role("button", name="Check again").click()
    await expect(verdict).to_contain_text("Good: round trip", timeout=20000)

    # the words for what else a check can measure
    async def verdict_of(rtts: list[int]) -> str:
        return await page.evaluate("rtts => import('/static/js/call/netcheck.js')"
                                   ".then(m => m.verdict({ rtts, sent: m.PACKETS }).text)", rtts)

    slow = "Video may freeze or break up; a wired or stronger connection, or closing other downloads, will help."
    assert await verdict_of([350, 360, 380, 400] * 5) == f"Poor: round trip 380 ms, no test packets lost. {slow}"
    assert await verdict_of([20] * 18) == f"Poor: round trip 20 ms, 10% of test packets lost. {slow}"
    assert await verdict_of([20] * 19) == "Good: round trip 20 ms, 5% of test packets lost."
    assert await verdict_of([]) == "Can't reach the call server: none of the test packets came back."
    await page.context.close()


async def test_the_network_check_says_when_the_relay_cannot_be_reached(settings, browser):
    """The relay may only send to a network this machine is not on: its ICE never connects."""
    async with serving(settings.replace(rtc_allowed_networks=("203.0.113.0/24",))) as base_url:
        doctor, patient, secret, appointment = await call_people()
        page = await signed_in_page(browser, base_url, "pat@example.org")
        await page.goto(f"{base_url}/consultations/{appointment.id}")
        await expect(page.locator("#network-verdict")).to_contain_text(
            "Can't reach the call server: no network path for the call's audio and video", timeout=30000)
        await expect(page.locator("#network-verdict")).to_contain_text("CARETRACK_TURN_URLS")
        await page.context.close()


async def test_each_device_failure_has_its_own_message(live_server, browser):
    """The browser refuses the camera (in use) but gives the microphone; then refuses both."""
    doctor, patient, secret, appointment = await call_people()
    page = await signed_in_page(browser, live_server.url, "pat@example.org")
    await page.context.add_init_script("""
      if (window.localStorage.noWebRTC) delete window.RTCPeerConnection;
      const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = async (c) => {
        if (window.localStorage.denyAll) throw new DOMException("Permission denied", "NotAllowedError");
        if (c.video) throw new DOMException("Could not start video source", "NotReadableError");
        return real(c);
      };""")
    await page.goto(f"{live_server.url}/consultations/{appointment.id}")
    warning = page.locator("#device-warning")
    await expect(warning).to_have_text(
        "Your camera could not be started: another app (a call, a recorder) may be using it. "
        "Close that app, then choose the camera again below.")
    assert await page.locator("#preview").evaluate("v => v.srcObject.getAudioTracks().length") == 1
    assert await page.locator("#preview").evaluate("v => v.srcObject.getVideoTracks().length") == 0

    await page.evaluate("localStorage.denyAll = '1'")
    await page.reload()
    await expect(warning).to_have_text(
        "This site is not allowed to use your camera and microphone. Allow them in the browser's site "
        "settings (the camera icon in the address bar), then reload the page.")

    # a browser without WebRTC is told so, rather than failing on Join
    await page.evaluate("localStorage.noWebRTC = '1'")
    await page.reload()
    alert = page.get_by_role("alert").filter(has_text="This browser cannot make calls")
    await expect(alert).to_contain_text("Open this page in a current Chrome, Edge, Firefox or Safari.")
    await expect(page.get_by_role("button", name="Join the consultation")).to_be_hidden()
    await page.context.close()


async def test_without_camera_or_microphone_the_patient_still_sees_the_doctor(live_server, browser):
    doctor, patient, secret, appointment = await call_people()
    call_url = f"{live_server.url}/consultations/{appointment.id}"
    patient_page = await signed_in_page(browser, live_server.url, "pat@example.org")
    await patient_page.context.add_init_script("""
      navigator.mediaDevices.enumerateDevices = async () => [];
      navigator.mediaDevices.getUserMedia = async () => { throw new DOMException("none", "NotFoundError"); };""")
    await patient_page.goto(call_url)
    await expect(patient_page.locator("#device-warning")).to_have_text(
        "No camera or microphone was found on this device. You can still join: you will see and hear "
        "the others, but they will not see or hear you.")
    await patient_page.get_by_role("button", name="Join the consultation").click()
    doctor_page = await signed_in_page(browser, live_server.url, "doc@example.org", secret)
    await doctor_page.goto(call_url)
    await doctor_page.get_by_role("button", name="Join the consultation").click()
    await doctor_page.get_by_role("button", name="Admit Pat Patient").click()
    await wait_for_decoded(patient_page, 1)
    doctors_tile = patient_page.locator(f'#videos .tile[data-participant="{doctor.id}"]')
    await expect(doctors_tile.locator("figcaption")).to_have_text("Dr Dora")
    await doctor_page.context.close()
    await patient_page.context.close()


async def test_an_insecure_origin_says_calls_need_https(settings, browser):
    """Over http on a non-loopback address the browser offers no camera or microphone: the
    page says so and what to set, and throws nothing."""
    async with serving(settings, host=own_address()) as base_url:
        doctor, patient, secret, appointment = await call_people()
        page = await signed_in_page(browser, base_url, "pat@example.org")
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base_url}/consultations/{appointment.id}")
        assert await page.evaluate("window.isSecureContext") is False
        alert = page.get_by_role("alert").filter(has_text="Calls need a secure connection")
        await expect(alert).to_be_visible()
        await expect(alert).to_contain_text(f"This page was opened at {base_url}")
        await expect(alert).to_contain_text("set CARETRACK_BASE_URL to its https:// address")
        await expect(alert).to_contain_text("open http://localhost:")
        await expect(page.get_by_role("button", name="Join the consultation")).to_be_hidden()
        assert errors == []
        await page.context.close()
