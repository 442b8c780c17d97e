"""Reading an uploaded PDF far enough to trust it: pypdf counts its pages. Any file a person
can upload is hostile input: every error pypdf (or the parsing under it) can raise means "not
a readable PDF", a document with more pages than anyone uploads is refused, and the parse runs
in a worker thread so one crafted file does not stall every request and call in the process."""

from __future__ import annotations

import asyncio
import io

MAX_PAGES = 500


class UnreadablePdf(Exception):
    """The bytes are not a PDF we can read; the message says why, for the person who sent it."""


def _count_pages(data: bytes) -> int:
    from pypdf import PdfReader  # loaded on first use: most processes never read a PDF

    try:
        pages = len(PdfReader(io.BytesIO(data), strict=False).pages)
    except Exception as exc:  # pypdf's own errors and those of malformed structure alike
        raise UnreadablePdf("it claims to be a PDF but cannot be read; export it again") from exc
    if pages < 1:
        raise UnreadablePdf("it is a PDF with no pages")
    if pages > MAX_PAGES:
        raise UnreadablePdf(f"it has {pages} pages; at most {MAX_PAGES} are accepted")
    return pages


async def pdf_pages(data: bytes) -> int:
    """The number of pages of the PDF `data`, or UnreadablePdf."""
    if not data.startswith(b"%PDF-"):
        raise UnreadablePdf("it is not a PDF (it does not start with %PDF-)")
    return await asyncio.to_thread(_count_pages, data)
