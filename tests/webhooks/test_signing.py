"""The signature header: what a receiver checks, and what it must refuse."""

from __future__ import annotations

import hashlib
import hmac

from app.webhooks.signing import new_secret, signature_header, verify

SECRET = "whsec_test-secret"
BODY = b'{"id":1,"type":"visit.created","data":{"mode":"in_home"}}'
NOW = 1_795_412_345


def test_the_header_is_hmac_sha256_over_timestamp_dot_body() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify(SECRET, BODY, header, now=NOW)


def test_a_changed_body_another_secret_or_a_stale_timestamp_fail() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)

    assert not verify(SECRET, BODY + b" ", header, now=NOW)
    assert not verify("whsec_other", BODY, header, now=NOW)
    assert not verify(SECRET, BODY, header, now=NOW + 301)
    assert not verify(SECRET, BODY, header, now=NOW - 301)
    assert verify(SECRET, BODY, header, now=NOW + 299)
    assert verify(SECRET, BODY, header, now=NOW + 3600, tolerance_seconds=3601)


def test_malformed_headers_fail() -> None:
    good = signature_header(SECRET, BODY, timestamp=NOW)
    v1 = good.split("v1=")[1]
    for header in (
        None,
        "",
        "garbage",
        f"v1={v1}",  # no timestamp
        f"t={NOW}",  # no signature
        f"t=１２３,v1={v1}",  # non-ASCII digits
        f"t={NOW},v1={v1[:-1]}",
        f"t={NOW},v0={v1}",
    ):
        assert not verify(SECRET, BODY, header, now=NOW), header


def test_unknown_parts_are_ignored_and_any_v1_may_match() -> None:
    good = signature_header(SECRET, BODY, timestamp=NOW)
    t, v1 = good.split(",")
    assert verify(SECRET, BODY, f"{t},v1={'0' * 64},{v1},v2=whatever", now=NOW)


def test_secrets_are_random_and_recognisable() -> None:
    one, two = new_secret(), new_secret()
    assert one != two
    assert one.startswith("whsec_") and len(one) >= 6 + 43
