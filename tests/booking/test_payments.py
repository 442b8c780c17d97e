"""Buying credits through a Stripe-like provider (a real HTTP server on loopback), signed
webhooks applied once, the demo top-up, admin grants and refunds, receipts."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time

import httpx
import pyotp
from pypdf import PdfReader

from caretrack.core.roles import Role
from caretrack.payments import ledger
from caretrack.payments.models import Checkout, PaymentEvent
from caretrack.payments.providers import PaymentsConfig
from tests.booking.fake_provider import FakeProvider
from tests.helpers import PASSWORD, csrf_token, make_user


@contextlib.asynccontextmanager
async def signed_in(base: str, email: str, role=Role.PATIENT):
    secret = pyotp.random_base32() if role != Role.PATIENT else None
    await make_user(role, email, name=f"{role} {email}", totp_secret=secret)
    client = httpx.AsyncClient(base_url=base, headers={"origin": base})
    await client.post("/login", data={"email": email, "password": PASSWORD})
    if secret:
        await client.post("/mfa/verify", data={"code": pyotp.TOTP(secret).now(),
                                              "csrf_token": await csrf_token(client, "/mfa/verify")})
    client.headers["x-csrf-token"] = await csrf_token(client, "/account")
    try:
        yield client
    finally:
        await client.aclose()


async def test_checkout_and_signed_webhooks_applied_once(live_server):
    async with FakeProvider("sk_test_123", "whsec_abc") as provider:
        live_server.app.state.payments = PaymentsConfig(provider="stripe", demo_topup=False, api_base=provider.url,
                                                        secret_key="sk_test_123", webhook_secret="whsec_abc")
        hook = f"{live_server.url}/api/v1/payments/webhooks/stripe"
        async with signed_in(live_server.url, "buyer@example.org") as client:
            started = await client.post("/api/v1/credits/purchases", json={"credits": 25})
            assert started.status_code == 201, started.text
            url = started.json()["checkout_url"]
            assert url.startswith(provider.url + "/pay/cs_test_")
            session_id = url.rsplit("/", 1)[1]
            assert provider.requests[0]["line_items[0][price_data][unit_amount]"] == "2500"

            # forged, stale and unpaid deliveries change nothing
            forged = await provider.deliver(hook, provider.event(session_id), secret="whsec_wrong")
            assert forged.status_code == 400 and "does not match" in forged.json()["error"]["message"]
            stale = await provider.deliver(hook, provider.event(session_id), timestamp=int(time.time()) - 3600)
            assert stale.status_code == 400
            unpaid_event = provider.event(session_id, paid=False)
            unpaid = await provider.deliver(hook, unpaid_event)
            assert unpaid.status_code == 422
            assert not await PaymentEvent.exists(provider_event_id=unpaid_event["id"])  # a failure is not marked done
            assert (await client.get("/api/v1/credits")).json()["balance"] == 0

            event = provider.event(session_id, event_id="evt_once")
            results = await asyncio.gather(*(provider.deliver(hook, event) for _ in range(5)))
            assert sorted(r.json()["result"] for r in results) == ["applied"] + ["duplicate"] * 4
            again = await provider.deliver(hook, provider.event(session_id))  # another event, same session
            assert again.json()["result"] == "applied"
            assert (await client.get("/api/v1/credits")).json()["balance"] == 25
            assert (await Checkout.get(provider_session_id=session_id)).status == "paid"

            statement = (await client.get("/api/v1/credits")).json()
            receipt = await client.get(f"/credits/receipts/{statement['entries'][0]['transfer_id']}.pdf")
            assert receipt.headers["content-type"] == "application/pdf"
            assert receipt.headers["cache-control"] == "no-store"
            text = PdfReader(io.BytesIO(receipt.content)).pages[0].extract_text()
            assert "25.00 EUR" in text and "+25" in text
        async with signed_in(live_server.url, "nosy@example.org") as nosy:
            other = await nosy.get(f"/credits/receipts/{statement['entries'][0]['transfer_id']}.pdf")
            assert other.status_code == 404
    assert (await ledger.check_ledger()).ok


async def test_demo_topup_and_admin_grant_and_refund(live_server):
    async with signed_in(live_server.url, "pat@example.org") as patient:
        bought = await patient.post("/api/v1/credits/purchases", json={"credits": 10})
        assert bought.json()["balance"] == 10
        patient_id = (await patient.get("/api/v1/me")).json()["id"]
    async with signed_in(live_server.url, "boss@example.org", Role.ADMIN) as admin:
        no_reason = await admin.post(f"/api/v1/admin/users/{patient_id}/credits",
                                     json={"action": "grant", "credits": 5, "reason": ""})
        assert no_reason.status_code == 422
        granted = await admin.post(f"/api/v1/admin/users/{patient_id}/credits",
                                   json={"action": "grant", "credits": 5, "reason": "Apology for a dropped call"})
        assert granted.json()["balance"] == 15
        too_much = await admin.post(f"/api/v1/admin/users/{patient_id}/credits",
                                    json={"action": "refund", "credits": 16, "reason": "Card refund"})
        assert too_much.status_code == 402
        refunded = await admin.post(f"/api/v1/admin/users/{patient_id}/credits",
                                    json={"action": "refund", "credits": 15, "reason": "Card refund"})
        assert refunded.json()["balance"] == 0
        receipt = await admin.get(f"/credits/receipts/{granted.json()['transfer_id']}.pdf")
        assert "Apology for a dropped call" in PdfReader(io.BytesIO(receipt.content)).pages[0].extract_text()
    check = await ledger.check_ledger()
    assert check.ok, check


async def test_the_pages_buy_grant_and_refund_through_the_apis_commands(live_server):
    """The wallet's buy form and the admin's credits form parse the API's command models:
    the same rules, said in the page's sentences; a whole reason is stored stripped."""
    async with signed_in(live_server.url, "page-pat@example.org") as patient:
        not_a_number = await patient.post("/credits/buy", data={"credits": "ten"})
        assert not_a_number.status_code == 422
        assert "Give a whole number of credits." in not_a_number.text
        too_many = await patient.post("/credits/buy", data={"credits": "1001"})
        assert too_many.status_code == 422
        assert "Buy between 1 and 1000 credits at a time." in too_many.text
        bought = await patient.post("/credits/buy", data={"credits": " 12 "})
        assert bought.status_code == 200
        assert "12 credits added." in bought.text
        patient_id = (await patient.get("/api/v1/me")).json()["id"]
    assert await ledger.balance(ledger.credits(patient_id)) == 12
    async with signed_in(live_server.url, "page-boss@example.org", Role.ADMIN) as admin:
        form = {"email": "Page-Pat@example.org ", "action": "grant", "credits": "3", "reason": "  Goodwill  "}
        unknown = await admin.post("/admin/credits", data={**form, "email": "nobody@example.org"})
        assert unknown.status_code == 404
        assert "No patient with the email nobody@example.org." in unknown.text
        no_number = await admin.post("/admin/credits", data={**form, "credits": "three"})
        assert no_number.status_code == 422
        assert "Give a whole number of credits." in no_number.text
        too_many = await admin.post("/admin/credits", data={**form, "credits": "100001"})
        assert too_many.status_code == 422
        assert "Give between 1 and 100000 credits." in too_many.text
        short = await admin.post("/admin/credits", data={**form, "reason": "  ok  "})
        assert short.status_code == 422
        assert "Give a reason (3 to 300 characters)" in short.text
        granted = await admin.post("/admin/credits", data=form)
        assert granted.status_code == 200
        assert "now has 15 credits." in granted.text
        refunded = await admin.post("/admin/credits", data={**form, "action": "refund", "credits": "15"})
        assert "now has 0 credits." in refunded.text
        blank_reason = await admin.post(f"/api/v1/admin/users/{patient_id}/credits",
                                        json={"action": "grant", "credits": 5, "reason": "     "})
        assert blank_reason.status_code == 422
        assert blank_reason.json()["error"]["fields"] == [{"field": "reason", "message": (
            "Give a reason (3 to 300 characters); the patient sees it on their statement.")}]
    grant = (await ledger.entries(ledger.credits(patient_id)))[1]
    assert (grant.kind, grant.amount, grant.memo) == ("grant", 3, "Goodwill")
    check = await ledger.check_ledger()
    assert check.ok, check
