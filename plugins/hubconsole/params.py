"""Console parameters checked before they reach the database: an id or a page no row can
have, or text with a NUL byte (PostgreSQL can neither store nor compare one), is answered
with a 4xx and the reason, never with the driver's overflow as a 500."""
from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path, Query, Request, status

from hub.store import MAX_ROW_ID, is_row_id

#: A quarantine entry's id in a path (``/quarantine/{qid}``).
EntryId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a quarantine entry id (1 … 2^63-1)")]
#: How many rows a list skips.
Offset = Annotated[int, Query(le=MAX_ROW_ID, description="rows to skip")]


def row_ids(ids: list[int], what: str) -> list[int]:
    """``ids`` sorted and once each; 400 when one of them is no id a row can have."""
    bad = [i for i in ids if not is_row_id(i)]
    if bad:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{bad[0]} is not {what} id (ids are 1 … 2^63-1)")
    return sorted(set(ids))


async def plain_text(request: Request) -> None:
    """Refuse a NUL byte in any query or path parameter (app-wide dependency)."""
    for name, value in [*request.query_params.multi_items(), *request.path_params.items()]:
        if "\x00" in name or "\x00" in str(value):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"parameter {name!r} contains a NUL byte")
