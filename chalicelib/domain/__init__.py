"""The domain: plain dataclasses and rules. It imports nothing else of socialcare
and makes no AWS or network calls, so every rule here is tested in microseconds."""
