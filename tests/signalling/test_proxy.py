"""Scaled out: a proxy (the web process's /ws/signal) in front of two media workers, each an
ordinary signalling service with its own relay, all on hypercorn.  Calls go through the
proxy to the worker the directory names; a worker that goes away sends its clients to
the other one, and admitted patients stay admitted."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pytest
import websockets
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import media
from signalling import Principal, Seat, tickets
from signalling import protocol as p
from signalling.proxy import SignallingProxy, Worker, worker_service
from tests.conftest import free_port, serve_in_loop, stop_serving
from tests.media.helpers import colour_name, relay_config, wait_for

from .conftest import ORIGIN, TEST_LIMITS, RecordingHooks, SignalClient, allowed_origin, authenticate, authorize, join
from .test_call import admitted_call

KEY = b"test-ticket-key-0123456789abcdef"


class MemoryDirectory:
    """Places a consultation on the first live worker; forgets workers reported unreachable."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = {w.id: w for w in workers}
        self.placed: dict[str, Worker] = {}
        self.asked: list[str] = []
        self.unreachable_reports: list[str] = []

    async def place(self, consultation_id: str, avoid: frozenset[str]) -> Worker | None:
        self.asked.append(consultation_id)
        worker = self.placed.get(consultation_id)
        if worker is None or worker.id in avoid or worker.id not in self.workers:
            live = [w for w in self.workers.values() if w.id not in avoid]
            if not live:
                return None
            worker = self.placed[consultation_id] = live[0]
        return worker

    async def unreachable(self, consultation_id: str, worker: Worker) -> None:
        self.unreachable_reports.append(worker.id)
        self.workers.pop(worker.id, None)


@dataclass
class WorkerProcess:
    worker: Worker
    relay: media.Relay
    service: object
    stop: object


@dataclass
class Cluster:
    url: str
    directory: MemoryDirectory
    hooks: RecordingHooks
    workers: dict[str, WorkerProcess]
    proxy: SignallingProxy
    relay: media.Relay  # the relay of the worker the test looks at (see admitted_call)


