"""The patrol guard's API: accept a dispatch, report arrival, report with photos, clear the site.

Each action is a command to the dispatcher in the guard's name (their staff
id), so the dispatcher's rules apply: only the dispatched guard may act, in
order (accept before arriving ...), and each action's time is in the
incident log, from which the response-time clocks are read. A photo is kept
in ``guard_photos`` (append-only: evidence) and the incident log carries its
SHA-256, so a photo shown later can be proved to be the one sent.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from arc.auth.models import Permission
from arc.console.api import submit
from arc.console.deps import Principal, allowed, config_connection, connection, console
from arc.db import Connection
from arc.dispatch.lifecycle import Kind
from arc.guards import service as staff

router = APIRouter(prefix="/api/guard")

MAX_PHOTOS = 6
MAX_PHOTO_BYTES = 8 * 1024 * 1024  # a phone's full-size JPEG; more is not a photo
_PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic"})
_ACTIONS = {"accept": Kind.GUARD_ACCEPT, "arrive": Kind.GUARD_ARRIVE, "clear": Kind.RESOLVE}


# Before "/{action}": routes match in order, and "report" is no action of that route.
@router.post("/incidents/{incident_id}/report")
async def report(
    incident_id: uuid.UUID,
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.GUARD_ACT))],
    text: Annotated[str, Form(min_length=1, max_length=2000)],
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """Report from the site: what the guard found, with photos (their hashes go into the log)."""
    files = photos or []
    if len(files) > MAX_PHOTOS:
        raise HTTPException(413, f"at most {MAX_PHOTOS} photos per report")
    kept: list[tuple[str, bytes, str]] = []
    for photo in files:
        content_type = (photo.content_type or "").lower()
        if content_type not in _PHOTO_TYPES:
            raise HTTPException(415, f"{photo.filename}: not a photo ({content_type or 'no type'})")
        data = await photo.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise HTTPException(413, f"{photo.filename}: larger than {MAX_PHOTO_BYTES} bytes")
        kept.append((hashlib.sha256(data).hexdigest(), data, content_type))
    # The photos are stored before the log names them: a hash in the log always
    # has its photo (a photo without a log entry is harmless and is kept).
    for digest, data, content_type in kept:
        await conn.execute(
            "INSERT INTO guard_photos (sha256, incident_id, content_type, content, uploaded_by)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING",
            digest,
            incident_id,
            content_type,
            data,
            who.actor,
        )
    details = {"text": text, "photos": [digest for digest, _, _ in kept]}
    return await submit(console(request), conn, who, incident_id, Kind.GUARD_REPORT, details)


@router.post("/incidents/{incident_id}/{action}")
async def act(
    incident_id: uuid.UUID,
    action: Literal["accept", "arrive", "clear"],
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    who: Annotated[Principal, Depends(allowed(Permission.GUARD_ACT))],
) -> Response:
    """Accept the dispatch, report arrival on site, or clear the site."""
    return await submit(console(request), conn, who, incident_id, _ACTIONS[action], {})


class PositionIn(BaseModel):
    """Where the guard's phone is (WGS-84 degrees, as the browser reports it)."""

    model_config = ConfigDict(extra="forbid")

    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)


@router.post("/position")
async def position(
    body: PositionIn,
    request: Request,
    # The permission first: a refusal must not depend on whether the pool exists.
    who: Annotated[Principal, Depends(allowed(Permission.GUARD_ACT))],
    conn: Annotated[Connection, Depends(config_connection)],
) -> Response:
    """The guard's last known position, which the guard proposal ranks by (nearest first)."""
    if who.user.staff_id is None:
        raise HTTPException(
            409, "this login is linked to no member of staff (arc user add --staff)"
        )
    known = await staff.report_position(
        conn=conn,
        staff_id=who.user.staff_id,
        latitude=body.latitude,
        longitude=body.longitude,
        at=console(request).clock(),
    )
    if not known:
        raise HTTPException(409, "the member of staff of this login is not active")
    return JSONResponse({"ok": True})
