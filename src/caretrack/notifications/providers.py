"""The SMS provider adapter for a Twilio-style HTTP API, and Twilio's request signature.

Send: POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json with HTTP basic auth
(account sid : auth token) and the form fields To, From, Body, StatusCallback; the JSON reply
carries the message's `sid` and `status`, or on an error `code` and `message`.

Status callbacks are signed as Twilio documents
(https://www.twilio.com/docs/usage/security#validating-requests): X-Twilio-Signature is
base64(HMAC-SHA1(auth token, full URL + each POST parameter's name and value, sorted by name)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from caretrack.core import crypto
from caretrack.core.settings import Settings

SIGNATURE_HEADER = "x-twilio-signature"
STATUS_PATH = "/api/v1/sms/status"
TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Accepted:
    """The provider took the message."""

    sid: str
    status: str


class ProviderUnavailable(Exception):
    """Worth trying again later: the provider could not be reached, timed out or answered 5xx."""


class ProviderRefused(Exception):
    """The provider will never send this message as asked (a 4xx): its reason is the message."""


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature for a POST of `params` to `url`."""
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def signature_matches(auth_token: str, url: str, params: Iterable[tuple[str, str]], given: str | None) -> bool:
    if not given:
        return False
    return crypto.same_secret(given, signature(auth_token, url, params))


class Twilio:
    name = "twilio"

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        assert settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from, \
            "Settings.from_env refuses CARETRACK_SMS_PROVIDER=twilio without them"
        self.account_sid = settings.twilio_account_sid
        self.auth_token = settings.twilio_auth_token
        self.from_number = settings.twilio_from
        self.api_base = settings.twilio_api_base
        self.status_callback = settings.base_url + STATUS_PATH
        self.transport = transport

    async def send(self, to_number: str, body: str) -> Accepted:
        url = f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        form = {"To": to_number, "From": self.from_number, "Body": body, "StatusCallback": self.status_callback}
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=TIMEOUT_SECONDS) as client:
                response = await client.post(url, data=form, auth=(self.account_sid, self.auth_token))
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"The SMS provider cannot be reached ({type(exc).__name__}: {exc}).") from None
        reply = _json(response)
        if response.status_code >= 500:
            raise ProviderUnavailable(f"The SMS provider answered HTTP {response.status_code}{_problem(reply)}.")
        if response.status_code >= 400:
            raise ProviderRefused(f"The SMS provider refused the message (HTTP {response.status_code}"
                                  f"{_problem(reply)}).")
        sid, status = reply.get("sid"), reply.get("status")
        if not isinstance(sid, str) or not sid or not isinstance(status, str):
            raise ProviderUnavailable(f"The SMS provider answered HTTP {response.status_code} without a "
                                      "message sid and status.")
        if status == "failed" or reply.get("error_code"):
            raise ProviderRefused(f"The SMS provider failed the message at once{_problem(reply)}.")
        return Accepted(sid[:64], status)

    def verify(self, url: str, params: Iterable[tuple[str, str]], given: str | None) -> bool:
        return signature_matches(self.auth_token, url, params, given)


def provider_for(settings: Settings) -> Twilio | None:
    """The configured provider; None on the embedded default (texts are stored)."""
    return Twilio(settings) if settings.sms_provider == "twilio" else None


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        reply = response.json()
    except ValueError:
        return {}
    return reply if isinstance(reply, dict) else {}


def _problem(reply: dict[str, object]) -> str:
    """`: error 21211: The 'To' number is not a valid phone number` from Twilio's error shapes."""
    code = reply.get("code", reply.get("error_code"))
    message = reply.get("message", reply.get("error_message"))
    parts = [f"error {code}" if code is not None else "", str(message)[:300] if message else ""]
    text = ": ".join(p for p in parts if p)
    return f": {text}" if text else ""
