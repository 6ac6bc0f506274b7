"""After `chalice deploy`: turn on ReportBatchItemFailures on the SQS event source mappings.

Chalice cannot set FunctionResponseTypes. This sets it on each queue-fed
function's mappings, then tells the function so (SQS_REPORT_BATCH_ITEM_FAILURES),
in that order: a function that believes its mapping reports item failures when
it does not would lose the failed records, while the reverse only retries a
whole batch. A later plain `chalice deploy` resets the variable (whole-batch
retries, still correct) and `make deploy` sets it again.

Usage: python infra/partial_batch.py --stage prod   (also run by `make deploy`)
"""
from __future__ import annotations

import argparse
from typing import Any, List

APP_NAME = "socialcare"
QUEUE_FUNCTIONS = ("triage_mentions", "assign_cases", "send_replies")
FLAG = "SQS_REPORT_BATCH_ITEM_FAILURES"


def enable(lambda_client: Any, stage: str) -> List[str]:
    """Returns the names of the functions it changed."""
    changed = []
    for name in QUEUE_FUNCTIONS:
        function = f"{APP_NAME}-{stage}-{name}"
        mappings = lambda_client.list_event_source_mappings(FunctionName=function).get("EventSourceMappings", [])
        sqs_mappings = [m for m in mappings if ":sqs:" in m.get("EventSourceArn", "")]
        if not sqs_mappings:
            raise SystemExit(f"{function} has no SQS event source mapping; deploy it with `chalice deploy` first")
        for mapping in sqs_mappings:
            if "ReportBatchItemFailures" not in (mapping.get("FunctionResponseTypes") or []):
                lambda_client.update_event_source_mapping(UUID=mapping["UUID"],
                                                          FunctionResponseTypes=["ReportBatchItemFailures"])
        configuration = lambda_client.get_function_configuration(FunctionName=function)
        variables = dict((configuration.get("Environment") or {}).get("Variables") or {})
        if variables.get(FLAG) != "true":
            variables[FLAG] = "true"
            lambda_client.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
        changed.append(function)
    return changed


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args()
    for function in enable(boto3.client("lambda"), args.stage):
        print(f"{function}: SQS mappings report batch item failures")


if __name__ == "__main__":
    main()
