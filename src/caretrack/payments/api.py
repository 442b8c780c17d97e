"""Credits over the JSON API: the statement, buying, admin grants and refunds, and the
payment provider's webhook. The pages live in payments/pages.py (the wallet page itself,
which also shows the calendar feed, is booking's: booking/pages.py)."""

from __future__ import annotations

from starlette.requests import Request

from caretrack.accounts.models import User
from caretrack.core.errors import NotFound
from caretrack.core.roles import Role
from caretrack.http.apikit import PUBLIC, ApiRouter
from caretrack.http.bodies import read_limited
from caretrack.http.clients import address_of
from caretrack.payments import ledger, service
from caretrack.payments.providers import SIGNATURE_HEADER
from caretrack.payments.schemas import (
    AdjustOut,
    AdjustRequest,
    PurchaseOut,
    PurchaseRequest,
    Statement,
    WebhookOut,
)
from caretrack.payments.service import start

api = ApiRouter("credits")
MAX_WEBHOOK_BYTES = 64 * 1024


@api.get("/credits", summary="Your balance and statement (earnings for doctors)",
         roles=[Role.PATIENT, Role.DOCTOR], response=Statement)
async def api_statement(request: Request, user: User) -> Statement:
    return await service.statement_view(user)


@api.post("/credits/purchases", summary="Buy credits", roles=[Role.PATIENT], body=PurchaseRequest,
          response=PurchaseOut, status=201, errors=(403, 503),
          description="With a payment provider: returns the hosted checkout URL; credits arrive with its "
                      "webhook. With the built-in provider: a demo top-up, credited at once.")
async def api_purchase(request: Request, user: User, body: PurchaseRequest) -> PurchaseOut:
    return await service.do_purchase(request.app.state.settings, service.config_of(request.app),
                                     service.provider_of(request.app), user, body)


@api.post("/admin/users/{user_id:id}/credits", summary="Grant or refund a patient's credits, with a reason",
          roles=[Role.ADMIN], body=AdjustRequest, response=AdjustOut, status=201, errors=(402, 404))
async def api_adjust(request: Request, user: User, body: AdjustRequest) -> AdjustOut:
    transfer = await service.do_admin_adjust(user, request.path_params["user_id"], body, address_of(request))
    return AdjustOut(transfer_id=transfer, balance=await ledger.balance(ledger.credits(request.path_params["user_id"])))


@api.post("/payments/webhooks/stripe", summary="Payment provider webhook (signed)", roles=PUBLIC,
          response=WebhookOut, errors=(400, 404, 413, 422),
          description="Verified with the Stripe-Signature header (HMAC-SHA256 over '<t>.<body>'); each event "
                      "id is applied once. A non-2xx answer tells the provider to retry.")
async def api_webhook(request: Request) -> WebhookOut:
    provider = service.provider_of(request.app)
    if provider is None:
        raise NotFound("No payment provider is configured.")
    payload = await read_limited(request, MAX_WEBHOOK_BYTES)
    result = await service.do_apply_webhook(provider, payload, request.headers.get(SIGNATURE_HEADER))
    return WebhookOut(result=result)


__all__ = ["api", "start"]  # start: the lifespan hook site/app.py runs
