"""Handover notes: a carer leaves a note on a package for the office and/or for the next carer,
on its own or with a task completion (the completion's note, marked). The text is PHI, sealed on
write, and every read that unseals it is audited. Admins hear of each note live (`care.note`,
which carries no PHI); the next carer finds it beside the client on their dashboard."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from tortoise.expressions import Q

from caretrack.accounts.models import User
from caretrack.care.models import CareTask, PackageCarer, TaskCompletion, Visit
from caretrack.care.notes_models import HandoverNote
from caretrack.care.notes_schemas import NoteIn
from caretrack.care.schemas import CompletionIn
from caretrack.care.service.packages import _package_for
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic

NOTE_SEAL = "handover_notes.body"
COMPLETION_NOTE_SEAL = "task_completions.note"
# For a carer who does not check in and out, a visit is a run of their completions on the package
# with no gap longer than this: "since your last visit" is since the end of the run before this one.
VISIT_GAP = timedelta(hours=2)
HANDOVER_LOOKBACK = timedelta(days=7)
HANDOVER_LIMIT = 5


@dataclass
class NoteView:
    note: HandoverNote
    text: str
    author_name: str
    task_title: str | None = None  # a note logged with a completion of this task

    @property
    def audience(self) -> str:
        return audience(self.note.for_office, self.note.for_next_carer)


def audience(for_office: bool, for_next_carer: bool) -> str:
    return " and ".join(w for w, on in (("the office", for_office), ("the next carer", for_next_carer)) if on)


async def do_write_note(carer: User, package_id: int, command: NoteIn, *, client_address: str | None,
                        at: datetime) -> HandoverNote:
    """A note on a package the carer is assigned to (anything else is 404)."""
    package = await _package_for(carer, package_id)
    async with atomic() as tx:
        note = await HandoverNote.create(
            using_db=tx.conn, package_id=package.id, author_id=carer.id, body=crypto.seal(command.text, NOTE_SEAL),
            for_office=command.for_office, for_next_carer=command.for_next_carer, written_at=at)
        actor = Actor(carer.id, client_address)
        await tx.audit(actor, "care.note_written", "handover_note", note.id, package_id=package.id,
                       for_office=note.for_office, for_next_carer=note.for_next_carer)
        await tx.audit(actor, "phi.write", "handover_note", note.id, fields=["body"])
        await _emit_note(tx, carer, note)
    return note


async def record_completion_note(tx: Tx, actor: Actor, carer: User, task: CareTask, completion: TaskCompletion,
                                 command: CompletionIn) -> HandoverNote | None:
    """In the completion's transaction: its note, when marked for the office or the next carer,
    becomes a handover note (the text stays in the completion, sealed once)."""
    if not command.note or not (command.note_for_office or command.note_for_next_carer):
        return None
    note = await HandoverNote.create(
        using_db=tx.conn, package_id=task.package_id, author_id=carer.id, completion_id=completion.id,
        for_office=command.note_for_office, for_next_carer=command.note_for_next_carer,
        written_at=completion.occurred_at)
    await tx.audit(actor, "care.note_written", "handover_note", note.id, package_id=task.package_id,
                   completion_id=completion.id, for_office=note.for_office, for_next_carer=note.for_next_carer)
    await _emit_note(tx, carer, note)
    return note


async def _emit_note(tx: Tx, author: User, note: HandoverNote) -> None:
    # To the office, and to the package's other carers when it is for them (their dashboards
    # refresh). Names and text are resolved when read, so no PHI sits in the outbox.
    others: list[int] = []
    if note.for_next_carer:
        carers = cast(list[int], await PackageCarer.filter(package_id=note.package_id).using_db(tx.conn)
                      .values_list("carer_id", flat=True))
        others = [c for c in carers if c != author.id]
    await tx.emit("care.note", actor_id=author.id, subject=("care_package", note.package_id),
                  data={"note_id": note.id, "package_id": note.package_id, "completion_id": note.completion_id,
                        "for_office": note.for_office, "for_next_carer": note.for_next_carer},
                  roles=[Role.ADMIN], users=[author.id, *others])


async def read_notes(viewer: User, notes: Sequence[HandoverNote], client_address: str | None) -> list[NoteView]:
    """The notes' text (one audited PHI read), authors and tasks; notes fetched with
    prefetch_related("author", "completion__task")."""
    own = [n.id for n in notes if n.completion_id is None]
    logged = [n.completion_id for n in notes if n.completion_id is not None]
    if notes:
        async with atomic() as tx:
            actor = Actor(viewer.id, client_address)
            if own:
                await tx.audit(actor, "phi.read", "handover_note", None, fields=["body"], ids=own)
            if logged:
                await tx.audit(actor, "phi.read", "task_completion", None, fields=["note"], ids=logged)
    views = []
    for n in notes:
        completion = n.completion  # prefetched: the row, or None for a note written on its own
        if completion is None:
            views.append(NoteView(n, crypto.unseal(n.body, NOTE_SEAL) or "", n.author.full_name))
        else:
            views.append(NoteView(n, crypto.unseal(completion.note, COMPLETION_NOTE_SEAL) or "", n.author.full_name,
                                  completion.task.title))
    return views


def _current() -> Q:
    # A note logged with a completion that was later corrected is replaced by the correction's.
    return Q(completion_id=None) | Q(completion__superseded_at__isnull=True)


async def last_visit_end(carer: User, package_id: int, at: datetime) -> datetime | None:
    """When the carer's previous visit to the package ended, within a week: their last check-out
    there, or, for a carer who does not check in, their last completion before the run of
    completions they are in now; None if they have not been before."""
    visit = await (Visit.filter(carer_id=carer.id, entry__package_id=package_id, checked_out_at__isnull=False,
                                checked_out_at__lte=at, checked_out_at__gte=at - HANDOVER_LOOKBACK)
                   .order_by("-checked_out_at").first())
    if visit is not None and visit.checked_out_at is not None:
        return visit.checked_out_at
    completions = TaskCompletion.filter(carer_id=carer.id, task__package_id=package_id, superseded_at__isnull=True,
                                        occurred_at__gte=at - HANDOVER_LOOKBACK)
    times = cast(list[datetime], await completions.order_by("-occurred_at").limit(200)
                 .values_list("occurred_at", flat=True))
    visit_start = at
    for when in times:
        if visit_start - when > VISIT_GAP:
            return when
        visit_start = min(visit_start, when)
    return None


async def handover_for(carer: User, package_id: int, client_address: str | None, *, at: datetime) -> list[NoteView]:
    """The newest notes other carers left "for the next carer" on the package since this carer's
    last visit (within a week), newest first."""
    package = await _package_for(carer, package_id)
    since = await last_visit_end(carer, package.id, at) or at - HANDOVER_LOOKBACK
    notes = await (HandoverNote.filter(_current(), package_id=package.id, for_next_carer=True,
                                       written_at__gt=since)
                   .exclude(author_id=carer.id).order_by("-written_at", "-id").limit(HANDOVER_LIMIT)
                   .prefetch_related("author", "completion__task"))
    return await read_notes(carer, notes, client_address)


@dataclass
class Handover:
    package_id: int
    client_name: str
    notes: list[NoteView]


async def handovers(carer: User, packages: Iterable[tuple[int, str]], client_address: str | None, *,
                    at: datetime) -> list[Handover]:
    """The handover of each (package id, client name), for the carer's dashboard."""
    return [Handover(pid, name, await handover_for(carer, pid, client_address, at=at)) for pid, name in packages]


async def office_notes(viewer: User, package_id: int, start: datetime, end: datetime,
                       client_address: str | None) -> list[NoteView]:
    """The notes for the office written in [start, end), oldest first (for the compliance report)."""
    package = await _package_for(viewer, package_id)
    notes = await (HandoverNote.filter(_current(), package_id=package.id, for_office=True, written_at__gte=start,
                                       written_at__lt=end)
                   .order_by("written_at", "id").prefetch_related("author", "completion__task"))
    return await read_notes(viewer, notes, client_address)
