"""Supporting documents: a size limit (the page route reads the body with one), a
real PDF checked by content, stored under a generated name in settings.data_dir."""

from __future__ import annotations

import secrets
from pathlib import Path

from caretrack.core import documents
from caretrack.core.errors import ValidationError
from caretrack.core.settings import Settings

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
FORM_OVERHEAD_BYTES = 64 * 1024  # the other fields of an application form
DOCUMENT_DIR = "doctor_documents"


async def check_pdf(data: bytes) -> int:
    """The page count of a real PDF, or a 422 that says what is wrong."""
    if not data:
        raise ValidationError("The supporting document is empty; attach your licence as a PDF.")
    try:
        return await documents.pdf_pages(data)
    except documents.UnreadablePdf as exc:
        raise ValidationError(f"The supporting document cannot be accepted: {exc}.") from None


def document_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / DOCUMENT_DIR


async def store_document(settings: Settings, data: bytes) -> str:
    """Write the checked PDF under a generated name; returns that name (never the user's)."""
    await check_pdf(data)
    directory = document_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.pdf"
    (directory / name).write_bytes(data)
    return name


def document_path(settings: Settings, name: str) -> Path:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValidationError("Bad document name.")
    return document_dir(settings) / name


def remove_document(settings: Settings, name: str | None) -> None:
    if name:
        try:
            document_path(settings, name).unlink(missing_ok=True)
        except (OSError, ValidationError):
            pass
