"""Credits: a double-entry ledger. Every movement is a transfer of two rows (one account
down, one up); each account's balance is a cache that service.check_ledger verifies
against the sum of its rows. Payment-provider checkouts and their webhook events."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class CreditAccount(Model):
    """Keys: credits:<user> (a patient's wallet), escrow:<doctor> (fees of booked
    appointments), earnings:<doctor>, platform (the platform's share), and the outside
    world: external (money paid in through providers), grants (admin grants)."""

    key = fields.CharField(max_length=40, primary_key=True)
    user = fields.ForeignKeyField("caretrack.User", related_name="credit_accounts", null=True,
                                  on_delete=fields.RESTRICT)
    balance = fields.BigIntField(default=0)
    may_go_negative = fields.BooleanField(default=False)

    class Meta:
        table = "credit_accounts"


class LedgerEntry(Model):
    id = fields.BigIntField(primary_key=True)
    transfer_id = fields.CharField(max_length=32, db_index=True)
    account = fields.ForeignKeyField("caretrack.CreditAccount", related_name="entries", on_delete=fields.RESTRICT,
                                     db_index=True)
    amount = fields.BigIntField()  # signed: + into the account, - out of it
    kind = fields.CharField(max_length=24)  # purchase | grant | admin_refund | booking | refund | payout_fee ...
    memo = fields.CharField(max_length=300, default="")
    appointment_id = fields.IntField(null=True, db_index=True)
    reference = fields.CharField(max_length=120, null=True)  # provider session id, etc.
    created_by_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_entries"


class Checkout(Model):
    """A purchase of credits started with a provider, completed once by its webhook."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("caretrack.User", related_name="checkouts", on_delete=fields.RESTRICT)
    provider = fields.CharField(max_length=16)
    provider_session_id = fields.CharField(max_length=120, unique=True)
    credits = fields.IntField()
    amount_cents = fields.IntField()
    currency = fields.CharField(max_length=3)
    status = fields.CharField(max_length=16, default="open")  # open | paid | expired
    created_at = fields.DatetimeField(auto_now_add=True)
    paid_at = fields.DatetimeField(null=True)

    class Meta:
        table = "checkouts"


class PaymentEvent(Model):
    """A provider webhook event applied (once: the provider's event id is unique). Written in
    the same transaction as its effect, so a failure leaves no row and a retry applies it."""

    id = fields.IntField(primary_key=True)
    provider = fields.CharField(max_length=16)
    provider_event_id = fields.CharField(max_length=120, unique=True)
    type = fields.CharField(max_length=64)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "payment_events"
