"""The outbox: services write events in their own transaction; readers replay them.

`write_event` runs inside every service transaction that emits, so it costs a fixed
handful of statements whatever the number of recipients: resolve role recipients, insert
the event, bump every recipient's cursor in one upsert (locks taken in user-id order, so
two writers never deadlock on one event's recipients), insert the deliveries in one batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from caretrack.core.outbox.events import EventError, LiveEvent, check_subject, check_type, encode_data, kind_of
from caretrack.core.outbox.models import Event, EventDelivery
from caretrack.core.roles import Role

SQLITE_BATCH = 400  # rows per multi-row statement (SQLite caps bound parameters)



class Listener(Protocol):
    """What runs delivery in this process (the realtime bus, one per app)."""

    def wake(self) -> None: ...
    def auth_changed(self, user_id: int) -> None: ...


# The listeners running in this process; the after-commit calls below poke each of them.
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    _listeners.append(listener)


def unlisten(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def now() -> datetime:
    return datetime.now(UTC)


def _is_postgres(conn: BaseDBAsyncClient) -> bool:
    return conn.capabilities.dialect == "postgres"


async def write_event(
    conn: BaseDBAsyncClient,
    event_type: str,
    *,
    actor_id: int | None,
    subject: tuple[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    users: Iterable[int] = (),
    roles: Iterable[str] = (),
) -> int | None:
    """Write one event for its recipients; call inside the caller's transaction with its
    connection. Role recipients are the active users holding the role now. Returns the
    event id, or None when nobody is to receive it."""
    check_type(event_type)
    subject_kind, subject_id = check_subject(subject)
    data_text = encode_data(event_type, data)
    recipients: set[int] = set()
    for user in users:
        if isinstance(user, bool) or not isinstance(user, int):
            raise EventError(f"Event {event_type!r} recipient {user!r} is not a user id.")
        recipients.add(user)
    role_names = []
    for role in roles:
        try:
            role_names.append(Role(role).value)
        except ValueError:
            raise EventError(
                f"Event {event_type!r} names role {role!r}; expected one of {', '.join(r.value for r in Role)}."
            ) from None
    if role_names:
        recipients |= await _active_users_with_roles(conn, sorted(set(role_names)))
    if not recipients:
        return None
    event = await Event.create(
        using_db=conn, type=event_type, kind=kind_of(event_type), occurred_at=now(),
        actor_id=actor_id, subject_kind=subject_kind, subject_id=subject_id, data=data_text,
    )
    ordered = sorted(recipients)
    if _is_postgres(conn):
        rows = await conn.execute_query_dict(
            "INSERT INTO event_cursors (user_id, last_seq) SELECT u, 1 FROM unnest($1::int[]) AS u ORDER BY u "
            "ON CONFLICT (user_id) DO UPDATE SET last_seq = event_cursors.last_seq + 1 "
            "RETURNING user_id, last_seq",
            [ordered],
        )
        seqs = {r["user_id"]: r["last_seq"] for r in rows}
        await conn.execute_query(
            "INSERT INTO event_deliveries (user_id, seq, event_id) "
            "SELECT u, s, $3 FROM unnest($1::int[], $2::bigint[]) AS t(u, s)",
            [ordered, [seqs[u] for u in ordered], event.id],
        )
    else:
        seqs = {}
        for start in range(0, len(ordered), SQLITE_BATCH):
            chunk = ordered[start:start + SQLITE_BATCH]
            rows = await conn.execute_query_dict(
                "INSERT INTO event_cursors (user_id, last_seq) VALUES "
                + ",".join("(?, 1)" for _ in chunk)
                + " ON CONFLICT (user_id) DO UPDATE SET last_seq = last_seq + 1 RETURNING user_id, last_seq",
                chunk,
            )
            seqs.update({r["user_id"]: r["last_seq"] for r in rows})
            values: list[Any] = []
            for user in chunk:
                values += [user, seqs[user], event.id]
            await conn.execute_query(
                "INSERT INTO event_deliveries (user_id, seq, event_id) VALUES " + ",".join("(?, ?, ?)" for _ in chunk),
                values,
            )
    return event.id


async def _active_users_with_roles(conn: BaseDBAsyncClient, roles: list[str]) -> set[int]:
    if _is_postgres(conn):
        rows = await conn.execute_query_dict(
            "SELECT id FROM users WHERE is_active AND role = ANY($1::text[])", [roles]
        )
    else:
        rows = await conn.execute_query_dict(
            f"SELECT id FROM users WHERE is_active = 1 AND role IN ({','.join('?' for _ in roles)})", roles
        )
    return {r["id"] for r in rows}


def wake_relay() -> None:
    """After commit: tell this process's relay there is something to publish. Cheap, never
    raises, does nothing when no relay runs (the event waits in the outbox for one)."""
    for listener in list(_listeners):
        listener.wake()


def notify_auth_changed(user_id: int) -> None:
    """After commit, when a user's sessions, tokens, activity or role changed: every web
    process re-checks that user's open sockets and closes those no longer allowed."""
    for listener in list(_listeners):
        listener.auth_changed(user_id)


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    seq: int
    event_id: int
    event: LiveEvent


def _row_event(row: dict[str, Any]) -> LiveEvent:
    occurred = row["occurred_at"]
    if isinstance(occurred, str):  # SQLite raw rows
        occurred = datetime.fromisoformat(occurred)
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    return LiveEvent(row["type"], occurred, row["actor_id"], row["subject_kind"], row["subject_id"],
                     json.loads(row["data"]))


