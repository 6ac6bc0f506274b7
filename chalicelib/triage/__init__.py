"""Triage: sentiment, category, tags, priority and case for one mention.

    from chalicelib.triage import classify, load_default_rules, load_model
    result = classify(mention.to_dict())            # default rules, no model
    result.to_dict()  # {"sentiment", "sentiment_score", "category", "tags", "priority",
                      #  "case", "case_reason", "lang", "why", "escalate", "team"}

Pure Python, standard library only, no I/O at import: the default rule set and
the lexicons are compiled on first use and cached for the life of the process.
"""
from .engine import TriageResult, classify
from .model import Model, load_model
from .rules import RuleError, RuleSet, load_default_rules

__all__ = ["classify", "TriageResult", "RuleSet", "RuleError", "load_default_rules", "load_model", "Model"]
