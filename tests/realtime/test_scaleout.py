"""Several web processes sharing Redis: an event committed in one reaches sockets held by
another, auth changes reach every process, and losing Redis loses no event."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from caretrack.accounts.models import AccessToken
from caretrack.accounts.sessions import digest, new_access_token_secret
from caretrack.core.roles import Role
from caretrack.realtime.sockets import CLOSE_DEACTIVATED
from tests.realtime.conftest import (
    WebProcess,
    connect,
    emit,
    make_user,
    sentinel,
    serve,
    sign_in,
    start_web_process,
    stop_web_process,
)

pytestmark = pytest.mark.redis


@pytest.fixture
async def two_processes(database, redis_url) -> AsyncIterator[tuple[WebProcess, WebProcess]]:
    first = await start_web_process(database, redis_url)
    try:
        second = await start_web_process(database, redis_url)
    except Exception:
        stop_web_process(first)
        raise
    yield first, second
    stop_web_process(first)
    stop_web_process(second)


async def test_an_event_committed_through_one_process_reaches_a_socket_held_by_the_other(two_processes, database):
    first, second = two_processes
    admin = await make_user(Role.ADMIN, name="Ada Admin")
    on_second = await connect(second.ws_url, await sign_in(admin, database))
    # another user's action, served by the first process
    async with httpx.AsyncClient(base_url=first.url) as browser:
        response = await browser.post("/signup", data={
            "email": "pat@example.test", "full_name": "Pat Newcomer", "role": "patient",
            "password": "a long and unusual passphrase 42"}, headers={"origin": first.url})
    assert response.status_code in (200, 303), response.text[:500]
    [message] = await on_second.wait_for(1)
    assert message["event"]["type"] == "user.signed_up"
    assert message["event"]["data"]["name"] == "Pat Newcomer"
    # an event committed by a third process that runs no relay is still published (by a poll)
    await emit("task.completed", users=[admin.id], data={"title": "Morning visit"})
    await on_second.wait_for(2)
    assert on_second.seqs == [1, 2]
    await on_second.close()


async def test_deactivating_through_one_process_closes_sockets_held_by_the_other(two_processes, database):
    first, second = two_processes
    admin, carer = await make_user(Role.ADMIN), await make_user(Role.CARER)
    await sign_in(admin, database)  # enrols the admin's second factor
    secret = new_access_token_secret()
    await AccessToken.create(user=admin, name="ops", token_hash=digest(secret), prefix=secret[:12])
    carer_cookie = await sign_in(carer, database)
    sockets = [await connect(second.ws_url, carer_cookie), await connect(first.ws_url, carer_cookie)]
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=first.url) as api:
        started = loop.time()
        response = await api.patch(f"/api/v1/admin/users/{carer.id}", json={"is_active": False},
                                   headers={"authorization": f"Bearer {secret}", "origin": first.url})
    assert response.status_code == 200, response.text
    for client in sockets:
        assert (await client.wait_closed(5))[0] == CLOSE_DEACTIVATED
    assert loop.time() - started < 5


async def test_killing_redis_while_events_flow_loses_nothing_and_doubles_nothing(settings, private_redis):
    """One web process in this loop (it also produces the events), one as a subprocess;
    Redis is killed mid-stream and restarted. Every client ends with exactly 1..N, in order."""
    local = await serve(settings.replace(redis_url=private_redis.url))
    remote = await start_web_process(settings, private_redis.url)
    clients = []
    try:
        users = [await make_user() for _ in range(4)]
        cookies = [await sign_in(u, local.settings) for u in users]
        expected: dict[int, list[int]] = {u.id: [] for u in users}
        for i, user in enumerate(users):  # 0 and 1 on both processes, 2 on the remote only, 3 local only
            if i != 2:
                clients.append((user.id, await connect(local, cookies[i])))
            if i != 3:
                clients.append((user.id, await connect(remote.ws_url, cookies[i])))
        rng = random.Random(7)

        async def produce(count: int) -> None:
            for n in range(count):
                chosen = rng.sample(users, rng.randint(1, 3))
                await emit("task.completed", users=[u.id for u in chosen], data={"n": n})
                for user in sorted(chosen, key=lambda u: u.id):
                    expected[user.id].append(n)
                await asyncio.sleep(0.01)

        await produce(60)
        private_redis.kill()  # connections drop mid-stream
        await produce(60)
        await asyncio.sleep(1.0)
        private_redis.start()
        await private_redis.wait_ready()
        await produce(60)

        for user_id, client in clients:
            await client.wait_for(len(expected[user_id]), timeout=20)
        markers = {user.id: await sentinel(user.id) for user in users}
        for user_id, client in clients:
            await client.until(markers[user_id])  # anything doubled would have come before it
        for user_id, client in clients:
            assert client.seqs == list(range(1, len(expected[user_id]) + 1))
            assert [m["event"]["data"]["n"] for m in client.received] == expected[user_id]
            assert client.resyncs == []
    finally:
        for _, client in clients:
            await client.close()
        stop_web_process(remote)
        await local.stop()
