"""Guests by link, no account: single use, expiry, revocation, the one consultation the
seat is for, what a guest can see (pages and API), and the audit trail. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
import pytest

from caretrack.consultations import guests, service
from caretrack.consultations.models import GuestInvite, GuestRole
from caretrack.consultations.schemas import GuestInviteCreate, GuestJoin
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import Forbidden, NotFound, ValidationError
from signalling import Principal, Refused
from signalling import protocol as wire
from tests.conftest import TEST_BASE_URL
from tests.consultations.conftest import make_appointment
from tests.helpers import csrf_token, login

INTERPRETER = GuestInviteCreate(role=GuestRole.INTERPRETER, label="Portuguese interpreter")


def secret_of(link: str) -> str:
    assert "/consultations/guest#" in link
    return link.split("#", 1)[1]


async def test_a_link_is_single_use_and_its_seat_is_one_browsers(database, people, now):
    settings = database
    appointment = await make_appointment(people["doctor"], people["patient"], at=now)
    invite, link = await guests.do_create_guest_invite(settings, people["doctor"], appointment.id, INTERPRETER, at=now)
    assert (invite.role, invite.label, guests.status_of(invite, now)) == (GuestRole.INTERPRETER,
                                                                          "Portuguese interpreter", "open")

    redeemed, seat = await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(link), name="Ana Silva"),
                                                         user=None, at=now)
    assert seat and redeemed.id == invite.id and guests.status_of(redeemed, now) == "used"
    principal = guests.principal_of(redeemed)
    assert (principal.id, principal.name) == (f"guest:{invite.id}", "Ana Silva (interpreter)")
    assert (await guests.seat_invite(seat)).id == invite.id
    stored = await GuestInvite.get(id=invite.id)
    assert seat not in (stored.seat_hash, stored.token_hash)  # only hashes are kept

    # another browser cannot reuse the link; the browser holding the seat gets it back, no new seat
    with pytest.raises(ValidationError, match="invalid, used, revoked or expired"):
        await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(link), name="Eve"), user=None,
                                            at=now + timedelta(seconds=1))
    again, no_new_seat = await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(link), name="Ana"), user=None,
                                                             at=now, held_seat=seat)
    assert (again.id, no_new_seat, again.display_name) == (invite.id, None, "Ana Silva")
    assert await guests.seat_invite("not-the-seat") is None

    seat_now = await guests.make_authorize(settings)(principal, str(appointment.id))
    assert (seat_now.role, seat_now.admitted) == ("guest", False)
    # a signed-in user may use a link the same way; the appointment's own people may not
    _, family_link = await guests.do_create_guest_invite(
        settings, people["doctor"], appointment.id, GuestInviteCreate(role=GuestRole.FAMILY, label="Daughter"), at=now)
    with pytest.raises(ValidationError, match="already part of this consultation"):
        await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(family_link), name="Pat"),
                                            user=people["patient"], at=now)
    carers_invite, _ = await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(family_link), name="Cal"),
                                                           user=people["carer"], at=now)
    assert carers_invite.guest_id == people["carer"].id
    with pytest.raises(NotFound):  # their account gains no seat: only their browser's guest seat
        await service.access_for(settings, people["carer"], appointment.id)

    # only the appointment's doctor makes, lists and revokes links
    with pytest.raises(Forbidden):
        await guests.do_create_guest_invite(settings, people["patient"], appointment.id, INTERPRETER, at=now)
    with pytest.raises(NotFound):
        await guests.list_guest_invites(settings, people["stranger"], appointment.id)


async def test_a_link_expires_with_the_day_or_the_call_window_whichever_is_first(database, people, now):
    settings = database
    soon = await make_appointment(people["doctor"], people["patient"], at=now, starts_in=timedelta(minutes=10))
    invite, link = await guests.do_create_guest_invite(settings, people["doctor"], soon.id, INTERPRETER, at=now)
    assert invite.expires_at == soon.ends_at + service.LATE_GRACE
    with pytest.raises(ValidationError, match="expired"):
        await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(link), name="Ana"), user=None,
                                            at=invite.expires_at)
    assert guests.status_of(invite, invite.expires_at) == "expired"
    _, seat = await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(link), name="Ana"), user=None,
                                                  at=invite.expires_at - timedelta(seconds=1))
    assert seat

    later = await make_appointment(people["doctor"], people["patient"], at=now, starts_in=timedelta(days=3))
    invite, link = await guests.do_create_guest_invite(settings, people["doctor"], later.id, INTERPRETER, at=now)
    assert invite.expires_at == now + guests.GUEST_INVITE_LIFETIME
    with pytest.raises(ValidationError, match="expired"):
        await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(link), name="Ana"), user=None,
                                            at=now + guests.GUEST_INVITE_LIFETIME)

    over = await make_appointment(people["doctor"], people["patient"], at=now, starts_in=timedelta(hours=-3))
    with pytest.raises(ValidationError, match="join window has ended"):
        await guests.do_create_guest_invite(settings, people["doctor"], over.id, INTERPRETER, at=now)


async def test_revoked_links_and_seats_and_the_wrong_consultation_are_refused(database, people, now):
    settings = database
    appointment = await make_appointment(people["doctor"], people["patient"], at=now)
    other = await make_appointment(people["doctor"], people["patient"], at=now, starts_in=timedelta(hours=2))
    authorize = guests.make_authorize(settings)

    unused, unused_link = await guests.do_create_guest_invite(settings, people["doctor"], appointment.id, INTERPRETER,
                                                              at=now)
    await guests.do_revoke_guest_invite(settings, people["doctor"], appointment.id, unused.id, at=now)
    with pytest.raises(ValidationError, match="revoked"):
        await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(unused_link), name="Ana"), user=None, at=now)

    invite, link = await guests.do_create_guest_invite(settings, people["doctor"], appointment.id, INTERPRETER, at=now)
    redeemed, seat = await guests.do_redeem_guest_invite(GuestJoin(token=secret_of(link), name="Ana"), user=None,
                                                         at=now)
    principal = guests.principal_of(redeemed)
    with pytest.raises(Refused, match="another consultation") as wrong:
        await authorize(principal, str(other.id))
    assert wrong.value.code == 4403
    for forged in ("guest:999999", "guest:abc", "guest:"):
        with pytest.raises(Refused):
            await authorize(Principal(forged, "x"), str(appointment.id))
    with pytest.raises(NotFound):  # another appointment's link
        await guests.do_revoke_guest_invite(settings, people["doctor"], other.id, invite.id, at=now)

    hooks = guests.CallHooks(settings)
    await hooks.on_admit(str(appointment.id), Principal(str(people["doctor"].id), "d"), principal)
    await hooks.on_admit(str(appointment.id), Principal(str(people["doctor"].id), "d"), principal)  # a reconnect
    assert (await authorize(principal, str(appointment.id))).admitted is True
    await hooks.on_recording_consent(str(appointment.id), principal, "guest", True)
    with pytest.raises(wire.ProtocolError, match="read the chat but not post"):
        await hooks.on_chat(str(appointment.id), principal, "hello")

    revoked = await guests.do_revoke_guest_invite(settings, people["doctor"], appointment.id, invite.id, at=now)
    assert guests.status_of(revoked, now) == "revoked"
    assert await guests.seat_invite(seat) is None
    with pytest.raises(Refused, match="revoked"):
        await authorize(principal, str(appointment.id))
    listed = await guests.list_guest_invites(settings, people["doctor"], appointment.id)
    assert [(i.id, guests.status_of(i, now)) for i in listed] == [(unused.id, "revoked"), (invite.id, "revoked")]

    entries = {(e.action, e.actor_id, json.loads(e.detail).get("invite"))
               for e in await AuditEntry.filter(subject_id=str(appointment.id))}
    doctor = people["doctor"].id
    assert {("consultation.guest_invited", doctor, invite.id), ("consultation.guest_joined", None, invite.id),
            ("consultation.guest_connected", None, invite.id), ("consultation.guest_admitted", doctor, invite.id),
            ("recording.consent_granted", None, invite.id), ("consultation.guest_revoked", doctor, invite.id),
            ("consultation.guest_revoked", doctor, unused.id)} <= entries
    assert len([e for e in entries if e[0] == "consultation.guest_admitted"]) == 1


async def test_a_signed_out_guest_sees_the_call_and_nothing_of_the_appointment(app, client, people):
    appointment = await make_appointment(people["doctor"], people["patient"])
    api = f"/api/v1/consultations/{appointment.id}/guest-invites"
    await login(client, "doc@example.org", totp_secret=people["doctor_secret"])
    headers = {"x-csrf-token": await csrf_token(client)}
    refused = await client.post(api, json={"label": "Interpreter"}, headers=headers)
    assert refused.status_code == 422 and "role" in refused.text
    created = await client.post(api, json={"role": "interpreter", "label": "Portuguese interpreter"}, headers=headers)
    assert created.status_code == 201, created.text
    made = created.json()
    assert (made["role"], made["status"], made["display_name"]) == ("interpreter", "open", None)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL,
                                 headers={"origin": TEST_BASE_URL}) as guest:
        form = await guest.get("/consultations/guest")
        assert form.status_code == 200 and "Your name, as the others in the call will see it" in form.text
        token = secret_of(made["link"])
        blank = await guest.post("/consultations/guest", data={"token": token, "name": "  "})
        assert blank.status_code == 422 and "The name is required." in blank.text
        long = await guest.post("/consultations/guest", data={"token": token, "name": "A" * 61})
        assert long.status_code == 422 and "longer than 60 characters" in long.text
        two_lines = await guest.post("/consultations/guest", data={"token": token, "name": "Ana\nSilva"})
        assert two_lines.status_code == 422 and "plain text on one line" in two_lines.text
        joined = await guest.post("/consultations/guest", data={"token": token, "name": "Ana Silva"})
        assert joined.status_code == 303 and joined.headers["location"] == "/consultations/guest/call"
        assert "httponly" in joined.headers["set-cookie"].lower()

        call = await guest.get("/consultations/guest/call")
        assert call.status_code == 200
        html = call.text
        assert "joining as Ana Silva (interpreter)" in html and "Dr Dora" in html
        assert 'data-role="guest"' in html and f'data-user="guest:{made["id"]}"' in html
        for private in ("Pat Patient", 'id="notes"', 'id="guest-form"', 'id="recordings"'):
            assert private not in html, private
        # no appointment page, chat history, notes, recordings or links through the API
        assert (await guest.get(f"/consultations/{appointment.id}")).status_code == 303
        for path in ("chat", "notes", "recordings", "guest-invites"):
            assert (await guest.get(f"/api/v1/consultations/{appointment.id}/{path}")).status_code == 401, path

        # a second browser cannot reuse the link, nor enter the call without the seat
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL,
                                     headers={"origin": TEST_BASE_URL}) as second:
            reused = await second.post("/consultations/guest", data={"token": token, "name": "Eve"})
            assert reused.status_code == 422 and "invalid, used, revoked or expired" in reused.text
            assert (await second.get("/consultations/guest/call")).status_code == 404

        listed = (await client.get(api)).json()["invites"]
        assert [(i["id"], i["status"], i["display_name"]) for i in listed] == [(made["id"], "used", "Ana Silva")]
        revoked = await client.delete(f"{api}/{made['id']}", headers=headers)
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        gone = await guest.get("/consultations/guest/call")
        assert gone.status_code == 404 and "holds no guest seat" in gone.text

    # the patient neither lists nor makes links
    await login(client, "pat@example.org")
    headers = {"x-csrf-token": await csrf_token(client)}
    assert (await client.get(api)).status_code == 403
    assert (await client.post(api, json={"role": "family", "label": "Me"}, headers=headers)).status_code == 403
    assert (await client.delete(f"{api}/{made['id']}", headers=headers)).status_code == 403


async def test_a_signed_in_user_opens_a_link_as_a_guest_too(app, client, people):
    appointment = await make_appointment(people["doctor"], people["patient"])
    invite, link = await guests.do_create_guest_invite(
        app.state.settings, people["doctor"], appointment.id,
        GuestInviteCreate(role=GuestRole.CARER, label="Home carer"), at=service.now())
    await login(client, "cal@example.org")
    page = await client.get("/consultations/guest")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    joined = await client.post("/consultations/guest", data={"token": secret_of(link), "name": "Cal",
                                                             "csrf_token": csrf})
    assert joined.status_code == 303, joined.text
    call = await client.get("/consultations/guest/call")
    assert call.status_code == 200 and "joining as Cal (carer)" in call.text and "Pat Patient" not in call.text
    assert (await client.get(f"/consultations/{appointment.id}")).status_code == 404
    assert (await client.get(f"/api/v1/consultations/{appointment.id}/chat")).status_code == 404
    assert (await GuestInvite.get(id=invite.id)).guest_id == people["carer"].id
