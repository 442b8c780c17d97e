"""The admin's live activity feed: server-rendered history (filtered, paged) and live
items in Chromium without a reload."""

from __future__ import annotations

from datetime import UTC

import httpx
import pytest

from caretrack.core.outbox.events import LiveEvent
from caretrack.core.outbox.store import Delivered
from caretrack.core.roles import Role
from caretrack.realtime import feed
from tests.browser.helpers import live_ready
from tests.realtime.conftest import emit, make_user, sign_in


async def _admin_client(server) -> tuple[httpx.AsyncClient, object]:
    admin = await make_user(Role.ADMIN, name="Ada Admin")
    cookie = await sign_in(admin, server.settings)
    return httpx.AsyncClient(base_url=server.url, headers={"cookie": cookie}), admin


async def test_the_feed_is_for_admins_only(server):
    patient = await make_user(Role.PATIENT)
    async with httpx.AsyncClient(base_url=server.url, headers={"cookie": await sign_in(patient, server.settings)}) as c:
        assert (await c.get("/admin/activity")).status_code == 403
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        response = await anonymous.get("/admin/activity")
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_the_feed_renders_known_and_unknown_types_filters_by_kind_and_pages_back(server, monkeypatch):
    from caretrack.realtime import pages as routes

    monkeypatch.setattr(routes, "PAGE_SIZE", 5)
    client, admin = await _admin_client(server)
    carer = await make_user(Role.CARER, name="Cara Carer")
    await emit("task.completed", actor_id=carer.id, roles=["admin"], subject=("task", 3),
               data={"title": "Evening medication"})
    await emit("fridge.defrosted", actor_id=carer.id, roles=["admin"], subject=("fridge", 9))  # a type nobody knows
    for n in range(6):
        await emit("booking.created", actor_id=carer.id, roles=["admin"], data={"doctor_name": f"Dr {n}"})
    async with client:
        page = (await client.get("/admin/activity")).text
        assert "Cara Carer booked an appointment with Dr 5" in page
        assert "Dr 0" not in page  # five per page, newest first
        assert "Older activity" in page
        older = (await client.get("/admin/activity?before=4")).text
        assert "Cara Carer completed the task “Evening medication”" in older
        assert "Cara Carer — fridge: defrosted (fridge 9)" in older
        assert "Back to the latest" in older and "data-live-feed" not in older
        tasks = (await client.get("/admin/activity?kind=task")).text
        assert "Evening medication" in tasks and "booked an appointment" not in tasks
        assert 'data-kind="task"' in tasks
        bad = await client.get("/admin/activity?kind=Robert');--")
        assert bad.status_code == 422 and "Unknown activity kind" in bad.text


async def test_the_history_api_pages_the_callers_own_events(server):
    client, admin = await _admin_client(server)
    other = await make_user(Role.PATIENT)
    for n in range(5):
        await emit("booking.created", users=[admin.id, other.id], data={"n": n})
    await emit("booking.cancelled", users=[other.id])  # not the admin's
    async with client:
        first = (await client.get("/api/v1/events", params={"limit": 3})).json()
        assert [i["seq"] for i in first["items"]] == [5, 4, 3] and first["next_before"] == 3
        rest = (await client.get("/api/v1/events", params={"limit": 3, "before": 3})).json()
        assert [i["seq"] for i in rest["items"]] == [2, 1] and rest["next_before"] is None
        newer = (await client.get("/api/v1/events", params={"after": 3})).json()
        assert [i["seq"] for i in newer["items"]] == [4, 5]
        item = newer["items"][0]
        assert item["type"] == "booking.created" and item["data"] == {"n": 3}
        assert item["text"] == "The system booked an appointment"
        invalid = await client.get("/api/v1/events", params={"limit": 1000})
        assert invalid.status_code == 422 and "limit" in invalid.json()["error"]["message"]
        document = (await client.get("/api/v1/openapi.json")).json()
        assert "get" in document["paths"]["/api/v1/events"]
        assert "EventPage" in document["components"]["schemas"]


