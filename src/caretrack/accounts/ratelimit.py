"""Sign-in throttling and request budgets.

Failed sign-ins are counted per account and per client address. After a few free failures,
each further try must wait twice as long as the last (2, 4, 8 … seconds, capped), and a try
made during the wait is refused without the password being checked, so the wait cannot be
used as an oracle. The owner is never locked out for long: a throttled sign-in emails the
account a one-time sign-in link (see `service.check_login`), and the second factor is still
asked for after it. Time comes from an injectable clock, so tests pin and advance it.

Emails that anyone can trigger (password reset, sign-up notices, sign-in links) have a small
hourly budget per address they go to, and the requests behind them a budget per client."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from caretrack.accounts.counters import ResilientCounters
from caretrack.errors import RateLimited

FREE_FAILURES = {"account": 5, "address": 20}
MAX_DELAY_SECONDS = 15 * 60
FORGET_AFTER_SECONDS = 24 * 3600
EMAILS_PER_HOUR = 3
REQUESTS_PER_HOUR = 20
HOUR = 3600


def delay_after(failures: int, free: int) -> int:
    """Seconds to wait after `failures` failures: none for the first `free - 1`, then doubling."""
    if failures < free:
        return 0
    return min(MAX_DELAY_SECONDS, 2 ** min(failures - free + 1, 30))


def _wait_words(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{math.ceil(seconds / 60)} minutes"


class TooManyRequests(RateLimited):
    """A 429 that knows when to come back (the page sends it as Retry-After)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


class SignInThrottled(TooManyRequests):
    """Too many recent failures for this account or address; says how long to wait."""

    def __init__(self, scope: str, retry_after: float, *, factor: str = "password") -> None:
        self.scope = scope
        what = "this account" if scope == "account" else "your network address"
        noun = "sign-ins" if factor == "password" else "two-factor codes"
        message = f"Too many failed {noun} for {what}: wait {_wait_words(retry_after)} before the next try."
        if factor == "password":
            message += " If the account is yours, we have emailed it a link that signs you in without waiting."
        super().__init__(message, retry_after)


class LoginLimiter:
    """Sign-in throttling and email/request budgets, over shared counters."""

    def __init__(self, redis_url: str | None, *, clock: Callable[[], float] = time.time,
                 free_failures: int | None = None) -> None:
        self.clock = clock
        self.counters = ResilientCounters(redis_url, lambda: self.clock())
        self.free = dict(FREE_FAILURES)
        if free_failures is not None:
            self.free["account"] = free_failures

    @staticmethod
    def _keys(email: str, address: str | None, factor: str) -> dict[str, str]:
        # Bounded: the email is whatever the form held, and no account has one past 254 characters.
        return {"account": f"fail:{factor}:account:{email.strip().lower()[:254]}",
                "address": f"fail:address:{address or 'unknown'}"}

    async def check(self, email: str, address: str | None, *, factor: str = "password") -> None:
        """Refuse, before the secret is even checked, while either wait is running."""
        at = self.clock()
        for scope, key in self._keys(email, address, factor).items():
            record = await self.counters.failures(key, at)
            if at - record.last_at > FORGET_AFTER_SECONDS:
                continue
            remaining = record.last_at + delay_after(record.count, self.free[scope]) - at
            if remaining > 0:
                raise SignInThrottled(scope, remaining, factor=factor)

    async def failed(self, email: str, address: str | None, *, factor: str = "password") -> bool:
        """Count a failure; True when this one starts the account's throttling."""
        at = self.clock()
        keys = self._keys(email, address, factor)
        for key in keys.values():
            record = await self.counters.failures(key, at)
            if record.count and at - record.last_at > FORGET_AFTER_SECONDS:
                await self.counters.clear(key)  # a day without failures: start afresh
        account = await self.counters.record_failure(keys["account"], at, FORGET_AFTER_SECONDS)
        await self.counters.record_failure(keys["address"], at, FORGET_AFTER_SECONDS)
        return account.count == self.free["account"]

    async def succeeded(self, email: str, *, factor: str = "password") -> None:
        """The owner got in: their account starts afresh. The address does not (an attacker
        could otherwise reset it by signing into an account of their own)."""
        await self.counters.clear(self._keys(email, None, factor)["account"])

    async def email_allowed(self, purpose: str, email: str) -> bool:
        """Spend one of the address's hourly emails of this kind; False once spent."""
        at = self.clock()
        window = int(at // HOUR)
        key = f"email:{purpose}:{email.strip().lower()}:{window}"
        return await self.counters.bump(key, at, (window + 1) * HOUR - at) <= EMAILS_PER_HOUR

    async def count_request(self, purpose: str, address: str | None, what: str) -> None:
        """Count a request from this client; beyond the hourly budget, a 429 saying when to retry."""
        at = self.clock()
        window = int(at // HOUR)
        remaining = (window + 1) * HOUR - at
        key = f"requests:{purpose}:{address or 'unknown'}:{window}"
        if await self.counters.bump(key, at, remaining) > REQUESTS_PER_HOUR:
            raise TooManyRequests(f"Too many {what} from your network address this hour: try again in "
                                  f"{_wait_words(remaining)}.", remaining)

    async def close(self) -> None:
        await self.counters.close()
