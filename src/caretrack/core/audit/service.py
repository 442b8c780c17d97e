"""Append to and verify the audit log. `record` runs inside the caller's transaction, so an
act and its audit row commit together or not at all."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from caretrack.core.audit.models import AuditEntry, AuditHead

GENESIS = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who did something and from where."""

    user_id: int | None
    client_address: str | None = None


SYSTEM = Actor(None, None)


def _digest(prev_hash: str, seq: int, occurred_at: datetime, actor_id: int | None, action: str,
            subject_type: str | None, subject_id: str | None, client_address: str | None, detail: str) -> str:
    canonical = json.dumps(
        [prev_hash, seq, occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
         actor_id, action, subject_type, subject_id, client_address, detail],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record(
    conn: BaseDBAsyncClient,
    actor: Actor,
    action: str,
    subject_type: str | None = None,
    subject_id: Any = None,
    **detail: Any,
) -> AuditEntry:
    """Append one row; call inside `in_transaction()` with its connection."""
    updated = await AuditHead.filter(id=1).using_db(conn).update(seq=F("seq") + 1)
    if not updated:
        raise RuntimeError("audit_head is missing its row; migrations were not applied")
    head = await AuditHead.get(id=1).using_db(conn)
    occurred_at = datetime.now(UTC)
    detail_text = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
    subject = None if subject_id is None else str(subject_id)
    digest = _digest(head.hash, head.seq, occurred_at, actor.user_id, action, subject_type, subject,
                     actor.client_address, detail_text)
    entry = await AuditEntry.create(
        using_db=conn, seq=head.seq, occurred_at=occurred_at, actor_id=actor.user_id, action=action,
        subject_type=subject_type, subject_id=subject, client_address=actor.client_address,
        detail=detail_text, prev_hash=head.hash, hash=digest,
    )
    await AuditHead.filter(id=1).using_db(conn).update(hash=digest)
    return entry


@dataclass(frozen=True)
class ChainResult:
    checked: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None

    def message(self) -> str:
        if self.ok:
            return f"audit log intact: {self.checked} row(s) verified"
        return f"audit log broken at row {self.broken_at}: {self.reason} ({self.checked} row(s) before it verified)"


async def verify_chain(batch: int = 1000) -> ChainResult:
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = await AuditEntry.filter(seq__gt=last_seq).order_by("seq").limit(batch)
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return ChainResult(checked, row.seq,
                                   f"sequence jumps from {expected_seq - 1} to {row.seq} (rows removed)")
            if row.prev_hash != prev_hash:
                return ChainResult(checked, row.seq, "its previous-hash does not match the row before it")
            digest = _digest(row.prev_hash, row.seq, row.occurred_at, row.actor_id, row.action,
                             row.subject_type, row.subject_id, row.client_address, row.detail)
            if digest != row.hash:
                return ChainResult(checked, row.seq, "its content does not match its hash (edited)")
            prev_hash = row.hash
            expected_seq += 1
            checked += 1
            last_seq = row.seq
    head = await AuditHead.get_or_none(id=1)
    if head is not None and (head.seq != checked or head.hash != prev_hash):
        return ChainResult(checked, checked + 1,
                           f"the chain's head says {head.seq} row(s) but {checked} match it (rows removed at the end)")
    return ChainResult(checked)