def test_every_type_gets_a_readable_line_even_with_unexpected_data():
    from datetime import datetime

    moment = datetime.now(UTC)
    names = {1: "Ada Admin", 2: "Pat Patient"}
    for event_type in [*feed.LINES, "made.up_type"]:
        for data in ({}, {"score": "x", "passed": True, "failures": 3, "role": "carer"}, {"title": None}):
            line = feed.describe(Delivered(1, 1, LiveEvent(event_type, moment, 2, "user", "1", data)), names)
            assert line and "{" not in line and "None" not in line, (event_type, data, line)
    signed_up = Delivered(1, 1, LiveEvent("user.signed_up", moment, 2, "user", "2", {"role": "admin"}))
    assert feed.describe(signed_up, names) == "Pat Patient signed up as an admin"


@pytest.mark.browser
async def test_an_admins_feed_shows_another_users_action_without_a_reload(server, page):
    admin = await make_user(Role.ADMIN, name="Ada Admin")
    cookie = await sign_in(admin, server.settings)
    name, value = cookie.split("=", 1)
    await page.context.add_cookies([{"name": name, "value": value, "url": server.url}])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    await page.goto(server.url + "/admin/activity")
    await page.evaluate("window.__sameDocument = true")
    await live_ready(page)

    # someone signs up in their own browser
    async with httpx.AsyncClient(base_url=server.url, headers={"origin": server.url}) as visitor:
        response = await visitor.post("/signup", data={
            "email": "pat@example.test", "full_name": "Pat Newcomer", "role": "patient",
            "password": "a long and unusual passphrase 42"})
    assert response.status_code in (200, 303), response.text[:300]

    item = page.locator("#activity-feed li").filter(has_text="Pat Newcomer signed up as a patient")
    await item.wait_for(timeout=5000)
    assert await page.evaluate("window.__sameDocument") is True  # no reload happened
    assert await page.locator("#activity-feed li").count() == 1
    assert await page.locator("#live-status").is_hidden()

    # the connection drops (a server restart); an event meanwhile still arrives, once
    for conn in list(server.bus.sockets.get(admin.id, ())):
        conn.close_soon(1012, "restarting")
    await emit("task.completed", actor_id=admin.id, roles=["admin"], data={"title": "Check the fridge"})
    await page.locator("#activity-feed li").filter(has_text="Check the fridge").wait_for(timeout=10000)
    # a sentinel: a doubled "Check the fridge" would be in the feed before the next event
    await emit("task.completed", actor_id=admin.id, roles=["admin"], data={"title": "Water the plants"})
    await page.locator("#activity-feed li").filter(has_text="Water the plants").wait_for(timeout=10000)
    assert await page.locator("#activity-feed li").filter(has_text="Check the fridge").count() == 1
    assert await page.locator("#activity-feed li").count() == 3
    assert await page.evaluate("window.__sameDocument") is True

    # a longer outage: the header quietly says so, and clears once the socket is back
    server.bus.config.max_sockets_per_user = 0  # every reconnect is turned away
    for conn in list(server.bus.sockets.get(admin.id, ())):
        conn.close_soon(1012, "restarting")
    status = page.locator("#live-status")
    await status.wait_for(state="visible", timeout=10000)
    assert await status.inner_text() == "Reconnecting…"
    await emit("task.completed", actor_id=admin.id, roles=["admin"], data={"title": "Call the family"})
    server.bus.config.max_sockets_per_user = 50
    await page.locator("#activity-feed li").filter(has_text="Call the family").wait_for(timeout=20000)
    await status.wait_for(state="hidden", timeout=5000)
    assert await page.locator("#activity-feed li").count() == 4
    assert await page.evaluate("window.__sameDocument") is True
    assert [e for e in errors if "WebSocket" not in e] == []
