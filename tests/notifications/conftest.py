"""A loopback SMS provider that speaks Twilio's protocol: it checks HTTP basic auth and the
form, answers with Twilio-shaped JSON (or the failures a test queues), and then reports the
message's status to its StatusCallback URL, signed as Twilio signs (computed here on its own,
from Twilio's documentation, not with the code under test)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from tests.conftest import base_settings, free_port, serve_in_loop, stop_serving

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "loopback-auth-token-0123456789"
FROM_NUMBER = "+15005550006"


def twilio_signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    """https://www.twilio.com/docs/usage/security#validating-requests"""
    data = url
    for name, value in sorted(params):
        data += name + value
    return base64.b64encode(hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest()).decode()


@dataclass
class FakeTwilio:
    url: str
    received: list[dict[str, str]] = field(default_factory=list)
    refused_auth: int = 0
    # What the next sends answer: "ok", or an HTTP status to fail with.
    answers: list[int | str] = field(default_factory=list)
    _sids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def report(self, sid: str, status: str, *, error_code: str | None = None,
                     token: str = AUTH_TOKEN, signed: bool = True) -> httpx.Response:
        """POST a status callback for message `sid` to the StatusCallback it was sent with."""
        message = next(m for m in self.received if m["sid"] == sid)
        params = [("AccountSid", ACCOUNT_SID), ("ApiVersion", "2010-04-01"), ("From", message["From"]),
                  ("MessageSid", sid), ("MessageStatus", status), ("SmsSid", sid), ("SmsStatus", status),
                  ("To", message["To"])]
        if error_code:
            params.append(("ErrorCode", error_code))
        headers = {"x-twilio-signature": twilio_signature(token, message["StatusCallback"], params)} if signed else {}
        async with httpx.AsyncClient() as client:
            return await client.post(message["StatusCallback"], data=dict(params), headers=headers)


def _provider_app(fake: FakeTwilio) -> Starlette:
    async def messages(request: Request):
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.path_params["sid"] != ACCOUNT_SID or request.headers.get("authorization") != expected:
            fake.refused_auth += 1
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401}, status_code=401)
        form = dict(parse_qsl((await request.body()).decode()))
        answer = fake.answers.pop(0) if fake.answers else "ok"
        if answer != "ok":
            status = int(answer)
            if status >= 500:
                return PlainTextResponse("upstream trouble", status_code=status)
            return JSONResponse({"code": 21211, "message": f"The 'To' number {form.get('To')} is not a valid "
                                 "phone number.", "more_info": "https://www.twilio.com/docs/errors/21211",
                                 "status": status}, status_code=status)
        sid = f"SM{next(fake._sids):032x}"
        fake.received.append({**form, "sid": sid})
        return JSONResponse({"sid": sid, "status": "queued", "to": form["To"], "from": form["From"],
                             "body": form["Body"], "account_sid": ACCOUNT_SID, "error_code": None,
                             "error_message": None, "num_segments": "1"}, status_code=201)

    async def healthz(request: Request):
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/healthz", healthz),
                             Route("/2010-04-01/Accounts/{sid}/Messages.json", messages, methods=["POST"])])


@pytest.fixture
async def fake_twilio():
    port = free_port()
    fake = FakeTwilio(f"http://127.0.0.1:{port}")
    task, stop = await serve_in_loop(_provider_app(fake), port)
    yield fake
    await stop_serving(task, stop)


@pytest.fixture
def twilio_settings(database_url, fake_twilio):
    return base_settings(database_url=database_url, sms_provider="twilio", twilio_account_sid=ACCOUNT_SID,
                         twilio_auth_token=AUTH_TOKEN, twilio_from=FROM_NUMBER, twilio_api_base=fake_twilio.url,
                         jobs_mode="workers")  # tests run the jobs themselves, at pinned instants


def sealed_number(number: str) -> dict[str, str]:
    """An OutboundSms's number columns as sms.send writes them (sealed, and its masked hint)."""
    from caretrack.core import crypto
    from caretrack.notifications.sms import SEALED, masked

    return {"to_number": crypto.seal(number, SEALED), "to_hint": masked(number)}
