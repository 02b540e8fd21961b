"""Errors of the webhook endpoints."""

from app.core.errors import Conflict, NotFound


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    title = "Webhook not found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"
    title = "Delivery not found"


class WebhookDisabled(Conflict):
    code = "webhook_disabled"
    title = "Webhook disabled"
