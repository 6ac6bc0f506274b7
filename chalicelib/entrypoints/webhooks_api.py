"""Meta's webhook: the subscription handshake, and signed deliveries.

The signature is checked over the raw bytes before anything else; a forged
or unsigned request enqueues nothing and costs no AWS client beyond the secret.
"""
from __future__ import annotations

import json
from typing import Mapping

from chalice import Blueprint, Response

from chalicelib.adapters.platforms.meta_webhooks import (
    answer_handshake,
    failed_sends,
    normalize_delivery,
    signature_is_valid,
)
from chalicelib.bootstrap import deps
from chalicelib.domain.errors import BadRequest, Unauthorized
from chalicelib.entrypoints.http import api_errors
from chalicelib.observability import count, logger
from chalicelib.services.listen import push

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
        raw = raw.encode("utf-8")
    if not signature_is_valid(raw, request.headers.get("x-hub-signature-256"),
                              deps().secrets().get("meta_app_secret", "")):
        raise Unauthorized("X-Hub-Signature-256 is missing or does not match the body; nothing was accepted")
    try:
        payload = json.loads(raw)
        mentions, skipped = normalize_delivery(payload, brand_ids=push.brand_accounts(deps()))
    except ValueError as err:
        raise BadRequest(f"not a Meta webhook delivery: {err}") from None
    received = push.accept_delivery(mentions, skipped, failed_sends(payload), deps())
    count("WebhookMentions", received["enqueued"])
    return received
