"""Each user chooses email, SMS, both or none for each kind of notification their role gets;
SMS only with a phone on the profile. The API, the page (with its CSRF check) and
channels_for, which other domains ask."""

from __future__ import annotations

import pytest

from caretrack.accounts.models import User
from caretrack.core import crypto
from caretrack.core.roles import Role
from caretrack.notifications.service import channels_for
from tests.helpers import csrf_token, login, make_user

URL = "/api/v1/notifications/preferences"


async def _with_phone(email: str, role: Role = Role.PATIENT) -> User:
    return await make_user(role, email, phone=crypto.seal("+447911123456", "users.phone"))


async def test_defaults_are_email_for_the_kinds_of_the_role(client):
    await make_user(Role.CARER, "carer@example.org")
    await login(client, "carer@example.org")
    got = await client.get(URL)
    assert got.status_code == 200
    assert got.json() == {"sms_available": False, "preferences": [
        {"kind": "care_reminder", "label": "Visit and assessment reminders", "channel": "email"},
        {"kind": "message_nudge", "label": "Unread message nudges", "channel": "email"}]}
    assert await channels_for(await User.get(email="carer@example.org"), "care_reminder") == {"email"}


async def test_sms_needs_a_phone_and_the_422_names_the_kind_and_the_rule(client):
    await make_user(Role.PATIENT, "nophone@example.org")
    await login(client, "nophone@example.org")
    headers = {"x-csrf-token": await csrf_token(client)}
    refused = await client.put(URL, json={"preferences": {"appointment_reminder": "both"}}, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == [{
        "field": "preferences.appointment_reminder",
        "message": "SMS needs a phone number: add one to your profile (/account) first."}]
    assert (await client.get(URL)).json()["preferences"][0]["channel"] == "email"
    # Opting out needs no phone.
    off = await client.put(URL, json={"preferences": {"message_nudge": "none"}}, headers=headers)
    assert off.status_code == 200
    assert {p["kind"]: p["channel"] for p in off.json()["preferences"]} == {
        "appointment_reminder": "email", "message_nudge": "none", "visit_follow_up": "email"}
    assert await channels_for(await User.get(email="nophone@example.org"), "message_nudge") == set()


async def test_with_a_phone_each_choice_gives_its_channels(client):
    user = await _with_phone("phone@example.org")
    await login(client, "phone@example.org")
    headers = {"x-csrf-token": await csrf_token(client)}
    for choice, channels in (("sms", {"sms"}), ("both", {"email", "sms"}), ("none", set()), ("email", {"email"})):
        saved = await client.put(URL, json={"preferences": {"appointment_reminder": choice}}, headers=headers)
        assert saved.status_code == 200 and saved.json()["sms_available"] is True
        assert saved.json()["preferences"][0] == {"kind": "appointment_reminder", "label": "Appointment reminders",
                                                  "channel": choice}
        assert await channels_for(user, "appointment_reminder") == channels
    await client.put(URL, json={"preferences": {"appointment_reminder": "sms"}}, headers=headers)
    # The phone is removed later: the reminder falls back to email rather than being lost.
    await client.patch("/api/v1/me/profile", json={"phone": ""}, headers=headers)
    assert await channels_for(await User.get(id=user.id), "appointment_reminder") == {"email"}


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"preferences": {"competency_digest": "email"}}, "preferences.competency_digest", "not sent to patient accounts"),
    ({"preferences": {"holiday_cards": "email"}}, "preferences", "'holiday_cards' is not a kind of notification"),
    ({"preferences": {"message_nudge": "pigeon"}}, "preferences", "'pigeon' is not a channel"),
    ({"preferences": {}, "extra": 1}, "extra", "Extra inputs are not permitted"),
])
async def test_bad_choices_are_refused_naming_the_field(client, body, field, words):
    await make_user(Role.PATIENT, "bad@example.org")
    await login(client, "bad@example.org")
    refused = await client.put(URL, json=body, headers={"x-csrf-token": await csrf_token(client)})
    assert refused.status_code == 422, refused.text
    [problem] = [f for f in refused.json()["error"]["fields"] if f["field"] == field]
    assert words in problem["message"]


async def test_the_api_needs_a_session_and_csrf(client):
    assert (await client.get(URL)).status_code == 401
    await make_user(Role.PATIENT, "csrf-pref@example.org")
    await login(client, "csrf-pref@example.org")
    assert (await client.put(URL, json={"preferences": {"message_nudge": "none"}})).status_code == 403


async def test_the_page_shows_and_saves_choices_and_checks_csrf(client):
    await _with_phone("page-pref@example.org", Role.DOCTOR)
    await User.filter(email="page-pref@example.org").update(role=Role.PATIENT)  # no second factor to set up
    await login(client, "page-pref@example.org")
    page = await client.get("/account/notifications")
    assert page.status_code == 200 and "Appointment reminders" in page.text and "Unread message nudges" in page.text
    assert 'name="appointment_reminder" value="email"\n      checked' in page.text
    forged = await client.post("/account/notifications", data={"appointment_reminder": "none"})
    assert forged.status_code == 403
    other_site = await client.post("/account/notifications", headers={"origin": "https://evil.example"},
                                   data={"appointment_reminder": "none", "csrf_token": await csrf_token(client)})
    assert other_site.status_code == 403
    saved = await client.post("/account/notifications", data={
        "appointment_reminder": "both", "message_nudge": "none", "csrf_token": await csrf_token(client)})
    assert saved.status_code == 200 and "Your notification choices are saved." in saved.text
    assert 'name="appointment_reminder" value="both"\n      checked' in saved.text
    user = await User.get(email="page-pref@example.org")
    assert await channels_for(user, "appointment_reminder") == {"email", "sms"}
    assert await channels_for(user, "message_nudge") == set()


async def test_the_page_refuses_sms_without_a_phone_and_says_why(client):
    await make_user(Role.PATIENT, "page-nophone@example.org")
    await login(client, "page-nophone@example.org")
    page = await client.get("/account/notifications")
    assert "SMS needs a phone number" in page.text and "disabled" in page.text
    refused = await client.post("/account/notifications", data={
        "appointment_reminder": "sms", "csrf_token": await csrf_token(client)})
    assert refused.status_code == 422 and "SMS needs a phone number" in refused.text
    assert await channels_for(await User.get(email="page-nophone@example.org"), "appointment_reminder") == {"email"}
