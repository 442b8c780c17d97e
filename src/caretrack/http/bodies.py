"""Reading request bodies with a size limit: 413 as soon as the body is known to be too
large, first by Content-Length, then by counting bytes as they stream (a lying or absent
header), so an oversized body is never read whole."""

from __future__ import annotations

from starlette.requests import Request

from caretrack.core.errors import PayloadTooLarge


def _describe(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


async def read_limited(request: Request, limit: int, what: str = "The request body") -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"{what} is larger than {_describe(limit)}.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"{what} is larger than {_describe(limit)}.")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # later readers (request.form(), request.json()) parse what was counted
    return body
