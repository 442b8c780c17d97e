"""Join and leave facts through the real endpoint: a stay starts when a member is in the call
(admitted, connected) and ends when their socket does, when the host ends the call, or when
the server shuts down; a socket replacing the member's older one continues the stay."""

from __future__ import annotations

from signalling import protocol as p

from .conftest import SignalClient, SignalServer, join, open_socket


async def test_a_stay_runs_from_admission_to_the_sockets_end(server: SignalServer, clients: list[SignalClient]):
    hooks = server.hooks
    patient = await join(server, "pat", "c-stay")
    host = await join(server, "doc", "c-stay")
    clients += [patient, host]
    await host.wait(p.Lobby, lambda m: m.waiting)
    # the host is in the call on arrival; the waiting patient is not
    assert hooks.presence == [("join", "c-stay", "doc", "host", "stay-1")]
    assert hooks.arrivals == [("c-stay", "pat", "patient")], "the host application knows the patient came"

    await host.send({"type": "admit", "participant": "pat"})
    await patient.wait(p.Admitted)
    assert hooks.presence[-1] == ("join", "c-stay", "pat", "patient", "stay-2")

    # a newer socket of the patient's replaces the older one: the same stay goes on
    newer = await join(server, "pat", "c-stay")
    clients.append(newer)
    assert (await patient.wait_closed())[0] == p.CLOSE_REPLACED  # closed after its detach ran
    assert newer.of(p.Welcome)[0].admitted is True
    assert len(hooks.presence) == 2

    # leaving ends the stay (before the others see them go)
    await newer.send({"type": "leave"})
    assert (await newer.wait_closed())[0] == 1000
    await host.wait(p.Participants, lambda m: [i.participant for i in m.participants] == ["doc"])
    assert hooks.presence[-1] == ("leave", "c-stay", "pat", "stay-2")

    # back again: admitted before, so straight into the call, a new stay
    again = await join(server, "pat", "c-stay")
    clients.append(again)
    assert again.of(p.Welcome)[0].admitted is True
    assert hooks.presence[-1] == ("join", "c-stay", "pat", "patient", "stay-4")

    # the host ends it: the end is recorded first, then everyone's stay ends
    await host.send({"type": "end"})
    await again.wait(p.Ended)
    assert hooks.presence[4] == ("end", "c-stay", "doc")
    assert sorted(hooks.presence[5:]) == [("leave", "c-stay", "doc", "stay-1"), ("leave", "c-stay", "pat", "stay-4")]


async def test_a_join_that_cannot_be_recorded_lets_nobody_in(server: SignalServer, clients: list[SignalClient]):
    hooks = server.hooks
    hooks.fail_join = True
    refused = await open_socket(server, "doc")
    clients.append(refused)
    await refused.send({"type": "join", "consultation": "c-nojoin"})
    code, reason = await refused.wait_closed()
    assert code == p.CLOSE_TRY_AGAIN and "could not record" in reason  # call.js reconnects after 1013
    assert [type(m) for m in refused.messages] == [p.Error] and refused.messages[0].code == p.CLOSE_TRY_AGAIN
    assert "c-nojoin" not in server.service.consultations

    hooks.fail_join = False
    host = await join(server, "doc", "c-nojoin")
    patient = await join(server, "pat", "c-nojoin")
    clients += [host, patient]
    await host.wait(p.Lobby, lambda m: m.waiting)
    hooks.fail_join = True
    await host.send({"type": "admit", "participant": "pat"})
    error = await host.wait(p.Error, lambda e: e.about == "admit")
    assert error.code == p.ERROR_INTERNAL
    hooks.fail_join = False
    await host.send({"type": "admit", "participant": "pat"})  # still waiting, so the host can admit again
    await patient.wait(p.Admitted)
    assert [fact[2:4] for fact in hooks.presence] == [("doc", "host"), ("pat", "patient")]
    assert patient.of(p.Admitted) == [p.Admitted()]


async def test_a_shutdown_ends_every_stay(server: SignalServer, clients: list[SignalClient]):
    host = await join(server, "doc", "c-down")
    patient = await join(server, "pat", "c-down")
    clients += [host, patient]
    await host.send({"type": "admit", "participant": "pat"})
    await patient.wait(p.Admitted)
    await server.service.close()
    for client in (host, patient):
        assert (await client.wait_closed())[0] == p.CLOSE_RESTARTING
    assert sorted(fact for fact in server.hooks.presence if fact[0] == "leave") == [
        ("leave", "c-down", "doc", "stay-1"), ("leave", "c-down", "pat", "stay-2")]
