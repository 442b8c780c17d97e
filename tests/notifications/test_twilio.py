"""The Twilio adapter against a loopback server that speaks Twilio's protocol: basic auth,
the form it sends, retry on 5xx or no answer, a permanent failure on 4xx, and the signed
status callback (valid, forged, missing, unknown message, late)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from caretrack.notifications import sms
from caretrack.notifications.models import OutboundSms
from caretrack.notifications.providers import Twilio, provider_for, signature
from tests.notifications.conftest import AUTH_TOKEN, FROM_NUMBER, sealed_number, twilio_signature

AT = datetime(2026, 3, 8, 23, 59, tzinfo=UTC)
TEXT = "CareTrack: reminder of your appointment at 09:00. Details: https://caretrack.example/a/1"


@pytest.fixture
def settings(twilio_settings):
    return twilio_settings


async def _queued(number: str = "+447911123456") -> OutboundSms:
    return await OutboundSms.create(**sealed_number(number), body=TEXT, created_at=AT)


def test_the_signature_is_twilios_documented_example():
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
              ("From", "+12349013030"), ("To", "+18005551212")]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert signature("12345", url, list(reversed(params))) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="  # the fake's own


async def test_a_text_is_sent_with_auth_and_form_and_its_signed_callbacks_update_it(live_server, fake_twilio):
    text = await _queued()
    provider = provider_for(live_server.settings)
    assert isinstance(provider, Twilio)
    assert await sms.deliver(text.id, provider, at=AT, final=False) == "sent"
    assert fake_twilio.refused_auth == 0
    [sent] = fake_twilio.received
    assert {k: sent[k] for k in ("To", "From", "Body", "StatusCallback")} == {
        "To": "+447911123456", "From": FROM_NUMBER, "Body": TEXT,
        "StatusCallback": f"{live_server.url}/api/v1/sms/status"}
    stored = await OutboundSms.get(id=text.id)
    assert (stored.status, stored.provider_sid, stored.attempts, stored.sent_at) == ("sent", sent["sid"], 1, AT)

    forged = await fake_twilio.report(sent["sid"], "delivered", token="not-the-auth-token")
    assert forged.status_code == 403 and "X-Twilio-Signature" in forged.json()["error"]["message"]
    unsigned = await fake_twilio.report(sent["sid"], "delivered", signed=False)
    assert unsigned.status_code == 403
    assert (await OutboundSms.get(id=text.id)).status == "sent"

    delivered = await fake_twilio.report(sent["sid"], "delivered")
    assert delivered.status_code == 200 and delivered.json() == {"result": "updated"}
    assert (await OutboundSms.get(id=text.id)).status == "delivered"
    late = await fake_twilio.report(sent["sid"], "sent")  # out of order: never moves it back
    assert late.status_code == 200 and late.json() == {"result": "ignored"}
    assert (await OutboundSms.get(id=text.id)).status == "delivered"


async def test_an_undelivered_callback_keeps_the_error_code(live_server, fake_twilio):
    text = await _queued()
    await sms.deliver(text.id, provider_for(live_server.settings), at=AT, final=False)
    [sent] = fake_twilio.received
    answer = await fake_twilio.report(sent["sid"], "undelivered", error_code="30003")
    assert answer.status_code == 200
    stored = await OutboundSms.get(id=text.id)
    assert stored.status == "undelivered" and "30003" in stored.last_error


async def test_a_callback_for_a_message_we_never_sent_is_404_and_a_tampered_one_403(live_server, fake_twilio):
    import httpx

    url = f"{live_server.url}/api/v1/sms/status"
    params = [("MessageSid", "SM" + "f" * 32), ("MessageStatus", "delivered")]
    async with httpx.AsyncClient() as client:
        unknown = await client.post(url, data=dict(params),
                                    headers={"x-twilio-signature": twilio_signature(AUTH_TOKEN, url, params)})
        tampered = await client.post(url, data={"MessageSid": "SM" + "f" * 32, "MessageStatus": "failed"},
                                     headers={"x-twilio-signature": twilio_signature(AUTH_TOKEN, url, params)})
        other_url = await client.post(url, data=dict(params), headers={
            "x-twilio-signature": twilio_signature(AUTH_TOKEN, "https://elsewhere.example/api/v1/sms/status",
                                                   params)})
    assert unknown.status_code == 404 and "SMffff" in unknown.json()["error"]["message"]
    assert tampered.status_code == 403 and other_url.status_code == 403


async def test_a_5xx_or_no_answer_is_retried_and_the_last_attempt_fails(live_server, fake_twilio):
    text = await _queued()
    provider = provider_for(live_server.settings)
    fake_twilio.answers = [503]
    with pytest.raises(sms.DeliveryDeferred, match="HTTP 503"):
        await sms.deliver(text.id, provider, at=AT, final=False)
    stored = await OutboundSms.get(id=text.id)
    assert (stored.status, stored.attempts) == ("queued", 1) and "HTTP 503" in stored.last_error
    assert await sms.deliver(text.id, provider, at=AT, final=False) == "sent"
    assert (await OutboundSms.get(id=text.id)).attempts == 2 and len(fake_twilio.received) == 1

    nobody = live_server.settings.replace(twilio_api_base="http://127.0.0.1:9")  # the discard port: refused
    second = await _queued()
    with pytest.raises(sms.DeliveryDeferred, match="cannot be reached"):
        await sms.deliver(second.id, provider_for(nobody), at=AT, final=False)
    fake_twilio.answers = [500]
    with pytest.raises(sms.DeliveryDeferred):
        await sms.deliver(second.id, provider, at=AT, final=True)
    stored = await OutboundSms.get(id=second.id)
    assert (stored.status, stored.attempts) == ("failed", 2) and "HTTP 500" in stored.last_error


async def test_a_4xx_is_a_permanent_failure_with_the_providers_message(live_server, fake_twilio):
    text = await _queued("+12025550143")
    fake_twilio.answers = [400]
    with pytest.raises(sms.DeliveryRefused, match="21211"):
        await sms.deliver(text.id, provider_for(live_server.settings), at=AT, final=False)
    stored = await OutboundSms.get(id=text.id)
    assert stored.status == "failed" and stored.attempts == 1
    assert "The 'To' number +12025550143 is not a valid phone number" in stored.last_error
    # A refused message is done: running its job again sends nothing.
    with pytest.raises(sms.DeliveryRefused, match="already failed"):
        await sms.deliver(text.id, provider_for(live_server.settings), at=AT, final=False)
    assert fake_twilio.received == []


async def test_wrong_credentials_are_a_permanent_failure(live_server, fake_twilio):
    text = await _queued()
    wrong = live_server.settings.replace(twilio_auth_token="wrong-token-0123456789")
    with pytest.raises(sms.DeliveryRefused, match="HTTP 401"):
        await sms.deliver(text.id, provider_for(wrong), at=AT, final=False)
    assert fake_twilio.refused_auth == 1
