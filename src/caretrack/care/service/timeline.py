"""A package's timeline for the office: handover notes, completions logged with a note, and
incidents, newest first, a page at a time. Only the page shown is unsealed (and audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from caretrack.accounts.models import User
from caretrack.care.models import TaskCompletion
from caretrack.care.notes_models import HandoverNote, Incident
from caretrack.care.service.incidents import PEOPLE, IncidentView, read_incidents
from caretrack.care.service.notes import COMPLETION_NOTE_SEAL, NoteView, audience, read_notes
from caretrack.care.service.packages import _package_for
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.transaction import atomic

PAGE_SIZE = 20


@dataclass
class CompletionEntry:
    completion: TaskCompletion
    note: str
    marked: HandoverNote | None  # the handover note it was marked as, if any

    @property
    def audience(self) -> str:
        return audience(self.marked.for_office, self.marked.for_next_carer) if self.marked else ""


@dataclass
class TimelineItem:
    at: datetime
    kind: str  # note | completion | incident
    note: NoteView | None = None
    completion: CompletionEntry | None = None
    incident: IncidentView | None = None


@dataclass
class Timeline:
    items: list[TimelineItem]
    page: int
    has_next: bool


async def package_timeline(viewer: User, package_id: int, client_address: str | None, *, page: int = 1,
                           page_size: int = PAGE_SIZE) -> Timeline:
    """Each source gives its newest (page × size + 1) entries; merged, they hold the page and
    tell whether another follows."""
    package = await _package_for(viewer, package_id)
    wanted = page * page_size + 1
    notes = await (HandoverNote.filter(package_id=package.id, completion_id=None)
                   .order_by("-written_at", "-id").limit(wanted))
    completions = await (TaskCompletion.filter(task__package_id=package.id, note__isnull=False)
                         .order_by("-occurred_at", "-id").limit(wanted))
    incidents = await Incident.filter(package_id=package.id).order_by("-raised_at", "-id").limit(wanted)
    merged: list[tuple[datetime, int, str, int]] = (
        [(n.written_at, n.id, "note", n.id) for n in notes]
        + [(c.occurred_at, c.id, "completion", c.id) for c in completions]
        + [(i.raised_at, i.id, "incident", i.id) for i in incidents])
    merged.sort(reverse=True)
    start = (page - 1) * page_size
    shown = merged[start:start + page_size]
    return Timeline(await _items(viewer, shown, client_address), page, len(merged) > start + page_size)


async def _items(viewer: User, shown: list[tuple[datetime, int, str, int]],
                 client_address: str | None) -> list[TimelineItem]:
    ids = {kind: [row_id for _, _, k, row_id in shown if k == kind] for kind in ("note", "completion", "incident")}
    notes = {v.note.id: v for v in await read_notes(
        viewer, list(await HandoverNote.filter(id__in=ids["note"]).prefetch_related("author", "completion__task")),
        client_address)}
    incidents = {v.incident.id: v for v in await read_incidents(
        viewer, list(await Incident.filter(id__in=ids["incident"]).prefetch_related(*PEOPLE)), client_address)}
    completions = {c.id: c for c in await TaskCompletion.filter(id__in=ids["completion"])
                   .prefetch_related("carer", "task")}
    marked = {n.completion_id: n for n in await HandoverNote.filter(completion_id__in=ids["completion"])}
    if completions:
        async with atomic() as tx:
            await tx.audit(Actor(viewer.id, client_address), "phi.read", "task_completion", None,
                           fields=["note"], ids=sorted(completions))
    items = []
    for at, _, kind, row_id in shown:
        if kind == "note":
            items.append(TimelineItem(at, kind, note=notes[row_id]))
        elif kind == "incident":
            items.append(TimelineItem(at, kind, incident=incidents[row_id]))
        else:
            c = completions[row_id]
            items.append(TimelineItem(at, kind, completion=CompletionEntry(
                c, crypto.unseal(c.note, COMPLETION_NOTE_SEAL) or "", marked.get(c.id))))
    return items
