"""/vocabulary: every code of the public contract with its Chinese label."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from app.auth.deps import CurrentPrincipal
from app.core.errors import problem_responses
from app.vocabulary import service
from app.vocabulary.schemas import Vocabulary

router = APIRouter(prefix="/vocabulary", tags=["vocabulary"])

_HEADERS = {
    "ETag": {"description": "Revalidate with If-None-Match", "schema": {"type": "string"}},
    "Cache-Control": {"description": "private, max-age=3600", "schema": {"type": "string"}},
}


@router.get(
    "",
    response_model=Vocabulary,
    responses={
        **problem_responses(401),
        200: {"headers": _HEADERS},
        304: {"description": "Not modified (If-None-Match)"},
    },
)
async def get_vocabulary(
    principal: CurrentPrincipal,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Vocabulary | Response:
    """Every code the API sends or accepts, with its Chinese label, by vocabulary.

    For apps to show labels instead of codes (a status `lifted` as 已脱贫(享受政策)): household
    origin, status, attribute and causes; members; field records; monitoring cases, their
    procedure, clearing reasons and department alerts; data-quality issue kinds; webhook event
    types; roles. Any signed-in caller may read it, whatever the token's scopes: codes and
    labels are no personal data. The document changes only with a release: cache it and
    revalidate with `If-None-Match` (304 while unchanged).
    """
    tag = service.vocabulary_etag()
    headers = {"ETag": tag, "Cache-Control": "private, max-age=3600"}
    if if_none_match is not None and tag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return service.get_vocabulary()
