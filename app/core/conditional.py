"""Strong ETags from row versions, and the If-Match rules for writes (RFC 9110 §13.1.1).

A body that holds texts rendered in the request's language (app/core/i18n.py) is one
representation per language: its ETag is `language_etag(tag)`, so that a cache never
revalidates an English body for a zh-CN request. Bodies without such texts (a household) read
the same in every language and keep one ETag.
"""

from __future__ import annotations

from app.core.errors import PreconditionFailed, PreconditionRequired
from app.core.i18n import DEFAULT_LANGUAGE, Text, current_language


def etag(version: int) -> str:
    return f'"v{version}"'


def language_etag(tag: str) -> str:
    """The strong ETag `tag` of a body rendered in the request's language (English: unchanged)."""
    language = current_language()
    if language == DEFAULT_LANGUAGE:
        return tag
    return tag.removesuffix('"') + f'.{language}"'


def none_match(if_none_match: str | None, tag: str) -> bool:
    """If-None-Match names `tag` (or is "*"): the caller's copy is current (304)."""
    if if_none_match is None:
        return False
    tags = {t.strip() for t in if_none_match.split(",")}
    return tag in tags or "*" in tags


def require_if_match(if_match: str | None, *, version: int) -> None:
    """428 without If-Match, 412 when none of its tags is the current one (strong comparison)."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            Text("send If-Match with the ETag of the version you edited (GET it first)"),
            current_etag=etag(version),
        )
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        # "*" would match any version and defeat the lost-update check these writes rely on.
        raise PreconditionRequired(
            Text("If-Match: * is not accepted here; send the ETag of the version you edited"),
            current_etag=etag(version),
        )
    if etag(version) in tags:
        return
    raise PreconditionFailed(
        Text("the record changed since you read it; GET it again and reapply your change"),
        current_etag=etag(version),
    )
