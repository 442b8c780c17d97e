"""Consultation types over the API, on SQLite and PostgreSQL: who may define them, the limits
of each field (a 422 naming the problem), order, and consent versions."""

from __future__ import annotations

import json

import pyotp

from caretrack.core.audit.models import AuditEntry
from caretrack.core.roles import Role
from caretrack.intake.models import ConsentVersion
from tests.helpers import csrf_token, login, make_user


async def signed_in(client, role: Role, email: str, name: str = "Someone"):
    secret = pyotp.random_base32() if role in (Role.DOCTOR, Role.ADMIN) else None
    user = await make_user(role, email, name=name, totp_secret=secret)
    client.headers.pop("x-csrf-token", None)
    await login(client, email, totp_secret=secret)
    client.headers["x-csrf-token"] = await csrf_token(client, "/account")
    return user


async def test_a_doctor_defines_types_questions_and_consents_and_others_cannot_see_them(client):
    other = await make_user(Role.DOCTOR, "other@example.org", name="Dr Other")
    doctor = await signed_in(client, Role.DOCTOR, "dr@example.org", "Dr Dora")
    created = await client.post("/api/v1/consultation-types", json={"name": "  First visit ", "description": "45 min"})
    assert created.status_code == 201, created.text
    kind = created.json()
    assert (kind["name"], kind["doctor_id"], kind["questions"], kind["consents"]) == ("First visit", doctor.id, [], [])
    url = f"/api/v1/consultation-types/{kind['id']}"

    second = await client.post(f"{url}/questions", json={"kind": "yes_no", "prompt": "Any allergies?"})
    first = await client.post(f"{url}/questions", json={"kind": "short_text", "prompt": "Why are you coming?",
                                                          "position": 0, "max_length": 120})
    third = await client.post(f"{url}/questions", json={"kind": "choice", "prompt": "Pain level",
                                                          "choices": ["none", "some", "a lot"], "required": False,
                                                          "position": 5})
    assert [r.status_code for r in (second, first, third)] == [201, 201, 201]
    questions = third.json()["questions"]
    assert [(q["prompt"], q["kind"], q["required"], q["max_length"]) for q in questions] == [
        ("Why are you coming?", "short_text", True, 120), ("Any allergies?", "yes_no", True, None),
        ("Pain level", "choice", False, None)]
    long_default = await client.post(f"{url}/questions", json={"kind": "long_text", "prompt": "Tell us more"})
    assert long_default.json()["questions"][-1]["max_length"] == 2000

    # Every problem is a 422 that says what is wrong.
    problems = {
        "choice without choices": ({"kind": "choice", "prompt": "Pick", "choices": ["only"]}, "at least 2 choices"),
        "repeated choice": ({"kind": "choice", "prompt": "Pick", "choices": ["a", "a"]}, "must be different"),
        "choices on text": ({"kind": "short_text", "prompt": "Name", "choices": ["a", "b"]}, "Only single-choice"),
        "too long a limit": ({"kind": "short_text", "prompt": "Name", "max_length": 900}, "at most 500"),
        "blank prompt": ({"kind": "yes_no", "prompt": "   "}, "question is required"),
        "unknown kind": ({"kind": "essay", "prompt": "Write"}, "short_text"),
    }
    for label, (body, words) in problems.items():
        refused = await client.post(f"{url}/questions", json=body)
        assert refused.status_code == 422 and words in refused.text, (label, refused.text)
    assert (await client.post("/api/v1/consultation-types", json={"name": ""})).status_code == 422
    assert "doctor_id" in (await client.post("/api/v1/consultation-types",
                                             json={"name": "X", "doctor_id": other.id})).text

    question_id = questions[1]["id"]
    changed = await client.put(f"/api/v1/intake-questions/{question_id}",
                               json={"kind": "yes_no", "prompt": "Any allergies to medicines?", "required": False})
    assert changed.status_code == 200 and changed.json()["questions"][1]["prompt"] == "Any allergies to medicines?"
    assert (await client.delete(f"/api/v1/intake-questions/{questions[2]['id']}")).status_code == 204

    consent = await client.post(f"{url}/consents", json={"title": "Video consultation", "text": "I agree to be seen "
                                                                                                "by video."})
    assert consent.status_code == 201
    document = consent.json()["consents"][0]
    assert (document["version"], document["title"]) == (1, "Video consultation")
    same = await client.put(f"/api/v1/consent-documents/{document['id']}",
                            json={"title": "Video consultation", "text": "I agree to be seen by video."})
    assert same.json()["consents"][0]["version"] == 1  # the same wording is not a new version
    reworded = await client.put(f"/api/v1/consent-documents/{document['id']}",
                                json={"title": "Video consultation", "text": "I agree to be seen and heard by video."})
    assert reworded.json()["consents"][0]["version"] == 2
    assert [(v.version, v.text) for v in await ConsentVersion.filter(document_id=document["id"]).order_by("version")] \
        == [(1, "I agree to be seen by video."), (2, "I agree to be seen and heard by video.")]
    assert (await client.post(f"{url}/consents", json={"title": "T", "text": ""})).status_code == 422

    actions = [e.action for e in await AuditEntry.filter(action__startswith="intake.").order_by("id")]
    assert actions[:2] == ["intake.type_created", "intake.question_added"]
    assert actions.count("intake.consent_revised") == 1

    # Another doctor, a patient: the type does not exist for them.
    await signed_in(client, Role.DOCTOR, "dr2@example.org", "Dr Two")
    assert (await client.get(url)).status_code == 404
    assert (await client.put(f"/api/v1/intake-questions/{question_id}",
                             json={"kind": "yes_no", "prompt": "Hijacked?"})).status_code == 404
    assert (await client.delete(f"/api/v1/consent-documents/{document['id']}")).status_code == 404
    assert (await client.get("/api/v1/consultation-types")).json() == {"types": []}
    await signed_in(client, Role.PATIENT, "pat@example.org")
    assert (await client.get(url)).status_code == 403
    offered = (await client.get(f"/api/v1/doctors/{doctor.id}/consultation-types")).json()["types"]
    assert [t["name"] for t in offered] == ["First visit"]


