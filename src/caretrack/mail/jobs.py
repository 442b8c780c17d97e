"""Mail's jobs: delivery of each queued email (caretrack.mail.service.deliver)."""

from __future__ import annotations

from caretrack.core.queue import job
from caretrack.mail import service

job(service.DELIVER, max_attempts=service.MAX_ATTEMPTS)(service.deliver)
