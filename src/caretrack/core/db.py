"""Database: Tortoise configuration, start/stop, migrations and their status."""

from __future__ import annotations

import asyncio
import errno
import socket
from dataclasses import dataclass

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate as tortoise_migrate  # the function
from tortoise.migrations.executor import MigrationExecutor

from caretrack.core.settings import Settings

APP_LABEL = "caretrack"
MIGRATIONS_MODULE = "caretrack.migrations"
# Every module that defines models; one Tortoise app so relations cross domains freely.
MODEL_MODULES = [
    "caretrack.accounts.models",
    "caretrack.core.audit.models",
    "caretrack.mail.models",
    "caretrack.core.outbox.models",
    "caretrack.core.queue.models",
    "caretrack.booking.models",
    "caretrack.booking.followup_models",
    "caretrack.intake.models",
    "caretrack.booking.attendance",
    "caretrack.payments.models",
    "caretrack.care.models",
    "caretrack.care.notes_models",
    "caretrack.assessments.models",
    "caretrack.consultations.models",
    "caretrack.consultations.summary_models",
    "caretrack.messaging.models",
    "caretrack.notifications.models",
]
MIGRATE_COMMAND = "caretrack migrate"


class DatabaseUnavailable(Exception):
    """The database cannot be reached; the message says where and why, without secrets."""


def tortoise_config(settings: Settings) -> dict:
    url = settings.database_url
    if settings.is_sqlite:
        path = url[len("sqlite://"):]
        credentials = {"file_path": path, "journal_mode": "WAL", "foreign_keys": "ON"}
        connection = {"engine": "tortoise.backends.sqlite", "credentials": credentials}
    else:
        connection = url
    return {
        "connections": {"default": connection},
        "apps": tortoise_config_apps(),
        "use_tz": True,
        "timezone": "UTC",
    }


async def start(settings: Settings) -> None:
    """Open the connections and check the database answers."""
    if settings.is_sqlite:
        from pathlib import Path

        Path(settings.database_url[len("sqlite://"):]).parent.mkdir(parents=True, exist_ok=True)
    # Tortoise caches each model's SQL by connection name, not dialect; a process that opens
    # another database (the test suite alternates SQLite and PostgreSQL) must start afresh.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)
    try:
        await ping()
    except DatabaseUnavailable as exc:
        await stop()
        where = describe_url(settings.database_url)
        raise DatabaseUnavailable(f"cannot reach the database at {where}: {exc}") from None


async def stop() -> None:
    await Tortoise.close_connections()


async def ping(timeout: float = 5.0) -> None:
    try:
        await asyncio.wait_for(connections.get("default").execute_query("SELECT 1"), timeout)
    except (TimeoutError, OSError, Exception) as exc:  # driver errors vary by backend
        raise DatabaseUnavailable(_describe(exc)) from exc


def unreachable_reason(exc: BaseException) -> str | None:
    """Why the database could not be reached, when that is what `exc` (or its cause) means;
    None for any other error (a bad query, a constraint, a bug), which stays a 500."""
    for current in _chain(exc):
        if _is_connection_failure(current):
            return _describe(current)
    return None


NUL_REFUSED = "Text must not contain the NUL character (\\u0000); remove it and send it again."
NUMBER_REFUSED = "A number is larger than can be stored (ids and counts go up to 2147483647); send a smaller one."


def refused_input_reason(exc: BaseException) -> str | None:
    """What is wrong with the input when the database refused a value a route let through
    (NUL in text, an integer beyond its column): a 422, never a 500. Routes should bound
    their input first (caretrack.core.validation) so the error can name the field; this is the net."""
    for current in _chain(exc):
        text = str(current)
        if isinstance(current, OverflowError) and "SQLite INTEGER" in text:
            return NUMBER_REFUSED
        if isinstance(current, asyncpg.CharacterNotInRepertoireError) and "0x00" in text:
            return NUL_REFUSED
        if isinstance(current, asyncpg.NumericValueOutOfRangeError) or (
                isinstance(current, asyncpg.DataError) and "out of int" in text and "range" in text):
            return NUMBER_REFUSED
    return None


def _chain(exc: BaseException):
    """`exc` and its explicit causes: Tortoise wraps driver errors with `raise ... from exc`
    (OperationalError from DataError). `__context__` is not followed: an error raised while
    handling another one is a different failure, and classifying it by its predecessor
    would turn a bug in an `except` block into a 503 or a 422."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
                       errno.ENETUNREACH, errno.ETIMEDOUT, errno.EPIPE}


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, (DatabaseUnavailable, DBConnectionError)):
        return True
    if isinstance(exc, (ConnectionError, socket.gaierror, TimeoutError)) or (
            isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS):
        # The driver lets the socket's own errors through unwrapped (a refused connect while the
        # pool reopens, a connect that times out, a failed DNS lookup); the same classes from
        # SMTP, a payment provider or the media relay are their outages, not the database's,
        # and stay a 500.
        return _raised_in_driver(exc)
    if isinstance(exc, (asyncpg.PostgresConnectionError,  # 08xxx, "closed in the middle of operation"
                        asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError,
                        asyncpg.TooManyConnectionsError)):
        return True
    text = str(exc)
    # The pool's own errors and a database that refuses new sessions carry no dedicated class.
    return (isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in text) or (
        isinstance(exc, asyncpg.ObjectNotInPrerequisiteStateError) and "not currently accepting connections" in text)


_DRIVER_MODULES = ("asyncpg",)


def _raised_in_driver(exc: BaseException) -> bool:
    """Whether `exc` was raised inside the database driver: its traceback runs through one of
    the driver's modules (asyncpg opening a pool connection calls asyncio's connect, which raises)."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.split(".", 1)[0] in _DRIVER_MODULES:
            return True
        tb = tb.tb_next
    return False


def describe_url(url: str) -> str:
    """Where a database URL points, without its credentials."""
    from urllib.parse import urlsplit

    if url.startswith("sqlite://"):
        return url
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}/{parts.path.lstrip('/')}"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@dataclass(frozen=True)
class MigrationStatus:
    pending: tuple[str, ...]

    @property
    def current(self) -> bool:
        return not self.pending

    def message(self) -> str:
        return (
            f"the database is {len(self.pending)} migration(s) behind "
            f"({', '.join(self.pending)}); apply them with `{MIGRATE_COMMAND}`"
        )


async def migration_status() -> MigrationStatus:
    """Migrations in the code that the database has not applied yet."""
    await ping()
    executor = MigrationExecutor(connections.get("default"), tortoise_config_apps())
    steps = await executor.plan()
    return MigrationStatus(tuple(f"{s.migration.name}" for s in steps if not s.backward))


def tortoise_config_apps() -> dict:
    return {
        APP_LABEL: {
            "models": MODEL_MODULES,
            "default_connection": "default",
            "migrations": MIGRATIONS_MODULE,
        }
    }


async def migrate(settings: Settings, progress=None) -> None:
    """Apply every pending migration (one transaction per migration)."""
    await tortoise_migrate(config=tortoise_config(settings), progress=progress)