async def _healthz(request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    hooks = RecordingHooks()
    workers: dict[str, WorkerProcess] = {}
    for name in ("w1", "w2"):
        relay = media.Relay(relay_config(recordings_dir=tmp_path / name))
        service = worker_service(relay, ticket_key=KEY, hooks=hooks, limits=TEST_LIMITS)
        port = free_port()
        task, stop = await serve_in_loop(Starlette(routes=[Route("/healthz", _healthz), service.route("/signal")]),
                                         port)
        workers[name] = WorkerProcess(Worker(name, f"ws://127.0.0.1:{port}/signal"), relay, service, (task, stop))
    directory = MemoryDirectory([w.worker for w in workers.values()])

    async def remembering_authorize(principal: Principal, consultation_id: str) -> Seat:
        seat = await authorize(principal, consultation_id)
        admitted = any(c == consultation_id and who == principal.id for c, _, who in hooks.admits)
        return dataclasses.replace(seat, admitted=admitted)

    proxy = SignallingProxy(directory, ticket_key=KEY, authenticate=authenticate, allowed_origin=allowed_origin,
                            authorize=remembering_authorize, limits=TEST_LIMITS)
    port = free_port()
    task, stop = await serve_in_loop(Starlette(routes=[Route("/healthz", _healthz), proxy.route("/ws/signal")]), port)
    yield Cluster(f"ws://127.0.0.1:{port}/ws/signal", directory, hooks, workers, proxy, workers["w1"].relay)
    await proxy.close()
    await stop_serving(task, stop)
    for process in workers.values():
        await process.service.close()
        await process.relay.close()
        await stop_serving(*process.stop)
        assert process.relay.peer_connections == {}


async def test_a_call_goes_through_the_proxy_to_one_worker(cluster: Cluster, clients) -> None:
    host, patient = await admitted_call(cluster, clients, "c-px")
    for me, colour in ((host, "blue"), (patient, "red")):
        assert {colour_name(info[0]) for _, info in me.tracks("video")[0].frames} == {colour}
    assert cluster.hooks.admits == [("c-px", "doc", "pat")]
    assert list(cluster.workers["w1"].relay.rooms) == ["c-px"]
    assert cluster.workers["w2"].relay.rooms == {}

    # chat and leave pass through unchanged; the worker sees the member go
    await patient.send({"type": "chat", "text": "hello"})
    assert (await host.wait(p.ChatPosted)).text == "hello"
    await patient.send({"type": "leave"})
    assert (await patient.wait_closed())[0] == 1000
    await host.wait(p.Participants, lambda m: [i.participant for i in m.participants] == ["doc"])


async def test_when_a_worker_goes_away_its_clients_reconnect_to_another(cluster: Cluster, clients) -> None:
    host, patient = await admitted_call(cluster, clients, "c-move")
    first = cluster.workers["w1"]
    cluster.directory.workers.pop("w1")  # the directory no longer lists it ...
    await first.service.close()  # ... and it shuts down
    for client in (host, patient):
        assert await client.wait_closed() == (1012, "the server is restarting; reconnecting")
        assert (await client.wait(p.Error)).code == 1012
    assert first.relay.rooms == {}

    # the clients come back (as call.js does on 1012): the call is placed on w2, and the
    # patient the doctor admitted earlier skips the waiting room
    cluster.relay = cluster.workers["w2"].relay
    host2 = await join(cluster, "doc", "c-move")
    patient2 = await join(cluster, "pat", "c-move")
    clients += [host2, patient2]
    assert patient2.of(p.Welcome)[0].admitted is True
    await host2.publish("green")
    await patient2.publish("blue")

    def flowing() -> bool:
        return all(c.tracks("video") and len(c.tracks("video")[0].frames) >= 20 for c in (host2, patient2))

    assert await wait_for(flowing, timeout=20)
    assert {colour_name(i[0]) for _, i in patient2.tracks("video")[0].frames} == {"green"}
    assert list(cluster.workers["w2"].relay.rooms) == ["c-move"]


async def test_an_unreachable_worker_is_skipped_and_reported(cluster: Cluster, clients) -> None:
    dead = Worker("w0", f"ws://127.0.0.1:{free_port()}/signal")  # nothing listens there
    cluster.directory.workers = {"w0": dead, **cluster.directory.workers}
    host = await join(cluster, "doc", "c-skip")
    clients.append(host)
    assert cluster.directory.unreachable_reports == ["w0"]
    assert "c-skip" in cluster.workers["w1"].service.consultations

    cluster.directory.workers = {"w0": dead}
    client = await _open(cluster, "doc")
    await client.send({"type": "join", "consultation": "c-none"})
    code, reason = await client.wait_closed()
    assert code == 1013 and "no media server" in reason
    assert (await client.wait(p.Error)).code == 1013


async def _open(cluster: Cluster, user: str | None, origin: str = ORIGIN) -> SignalClient:
    headers = {"x-test-user": user} if user else {}
    ws = await websockets.connect(cluster.url, origin=origin, additional_headers=headers, open_timeout=5)
    client = SignalClient(user, ws)
    client.start()
    return client


async def test_the_proxy_refuses_before_asking_for_a_worker(cluster: Cluster, clients) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(cluster.url, origin="https://evil.example", additional_headers={"x-test-user": "doc"})
    assert refused.value.response.status_code == 403

    anonymous = await _open(cluster, None)
    assert (await anonymous.wait_closed())[0] == 4401
    for user, consultation, code in (("eve", "c-x", 4403), ("pat", "closed-x", 4409), ("pat", "later-x", 4409)):
        client = await _open(cluster, user)
        clients.append(client)
        await client.send({"type": "join", "consultation": consultation})
        assert (await client.wait_closed())[0] == code, (user, consultation)
    silent = await _open(cluster, "doc")
    clients.append(silent)
    await silent.send({"type": "chat", "text": "hi"})
    assert (await silent.wait_closed())[0] == 4400
    assert cluster.directory.asked == []


async def test_an_oversized_message_is_stopped_at_the_proxy(cluster: Cluster, clients) -> None:
    host = await join(cluster, "doc", "c-big")
    clients.append(host)
    await host.send({"type": "chat", "text": "x" * (TEST_LIMITS.max_message_bytes + 10)})
    code, reason = await host.wait_closed()
    assert code == 4413 and "over the limit" in reason
    # the worker saw the member leave
    assert await wait_for(lambda: "c-big" not in cluster.workers["w1"].service.consultations, 5)


async def _straight_to_worker(cluster: Cluster, headers: dict[str, str]) -> SignalClient:
    ws = await websockets.connect(cluster.workers["w1"].worker.url, additional_headers=headers, open_timeout=5)
    client = SignalClient("direct", ws)
    client.start()
    return client


async def test_a_worker_admits_only_a_valid_ticket_for_its_consultation(cluster: Cluster, clients) -> None:
    doc = Principal("doc", "Dr Ada Host")
    good = tickets.issue(KEY, doc, "c-a", Seat("host"))
    cases = {
        "no ticket": {},
        "forged": {tickets.HEADER: tickets.issue(b"another-key-0123456789", doc, "c-a", Seat("host"))},
        "expired": {tickets.HEADER: tickets.issue(KEY, doc, "c-a", Seat("host"), now=time.time() - 60)},
        "garbage": {tickets.HEADER: "not.a-ticket"},
    }
    for name, headers in cases.items():
        client = await _straight_to_worker(cluster, headers)
        clients.append(client)
        assert (await client.wait_closed())[0] == 4401, name  # refused before any message

    other = await _straight_to_worker(cluster, {tickets.HEADER: good})
    clients.append(other)
    await other.send({"type": "join", "consultation": "c-b"})
    code, reason = await other.wait_closed()
    assert code == 4403 and "another consultation" in reason

    holder = await _straight_to_worker(cluster, {tickets.HEADER: good})
    clients.append(holder)
    await holder.send({"type": "join", "consultation": "c-a"})
    welcome = await holder.wait(p.Welcome)
    assert (welcome.participant, welcome.role, welcome.admitted) == ("doc", "host", True)


def test_tickets_carry_the_seat_and_refuse_tampering() -> None:
    from datetime import datetime, timedelta

    opens = datetime(2030, 1, 1, 9, tzinfo=UTC)
    seat = Seat("patient", True, opens, opens + timedelta(hours=1), admitted=True)
    holder = tickets.redeem(KEY, tickets.issue(KEY, Principal("7", "Pat"), "42", seat))
    assert (holder.id, holder.name, holder.consultation, holder.seat) == ("7", "Pat", "42", seat)
    assert tickets.authorize_holder(holder, "42") == seat

    body, signature = tickets.issue(KEY, Principal("7", "Pat"), "42", seat).split(".")
    forged_body = body[:-2] + ("AA" if body[-2:] != "AA" else "BB")
    with pytest.raises(tickets.Refused, match="signature"):
        tickets.redeem(KEY, f"{forged_body}.{signature}")
    with pytest.raises(tickets.Refused, match="another consultation"):
        tickets.authorize_holder(holder, "43")
    with pytest.raises(tickets.Refused, match="ticket holders only"):
        tickets.authorize_holder(Principal("7", "Pat"), "42")
    with pytest.raises(ValueError, match="16 bytes"):
        tickets.issue(b"short", Principal("7", "Pat"), "42", seat)
