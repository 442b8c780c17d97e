"""Supporting documents: a size limit (the page route reads the body with one), a
real PDF checked by content, stored under a generated name in settings.data_dir."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from caretrack.core.errors import CareTrackError, ValidationError
from caretrack.core.settings import Settings

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
FORM_OVERHEAD_BYTES = 64 * 1024  # the other fields of an application form
DOCUMENT_DIR = "doctor_documents"


def check_pdf(data: bytes) -> int:
    """The page count of a real PDF, or a 422 that says what is wrong."""
    if not data:
        raise ValidationError("The supporting document is empty; attach your licence as a PDF.")
    if not data.startswith(b"%PDF-"):
        raise ValidationError("The supporting document is not a PDF (it does not start with %PDF-).")
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:  # pragma: no cover - pypdf is a dependency of the booking feature
        raise CareTrackError("PDF checking is unavailable on this server (pypdf is not installed).",
                             code="unavailable", status_code=503) from None
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        pages = len(reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, AttributeError, OSError):
        raise ValidationError("The supporting document claims to be a PDF but cannot be read; export it again.") \
            from None
    if pages < 1:
        raise ValidationError("The supporting document has no pages.")
    return pages


def document_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / DOCUMENT_DIR


def store_document(settings: Settings, data: bytes) -> str:
    """Write the checked PDF under a generated name; returns that name (never the user's)."""
    check_pdf(data)
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
