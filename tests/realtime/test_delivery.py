"""Events reach their recipients' sockets after commit, in order, exactly once; a client
that was away gets exactly what it missed; past the retention window it is told to resync."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from caretrack.core.outbox import store as outbox
from caretrack.core.outbox.models import Event, EventCursor, EventDelivery
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic
from tests.realtime.conftest import connect, emit, make_user, sign_in


async def test_an_event_reaches_its_recipients_and_nobody_else(server):
    alice, bob = await make_user(Role.PATIENT), await make_user(Role.PATIENT)
    a = await connect(server, await sign_in(alice, server.settings))
    b = await connect(server, await sign_in(bob, server.settings))
    await emit("booking.created", users=[alice.id], actor_id=alice.id, subject=("booking", 7),
               data={"starts_at": "2026-12-01T09:00:00Z"})
    [message] = await a.wait_for(1)
    assert message["seq"] == 1
    event = message["event"]
    assert event["type"] == "booking.created"
    assert event["actor_id"] == alice.id
    assert event["subject"] == {"kind": "booking", "id": "7"}
    assert event["data"] == {"starts_at": "2026-12-01T09:00:00Z"}
    assert event["occurred_at"].endswith("+00:00")
    assert await b.until_sentinel(bob.id) == [] and b.received == []
    await a.close()
    await b.close()


async def test_nothing_is_published_before_commit_and_a_rollback_publishes_nothing(server):
    alice = await make_user()
    a = await connect(server, await sign_in(alice, server.settings))
    with pytest.raises(RuntimeError):
        async with atomic() as tx:
            await tx.emit("task.completed", actor_id=alice.id, users=[alice.id], data={"n": 1})
            await asyncio.sleep(0.3)  # a relay pass happens meanwhile
            assert a.received == []
            raise RuntimeError("the change fails")
    async with atomic() as tx:
        await tx.emit("task.completed", actor_id=alice.id, users=[alice.id], data={"n": 2})
        await asyncio.sleep(0.3)
        assert a.received == []  # committed only at the end of the block
    [message] = await a.wait_for(1)
    # the rolled-back event used no sequence number: the stream stays gap-free
    assert (message["seq"], message["event"]["data"]) == (1, {"n": 2})
    await a.close()


async def test_role_recipients_are_the_active_holders_of_the_role_each_with_its_own_sequence(server):
    admin1, admin2 = await make_user(Role.ADMIN), await make_user(Role.ADMIN)
    await make_user(Role.ADMIN, is_active=False)
    patient = await make_user(Role.PATIENT)
    await emit("user.signed_up", actor_id=patient.id, users=[admin2.id], roles=["admin"])  # admin2 named twice
    await emit("booking.created", actor_id=patient.id, users=[admin2.id])
    await emit("user.signed_up", actor_id=patient.id, roles=[Role.ADMIN])
    rows = await EventDelivery.all().order_by("user_id", "seq").values_list("user_id", "seq")
    assert rows == [(admin1.id, 1), (admin1.id, 2), (admin2.id, 1), (admin2.id, 2), (admin2.id, 3)]
    cursors = dict(await EventCursor.all().values_list("user_id", "last_seq"))
    assert cursors == {admin1.id: 2, admin2.id: 3}
    a1 = await connect(server, await sign_in(admin1, server.settings), after=0)
    assert [m["event"]["type"] for m in await a1.wait_for(2)] == ["user.signed_up", "user.signed_up"]
    await a1.close()


async def test_an_event_without_recipients_writes_nothing(server):
    await emit("user.signed_up", roles=["admin"])  # no admins yet
    assert await Event.all().count() == 0


async def test_malformed_events_are_refused_with_a_message_naming_the_problem(server):
    alice = await make_user()
    for kwargs, message in [
        ({"event_type": "Booking Created"}, "not a dotted lower-case name"),
        ({"roles": ["superuser"]}, "role 'superuser'"),
        ({"users": ["7"]}, "recipient '7' is not a user id"),
        ({"data": {"blob": "x" * 20000}}, "the limit is 16384"),
        ({"data": {"when": object()}}, "cannot be written as JSON"),
        ({"subject": ("booking",)}, "not a (kind, id) pair"),
    ]:
        args = {"event_type": "booking.created", "users": [alice.id], "data": {}, "subject": None, "roles": ()}
        args.update(kwargs)
        with pytest.raises(outbox.EventError, match=message.replace("(", r"\(").replace(")", r"\)")):
            async with atomic() as tx:
                await outbox.write_event(tx.conn, args.pop("event_type"), actor_id=None, **args)
    assert await Event.all().count() == 0


async def test_a_client_offline_for_a_while_gets_exactly_what_it_missed(server):
    alice = await make_user()
    cookie = await sign_in(alice, server.settings)
    a = await connect(server, cookie)
    for n in range(3):
        await emit("task.completed", users=[alice.id], data={"n": n})
    await a.wait_for(3)
    seen = a.last_seq
    await a.close()
    # away: events keep happening (no need to wait a real minute: the server only knows seqs)
    for n in range(3, 40):
        await emit("task.completed", users=[alice.id], data={"n": n})
    back = await connect(server, cookie, after=seen)
    await back.wait_for(37)
    await emit("task.completed", users=[alice.id], data={"n": 40})
    received = await back.wait_for(38)
    assert await back.until_sentinel(alice.id) == []  # nothing doubled
    assert back.seqs == list(range(4, 42))
    assert [m["event"]["data"]["n"] for m in received] == list(range(3, 41))
    assert back.resyncs == []
    await back.close()


async def test_a_fresh_client_gets_only_what_happens_after_it_connects(server):
    alice = await make_user()
    await emit("task.completed", users=[alice.id], data={"n": 0})
    a = await connect(server, await sign_in(alice, server.settings))
    assert a.hello == {"type": "hello", "user_id": alice.id, "seq": 1}
    await emit("task.completed", users=[alice.id], data={"n": 1})
    await a.wait_for(1)
    assert await a.until_sentinel(alice.id) == []  # the event before it connected never comes
    assert a.seqs == [2]
    await a.close()


async def test_beyond_the_retention_window_the_client_is_told_to_resync(server):
    alice = await make_user()
    cookie = await sign_in(alice, server.settings)
    for n in range(5):
        await emit("task.completed", users=[alice.id], data={"n": n})
    # the first three are older than the retention window
    old = (await EventDelivery.filter(user_id=alice.id, seq__lte=3).values_list("event_id", flat=True))
    await Event.filter(id__in=old).update(occurred_at=outbox.now() - timedelta(days=30))
    # (the server's own pruning job may get there first: what counts is that they are gone)
    await outbox.prune(timedelta(days=server.settings.event_retention_days))
    assert not await Event.filter(id__in=old).exists()

    behind = await connect(server, cookie, after=1)  # missed 2..5, but 2 and 3 are gone
    for _ in range(100):
        if behind.resyncs:
            break
        await asyncio.sleep(0.02)
    assert behind.resyncs == [{"type": "resync", "seq": 5}]
    await emit("task.completed", users=[alice.id], data={"n": 5})
    await behind.wait_for(1)
    assert behind.seqs == [6]  # then live from where the resync left it

    just_in_time = await connect(server, cookie, after=3)  # missed 4..6, all retained
    await just_in_time.wait_for(3)
    assert just_in_time.seqs == [4, 5, 6] and just_in_time.resyncs == []

    from_the_future = await connect(server, cookie, after=99)  # e.g. a restored database
    for _ in range(100):
        if from_the_future.resyncs:
            break
        await asyncio.sleep(0.02)
    assert from_the_future.resyncs == [{"type": "resync", "seq": 6}]
    for client in (behind, just_in_time, from_the_future):
        await client.close()


async def test_a_relay_that_was_never_woken_still_publishes(server):
    """A crash between commit and wake-up: the event is committed but no relay was told."""
    alice = await make_user()
    a = await connect(server, await sign_in(alice, server.settings))
    async with atomic() as tx:
        await outbox.write_event(tx.conn, "task.completed", actor_id=None, users=[alice.id], data={})
    # no wake_relay(): the relay's poll finds it
    await a.wait_for(1, timeout=5)
    for _ in range(100):  # marked published once the relay's transaction commits
        if await Event.filter(published_at=None).count() == 0:
            break
        await asyncio.sleep(0.02)
    assert await Event.filter(published_at=None).count() == 0
    await a.close()


async def test_concurrent_writers_never_leave_a_gap_that_a_reader_could_skip(server):
    """Sequences are issued under the cursor's lock, so a reader never sees n+1 before n:
    a client that reads as fast as it can ends with 1..N, each once, in order."""
    alice, bob = await make_user(), await make_user()
    a = await connect(server, await sign_in(alice, server.settings))
    b = await connect(server, await sign_in(bob, server.settings))

    async def writer(k: int) -> None:
        for n in range(15):
            await emit("task.completed", users=[bob.id, alice.id] if n % 2 else [alice.id, bob.id],
                       data={"writer": k, "n": n})

    await asyncio.gather(*(writer(k) for k in range(6)))
    await a.wait_for(90)
    await b.wait_for(90)
    assert await a.until_sentinel(alice.id) == [] and await b.until_sentinel(bob.id) == []  # nothing doubled
    assert a.seqs == list(range(1, 91)) and b.seqs == list(range(1, 91))
    assert sorted(json.dumps(m["event"]["data"]) for m in a.received) == sorted(
        json.dumps(m["event"]["data"]) for m in b.received)
    await a.close()
    await b.close()



async def test_pruning_removes_only_events_past_retention_in_batches(server):
    alice, bob = await make_user(), await make_user()
    for n in range(7):
        await emit("task.completed", users=[alice.id, bob.id], data={"n": n})
    at = max(await Event.all().values_list("occurred_at", flat=True))
    old = await Event.filter(id__lte=5).values_list("id", flat=True)
    await Event.filter(id__in=old).update(occurred_at=at - timedelta(days=7, microseconds=1))
    await Event.filter(id=6).update(occurred_at=at - timedelta(days=7))  # exactly at the edge: kept
    assert await outbox.prune(timedelta(days=7), batch=2, at=at) == 5
    assert sorted(await EventDelivery.filter(user_id=alice.id).values_list("seq", flat=True)) == [6, 7]
    assert await outbox.first_retained_seq(bob.id) == 6
    assert await outbox.last_seq(bob.id) == 7  # the cursor keeps counting: no seq is ever reused
