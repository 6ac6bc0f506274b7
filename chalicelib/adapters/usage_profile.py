"""The usage profile ``bench/cost.py`` measured (``chalicelib/domain/usage_profile.json``), read once per container.

The cost report prices its fixed parts (polling every minute, idle SQS pollers, storage) from it. A
missing or broken file is no reason to refuse a report: the report then shows the fixed costs it
knows without it (the secret, the alarms, the metrics).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Optional

from chalicelib.domain.cost import UsageProfile

SHIPPED = Path(__file__).resolve().parent.parent / "domain" / "usage_profile.json"


@functools.lru_cache(maxsize=1)
def shipped_profile() -> Optional[UsageProfile]:
    try:
        return UsageProfile.from_dict(json.loads(SHIPPED.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
