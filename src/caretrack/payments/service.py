"""Credits: purchases through a provider (or the built-in demo top-up), signed webhooks
applied once, admin grants and refunds, receipts, earnings."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from tortoise.exceptions import IntegrityError

from caretrack.accounts.models import User
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Forbidden, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx, atomic
from caretrack.payments import ledger
from caretrack.payments.models import Checkout, LedgerEntry, PaymentEvent
from caretrack.payments.providers import PaymentsConfig, StripeLike
from caretrack.payments.schemas import AdjustRequest, EntryOut, PurchaseOut, PurchaseRequest, Statement


def now() -> datetime:
    return datetime.now(UTC)


# --- the app's payment set-up -------------------------------------------------------------------


async def start(app: Starlette) -> None:
    """Read the provider's settings once (tests may have put their own in place)."""
    if getattr(app.state, "payments", None) is None:
        app.state.payments = PaymentsConfig.from_settings(app.state.settings)


def config_of(app: Starlette) -> PaymentsConfig:
    config: PaymentsConfig = app.state.payments
    return config


def provider_of(app: Starlette) -> StripeLike | None:
    """The configured payment provider, or None for the built-in demo top-up."""
    config = config_of(app)
    if config.provider != "stripe":
        return None
    return StripeLike(config, getattr(app.state, "payments_transport", None))


async def _changed(tx: Tx, user_id: int, actor_id: int | None) -> None:
    await tx.emit("credits.changed", actor_id=actor_id, subject=("user", user_id), data={"user_id": user_id},
                  users=[user_id])


async def balance_of(user: User) -> int:
    return await ledger.balance(ledger.credits(user.id))


async def do_demo_topup(config: PaymentsConfig, user: User, command: PurchaseRequest) -> str:
    """The built-in provider: credits at once (demo and embedded installs)."""
    if user.role != Role.PATIENT:
        raise Forbidden("Only patients buy credits.")
    if not config.demo_topup:
        raise Forbidden("Demo top-ups are turned off on this server; pay through the payment provider.")
    credits = command.credits
    async with atomic() as tx:
        moved = await ledger.transfer(tx.conn, ledger.EXTERNAL, ledger.credits(user.id), credits, "purchase",
                                      f"{credits} credits (demo top-up)", reference="builtin", created_by=user.id)
        await tx.audit(Actor(user.id), "credits.purchased", "user", user.id, credits=credits, provider="builtin")
        await _changed(tx, user.id, user.id)
    return moved.id


async def do_purchase(settings: Settings, config: PaymentsConfig, provider: StripeLike | None, user: User,
                      command: PurchaseRequest) -> PurchaseOut:
    """With a provider: a hosted checkout (credits arrive with its webhook). Without: a demo top-up."""
    if provider is not None:
        return PurchaseOut(checkout_url=await do_start_checkout(settings, provider, user, command), balance=None)
    await do_demo_topup(config, user, command)
    return PurchaseOut(checkout_url=None, balance=await balance_of(user))


async def do_start_checkout(settings: Settings, provider: StripeLike, user: User, command: PurchaseRequest) -> str:
    """Create a hosted checkout session; returns the URL to send the payer to."""
    if user.role != Role.PATIENT:
        raise Forbidden("Only patients buy credits.")
    credits = command.credits
    amount = credits * provider.config.cents_per_credit
    reference = f"ct-{user.id}-{secrets.token_hex(8)}"
    session = await provider.create_checkout(
        reference=reference, credits=credits, amount_cents=amount,
        success_url=f"{settings.base_url}/credits?checkout=done", cancel_url=f"{settings.base_url}/credits")
    async with atomic() as tx:
        await Checkout.create(using_db=tx.conn, user_id=user.id, provider=provider.name,
                              provider_session_id=session.id, credits=credits, amount_cents=amount,
                              currency=provider.config.currency)
        await tx.audit(Actor(user.id), "credits.checkout_started", "user", user.id, credits=credits, session=session.id)
    return session.url


async def do_apply_webhook(provider: StripeLike, payload: bytes, signature: str | None) -> str:
    """Verify, then apply once: the event row and its effect commit together, so a replay is
    a no-op ("duplicate") and a failure (an exception here) leaves nothing marked done."""
    provider.verify(payload, signature)
    try:
        event = json.loads(payload)
        event_id, event_type = str(event["id"]), str(event["type"])
        session: dict[str, Any] = event.get("data", {}).get("object", {}) or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValidationError("The webhook body is not an event with an id and a type.") from None
    try:
        async with atomic() as tx:
            await PaymentEvent.create(using_db=tx.conn, provider=provider.name, provider_event_id=event_id,
                                      type=event_type[:64])
            if event_type == "checkout.session.completed":
                await _complete_checkout(tx, session)
            elif event_type == "checkout.session.expired":
                await Checkout.filter(provider_session_id=str(session.get("id")), status="open").using_db(tx.conn) \
                    .update(status="expired")
    except IntegrityError:
        if await PaymentEvent.exists(provider_event_id=event_id):
            return "duplicate"
        raise
    return "applied"


