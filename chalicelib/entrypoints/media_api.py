"""Media and reply options over HTTP (issue 12): a case's inbound media, and what can be sent outside the platform's window.

    GET /cases/{case_id}/media/{media_id}   a short-lived URL for one of the case's files (``GET /cases/{id}``
                                            lists them under ``media``): {"url", "expires_at", "source", ...}
    GET /cases/{case_id}/reply-options      per mode, what may be sent now and until when: Messenger's and
                                            Instagram's 24 hours, the HUMAN_AGENT tag up to 7 days, WhatsApp's
                                            24-hour window then the account's approved templates

Replies themselves go through ``POST /cases/{id}/replies`` (cases_api), which takes ``attachment``,
``tag`` and ``whatsapp_template``. Services are imported inside the handlers (cold start).
"""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.bootstrap import deps
from chalicelib.entrypoints.http import api_errors, current_agent

media_api = Blueprint(__name__)


@media_api.route("/cases/{case_id}/media/{media_id}", methods=["GET"])
@api_errors
def get_case_media(case_id, media_id):
    from chalicelib.services import inbox, media

    case = inbox.load_case(current_agent(media_api.current_request), case_id, deps())
    return media.media_link(case, media_id, deps())


@media_api.route("/cases/{case_id}/reply-options", methods=["GET"])
@api_errors
def get_reply_options(case_id):
    from chalicelib.services import inbox, reply_windows

    case = inbox.load_case(current_agent(media_api.current_request), case_id, deps())
    return reply_windows.reply_options(case, deps())
