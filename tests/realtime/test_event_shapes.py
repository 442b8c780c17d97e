"""Every place that emits an event: the event's shape and recipients, its readable line in
the activity feed, and that applying the live events to the feed an admin already had
gives what a fresh fetch shows (Zulip's check for event emitters)."""

from __future__ import annotations

import httpx
import pytest

from caretrack.accounts import service
from caretrack.accounts.models import User
from caretrack.accounts.ratelimit import LoginLimiter
from caretrack.accounts.schemas import Invitation, LogIn, SignUp
from caretrack.core.errors import NotAuthenticated
from caretrack.core.roles import Role
from tests.realtime.conftest import connect, make_user, sign_in


async def admin_view(server):
    """Two active admins watching, one deactivated admin, and a carer who must not see admin events."""
    admin = await make_user(Role.ADMIN, name="Ada Admin")
    second = await make_user(Role.ADMIN, name="Bo Admin")
    await make_user(Role.ADMIN, is_active=False)
    carer = await make_user(Role.CARER)
    cookie = await sign_in(admin, server.settings)
    sockets = {
        "admin": await connect(server, cookie),
        "second": await connect(server, await sign_in(second, server.settings)),
        "carer": await connect(server, await sign_in(carer, server.settings)),
    }
    api = httpx.AsyncClient(base_url=server.url, headers={"cookie": cookie})
    before = (await api.get("/api/v1/events")).json()["items"]
    return admin, sockets, api, before


async def check_applied_equals_fresh(api, before: list[dict], socket) -> list[dict]:
    """What the live feed does: on events, fetch what is newer than the newest item shown."""
    newest = before[0]["seq"] if before else 0
    assert all(m["seq"] > newest for m in socket.received)
    newer = (await api.get("/api/v1/events", params={"after": newest})).json()["items"]
    assert [i["seq"] for i in newer] == [m["seq"] for m in socket.received]
    applied = list(reversed(newer)) + before
    fresh = (await api.get("/api/v1/events")).json()["items"]
    assert applied == fresh
    return newer


async def finish(sockets, api) -> None:
    await api.aclose()
    for client in sockets.values():
        await client.close()


async def test_sign_up_emits_user_signed_up_to_every_active_admin(server):
    admin, sockets, api, before = await admin_view(server)
    await service.do_sign_up(server.settings, LoginLimiter(None),
                             SignUp(email="pat@example.test", full_name="Pat Newcomer",
                                    password="a long and unusual passphrase 42", role=Role.PATIENT),
                             client_address="127.0.0.1")
    user = await User.get(email="pat@example.test")
    [message] = await sockets["admin"].wait_for(1)
    await sockets["second"].wait_for(1)
    event = message["event"]
    assert event["type"] == "user.signed_up"
    assert event["actor_id"] == user.id
    assert event["subject"] == {"kind": "user", "id": str(user.id)}
    assert event["data"] == {"name": "Pat Newcomer", "role": "patient"}
    assert sockets["carer"].received == []
    [item] = await check_applied_equals_fresh(api, before, sockets["admin"])
    assert item["text"] == "Pat Newcomer signed up as a patient"
    assert item["kind"] == "user"
    await finish(sockets, api)


async def test_an_invitation_emits_user_invited_to_every_active_admin(server):
    admin, sockets, api, before = await admin_view(server)
    invited = await service.do_invite(server.settings, admin,
                                      Invitation(email="cara@example.test", full_name="Cara Carer", role=Role.CARER),
                                      client_address="127.0.0.1")
    [message] = await sockets["admin"].wait_for(1)
    await sockets["second"].wait_for(1)
    event = message["event"]
    assert event["type"] == "user.invited"
    assert event["actor_id"] == admin.id
    assert event["subject"] == {"kind": "user", "id": str(invited.id)}
    assert event["data"] == {"name": "Cara Carer", "email": "cara@example.test", "role": "carer"}
    assert sockets["carer"].received == []
    [item] = await check_applied_equals_fresh(api, before, sockets["admin"])
    assert item["text"] == "Ada Admin invited Cara Carer (cara@example.test) as a carer"
    assert item["kind"] == "invitation"
    await finish(sockets, api)


async def test_a_locked_account_emits_security_account_locked_to_every_active_admin(server):
    admin, sockets, api, before = await admin_view(server)
    victim = await make_user(Role.PATIENT)
    limiter = LoginLimiter(None, free_failures=2)
    for _ in range(2):
        with pytest.raises(NotAuthenticated):
            await service.check_login(server.settings, limiter, LogIn(email=victim.email, password="wrong guess"),
                                      client_address="203.0.113.9")
    [message] = await sockets["admin"].wait_for(1)
    event = message["event"]
    assert event["type"] == "security.account_locked"
    assert event["actor_id"] is None
    assert event["subject"] == {"kind": "user", "id": str(victim.id)}
    assert event["data"] == {"email": victim.email, "address": "203.0.113.9"}
    assert sockets["carer"].received == []
    [item] = await check_applied_equals_fresh(api, before, sockets["admin"])
    assert item["text"] == f"Account {victim.email} was locked"
    assert item["kind"] == "security"
    assert await User.filter(id=victim.id, is_active=True).exists()
    await finish(sockets, api)


async def test_archiving_a_care_package_emits_care_package_archived_to_the_admins_and_its_carers(server):
    from datetime import UTC, date, datetime

    from caretrack.care import service as care
    from caretrack.care.schemas import PackageChange, PackageIn

    boss = await make_user(Role.ADMIN, name="Bo Boss")
    on_it = await make_user(Role.CARER, name="Cara Carer")
    package = await care.do_create_package(boss, PackageIn(client_name="Mrs Edna Marsh", starts_on=date(2026, 1, 5)),
                                           None)
    await care.do_assign_carer(boss, package.id, on_it.id, None)
    await care.do_update_package(boss, package.id, PackageChange(ends_on=date(2026, 3, 1)), None)
    admin, sockets, api, before = await admin_view(server)
    sockets["on_it"] = await connect(server, await sign_in(on_it, server.settings))
    await care.do_archive_package(boss, package.id, None, at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    [message] = await sockets["admin"].wait_for(1)
    await sockets["second"].wait_for(1)
    [to_carer] = await sockets["on_it"].wait_for(1)
    event = message["event"]
    assert event["type"] == "care.package_archived" and to_carer["event"]["type"] == "care.package_archived"
    assert event["actor_id"] == boss.id
    assert event["subject"] == {"kind": "care_package", "id": str(package.id)}
    assert event["data"] == {"package_id": package.id}
    assert sockets["carer"].received == []  # a carer not on the package
    [item] = await check_applied_equals_fresh(api, before, sockets["admin"])
    assert item["text"] == f"Bo Boss archived care package {package.id}"
    assert item["kind"] == "care" and item["kind_label"] == "Care packages and notes"
    await finish(sockets, api)
