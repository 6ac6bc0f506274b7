"""CSAT over HTTP: how surveys are asked (supervisors). The surveys themselves go out from the
once-a-minute tick and come back as customer messages (services/csat.py); no route is involved.

    GET /admin/csat   the settings in force (the defaults until some are saved), with notes
    PUT /admin/csat   replace them: {"enabled", "delay_minutes", "answer_window_hours", "whatsapp_template"}
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.bootstrap import deps
from chalicelib.domain.agent import Agent
from chalicelib.entrypoints.http import api_errors, current_agent, json_body
from chalicelib.entrypoints.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services import csat, inbox
else:
    csat = lazy_module("chalicelib.services.csat")
    inbox = lazy_module("chalicelib.services.inbox")

csat_api = Blueprint(__name__)


def _supervisor() -> Agent:
    agent = current_agent(csat_api.current_request)
    inbox.require_supervisor(agent)
    return agent


@csat_api.route("/admin/csat", methods=["GET"])
@api_errors
def get_csat_settings():
    _supervisor()
    return csat.settings_view(deps())


@csat_api.route("/admin/csat", methods=["PUT"])
@api_errors
def put_csat_settings():
    agent = _supervisor()
    # Always 200: the defaults apply until settings are saved, so there is nothing to "create".
    return csat.save_settings(agent, json_body(csat_api.current_request), deps())