_SELECT = (
    "SELECT d.seq, d.event_id, e.type, e.occurred_at, e.actor_id, e.subject_kind, e.subject_id, e.data "
    "FROM event_deliveries d JOIN events e ON e.id = d.event_id "
)


def _ph(conn: BaseDBAsyncClient, n: int) -> str:
    return f"${n}" if _is_postgres(conn) else "?"


async def read_after(user_id: int, after: int, limit: int = 500) -> list[Delivered]:
    """The user's events with seq > after, oldest first."""
    conn = connections.get("default")
    rows = await conn.execute_query_dict(
        _SELECT + f"WHERE d.user_id = {_ph(conn, 1)} AND d.seq > {_ph(conn, 2)} ORDER BY d.seq LIMIT {int(limit)}",
        [user_id, after],
    )
    return [Delivered(r["seq"], r["event_id"], _row_event(r)) for r in rows]


async def read_history(user_id: int, *, before: int | None = None, after: int | None = None,
                       kind: str | None = None, limit: int = 50) -> list[Delivered]:
    """A page of the user's events: newest first below `before`, or oldest first above `after`."""
    conn = connections.get("default")
    clauses = [f"d.user_id = {_ph(conn, 1)}"]
    values: list[Any] = [user_id]
    if before is not None:
        values.append(before)
        clauses.append(f"d.seq < {_ph(conn, len(values))}")
    if after is not None:
        values.append(after)
        clauses.append(f"d.seq > {_ph(conn, len(values))}")
    if kind:
        values.append(kind)
        clauses.append(f"e.kind = {_ph(conn, len(values))}")
    order = "ASC" if after is not None and before is None else "DESC"
    rows = await conn.execute_query_dict(
        _SELECT + "WHERE " + " AND ".join(clauses) + f" ORDER BY d.seq {order} LIMIT {int(limit)}", values
    )
    return [Delivered(r["seq"], r["event_id"], _row_event(r)) for r in rows]


async def last_seq(user_id: int) -> int:
    conn = connections.get("default")
    rows = await conn.execute_query_dict(
        f"SELECT last_seq FROM event_cursors WHERE user_id = {_ph(conn, 1)}", [user_id]
    )
    return rows[0]["last_seq"] if rows else 0


async def last_seqs(user_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(user_ids))
    result: dict[int, int] = {}
    conn = connections.get("default")
    for start in range(0, len(ids), SQLITE_BATCH):
        chunk = ids[start:start + SQLITE_BATCH]
        if _is_postgres(conn):
            rows = await conn.execute_query_dict(
                "SELECT user_id, last_seq FROM event_cursors WHERE user_id = ANY($1::int[])", [chunk])
        else:
            rows = await conn.execute_query_dict(
                f"SELECT user_id, last_seq FROM event_cursors WHERE user_id IN ({','.join('?' for _ in chunk)})", chunk)
        result.update({r["user_id"]: r["last_seq"] for r in rows})
    return result


async def first_retained_seq(user_id: int) -> int | None:
    conn = connections.get("default")
    rows = await conn.execute_query_dict(
        f"SELECT MIN(seq) AS first FROM event_deliveries WHERE user_id = {_ph(conn, 1)}", [user_id]
    )
    return rows[0]["first"] if rows else None


# --- the relay's side -------------------------------------------------------------------


@dataclass(frozen=True)
class Unpublished:
    event_id: int
    event: LiveEvent
    recipients: list[tuple[int, int]]  # (user_id, seq)


async def publish_pending(publish: Callable[[list[Unpublished]], Any], batch: int = 200) -> int:
    """Hand committed, unpublished events to `publish` (a coroutine function), then mark
    them published in the same transaction. If `publish` raises, nothing is marked and the
    next pass retries. On PostgreSQL, relays in several processes split the work
    (FOR UPDATE SKIP LOCKED); a duplicate publish is harmless (clients drop it by seq)."""
    from tortoise.transactions import in_transaction

    async with in_transaction() as conn:
        pg = _is_postgres(conn)
        rows = await conn.execute_query_dict(
            "SELECT id, type, occurred_at, actor_id, subject_kind, subject_id, data FROM events "
            f"WHERE published_at IS NULL ORDER BY id LIMIT {int(batch)}" + (" FOR UPDATE SKIP LOCKED" if pg else "")
        )
        if not rows:
            return 0
        ids = [r["id"] for r in rows]
        if pg:
            deliveries = await conn.execute_query_dict(
                "SELECT event_id, user_id, seq FROM event_deliveries WHERE event_id = ANY($1::bigint[])", [ids])
        else:
            deliveries = await conn.execute_query_dict(
                f"SELECT event_id, user_id, seq FROM event_deliveries WHERE event_id IN ({','.join('?' for _ in ids)})",
                ids)
        by_event: dict[int, list[tuple[int, int]]] = {i: [] for i in ids}
        for d in deliveries:
            by_event[d["event_id"]].append((d["user_id"], d["seq"]))
        items = [Unpublished(r["id"], _row_event(r), by_event[r["id"]]) for r in rows]
        await publish(items)
        moment = now()
        await Event.filter(id__in=ids).using_db(conn).update(published_at=moment)
    return len(items)


async def prune(retention: timedelta, batch: int = SQLITE_BATCH, at: datetime | None = None) -> int:
    """Forget events older than the retention window, a batch at a time (short
    transactions, bounded memory); clients further behind resync."""
    cutoff = (at or now()) - retention
    removed = 0
    while True:
        ids = await Event.filter(occurred_at__lt=cutoff).order_by("id").limit(batch).values_list("id", flat=True)
        if not ids:
            return removed
        await EventDelivery.filter(event_id__in=ids).delete()
        removed += await Event.filter(id__in=ids).delete()
