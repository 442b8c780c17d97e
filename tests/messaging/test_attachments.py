"""Attachments: PDF, PNG and JPEG judged by content, a size limit, stored under a generated
name in the data directory, downloaded only by the thread's members as an attachment."""

from __future__ import annotations

import struct
import zlib

from fpdf import FPDF

from caretrack.core import crypto
from caretrack.messaging import uploads
from caretrack.messaging.models import Attachment
from tests.messaging.test_api import care_thread


def pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Blood test results")
    return bytes(pdf.output())


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = zlib.compress(b"\x00\xff\x00\x00")
    return (uploads.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


async def post_files(client, thread_id, files, text="See attached"):
    return await client.post(f"/messages/{thread_id}", data={"text": text, "csrf_token": client.csrf}, files=files)


async def test_members_download_what_was_attached_and_outsiders_get_404(clients, cast, app):
    patient, doctor, thread_id = await care_thread(clients, cast)
    pdf, png = pdf_bytes(), png_bytes()
    sent = await post_files(patient, thread_id, [("attachments", ("results (March).pdf", pdf, "application/pdf")),
                                                 ("attachments", ("../../rash.PNG", png, "image/png"))])
    assert sent.status_code == 303, sent.text[:500]
    page = (await doctor.get(f"/api/v1/messages/threads/{thread_id}")).json()
    [message] = page["messages"]
    assert message["text"] == "See attached"
    assert [(a["name"], a["content_type"], a["size_bytes"]) for a in message["attachments"]] == [
        ("results _March_.pdf", "application/pdf", len(pdf)), ("rash.png", "image/png", len(png))]
    stored = await Attachment.all().order_by("id")
    for a in stored:  # encrypted at rest, with the PHI key, for that file alone
        raw = uploads.path_of(app.state.settings, a.file_name).read_bytes()
        assert raw.startswith(crypto.FILE_MAGIC) and pdf not in raw and png not in raw
        assert b"".join(crypto.decrypt_file(uploads.path_of(app.state.settings, a.file_name),
                                            uploads.file_context(a.file_name))) in (pdf, png)
    assert all("results" not in a.file_name and "results" not in a.original_name for a in stored)  # name sealed
    for client in (doctor, patient):
        download = await client.get(message["attachments"][0]["download_url"])
        assert download.status_code == 200
        assert download.content == pdf
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"].startswith("attachment;")
        assert "results%20_March_.pdf" in download.headers["content-disposition"] or \
            'filename="results _March_.pdf"' in download.headers["content-disposition"]
        assert download.headers["x-content-type-options"] == "nosniff"
    for outsider in (await clients.of(cast.stranger), await clients.of(cast.admin)):
        assert (await outsider.get(message["attachments"][0]["download_url"])).status_code == 404
    # an attachment id under another thread's id is no way in either
    other_patient = await clients.of(cast.stranger)
    assert (await other_patient.get(f"/messages/{thread_id}/attachments/{stored[0].id}")).status_code == 404


async def test_a_file_that_is_not_pdf_png_or_jpeg_is_refused_by_its_content(clients, cast):
    patient, doctor, thread_id = await care_thread(clients, cast)
    fake = await post_files(patient, thread_id,
                            [("attachments", ("report.pdf", b"MZ\x90\x00 not a pdf", "application/pdf"))])
    assert fake.status_code == 422
    assert "is not a PDF, PNG or JPEG file (judged by its content)" in fake.text
    broken = await post_files(patient, thread_id, [("attachments", ("x.pdf", b"%PDF-1.4 garbage", "application/pdf"))])
    assert broken.status_code == 422 and "cannot be read" in broken.text
    four = await post_files(patient, thread_id,
                            [("attachments", (f"{n}.png", png_bytes(), "image/png")) for n in range(4)])
    assert four.status_code == 422 and "Attach at most 3 files" in four.text
    assert (await doctor.get("/api/v1/messages/unread")).json() == {"unread": 0}  # nothing was sent
    assert await Attachment.all().count() == 0


async def test_a_file_over_the_size_limit_is_refused(clients, cast, app):
    patient, _, thread_id = await care_thread(clients, cast)
    big = b"%PDF-1.4\n" + b"0" * uploads.MAX_ATTACHMENT_BYTES
    response = await post_files(patient, thread_id, [("attachments", ("big.pdf", big, "application/pdf"))])
    assert response.status_code == 413
    assert "larger than 5 MiB" in response.text
    directory = uploads.attachment_dir(app.state.settings)
    assert not directory.exists() or list(directory.iterdir()) == []


CRAFTED_PDFS = {  # each once made pypdf raise something other than its read error (a 500)
    "huge xref": b"%PDF-1.4\nxref\n0 999999999\ntrailer<</Size 999999999/Root 1 0 R>>\nstartxref\n9\n%%EOF",
    "overflowing startxref": b"%PDF-1.4\n1 0 obj<<>>endobj\nstartxref\n99999999999999999999\n%%EOF",
}


async def test_crafted_pdfs_are_refused_not_a_server_error(clients, cast):
    patient, doctor, thread_id = await care_thread(clients, cast)
    for label, data in CRAFTED_PDFS.items():
        response = await post_files(patient, thread_id, [("attachments", ("x.pdf", data, "application/pdf"))])
        assert response.status_code == 422 and "cannot be read" in response.text, label
    assert await Attachment.all().count() == 0


async def test_a_pdf_with_more_pages_than_anyone_uploads_is_refused():
    import pytest

    from caretrack.core import documents

    pdf = FPDF()
    for _ in range(documents.MAX_PAGES + 1):
        pdf.add_page()
    with pytest.raises(documents.UnreadablePdf, match=f"at most {documents.MAX_PAGES}"):
        await documents.pdf_pages(bytes(pdf.output()))
