"""A small payment provider on loopback that speaks the hosted-checkout protocol the
StripeLike adapter uses: POST /v1/checkout/sessions (Bearer secret key, form fields) returns
{id, url}; `deliver` POSTs a signed event to the app's webhook URL, as the provider would."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from caretrack.payments.providers import sign
from tests.conftest import free_port


@dataclass
class FakeProvider:
    secret_key: str
    webhook_secret: str
    port: int = field(default_factory=free_port)
    sessions: dict[str, dict] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        async def create_session(request: Request):
            if request.headers.get("authorization") != f"Bearer {self.secret_key}":
                return JSONResponse({"error": {"message": "Invalid API key"}}, 401)
            form = dict(await request.form())
            self.requests.append(form)
            session_id = f"cs_test_{secrets.token_hex(8)}"
            self.sessions[session_id] = {
                "id": session_id, "object": "checkout.session", "client_reference_id": form["client_reference_id"],
                "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
                "currency": form["line_items[0][price_data][currency]"], "payment_status": "unpaid",
                "metadata": {"credits": form["metadata[credits]"]},
            }
            return JSONResponse({"id": session_id, "url": f"{self.url}/pay/{session_id}"})

        return Starlette(routes=[Route("/v1/checkout/sessions", create_session, methods=["POST"])])

    def event(self, session_id: str, *, event_id: str | None = None, paid: bool = True,
              type: str = "checkout.session.completed") -> dict:
        session = {**self.sessions[session_id], "payment_status": "paid" if paid else "unpaid"}
        return {"id": event_id or f"evt_{secrets.token_hex(8)}", "type": type, "data": {"object": session}}

    async def deliver(self, webhook_url: str, event: dict, *, secret: str | None = None,
                      timestamp: int | None = None) -> httpx.Response:
        body = json.dumps(event).encode()
        header = sign(secret or self.webhook_secret, body, timestamp)
        async with httpx.AsyncClient() as client:
            return await client.post(webhook_url, content=body,
                                     headers={"content-type": "application/json", "stripe-signature": header})

    async def __aenter__(self) -> FakeProvider:
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = config.errorlog = None
        config.graceful_timeout = 1
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(serve(self.app(), config, shutdown_trigger=self._stop.wait))
        async with httpx.AsyncClient() as probe:
            for _ in range(200):
                try:
                    await probe.get(self.url + "/")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.025)
        return self

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        await asyncio.wait_for(self._task, 10)
