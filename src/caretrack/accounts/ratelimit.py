"""Sign-in throttling and request budgets.

Failed sign-ins are counted per account and per client address, for each factor apart. A try
is counted before its secret is checked and taken back if it succeeds, so parallel tries get no
more checks than the free ones. After a few free failures, each further try must wait twice as
long as the last (2, 4, 8 … seconds, capped), and a try made during the wait is refused without
the secret being checked, so the wait cannot be used as an oracle. The owner is never locked
out for long: a sign-in refused because the *account* is throttled emails it a one-time
sign-in link (see `service.check_login`; never because of the address, or one address could
make us email every user), and the second factor is still asked for after it. Time comes from
an injectable clock, so tests pin and advance it.

Emails that anyone can trigger (password reset, sign-up notices, sign-in links) have a small
hourly budget per address they go to, and the requests behind them a budget per client."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

from caretrack.accounts.counters import ResilientCounters
from caretrack.core.errors import RateLimited

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
        if factor == "password" and scope == "account":
            message += " If the account is yours, we have emailed it a link that signs you in without waiting."
        super().__init__(message, retry_after)


def address_key(address: str | None) -> str:
    """The client as the limits count it: an IPv4 address whole, an IPv6 address by its /64
    (one subscriber is usually given a whole /64, so single IPv6 addresses are free to an
    attacker), an IPv4-mapped IPv6 address as the IPv4 address it is."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginLimiter:
    """Sign-in throttling and email/request budgets, over shared counters."""

    def __init__(self, redis_url: str | None, *, clock: Callable[[], float] = time.time,
                 free_failures: int | None = None) -> None:
        self.clock = clock
        self.counters = ResilientCounters(redis_url, lambda: self.clock())
        self.free = dict(FREE_FAILURES)
        if free_failures is not None:
            self.free["account"] = free_failures
        # The wait after each count, computed here once (the counters only look it up); past
        # the end of a table the wait stays at its last, capped value.
        self._delays = [[delay_after(n, free) for n in range(free + 10)]
                        for free in (self.free["account"], self.free["address"])]

    @staticmethod
    def _keys(email: str, address: str | None, factor: str) -> dict[str, str]:
        # Bounded: the email is whatever the form held, and no account has one past 254 characters.
        # By factor for the address too: password failures behind an address must not refuse the
        # right second factor of someone who has proven their password.
        return {"account": f"fail:{factor}:account:{email.strip().lower()[:254]}",
                "address": f"fail:{factor}:address:{address_key(address)}"}

    async def attempt(self, email: str, address: str | None, *, factor: str = "password") -> int:
        """Count this try as a failure before its secret is checked, so parallel tries get no
        more checks than the free ones, and refuse it unchecked while either wait is running.
        The account's failure count, this try included; `succeeded` takes the try back."""
        keys = self._keys(email, address, factor)
        reservation = await self.counters.reserve(list(keys.values()), self._delays, self.clock(),
                                                  FORGET_AFTER_SECONDS)
        if reservation.blocked is not None:
            raise SignInThrottled(list(keys)[reservation.blocked], reservation.retry_after, factor=factor)
        return reservation.counts[0]

    def starts_throttling(self, count: int) -> bool:
        """True when the account's `count`th failure is the one that starts its waits."""
        return count == self.free["account"]

    async def succeeded(self, email: str, address: str | None, *, factor: str = "password") -> None:
        """The owner got in: their account starts afresh, and the address gets back the try
        `attempt` counted, no more (an attacker could otherwise wipe the address's record by
        signing into an account of their own)."""
        keys = self._keys(email, address, factor)
        await self.counters.release([keys["account"]], [keys["address"]])

    async def forgive_account(self, email: str) -> None:
        """The owner got in by an emailed link: their account's password failures start afresh."""
        await self.counters.release([self._keys(email, None, "password")["account"]], [])

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
        key = f"requests:{purpose}:{address_key(address)}:{window}"
        if await self.counters.bump(key, at, remaining) > REQUESTS_PER_HOUR:
            raise TooManyRequests(f"Too many {what} from your network address this hour: try again in "
                                  f"{_wait_words(remaining)}.", remaining)

    async def close(self) -> None:
        await self.counters.close()
