"""Messaging's jobs: the nudge for a message left unread (caretrack.messaging.service.nudge)."""

from __future__ import annotations

from caretrack.core.queue import job
from caretrack.messaging.service import nudge

job(nudge.NUDGE, max_attempts=5)(nudge.send_nudge)
