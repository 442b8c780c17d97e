"""The credit ledger. `transfer` runs inside the caller's transaction: two rows (out of one
account, into another) and the two cached balances, updated in key order (so two transfers
never deadlock) with a conditional update that refuses to take an account below zero."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.functions import Sum

from caretrack.core.errors import CareTrackError
from caretrack.payments.models import CreditAccount, LedgerEntry

EXTERNAL = "external"   # money paid in through a payment provider
GRANTS = "grants"       # credits admins grant
PLATFORM = "platform"   # the platform's share of completed consultations
SYSTEM_ACCOUNTS = {EXTERNAL: True, GRANTS: True, PLATFORM: False}


class InsufficientCredits(CareTrackError):
    status_code = 402
    code = "insufficient_credits"


def credits(user_id: int) -> str:
    return f"credits:{user_id}"


def escrow(doctor_id: int) -> str:
    return f"escrow:{doctor_id}"


def earnings(doctor_id: int) -> str:
    return f"earnings:{doctor_id}"


def _owner(key: str) -> int | None:
    prefix, _, rest = key.partition(":")
    return int(rest) if rest.isdigit() else None


async def ensure_account(conn: BaseDBAsyncClient, key: str) -> None:
    """Create the account if it is missing; safe under concurrency (no read-then-insert)."""
    negative = SYSTEM_ACCOUNTS.get(key, False)
    if conn.capabilities.dialect == "postgres":
        sql = ("INSERT INTO credit_accounts (key, user_id, balance, may_go_negative) VALUES ($1, $2, 0, $3) "
               "ON CONFLICT (key) DO NOTHING")
    else:
        sql = ("INSERT INTO credit_accounts (key, user_id, balance, may_go_negative) VALUES (?, ?, 0, ?) "
               "ON CONFLICT (key) DO NOTHING")
    await conn.execute_query(sql, [key, _owner(key), negative])


@dataclass(frozen=True)
class Transfer:
    id: str
    amount: int


async def transfer(conn: BaseDBAsyncClient, source: str, target: str, amount: int, kind: str, memo: str = "", *,
                   appointment_id: int | None = None, reference: str | None = None,
                   created_by: int | None = None) -> Transfer:
    if amount <= 0 or source == target:
        raise ValueError(f"a transfer moves a positive amount between two accounts, not {amount} {source}->{target}")
    await ensure_account(conn, target)
    if SYSTEM_ACCOUNTS.get(source) is not None:
        await ensure_account(conn, source)
    for key in sorted((source, target)):
        if key == source:
            moved = await CreditAccount.filter(Q(key=source) & (Q(balance__gte=amount) | Q(may_go_negative=True))) \
                .using_db(conn).update(balance=F("balance") - amount)
            if not moved:
                have = await CreditAccount.filter(key=source).using_db(conn).values_list("balance", flat=True)
                raise InsufficientCredits(
                    f"This needs {amount} credit(s) and the balance is {have[0] if have else 0}; buy credits first.")
        else:
            await CreditAccount.filter(key=target).using_db(conn).update(balance=F("balance") + amount)
    transfer_id = secrets.token_hex(8)
    common = dict(transfer_id=transfer_id, kind=kind, memo=memo[:300], appointment_id=appointment_id,
                  reference=reference, created_by_id=created_by)
    await LedgerEntry.bulk_create([LedgerEntry(account_id=source, amount=-amount, **common),
                                   LedgerEntry(account_id=target, amount=amount, **common)], using_db=conn)
    return Transfer(transfer_id, amount)


async def balance(key: str, conn: BaseDBAsyncClient | None = None) -> int:
    query = CreditAccount.filter(key=key)
    if conn is not None:
        query = query.using_db(conn)
    values = await query.values_list("balance", flat=True)
    return int(values[0]) if values else 0


async def entries(key: str, limit: int = 100) -> list[LedgerEntry]:
    return await LedgerEntry.filter(account_id=key).order_by("-id").limit(limit)


@dataclass(frozen=True)
class LedgerCheck:
    accounts: int
    mismatched: dict[str, tuple[int, int]]   # key -> (cached balance, sum of rows)
    negative: list[str]
    total: int                               # sum of every row: 0 in a balanced ledger

    @property
    def ok(self) -> bool:
        return not self.mismatched and not self.negative and self.total == 0


async def check_ledger() -> LedgerCheck:
    """Every cached balance equals the sum of its rows; nothing that may not go negative has."""
    sums = dict(await LedgerEntry.annotate(total=Sum("amount")).group_by("account_id")
                .values_list("account_id", "total"))
    mismatched, negative = {}, []
    accounts = await CreditAccount.all()
    for account in accounts:
        derived = int(sums.get(account.key) or 0)
        if derived != account.balance:
            mismatched[account.key] = (account.balance, derived)
        if account.balance < 0 and not account.may_go_negative:
            negative.append(account.key)
    total = sum(int(v or 0) for v in sums.values())
    return LedgerCheck(len(accounts), mismatched, negative, total)
