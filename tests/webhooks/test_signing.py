"""The signature headers, as the Standard Webhooks library checks them on a receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.webhooks.signing import new_secret, secret_key, signature_headers, standard_secret

BODY = '{"id":1,"type":"visit.created","data":{"village":"大王庄"}}'.encode()


def test_the_library_verifies_what_we_sign_and_refuses_anything_changed() -> None:
    secret = new_secret()
    headers = signature_headers(secret, message_id="48213", body=BODY)

    assert Webhook(secret).verify(BODY, headers) == {
        "id": 1,
        "type": "visit.created",
        "data": {"village": "大王庄"},
    }
    for body, signed in (
        (BODY + b" ", headers),
        (BODY.replace(b"1", b"2", 1), headers),
        (BODY, {**headers, "webhook-id": "48214"}),
        (BODY, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body, signed)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_the_signature_is_base64_hmac_sha256_of_id_timestamp_body() -> None:
    key = secrets.token_bytes(32)
    secret = "whsec_" + base64.b64encode(key).decode()
    now = int(time.time())

    headers = signature_headers(secret, message_id="7", body=BODY, timestamp=now)

    digest = hmac.new(key, f"7.{now}.".encode() + BODY, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "7",
        "webhook-timestamp": str(now),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def test_a_stale_or_future_timestamp_is_refused_by_the_library() -> None:
    secret = new_secret()
    now = int(time.time())
    for moment in (now - 301, now + 301):
        headers = signature_headers(secret, message_id="1", body=BODY, timestamp=moment)
        with pytest.raises(WebhookVerificationError, match=r"too (old|new)"):
            Webhook(secret).verify(BODY, headers)


def test_new_secrets_are_standard_base64_of_256_random_bits() -> None:
    one, two = new_secret(), new_secret()

    assert one != two
    assert one.startswith("whsec_")
    assert len(base64.b64decode(one.removeprefix("whsec_"), validate=True)) == 32
    assert standard_secret(one) == one


def test_an_older_url_safe_secret_keeps_its_key_spelt_the_standard_way() -> None:
    # Before the switch: "whsec_" + secrets.token_urlsafe(32), with - or _ and no padding.
    key = bytes.fromhex("fb" * 16 + "ff" * 16)  # encodes with - and _
    legacy = "whsec_" + base64.urlsafe_b64encode(key).decode().rstrip("=")
    assert "-" in legacy and "_" in legacy

    assert secret_key(legacy) == key
    converted = standard_secret(legacy)
    assert converted == "whsec_" + base64.b64encode(key).decode()
    headers = signature_headers(legacy, message_id="9", body=BODY)
    assert Webhook(converted).verify(BODY, headers)
