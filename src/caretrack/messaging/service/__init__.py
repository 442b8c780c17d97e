"""Messaging: threads (threads.py: who may talk, starting, listing, closing, blocking) and
messages (messages.py: sending with attachments, reading with receipts)."""

from __future__ import annotations

from caretrack.messaging.service.messages import (
    check_can_send,
    do_send,
    message_view,
    open_attachment,
    read_thread,
)
from caretrack.messaging.service.threads import (
    contacts,
    do_block,
    do_close,
    do_reopen,
    do_start_from_appointment,
    do_start_thread,
    do_unblock,
    list_threads,
    thread_for,
    thread_summary,
    unread_total,
)

__all__ = [
    "check_can_send", "contacts", "do_block", "do_close", "do_reopen", "do_send", "do_start_from_appointment",
    "do_start_thread", "do_unblock", "list_threads", "message_view", "open_attachment", "read_thread", "thread_for",
    "thread_summary", "unread_total",
]
