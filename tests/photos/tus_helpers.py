"""tus 1.0.0 requests as a phone's client sends them: metadata, creation, PATCHes."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import httpx

UPLOADS = "/api/v1/uploads"
TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {"Content-Type": "application/offset+octet-stream"}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def metadata(**values: Any) -> str:
    """tus `Upload-Metadata`: `key base64(value)` pairs, comma-separated, in the order given.

    None leaves a key out; an empty string sends the key alone (tus allows a key without value).
    """
    pairs = []
    for key, value in values.items():
        if value is None:
            continue
        encoded = base64.b64encode(str(value).encode()).decode()
        pairs.append(f"{key} {encoded}" if encoded else key)
    return ",".join(pairs)


async def create(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    *,
    household_id: uuid.UUID | str | None = None,
    body: bytes | None = None,
    **meta: Any,
) -> httpx.Response:
    """POST a new upload of `data` (its length and sha256 announced; `meta` adds to or, with
    None, removes from the metadata). With `body`, creation-with-upload sends those bytes too."""
    values: dict[str, Any] = {"sha256": sha256_hex(data), "household_id": household_id}
    values.update(meta)
    request_headers = TUS | headers | {"Upload-Length": str(len(data))}
    encoded = metadata(**values)
    if encoded:
        request_headers["Upload-Metadata"] = encoded
    if body is None:
        return await client.post(UPLOADS, headers=request_headers)
    return await client.post(UPLOADS, headers=request_headers | CHUNK, content=body)


async def patch(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    offset: int,
    body: bytes,
    **extra: str,
) -> httpx.Response:
    """PATCH `body` at `offset`; `extra` are more headers, `_` standing for `-`
    (`upload_checksum="sha1 …"`, `content_type=…` to replace the tus one)."""
    request_headers = TUS | CHUNK | headers | {"Upload-Offset": str(offset)}
    request_headers |= {name.replace("_", "-"): value for name, value in extra.items()}
    if "content-type" in request_headers and "Content-Type" in request_headers:
        del request_headers["Content-Type"]
    return await client.patch(url, headers=request_headers, content=body)


async def head(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    return await client.head(url, headers=TUS | headers)


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    *,
    household_id: uuid.UUID | str | None = None,
    **meta: Any,
) -> httpx.Response:
    """Create an upload and send the whole file in one PATCH; the PATCH's answer (or the POST's,
    if the server already held the photo or refused the upload)."""
    created = await create(client, headers, data, household_id=household_id, **meta)
    if created.status_code != 201 or created.headers["Upload-Offset"] == str(len(data)):
        return created
    return await patch(client, created.headers["Location"], headers, 0, data)
