"""Email: rendered from templates into the outbound_emails table inside the caller's
transaction, delivered over SMTP after commit. Without an SMTP host (the embedded default)
emails are kept as `stored`, and admins read them in the app."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape
from tortoise.backends.base.client import BaseDBAsyncClient

from caretrack.core.logs import get_logger
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx
from caretrack.http.templating import TEMPLATES_DIR
from caretrack.mail.models import OutboundEmail

log = get_logger("caretrack.mail")
MAX_ATTEMPTS = 5
_env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR / "email")), autoescape=select_autoescape(["html"]))
_wake: asyncio.Event | None = None


def render(template: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) from email/<template>.{subject,txt,html}."""
    subject = _env.get_template(f"{template}.subject.txt").render(context).strip()
    text = _env.get_template(f"{template}.txt").render(context)
    html = _env.get_template(f"{template}.html").render(context)
    return subject, text, html


async def queue(conn: BaseDBAsyncClient, to: str, template: str, context: dict[str, Any],
                attachments: Iterable[tuple[str, str, bytes]] = ()) -> OutboundEmail:
    subject, text, html = render(template, context)
    return await OutboundEmail.create(
        using_db=conn, to_address=to, subject=subject, text_body=text, html_body=html,
        attachments=json.dumps([
            {"filename": name, "content_type": ctype, "content_b64": base64.b64encode(data).decode()}
            for name, ctype, data in attachments
        ]),
        status="queued",
    )


async def send(tx: Tx, to: str, template: str, context: dict[str, Any],
               attachments: Iterable[tuple[str, str, bytes]] = ()) -> OutboundEmail:
    """Queue an email in the caller's transaction; the sender wakes once it has committed."""
    email = await queue(tx.conn, to, template, context, attachments)
    tx.after_commit(wake_sender)
    return email


def wake_sender() -> None:
    if _wake is not None:
        _wake.set()


def build_message(email: OutboundEmail, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(domain="caretrack")
    message.set_content(email.text_body)
    message.add_alternative(email.html_body, subtype="html")
    for item in json.loads(email.attachments):
        maintype, _, subtype = item["content_type"].partition("/")
        message.add_attachment(base64.b64decode(item["content_b64"]), maintype=maintype,
                               subtype=subtype.split(";")[0], filename=item["filename"])
    return message


async def deliver_pending(settings: Settings, limit: int = 50) -> int:
    """Send what is queued; returns how many were sent (or stored, without SMTP).
    Each email is claimed with a conditional update, so several workers never send one twice."""
    done = 0
    pending = await OutboundEmail.filter(status="queued").order_by("id").limit(limit)
    for email in pending:
        claimed = await OutboundEmail.filter(id=email.id, status="queued").update(status="sending")
        if not claimed:
            continue
        if not settings.smtp_host:
            await OutboundEmail.filter(id=email.id).update(status="stored")
            done += 1
            continue
        try:
            await aiosmtplib.send(
                build_message(email, settings), hostname=settings.smtp_host, port=settings.smtp_port,
                username=settings.smtp_username, password=settings.smtp_password,
                start_tls=settings.smtp_starttls, use_tls=settings.smtp_tls, timeout=15,
            )
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            attempts = email.attempts + 1
            await OutboundEmail.filter(id=email.id).update(
                status="failed" if attempts >= MAX_ATTEMPTS else "queued", attempts=attempts,
                last_error=f"{type(exc).__name__}: {exc}"[:500])
            log.warning("email delivery failed", email_id=email.id, attempts=attempts, error=type(exc).__name__)
            continue
        await OutboundEmail.filter(id=email.id).update(status="sent", sent_at=datetime.now(UTC),
                                                        attempts=email.attempts + 1)
        done += 1
    return done


async def requeue_stale(after: timedelta = timedelta(minutes=5), at: datetime | None = None) -> None:
    """An email left `sending` by a crashed worker goes back to the queue."""
    cutoff = (at or datetime.now(UTC)) - after
    await OutboundEmail.filter(status="sending", created_at__lt=cutoff).update(status="queued")


async def sender_loop(settings: Settings, interval: float = 5.0, stop: asyncio.Event | None = None) -> None:
    """Send queued emails until `stop` is set; it returns between passes (see caretrack.core.loops)."""
    global _wake
    _wake = asyncio.Event()
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await deliver_pending(settings)
            await requeue_stale()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("email sender failed; retrying")
        try:
            await asyncio.wait_for(_wake.wait(), interval)
        except TimeoutError:
            pass
        _wake.clear()


async def send_again(tx: Tx, original: OutboundEmail) -> OutboundEmail:
    """A fresh copy of `original`, queued for delivery (an admin's resend); the original
    keeps its history."""
    email = await OutboundEmail.create(
        using_db=tx.conn, to_address=original.to_address, subject=original.subject,
        text_body=original.text_body, html_body=original.html_body, attachments=original.attachments,
        status="queued",
    )
    tx.after_commit(wake_sender)
    return email
