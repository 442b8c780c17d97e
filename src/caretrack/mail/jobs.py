"""The mail sender: one loop in the web process's lifespan, woken after each commit that
queues an email."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette

from caretrack.core.loops import stop_loops
from caretrack.mail import service


async def start(app: Starlette) -> None:
    app.state.mail_stop = asyncio.Event()
    app.state.mail_sender = asyncio.create_task(service.sender_loop(app.state.settings, stop=app.state.mail_stop),
                                                name="mail-sender")


async def stop(app: Starlette) -> None:
    app.state.mail_stop.set()
    service.wake_sender()
    await stop_loops([app.state.mail_sender], app.state.mail_stop)  # an unanswering SMTP server is cut off
