"""Credits over HTTP: the wallet and earnings pages, buying, receipts, admin grants and
refunds, and the payment provider's webhook."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.core.errors import CareTrackError, NotFound, ServiceUnavailable, ValidationError
from caretrack.core.roles import Role
from caretrack.http.apikit import PUBLIC, ApiRouter
from caretrack.http.clients import client_address
from caretrack.http.pagekit import PageRouter, redirect, render
from caretrack.payments import ledger, service
from caretrack.payments.providers import SIGNATURE_HEADER, PaymentsConfig, StripeLike
from caretrack.payments.schemas import (
    AdjustOut,
    AdjustRequest,
    EntryOut,
    PurchaseOut,
    PurchaseRequest,
    Statement,
    WebhookOut,
)

api = ApiRouter("credits")
pages = PageRouter()
MAX_WEBHOOK_BYTES = 64 * 1024


async def start(app: Starlette) -> None:
    if getattr(app.state, "payments", None) is None:
        app.state.payments = PaymentsConfig.from_settings(app.state.settings)


def _config(request: Request) -> PaymentsConfig:
    return request.app.state.payments


def _provider(request: Request) -> StripeLike | None:
    config = _config(request)
    if config.provider != "stripe":
        return None
    return StripeLike(config, getattr(request.app.state, "payments_transport", None))


async def _statement(user: User) -> Statement:
    entries = await service.statement(user)
    if user.role == Role.DOCTOR:
        summary = await service.earnings_summary(user)
        balance, pending = summary["earnings"], summary["pending"]
    else:
        balance, pending = await service.balance_of(user), 0
    return Statement(balance=balance, pending=pending, entries=[
        EntryOut(transfer_id=e.transfer_id, amount=e.amount, kind=e.kind, memo=e.memo,
                 appointment_id=e.appointment_id, created_at=e.created_at) for e in entries])


async def _purchase(request: Request, user: User, credits: int) -> PurchaseOut:
    provider = _provider(request)
    if provider is not None:
        return PurchaseOut(checkout_url=await service.do_start_checkout(request.app.state.settings, provider, user,
                                                                        credits))
    await service.do_demo_topup(_config(request), user, credits)
    return PurchaseOut(balance=await service.balance_of(user))


# --- API -------------------------------------------------------------------------------------


@api.get("/credits", summary="Your balance and statement (earnings for doctors)",
         roles=[Role.PATIENT, Role.DOCTOR], response=Statement)
async def api_statement(request: Request, user: User) -> Statement:
    return await _statement(user)


@api.post("/credits/purchases", summary="Buy credits", roles=[Role.PATIENT], body=PurchaseRequest,
          response=PurchaseOut, status=201, errors=(403, 503),
          description="With a payment provider: returns the hosted checkout URL; credits arrive with its "
                      "webhook. With the built-in provider: a demo top-up, credited at once.")
async def api_purchase(request: Request, user: User, body: PurchaseRequest) -> PurchaseOut:
    return await _purchase(request, user, body.credits)


@api.post("/admin/users/{user_id:id}/credits", summary="Grant or refund a patient's credits, with a reason",
          roles=[Role.ADMIN], body=AdjustRequest, response=AdjustOut, status=201, errors=(402, 404))
async def api_adjust(request: Request, user: User, body: AdjustRequest) -> AdjustOut:
    transfer = await service.do_admin_adjust(user, request.path_params["user_id"], body.credits, body.action,
                                             body.reason, client_address(request.scope))
    return AdjustOut(transfer_id=transfer, balance=await ledger.balance(ledger.credits(request.path_params["user_id"])))


@api.post("/payments/webhooks/stripe", summary="Payment provider webhook (signed)", roles=PUBLIC,
          response=WebhookOut, errors=(400, 404, 413, 422),
          description="Verified with the Stripe-Signature header (HMAC-SHA256 over '<t>.<body>'); each event "
                      "id is applied once. A non-2xx answer tells the provider to retry.")
async def api_webhook(request: Request) -> WebhookOut:
    provider = _provider(request)
    if provider is None:
        raise NotFound("No payment provider is configured.")
    from caretrack.http.bodies import read_limited

    payload = await read_limited(request, MAX_WEBHOOK_BYTES)
    result = await service.do_apply_webhook(provider, payload, request.headers.get(SIGNATURE_HEADER))
    return WebhookOut(result=result)


# --- pages -----------------------------------------------------------------------------------------


async def _credits_page(request: Request, user: User, flashes=None, status: int = 200) -> Response:
    from caretrack.booking.calendar import feed_url

    return render(request, "booking/credits.html", {
        "statement": await _statement(user), "config": _config(request), "labels": service.KIND_LABELS,
        "feed_url": await feed_url(request.app.state.settings, user),
        "checkout_done": request.query_params.get("checkout") == "done"}, status_code=status, flashes=flashes)


@pages.get("/credits", roles=[Role.PATIENT, Role.DOCTOR])
async def credits_page(request: Request, user: User) -> Response:
    return await _credits_page(request, user)


@pages.post("/credits/buy", roles=[Role.PATIENT])
async def buy(request: Request, user: User, form) -> Response:
    try:
        credits = int(str(form.get("credits", "")).strip() or "0")
        result = await _purchase(request, user, credits)
    except ValueError:
        return await _credits_page(request, user, [("error", "Give a whole number of credits.")], 422)
    except CareTrackError as exc:
        return await _credits_page(request, user, [("error", exc.message)], exc.status_code)
    if result.checkout_url:
        return redirect(result.checkout_url)
    return await _credits_page(request, user, [("success", f"{credits} credits added.")])


@pages.get("/credits/receipts/{transfer_id:str}", roles=None)
async def receipt(request: Request, user: User) -> Response:
    transfer_id = request.path_params["transfer_id"].removesuffix(".pdf")
    body = await service.receipt_pdf(request.app.state.settings, user, transfer_id)
    return Response(body, media_type="application/pdf", headers={
        "content-disposition": f'attachment; filename="receipt-{transfer_id}.pdf"'})


@pages.get("/admin/credits", roles=[Role.ADMIN])
async def admin_credits(request: Request, flashes=None, status: int = 200) -> Response:
    return render(request, "booking/admin_credits.html", {}, status_code=status, flashes=flashes)


@pages.post("/admin/credits", roles=[Role.ADMIN])
async def admin_adjust(request: Request, user: User, form) -> Response:
    try:
        email = str(form.get("email", "")).strip().lower()
        subject = await User.get_or_none(email=email, role=Role.PATIENT)
        if subject is None:
            raise NotFound(f"No patient with the email {email[:80]}.")
        credits = int(str(form.get("credits", "0")).strip() or "0")
        await service.do_admin_adjust(user, subject.id, credits, str(form.get("action", "")),
                                      str(form.get("reason", "")), client_address(request.scope))
        balance = await ledger.balance(ledger.credits(subject.id))
        return await admin_credits(request, [("success", f"Done: {subject.full_name} now has {balance} credits.")])
    except ValueError:
        return await admin_credits(request, [("error", "Give a whole number of credits.")], 422)
    except CareTrackError as exc:
        return await admin_credits(request, [("error", exc.message)], exc.status_code)


__all__ = ["api", "pages", "start", "ServiceUnavailable", "ValidationError"]
