"""Visits that would overlap: a carer cannot be at two clients at once. A slot is compared in
real instants with the carer's other visits on every package (so packages on different zones
clash exactly when their wall times meet), over the clash horizon from the package's today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from caretrack.care import rota, zones
from caretrack.care.models import CarePackage, RotaEntry
from caretrack.core.errors import Conflict
from caretrack.core.transaction import Tx

_CARER_LOCK = 0x726F7461  # PostgreSQL advisory lock class ("rota"), with the carer's id: one change at a time


@dataclass(frozen=True)
class Slot:
    weekdays: str
    start: int
    length: int


async def check_clash(tx: Tx, package: CarePackage, slot: Slot, carer_id: int, *, at: datetime,
                      entry_id: int | None = None) -> None:
    """Refuse (409) a slot that would overlap another visit of the carer, from the package's
    today over the clash horizon. Holds the carer's lock (PostgreSQL) to the end of `tx`, so two
    admins cannot each add one half of a clash."""
    if tx.conn.capabilities.dialect == "postgres":
        await tx.conn.execute_query("SELECT pg_advisory_xact_lock($1, $2)", [_CARER_LOCK, carer_id])
    others = await RotaEntry.filter(carer_id=carer_id, is_active=True).exclude(id=entry_id or 0).using_db(
        tx.conn).prefetch_related("package")
    if not others:
        return
    first = zones.today(package, at) - timedelta(days=1)
    last = first + rota.CLASH_HORIZON
    candidate = RotaEntry(id=entry_id or 0, package_id=package.id, carer_id=carer_id, weekdays=slot.weekdays,
                          start=slot.start, length=slot.length)
    mine = rota.occurrences(candidate, package, first, last)
    theirs = [o for other in others for o in rota.occurrences(other, other.package, first - timedelta(days=1),
                                                              last + timedelta(days=1))]
    clash = rota.first_overlap(mine, theirs)
    if clash is not None:
        new, old = clash
        where = "this package" if old.package.id == package.id else f"care package {old.package.id}"
        raise Conflict(
            f"This visit ({new.day:%a %d %b %Y} {new.time}–{new.end_time}, {package.time_zone}) overlaps "
            f"visit {old.entry.id} of the same carer on {where} ({rota.weekday_label(old.entry.weekdays)} "
            f"{old.time}–{old.end_time}, {old.package.time_zone}): move one of them or choose another carer.")