async def _complete_checkout(tx: Tx, session: dict[str, Any]) -> None:
    checkout = await Checkout.get_or_none(provider_session_id=str(session.get("id"))).using_db(tx.conn)
    if checkout is None:
        raise NotFound(f"No checkout session {str(session.get('id'))[:60]}.")
    if session.get("payment_status") != "paid":
        raise ValidationError("The checkout session is completed but not paid yet.")
    if int(session.get("amount_total") or -1) != checkout.amount_cents:
        raise ValidationError(f"The paid amount {session.get('amount_total')} differs from the checkout's "
                              f"{checkout.amount_cents}.")
    paid = await Checkout.filter(id=checkout.id, status="open").using_db(tx.conn).update(status="paid", paid_at=now())
    if not paid:
        return  # already credited under another event id
    await ledger.transfer(tx.conn, ledger.EXTERNAL, ledger.credits(checkout.user_id), checkout.credits, "purchase",
                          f"{checkout.credits} credits", reference=checkout.provider_session_id,
                          created_by=checkout.user_id)
    await tx.audit(Actor(None), "credits.purchased", "user", checkout.user_id, credits=checkout.credits,
                   session=checkout.provider_session_id)
    await _changed(tx, checkout.user_id, None)


async def patient_by_email(email: str) -> User:
    """The patient an admin names by email (the page's way to say whose credits change)."""
    email = email.strip().lower()
    subject = await User.get_or_none(email=email, role=Role.PATIENT)
    if subject is None:
        raise NotFound(f"No patient with the email {email[:80]}.")
    return subject


async def do_admin_adjust(admin: User, user_id: int, command: AdjustRequest, client_address: str | None = None) -> str:
    """`grant` adds credits; `refund` takes credits out of the wallet because the money went
    back to the payer outside CareTrack (never more than the balance)."""
    action, credits, reason = command.action, command.credits, command.reason
    subject = await User.get_or_none(id=user_id, role=Role.PATIENT)
    if subject is None:
        raise NotFound(f"No patient with id {user_id}.")
    async with atomic() as tx:
        if action == "grant":
            moved = await ledger.transfer(tx.conn, ledger.GRANTS, ledger.credits(user_id), credits, "grant", reason,
                                          created_by=admin.id)
        else:
            moved = await ledger.transfer(tx.conn, ledger.credits(user_id), ledger.EXTERNAL, credits, "admin_refund",
                                          reason, created_by=admin.id)
        await tx.audit(Actor(admin.id, client_address), f"credits.{action}", "user", user_id, credits=credits,
                       reason=reason)
        await _changed(tx, user_id, admin.id)
    return moved.id


async def statement(user: User, limit: int = 100) -> list[LedgerEntry]:
    key = ledger.earnings(user.id) if user.role == Role.DOCTOR else ledger.credits(user.id)
    return await ledger.entries(key, limit)


async def statement_view(user: User) -> Statement:
    """The balance (a doctor's earnings and fees pending) and the latest entries."""
    entries = await statement(user)
    if user.role == Role.DOCTOR:
        summary = await earnings_summary(user)
        balance, pending = summary["earnings"], summary["pending"]
    else:
        balance, pending = await balance_of(user), 0
    return Statement(balance=balance, pending=pending, entries=[
        EntryOut(transfer_id=e.transfer_id, amount=e.amount, kind=e.kind, memo=e.memo,
                 appointment_id=e.appointment_id, created_at=e.created_at) for e in entries])


async def receipt_entry(viewer: User, transfer_id: str) -> tuple[LedgerEntry, User]:
    """The wallet (or earnings) row of a transfer, for its owner or an admin; 404 otherwise."""
    rows = await LedgerEntry.filter(transfer_id=transfer_id).prefetch_related("account")
    for row in rows:
        owner_id = row.account.user_id
        if owner_id is not None and (owner_id == viewer.id or viewer.role == Role.ADMIN) \
                and row.account_id.split(":")[0] in ("credits", "earnings"):
            return row, await User.get(id=owner_id)
    raise NotFound(f"No receipt {transfer_id[:40]}.")


KIND_LABELS = {"purchase": "Credits bought", "grant": "Credits granted", "admin_refund": "Credits refunded to payer",
               "booking": "Consultation booked", "refund": "Consultation refund", "earning": "Consultation earnings"}


def _latin(text: str) -> str:
    return text.replace("—", "-").replace("’", "'").encode("latin-1", "replace").decode("latin-1")


async def receipt_pdf(settings: Settings, viewer: User, transfer_id: str) -> bytes:
    from fpdf import FPDF

    entry, owner = await receipt_entry(viewer, transfer_id)
    checkout = None
    if entry.kind == "purchase" and entry.reference:
        checkout = await Checkout.get_or_none(provider_session_id=entry.reference)
    pdf = FPDF(format="A4")
    pdf.set_title(f"Receipt {transfer_id}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, _latin(settings.agency_name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(0, 8, "Receipt", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    lines = [
        ("Receipt number", transfer_id),
        ("Date", entry.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("Account holder", f"{owner.full_name} <{owner.email}>"),
        ("Description", KIND_LABELS.get(entry.kind, entry.kind)),
        ("Details", entry.memo or "-"),
        ("Credits", f"{entry.amount:+d}"),
    ]
    if checkout is not None:
        lines.append(("Amount paid", f"{checkout.amount_cents / 100:.2f} {checkout.currency.upper()}"))
    for label, value in lines:
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(45, 8, _latin(label))
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 8, _latin(value), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


async def earnings_summary(doctor: User) -> dict[str, int]:
    return {"earnings": await ledger.balance(ledger.earnings(doctor.id)),
            "pending": await ledger.balance(ledger.escrow(doctor.id))}


def provider_for(config: PaymentsConfig) -> StripeLike | None:
    return StripeLike(config) if config.provider == "stripe" else None


