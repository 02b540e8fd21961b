"""/webhooks: subscriptions to events, their delivery log, redelivery."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.auth.deps import require
from app.auth.principal import Principal
from app.core.config import get_settings
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.users.models import Role
from app.webhooks import service
from app.webhooks.schemas import (
    DeliveryPublic,
    WebhookCreate,
    WebhookPublic,
    WebhookWithSecret,
    delivery_public,
    webhook_public,
    webhook_with_secret,
)
from app.webhooks.vocabulary import DeliveryStatus

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

# The county information center, or an API client (for the events of the scopes it holds).
WebhookManager = Annotated[Principal, Depends(require(roles=(Role.county_admin, Role.api_client)))]
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

DELIVERY_DESCRIPTION = """

**What a receiver gets.** Each event is POSTed to the URL as JSON (`Content-Type:
application/json`): `{"id", "type", "occurred_at", "household_id", "village_code", "data"}`
(the `event` of the delivery log). Payloads hold ids, codes and states, never personal data;
read the objects through the API for details. Headers:

* `webhook-id`, `webhook-timestamp`, `webhook-signature`: signed as the
  [Standard Webhooks](https://www.standardwebhooks.com) specification has it, so verify with
  its library (`standardwebhooks` on PyPI and npm, and others):
  `Webhook(secret).verify(raw_body, headers)`. `webhook-signature: v1,<base64>` is
  HMAC-SHA256, keyed with the base64-decoded part of the webhook's `secret` after `whsec_`,
  of the bytes `<webhook-id>.<webhook-timestamp>.` followed by the raw request body; the
  library compares in constant time and refuses a timestamp more than five minutes from your
  clock. `webhook-id` is the event's `id`, the same on every retry.
* `Fieldsync-Event` (the type), `Fieldsync-Event-Id` (the event's `id`: deduplicate on it),
  `Fieldsync-Delivery` (the delivery's id in the log), `Fieldsync-Attempt` (1, 2, …).

**Answer** any 2xx within 10 s; anything else (a redirect too: none is followed), a timeout
or a refused connection is a failure. Failed deliveries are retried with exponential backoff
(10 s, doubling, at most an hour apart, with jitter) for 24 hours, then given up (`dead`).

**At least once, in order per household.** Events are written to an outbox with the change
that causes them, in the same transaction, and sent after it commits: the request that caused
one never waits for it. An event may arrive more than once (deduplicate on its id). A
household's events arrive in the order they happened: one is not sent while an earlier one of
the same household waits for its retry (events of other households go on). `id`s increase in
that order. `sync.batch_received`, which belongs to no household, is not held back.

**Events:** `visit.created` (a new visit), `household.status_changed`, `measure.completed`
(a measure becomes `done`), `household.risk_flagged` (a record write made a risk flag appear:
`income_drop` or `below_monitoring_threshold` after an income snapshot, `indicator_lost`
after a visit; see the household's progress), `sync.batch_received` (per village the batch
touched, with the counts of its results there), `monitoring.case_identified` and
`monitoring.case_cleared` (a monitoring case's county approval: the case, its category, risk
types, status and dates). Only events of households in the webhook's
region that its owner may read are sent, and only of writes after it was created.
`webhook.test` (`data`: `webhook_id`, `requested_by`, `requested_at`) is sent to one webhook
when asked with `POST /webhooks/{id}/test`, subscribed to or not.

**Addresses:** http or https; a host must resolve to public addresses only (checked before
every delivery): no loopback, private or link-local networks.
"""


@router.post(
    "",
    response_model=WebhookWithSecret,
    status_code=201,
    responses={
        201: {
            "headers": {
                "Cache-Control": {
                    "description": "no-store: the body holds a secret",
                    "schema": {"type": "string"},
                },
                "Location": {"description": "The new webhook", "schema": {"type": "string"}},
            }
        },
        **problem_responses(
            401,
            403,
            409,
            422,
            described={
                403: "Not a county admin or an API client, or an event type needs a scope the "
                "token lacks (`insufficient_scope`)",
                409: "Too many active webhooks (`too_many_webhooks`)",
                422: "Invalid input: a refused URL (`url_refused`), or a region not at or below "
                "yours",
            },
        ),
    },
    description="Register a URL to receive events; its signing secret is in this answer "
    "only." + DELIVERY_DESCRIPTION,
)
async def create_webhook(
    session: SessionDep, principal: WebhookManager, data: WebhookCreate, response: Response
) -> WebhookWithSecret:
    """Subscribe a URL to events of your region."""
    webhook = await service.create_webhook(
        session, principal=principal, data=data, settings=get_settings()
    )
    response.headers.update(_NO_STORE | {"Location": f"/api/v1/webhooks/{webhook.id}"})
    return webhook_with_secret(webhook)


@router.get("", response_model=Page[WebhookPublic], responses=problem_responses(401, 403, 422))
async def list_webhooks(
    session: SessionDep, principal: WebhookManager, page: PageDep
) -> Page[WebhookPublic]:
    """Your webhooks (a county admin: the county's, its API clients' too), oldest first.

    Without their secrets.
    """
    webhooks, cursor = await service.list_webhooks(session, principal=principal, page=page)
    return Page(items=[webhook_public(w) for w in webhooks], next_cursor=cursor)


@router.get(
    "/{webhook_id}", response_model=WebhookPublic, responses=problem_responses(401, 403, 404, 422)
)
async def get_webhook(
    session: SessionDep, principal: WebhookManager, webhook_id: uuid.UUID
) -> WebhookPublic:
    """One webhook (without its secret)."""
    return webhook_public(
        await service.get_webhook(session, principal=principal, webhook_id=webhook_id)
    )


@router.post(
    "/{webhook_id}/disable",
    response_model=WebhookPublic,
    responses=problem_responses(401, 403, 404, 422),
)
async def disable_webhook(
    session: SessionDep, principal: WebhookManager, webhook_id: uuid.UUID
) -> WebhookPublic:
    """Disable a webhook for good: no more events, nothing more is sent.

    Its delivery log stays readable. Disabling it again changes nothing.
    """
    return webhook_public(
        await service.disable_webhook(session, principal=principal, webhook_id=webhook_id)
    )


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryPublic],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_webhook_deliveries(
    session: SessionDep,
    principal: WebhookManager,
    webhook_id: uuid.UUID,
    page: PageDep,
    status: Annotated[
        DeliveryStatus | None, Query(description="Only deliveries in this state.")
    ] = None,
) -> Page[DeliveryPublic]:
    """The delivery log of a webhook, newest event first.

    Each delivery with its event (the body sent), its state (`pending`, `failed` and retried
    at `next_attempt_at`, `delivered`, or `dead` once its retry period ended), the attempts
    made and the receiver's last answer.
    """
    rows, cursor = await service.list_deliveries(
        session, principal=principal, webhook_id=webhook_id, status=status, page=page
    )
    return Page(items=[delivery_public(d, e) for d, e in rows], next_cursor=cursor)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryPublic,
    status_code=202,
    responses=problem_responses(
        401, 403, 404, 409, 422, described={409: "The webhook is disabled (`webhook_disabled`)"}
    ),
)
async def redeliver_webhook_delivery(
    session: SessionDep, principal: WebhookManager, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryPublic:
    """Send a delivery's event again, whatever its state (202: it is queued).

    It is sent as soon as no earlier event of its household waits for this webhook, and
    retried for another 24 hours if it fails. Its event id is unchanged: a receiver that
    processed it already can recognise it.
    """
    delivery, event = await service.redeliver(
        session,
        principal=principal,
        webhook_id=webhook_id,
        delivery_id=delivery_id,
        settings=get_settings(),
    )
    return delivery_public(delivery, event)


@router.post(
    "/{webhook_id}/test",
    response_model=DeliveryPublic,
    status_code=202,
    responses=problem_responses(
        401, 403, 404, 409, 422, described={409: "The webhook is disabled (`webhook_disabled`)"}
    ),
)
async def send_webhook_test_event(
    session: SessionDep, principal: WebhookManager, webhook_id: uuid.UUID
) -> DeliveryPublic:
    """Queue a `webhook.test` event to this webhook only (202); watch its delivery in the log.

    It is sent like any event (signed, retried for 24 hours if it fails), whatever event
    types the webhook subscribes to. The answer is its delivery, as
    `GET /webhooks/{webhook_id}/deliveries` lists it.
    """
    delivery, event = await service.send_test_event(
        session, principal=principal, webhook_id=webhook_id, settings=get_settings()
    )
    return delivery_public(delivery, event)
