"""socialcare: the table of contents.

The pipeline's handlers (schedule and queues) are here; the HTTP routes are
Blueprints by area in ``chalicelib/entrypoints``. Each handler parses its
event, calls a service, and shapes the answer. Stage settings come from
environment variables (.chalice/config.json); boto3 and platform clients load
lazily, on first use.
"""
from typing import TYPE_CHECKING

from chalice import Cron, Rate

from chalicelib.adapters import metering
from chalicelib.bootstrap import deps, fetchers
from chalicelib.config import settings
from chalicelib.domain.metering import CASES_OPENED, MENTIONS_PROCESSED
from chalicelib.entrypoints.admin_api import admin_api
from chalicelib.entrypoints.cases_api import cases_api
from chalicelib.entrypoints.costs_api import costs_api
from chalicelib.entrypoints.csat_api import csat_api
from chalicelib.entrypoints.customers_api import customers_api
from chalicelib.entrypoints.function_url import SocialcareChalice
from chalicelib.entrypoints.lazy import lazy_module
from chalicelib.entrypoints.media_api import media_api
from chalicelib.entrypoints.openapi_api import openapi_api
from chalicelib.entrypoints.privacy_api import privacy_api
from chalicelib.entrypoints.qa_api import qa_api
from chalicelib.entrypoints.reports_api import measure_batch, reports_api
from chalicelib.entrypoints.service_levels_api import service_levels_api
from chalicelib.entrypoints.sqs import process_sqs_batch
from chalicelib.entrypoints.templates_api import templates_api
from chalicelib.entrypoints.triage_api import triage_api
from chalicelib.entrypoints.web_api import web_api
from chalicelib.entrypoints.webhooks_api import webhooks_api
from chalicelib.observability import count, flush_metrics, logger, start_invocation

if TYPE_CHECKING:
    from chalicelib.services import assign, intake, reply, sla
    from chalicelib.services.listen import poll
else:  # loaded by the first handler that uses one: each function's cold start pays for its own (entrypoints/lazy.py)
    assign, intake, reply, sla = (lazy_module(f"chalicelib.services.{name}") for name in ("assign", "intake", "reply", "sla"))
    poll = lazy_module("chalicelib.services.listen.poll")

app = SocialcareChalice(app_name="socialcare")  # Chalice, also answering the function URL (entrypoints/function_url.py)
config = settings()
app.register_blueprint(cases_api)      # GET /cases, GET/PATCH /cases/{id}, POST /cases/{id}/replies
app.register_blueprint(admin_api)      # /admin/triage-rules, /sources, /admin/sources, /admin/agents/{id}
app.register_blueprint(webhooks_api)   # GET/POST /webhooks/meta
app.register_blueprint(privacy_api)    # GET /admin/customers/{key}/export, POST /admin/customers/{key}/erase
app.register_blueprint(reports_api)    # GET /reports/kpis
app.register_blueprint(costs_api)      # GET /reports/costs
app.register_blueprint(csat_api)       # GET/PUT /admin/csat
app.register_blueprint(qa_api)         # GET/PUT /admin/qa/rubric, /admin/qa/sampling, GET /qa/queue, POST /qa/reviews
app.register_blueprint(service_levels_api)  # /admin/teams/{team}/hours|away, /admin/sla, /notifications, /me,
                                            # /me/presence, /teams/{team}/waiting
app.register_blueprint(customers_api)  # /customers, /customers/{id}, merge/unmerge, /admin/customer-fields
app.register_blueprint(templates_api)  # /admin/templates, /admin/brand-voice, POST /cases/{id}/replies/check
app.register_blueprint(media_api)      # /cases/{id}/media/{media_id}, GET /cases/{id}/reply-options
app.register_blueprint(triage_api)     # /mentions review, promote/confirm, /admin/triage-models, corrections export
app.register_blueprint(openapi_api)    # GET /openapi.json
app.register_blueprint(web_api)        # GET / (the web inbox) and /assets/{name}


metering.install_log_counter(logger.registered_handler)