async def test_an_admin_defines_types_for_any_doctor_and_archives_them(client):
    doctor = await make_user(Role.DOCTOR, "dr@example.org", name="Dr Dora")
    await signed_in(client, Role.ADMIN, "admin@example.org", "Ann Admin")
    missing = await client.post("/api/v1/consultation-types", json={"name": "Follow-up"})
    assert missing.status_code == 422 and "Choose the doctor" in missing.text
    not_doctor = await client.post("/api/v1/consultation-types", json={"name": "Follow-up", "doctor_id": 999})
    assert not_doctor.status_code == 422 and "no doctor with id 999" in not_doctor.text
    created = await client.post("/api/v1/consultation-types", json={"name": "Follow-up", "doctor_id": doctor.id})
    assert created.status_code == 201 and created.json()["doctor_id"] == doctor.id
    type_id = created.json()["id"]
    listed = (await client.get("/api/v1/consultation-types", params={"doctor_id": doctor.id})).json()["types"]
    assert [t["id"] for t in listed] == [type_id]
    archived = await client.put(f"/api/v1/consultation-types/{type_id}", json={"name": "Follow-up", "archived": True})
    assert archived.json()["archived"] is True
    entry = await AuditEntry.filter(action="intake.type_created").first()
    assert entry is not None and json.loads(entry.detail)["doctor"] == doctor.id
    page = await client.get("/admin/consultation-types", params={"doctor_id": doctor.id})
    assert page.status_code == 200 and "Follow-up" in page.text and "archived" in page.text
    added = await client.post(f"/consultation-types/{type_id}/consents", data={
        "csrf_token": client.headers["x-csrf-token"], "back_doctor_id": str(doctor.id), "title": "Privacy",
        "text": "Kept safe."})
    assert added.status_code == 303 and added.headers["location"] == \
        f"/admin/consultation-types?doctor_id={doctor.id}&done=consent"

    await signed_in(client, Role.PATIENT, "pat@example.org")
    assert (await client.get(f"/api/v1/doctors/{doctor.id}/consultation-types")).json() == {"types": []}


async def test_the_pages_define_a_type_and_show_every_limit(client):
    await signed_in(client, Role.DOCTOR, "dr@example.org", "Dr Dora")
    page = await client.get("/doctor/consultation-types")
    assert page.status_code == 200 and "No consultation types yet" in page.text
    token = client.headers["x-csrf-token"]
    done = await client.post("/consultation-types", data={"csrf_token": token, "name": "First visit"})
    assert done.status_code == 303 and done.headers["location"].startswith("/doctor/consultation-types")
    page = await client.get(done.headers["location"])
    assert "First visit" in page.text and "Saved." in page.text and "short up to 500" in page.text
    type_id = int(page.text.split('data-type="')[1].split('"')[0])
    bad = await client.post(f"/consultation-types/{type_id}/questions",
                            data={"csrf_token": token, "kind": "choice", "prompt": "Pick one", "choices": "only one",
                                  "required": "on"})
    assert bad.status_code == 422 and "at least 2 choices" in bad.text
    good = await client.post(f"/consultation-types/{type_id}/questions",
                             data={"csrf_token": token, "kind": "choice", "prompt": "Pick one", "choices": "a\nb\n",
                                   "required": "on"})
    assert good.status_code == 303
    consent = await client.post(f"/consultation-types/{type_id}/consents",
                                data={"csrf_token": token, "title": "Privacy", "text": "Your data is kept safe."})
    assert consent.status_code == 303
    page = (await client.get("/doctor/consultation-types")).text
    assert "Pick one" in page and "Privacy" in page and "version 1" in page
