"""Phone numbers are validated and stored as E.164; a national number is read in the
region CARETRACK_PHONE_REGION names (GB unless set)."""

from __future__ import annotations

import pytest

from caretrack.accounts.models import User
from caretrack.core import crypto, phones
from caretrack.core.settings import Settings, SettingsError
from tests.helpers import csrf_token, login, make_user


@pytest.mark.parametrize(("text", "region", "e164"), [
    ("07911 123456", "GB", "+447911123456"),          # UK mobile, national
    ("+44 (0)20 7946 0000", "GB", "+442079460000"),   # UK London, with the national 0 in brackets
    ("0044 20 7946 0000", "GB", "+442079460000"),     # with the UK's international prefix
    ("011 44 20 7946 0000", "US", "+442079460000"),   # with the US's
    ("(202) 555-0143", "US", "+12025550143"),         # US, national
    ("+1 202-555-0143", "GB", "+12025550143"),        # US, international, read in GB
    ("+33 1 42 68 53 00", "GB", "+33142685300"),      # France
    ("+81 3-1234-5678", "GB", "+81312345678"),        # Japan
])
def test_valid_numbers_become_e164(text, region, e164):
    assert phones.normalise(text, region) == e164


@pytest.mark.parametrize(("text", "rule"), [
    ("hello", "is not a phone number"),
    ("+44 79", "has too few digits"),
    ("+44 7911 1234567890", "has too many digits"),
    ("+44 7700 900123", "not a number in use"),   # Ofcom's drama range: never assigned
    ("12345", "lacks its area code"),
    ("1" * 41, "at most 40 characters"),
])
def test_invalid_numbers_are_refused_with_the_rule(text, rule):
    with pytest.raises(phones.PhoneError, match=rule):
        phones.normalise(text, "GB")


def test_the_region_setting():
    assert Settings.from_env({}).phone_region == "GB"
    assert Settings.from_env({"CARETRACK_PHONE_REGION": "us"}).phone_region == "US"
    with pytest.raises(SettingsError, match="CARETRACK_PHONE_REGION has 'XX'"):
        Settings.from_env({"CARETRACK_PHONE_REGION": "XX"})


async def _stored_phone(email: str) -> str | None:
    return crypto.unseal((await User.get(email=email)).phone, "users.phone")


async def test_profile_api_stores_e164_and_names_the_field_when_invalid(client):
    await make_user(email="tel@example.org")
    await login(client, "tel@example.org")
    headers = {"x-csrf-token": await csrf_token(client)}
    saved = await client.patch("/api/v1/me/profile", json={"phone": "07911 123456"}, headers=headers)
    assert saved.status_code == 200 and saved.json()["phone"] == "+447911123456"
    assert await _stored_phone("tel@example.org") == "+447911123456"
    bad = await client.patch("/api/v1/me/profile", json={"phone": "+44 79"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"] == [{"field": "phone", "message": bad.json()["error"]["fields"][0]["message"]}]
    assert "too few digits" in bad.json()["error"]["fields"][0]["message"]
    assert await _stored_phone("tel@example.org") == "+447911123456"  # unchanged
    cleared = await client.patch("/api/v1/me/profile", json={"phone": ""}, headers=headers)
    assert cleared.status_code == 200 and cleared.json()["phone"] is None


async def test_profile_page_stores_e164_and_shows_the_rule(client):
    await make_user(email="page-tel@example.org")
    await login(client, "page-tel@example.org")
    form = {"full_name": "Test Person", "time_zone": "UTC", "phone": "(202) 555-0143",
            "csrf_token": await csrf_token(client)}
    bad = await client.post("/account", data=form)
    assert bad.status_code == 422 and "national number of GB" in bad.text
    assert await _stored_phone("page-tel@example.org") is None
    ok = await client.post("/account", data=form | {"phone": "+1 (202) 555-0143"})
    assert ok.status_code == 200 and 'value="+12025550143"' in ok.text
    assert await _stored_phone("page-tel@example.org") == "+12025550143"