@app.middleware("all")
def observe(event, get_response):
    """A clean log context per invocation; metrics flushed once per invocation; what it used, metered."""
    start_invocation(config.stage)
    with metering.invocation(**metering.describe(event, config.stage), store=lambda: deps().costs):
        try:
            return get_response(event)
        finally:
            flush_metrics()


@app.route("/health", methods=["GET"])
def health():
    return {"status": "ok", "stage": config.stage}


# ---- listen ---------------------------------------------------------------
@app.schedule(Rate(1, unit=Rate.MINUTES), name="fetch_mentions")
def fetch_mentions(event):
    results = poll.poll_all(deps(), fetchers(), log=logger)
    count("MentionsFetched", sum(r.get("fetched", 0) for r in results))
    logger.info("fetch run", extra={"sources": results})
    return results


# ---- triage, assign, send (SQS) ---------------------------------------------------
@app.on_sqs_message(queue=config.mentions_queue, batch_size=10, name="triage_mentions", maximum_concurrency=5)
def triage_mentions(event):
    return process_sqs_batch(event.to_dict(), lambda body, _count: intake.triage_message(body, deps()),
                             dead_letter=deps().dead_letters["mentions"], queue=deps().mentions_queue,
                             origin=config.mentions_queue, metric="MentionsTriaged",
                             report_item_failures=config.report_batch_item_failures,
                             metered={"triaged": MENTIONS_PROCESSED, "no_case": MENTIONS_PROCESSED})


@app.on_sqs_message(queue=config.triaged_queue, batch_size=10, name="assign_cases", maximum_concurrency=2)
def assign_cases(event):
    return process_sqs_batch(event.to_dict(), lambda body, _count: assign.assign_message(body, deps()),
                             dead_letter=deps().dead_letters["triaged"], queue=deps().triaged_queue,
                             origin=config.triaged_queue, metric="CasesAssigned",
                             report_item_failures=config.report_batch_item_failures, metered={"opened": CASES_OPENED})


@app.on_sqs_message(queue=config.outbound_queue, batch_size=5, name="send_replies", maximum_concurrency=2)
def send_replies(event):
    return process_sqs_batch(event.to_dict(),
                             lambda body, count: reply.deliver_reply(body, deps(), receive_count=count),
                             dead_letter=deps().dead_letters["outbound"], queue=deps().outbound_queue,
                             origin=config.outbound_queue, metric="RepliesProcessed",
                             report_item_failures=config.report_batch_item_failures)


# ---- service levels ---------------------------------------------------------
@app.schedule(Rate(1, unit=Rate.MINUTES), name="sla_tick")
def sla_tick(event):
    """Fire the SLA warnings and breaches that came due, end shifts that ended, hand out waiting cases."""
    result = sla.run_tick(deps(), log=logger)
    logger.info("sla tick", extra={"result": result})
    return result


# ---- measure (the cases table's stream) -------------------------------------
@app.on_dynamodb_record(stream_arn=config.cases_stream_arn, name="measure_changes", batch_size=100)
def measure_changes(event):
    """KPI aggregates from every stored change of a case; a failed change is delivered again."""
    return measure_batch(event.to_dict()["Records"], deps(), report_item_failures=config.report_batch_item_failures)


# ---- credentials ------------------------------------------------------------
@app.schedule(Rate(30, unit=Rate.MINUTES), name="refresh_x_token")
def refresh_x_token(event):
    """Refresh the X user token before it expires and store the rotated pair in the secret."""
    from chalicelib.services import credentials

    result = credentials.refresh_x_token(deps(), deps().credentials, deps().x_tokens, log=logger)
    logger.info("x token run", extra={"result": result})
    return result


# ---- triage learning (issue 14) ---------------------------------------------
@app.schedule(Cron(15, 0, "*", "*", "?", "*"), name="triage_daily")
def triage_daily(event):
    """Yesterday's negative no-case mentions to the supervisors (once a day); the weekly retraining."""
    from chalicelib.services import triage_review

    result = triage_review.run_daily(deps())
    logger.info("triage daily run", extra={"result": result})
    return result
