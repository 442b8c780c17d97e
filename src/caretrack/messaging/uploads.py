"""Attachments: the rules licences follow (booking/uploads.py), for PDF, PNG and JPEG: a size
limit, the type read from the content (never from the name or the browser's word), stored
under a generated name in settings.data_dir."""

from __future__ import annotations

import contextlib
import io
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from caretrack.core import crypto, documents
from caretrack.core.errors import PayloadTooLarge, ValidationError
from caretrack.core.settings import Settings

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
MAX_ATTACHMENTS = 3
FORM_OVERHEAD_BYTES = 64 * 1024  # the message text and the form's other fields
ATTACHMENT_DIR = "message_attachments"
EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Upload:
    """A file as the sender gave it: their name for it and its bytes."""

    name: str
    data: bytes


def clean_name(name: str, content_type: str) -> str:
    """The sender's file name, safe to show and to put in Content-Disposition, with the
    extension of its real type."""
    stem = re.sub(r"[^A-Za-z0-9 ._-]+", "_", Path(name or "").name).strip(" ._")[:80] or "attachment"
    stem = re.sub(r"\.(pdf|png|jpe?g)$", "", stem, flags=re.IGNORECASE) or "attachment"
    return f"{stem}.{EXTENSIONS[content_type]}"


async def check_attachment(upload: Upload) -> str:
    """The attachment's real content type (from its bytes), or a 4xx that names the problem."""
    name = (upload.name or "attachment")[:80]
    data = upload.data
    if not data:
        raise ValidationError(f"The attachment '{name}' is empty.")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise PayloadTooLarge(f"The attachment '{name}' is larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB.")
    if data.startswith(b"%PDF-"):
        try:
            await documents.pdf_pages(data)
        except documents.UnreadablePdf as exc:
            raise ValidationError(f"The attachment '{name}' cannot be accepted: {exc}.") from None
        return "application/pdf"
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
        return "image/png"
    if data.startswith(b"\xff\xd8\xff") and data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return "image/jpeg"
    raise ValidationError(f"The attachment '{name}' is not a PDF, PNG or JPEG file (judged by its content); "
                          "attach one of those.")


async def check_attachments(uploads: Sequence[Upload]) -> list[str]:
    if len(uploads) > MAX_ATTACHMENTS:
        raise ValidationError(f"Attach at most {MAX_ATTACHMENTS} files to one message, not {len(uploads)}.")
    return [await check_attachment(upload) for upload in uploads]


def attachment_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / ATTACHMENT_DIR


def file_context(name: str) -> str:
    """What an attachment's file is encrypted for: its own name, so files cannot be swapped."""
    return f"message_attachments.{name}"


def store(settings: Settings, data: bytes, content_type: str) -> str:
    """Write a checked file, encrypted with the PHI key (as recordings are), under a generated
    name; returns that name (never the sender's)."""
    directory = attachment_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{EXTENSIONS[content_type]}"
    crypto.encrypt_stream(io.BytesIO(data), directory / name, file_context(name))
    return name


def path_of(settings: Settings, name: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}\.(pdf|png|jpg)", name or ""):
        raise ValidationError("Bad attachment name.")
    return attachment_dir(settings) / name


def remove(settings: Settings, names: list[str]) -> None:
    """Delete the files of a send that failed; one that cannot be deleted is only an orphan
    under a random name (nothing refers to it), so the send's own error is what is reported."""
    for name in names:
        with contextlib.suppress(OSError, ValidationError):
            path_of(settings, name).unlink(missing_ok=True)
