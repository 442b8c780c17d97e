"""Email: rendered from templates into the outbound_emails table inside the caller's
transaction, delivered over SMTP after commit. Without an SMTP host (the embedded default)
emails are kept as `stored`, and admins read them in the app. Delivery is a job
(`mail.deliver`, caretrack.core.queue), written with the email."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape
from tortoise.backends.base.client import BaseDBAsyncClient

from caretrack.core.logs import get_logger
from caretrack.core.queue import JobContext, Retry, Skipped
from caretrack.core.settings import Settings
from caretrack.core.transaction import Tx, atomic
from caretrack.http.templating import TEMPLATES_DIR
from caretrack.mail.models import OutboundEmail

log = get_logger("caretrack.mail")
DELIVER = "mail.deliver"
MAX_ATTEMPTS = 15  # 30 s, 1 min, 2 min, ... then every 6 h (with jitter): 16 to 33 hours in all
_env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR / "email")), autoescape=select_autoescape(["html"]))


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
    """Queue an email in the caller's transaction, with the job that delivers it."""
    email = await queue(tx.conn, to, template, context, attachments)
    await tx.defer(DELIVER, {"email_id": email.id}, key=f"mail:{email.id}")
    return email


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


async def deliver(ctx: JobContext) -> None:
    """The `mail.deliver` job: send one queued email over SMTP (or store it, without SMTP).
    A failure is retried with the queue's backoff (from 30 s to 6 h apart) for about a day
    before the email is marked failed; the sent mark and the job's completion commit together."""
    email = await OutboundEmail.get_or_none(id=ctx.payload["email_id"])
    if email is None or email.status not in ("queued", "failed"):
        raise Skipped(f"email {ctx.payload['email_id']} is {email.status if email else 'gone'}")
    settings = ctx.settings
    if not settings.smtp_host:
        async with atomic() as tx:
            await OutboundEmail.filter(id=email.id).using_db(tx.conn).update(status="stored")
            await ctx.finish(tx)
        return
    await ctx.check_lease()
    try:
        await aiosmtplib.send(
            build_message(email, settings), hostname=settings.smtp_host, port=settings.smtp_port,
            username=settings.smtp_username, password=settings.smtp_password,
            start_tls=settings.smtp_starttls, use_tls=settings.smtp_tls, timeout=15,
        )
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        last = ctx.attempt >= MAX_ATTEMPTS
        # Conditional: a runner that stalled here past its lease must not mark as undelivered an
        # email the runner that took over has sent meanwhile.
        await OutboundEmail.filter(id=email.id, status__in=("queued", "failed")).update(
            status="failed" if last else "queued", attempts=ctx.attempt, last_error=error)
        log.warning("email delivery failed", email_id=email.id, attempts=ctx.attempt, error=type(exc).__name__)
        raise Retry(error) from None
    async with atomic() as tx:
        await OutboundEmail.filter(id=email.id).using_db(tx.conn).update(
            status="sent", sent_at=ctx.at, attempts=ctx.attempt, last_error=None)
        await ctx.finish(tx)


async def send_again(tx: Tx, original: OutboundEmail) -> OutboundEmail:
    """A fresh copy of `original`, queued with its own delivery job (an admin's resend); the
    original keeps its history."""
    email = await OutboundEmail.create(
        using_db=tx.conn, to_address=original.to_address, subject=original.subject,
        text_body=original.text_body, html_body=original.html_body, attachments=original.attachments,
        status="queued",
    )
    await tx.defer(DELIVER, {"email_id": email.id}, key=f"mail:{email.id}")
    return email
