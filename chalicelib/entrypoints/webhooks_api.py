"""Meta's webhook: the subscription handshake, and signed deliveries.

The signature is checked over the raw bytes before anything else; a forged
or unsigned request enqueues nothing and costs no AWS client beyond the secret.

A signed body that is not a delivery (too big, not JSON, nested too deep, not
an object) is a 400. Within a delivery, a bad or oversized item is skipped
with its reason and the rest are enqueued: the answer is a 200 with counts,
because Meta retries anything else for hours and the retry would carry the
same item. Only a passing failure of ours (the queue unreachable) is a 5xx,
so that Meta delivers again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from chalice import Blueprint, Response

from chalicelib.adapters.platforms.meta_webhooks import (
    answer_handshake,
    failed_sends,
    normalize_delivery,
    parse_delivery,
    signature_is_valid,
)
from chalicelib.bootstrap import deps
from chalicelib.domain.errors import BadRequest, Unauthorized
from chalicelib.entrypoints.http import api_errors
from chalicelib.entrypoints.lazy import lazy_module
from chalicelib.observability import count, logger

if TYPE_CHECKING:
    from chalicelib.services.listen import push
else:
    push = lazy_module("chalicelib.services.listen.push")

webhooks_api = Blueprint(__name__)


@webhooks_api.route("/webhooks/meta", methods=["GET"])
def meta_webhook_handshake():
    params: Mapping[str, str] = webhooks_api.current_request.query_params or {}
    challenge = answer_handshake(params, deps().secrets().get("meta_verify_token", ""))
    if challenge is None:
        logger.warning("webhook handshake refused: wrong verify token or mode")
        return Response(body={"error": "verify token does not match"}, status_code=403)
    return Response(body=challenge, status_code=200, headers={"Content-Type": "text/plain"})


@webhooks_api.route("/webhooks/meta", methods=["POST"])
@api_errors
def meta_webhook_delivery():
    request = webhooks_api.current_request
    raw = request.raw_body or b""
    if isinstance(raw, str):  # a framework that decoded the body for us; Meta sends UTF-8
        raw = raw.encode("utf-8", "surrogatepass")
    if not signature_is_valid(raw, request.headers.get("x-hub-signature-256"),
                              deps().secrets().get("meta_app_secret", "")):
        raise Unauthorized("X-Hub-Signature-256 is missing or does not match the body; nothing was accepted")
    try:
        payload = parse_delivery(raw)
    except ValueError as err:
        raise BadRequest(f"not a Meta webhook delivery: {err}") from None
    brand_ids = push.brand_accounts(deps())
    try:
        mentions, skipped = normalize_delivery(payload, brand_ids=brand_ids, now=deps().now())
    except ValueError as err:  # its message starts "not a Meta webhook delivery"
        raise BadRequest(str(err)) from None
    received = push.accept_delivery(mentions, skipped, failed_sends(payload), deps())
    count("WebhookMentions", received["enqueued"])
    if received["skipped_count"]:
        count("WebhookItemsSkipped", received["skipped_count"])
        logger.info("webhook items skipped", extra={"skipped_count": received["skipped_count"],
                                                    "first_reasons": received["skipped"][:5]})
    return received
