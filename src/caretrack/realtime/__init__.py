"""Live updates that never lose an event.

Services write events into the outbox inside their transaction
(`tx.emit(...)` -> `outbox.write_event`); after commit the relay publishes them as a
wake-up (Redis pub/sub, or in-process) and every web process pushes them to the
recipients' sockets on /ws/events. The database is the record: a client resumes from the
last sequence it saw and the server replays what it missed.
"""

from __future__ import annotations


def notify_auth_changed(user_id: int) -> None:
    """Call after commit when a user's sessions, tokens, activity or role changed: every
    web process re-checks that user's open sockets and closes those no longer allowed."""
    from caretrack.realtime import bus

    bus.notify_auth_changed(user_id)


__all__ = ["notify_auth_changed"]
