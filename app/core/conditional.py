"""Strong ETags from row versions, and the If-Match rules for writes (RFC 9110 §13.1.1)."""

from __future__ import annotations

from app.core.errors import PreconditionFailed, PreconditionRequired


def etag(version: int) -> str:
    return f'"v{version}"'


def require_if_match(if_match: str | None, *, version: int) -> None:
    """428 without If-Match, 412 when none of its tags is the current one (strong comparison)."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(
            "send If-Match with the ETag of the version you edited (GET it first)",
            current_etag=etag(version),
        )
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        # "*" would match any version and defeat the lost-update check these writes rely on.
        raise PreconditionRequired(
            "If-Match: * is not accepted here; send the ETag of the version you edited",
            current_etag=etag(version),
        )
    if etag(version) in tags:
        return
    raise PreconditionFailed(
        "the record changed since you read it; GET it again and reapply your change",
        current_etag=etag(version),
    )
