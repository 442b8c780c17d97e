"""Payment-provider adapters. `StripeLike` speaks a hosted-checkout protocol: create a
checkout session over HTTPS, send the payer to its URL, learn the outcome from a signed
webhook (header `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`). `Builtin` is the
embedded default: a demo top-up that credits at once, refused in production unless enabled."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import httpx

from caretrack.core import crypto
from caretrack.core.errors import CareTrackError, ServiceUnavailable
from caretrack.core.settings import Settings

SIGNATURE_HEADER = "stripe-signature"


@dataclass(frozen=True)
class PaymentsConfig:
    """The payment settings (CARETRACK_PAYMENTS_* in caretrack.core.settings)."""

    provider: str = "builtin"                # builtin | stripe
    demo_topup: bool = True                  # the built-in provider's free top-up
    api_base: str = "https://api.stripe.com"
    secret_key: str | None = None
    webhook_secret: str | None = None
    currency: str = "eur"
    cents_per_credit: int = 100
    tolerance_seconds: int = 300

    @classmethod
    def from_settings(cls, settings: Settings) -> PaymentsConfig:
        return cls(
            provider=settings.payments_provider,
            demo_topup=(
                (not settings.production) if settings.payments_demo_topup is None else settings.payments_demo_topup
            ),
            api_base=settings.payments_api_base,
            secret_key=settings.payments_secret_key,
            webhook_secret=settings.payments_webhook_secret,
            currency=settings.payments_currency,
            cents_per_credit=settings.payments_cents_per_credit,
        )


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


class BadSignature(CareTrackError):
    status_code = 400
    code = "bad_signature"


def sign(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, payload: bytes, header: str | None, tolerance: int, now: float | None = None) -> None:
    """Raise BadSignature unless one v1 signature matches and the timestamp is recent."""
    if not header:
        raise BadSignature("The webhook has no signature header.")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise BadSignature("The webhook signature header is malformed.")
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise BadSignature("The webhook signature is too old (or from the future); replays are refused.")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(crypto.same_secret(s, expected) for s in signatures):
        raise BadSignature("The webhook signature does not match.")


class StripeLike:
    name = "stripe"

    def __init__(self, config: PaymentsConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.transport = transport

    async def create_checkout(self, *, reference: str, credits: int, amount_cents: int, success_url: str,
                              cancel_url: str) -> CheckoutSession:
        form = {
            "mode": "payment", "client_reference_id": reference, "success_url": success_url,
            "cancel_url": cancel_url, "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": self.config.currency,
            "line_items[0][price_data][unit_amount]": str(amount_cents),
            "line_items[0][price_data][product_data][name]": f"{credits} CareTrack credits",
            "metadata[credits]": str(credits),
        }
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=15) as client:
                response = await client.post(f"{self.config.api_base}/v1/checkout/sessions", data=form,
                                             headers={"authorization": f"Bearer {self.config.secret_key}",
                                                      "idempotency-key": reference})
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"The payment provider cannot be reached ({type(exc).__name__}); "
                                     "try again in a minute.") from None
        if response.status_code >= 400:
            raise ServiceUnavailable(f"The payment provider refused the checkout (HTTP {response.status_code}).")
        body = response.json()
        if not isinstance(body.get("id"), str) or not isinstance(body.get("url"), str):
            raise ServiceUnavailable("The payment provider answered without a checkout id and URL.")
        return CheckoutSession(body["id"], body["url"])

    def verify(self, payload: bytes, header: str | None) -> None:
        verify(self.config.webhook_secret or "", payload, header, self.config.tolerance_seconds)
