"""Doctor applications: the PDF upload's limits, review, who may download, events and emails."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pyotp
import pytest
from fpdf import FPDF

from caretrack.booking.models import DoctorProfile
from caretrack.core.outbox.models import Event
from caretrack.core.roles import Role
from caretrack.mail.models import OutboundEmail
from tests.conftest import base_settings
from tests.helpers import csrf_token, login, make_user


@pytest.fixture
def settings(database_url, tmp_path):
    return base_settings(database_url=database_url, data_dir=tmp_path / "data")


def pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Licence")
    return bytes(pdf.output())


FIELDS = {"licence_number": "GMC1234567", "licence_body": "General Medical Council",
          "licence_expires_on": (date.today() + timedelta(days=400)).isoformat(), "specialty": "Dermatology",
          "languages": "English, French", "biography": "Twenty years of practice in dermatology.",
          "fee_credits": "15"}


async def sign_in(client, role, email):
    secret = pyotp.random_base32()
    user = await make_user(role, email, name=f"{role} person", totp_secret=secret)
    await login(client, email, totp_secret=secret)
    return user, await csrf_token(client, "/doctor" if role == Role.DOCTOR else "/admin")


async def apply(client, token, document: bytes | None, **changes):
    files = {"document": ("licence.pdf", document, "application/pdf")} if document is not None else None
    return await client.post("/doctor/application", data={**FIELDS, **changes, "csrf_token": token}, files=files)


async def test_apply_review_reject_reapply_approve(client, settings):
    doctor, token = await sign_in(client, Role.DOCTOR, "dr@example.org")
    response = await apply(client, token, pdf_bytes())
    assert response.status_code == 303, response.text
    profile = await DoctorProfile.get(user_id=doctor.id)
    assert profile.status == "pending" and profile.languages == "english,french"
    stored = list((Path(settings.data_dir) / "doctor_documents").iterdir())
    assert [p.name for p in stored] == [profile.document_name] and profile.document_name != "licence.pdf"
    assert (await client.get("/doctor/application/document")).headers["content-disposition"].startswith("attachment")
    applied = await Event.get(type="doctor.applied")
    assert json.loads(applied.data)["doctor_id"] == doctor.id

    admin, admin_token = await sign_in(client, Role.ADMIN, "admin@example.org")
    queue = await client.get("/admin/doctors")
    assert "person" in queue.text and f"/admin/doctors/{doctor.id}" in queue.text
    download = await client.get(f"/admin/doctors/{doctor.id}/document")
    assert download.status_code == 200 and download.content.startswith(b"%PDF-")
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["cache-control"] == "no-store"  # a signed-in answer: the middleware's rule
    short = await client.post(f"/admin/doctors/{doctor.id}",
                              data={"decision": "reject", "reason": "", "csrf_token": admin_token})
    assert short.status_code == 422
    rejected = await client.post(f"/admin/doctors/{doctor.id}", data={
        "decision": "reject", "reason": "The licence scan is unreadable.", "csrf_token": admin_token})
    assert rejected.status_code == 200
    email = await OutboundEmail.filter(to_address=doctor.email).order_by("-id").first()
    assert "not approved" in email.subject and "unreadable" in email.text_body

    await sign_in(client, Role.DOCTOR, "dr2@example.org")
    # a second doctor may not download the first one's document
    assert (await client.get(f"/admin/doctors/{doctor.id}/document")).status_code == 403


async def test_upload_limits_and_content_checks(client, settings, now):
    doctor, token = await sign_in(client, Role.DOCTOR, "dr@example.org")
    too_big = await apply(client, token, b"%PDF-1.4\n" + b"0" * (6 * 1024 * 1024))
    assert too_big.status_code == 413
    not_pdf = await apply(client, token, b"GIF89a not a pdf at all")
    assert not_pdf.status_code == 422 and "not a PDF" in not_pdf.text
    fake_pdf = await apply(client, token, b"%PDF-1.7\nthis is not really a pdf")
    assert fake_pdf.status_code == 422 and "cannot be read" in fake_pdf.text
    expired = await apply(client, token, pdf_bytes(), licence_expires_on=(now.date() - timedelta(days=1)).isoformat())
    assert expired.status_code == 422 and "expired" in expired.text
    assert await DoctorProfile.filter(user_id=doctor.id).count() == 0
    directory = Path(settings.data_dir) / "doctor_documents"
    assert not directory.exists() or list(directory.iterdir()) == []


async def test_a_lying_content_length_is_caught_while_streaming(app, settings):
    """The 413 comes from counting streamed bytes, not only from the header."""
    from starlette.requests import Request

    from caretrack.core.errors import PayloadTooLarge
    from caretrack.http.bodies import read_limited

    chunks = [b"x" * 1024] * 10
    sent = []

    async def receive():
        if chunks:
            sent.append(1)
            return {"type": "http.request", "body": chunks.pop(), "more_body": bool(chunks)}
        return {"type": "http.request", "body": b"", "more_body": False}

    request = Request({"type": "http", "method": "POST", "headers": [(b"content-length", b"10")]}, receive)
    with pytest.raises(PayloadTooLarge):
        await read_limited(request, 4 * 1024)
    assert len(sent) == 5  # stopped reading once past the limit


async def test_approval_over_the_api_emits_and_emails(client, settings):
    doctor = await make_user(Role.DOCTOR, "dr@example.org", name="Dr Api")
    from caretrack.booking import applications

    await applications.do_apply(settings, doctor, applications.ApplicationInput(**FIELDS), pdf_bytes())
    admin, _ = await sign_in(client, Role.ADMIN, "admin@example.org")
    client.headers["x-csrf-token"] = await csrf_token(client, "/admin")
    listed = (await client.get("/api/v1/admin/doctor-applications")).json()["applications"]
    assert [a["doctor_id"] for a in listed] == [doctor.id]
    decided = await client.post(f"/api/v1/admin/doctor-applications/{doctor.id}/decision", json={"approve": True})
    assert decided.json()["status"] == "approved"
    again = await client.post(f"/api/v1/admin/doctor-applications/{doctor.id}/decision", json={"approve": True})
    assert again.status_code == 409
    event = await Event.get(type="doctor.approved")
    assert json.loads(event.data)["status"] == "approved"
    email = await OutboundEmail.filter(to_address=doctor.email).order_by("-id").first()
    assert "approved" in email.subject
