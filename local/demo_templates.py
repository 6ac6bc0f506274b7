"""The demo's canned replies and brand-voice rules, as a supervisor would PUT them (issue 12)."""
from __future__ import annotations

from typing import Any, Dict

DEMO_TEMPLATES: Dict[str, Dict[str, Any]] = {
    "lost-bag": {
        "team": "support", "name": "Lost bag", "tags": ["baggage"],
        "bodies": {"en": "Hi {customer.name|there}, we're sorry your bag hasn't arrived. We're tracing it now and "
                         "will DM you the moment we know more.\n- {agent.initials}",
                   "ja": "{customer.name}、お手荷物が届かずご迷惑をおかけし申し訳ございません。ただいまお調べしており、"
                         "分かり次第DMでご連絡いたします。"},
    },
    "back-soon": {
        "team": "support", "name": "Back when we open", "tags": ["hours"],
        "bodies": {"en": "Thanks {customer.name|for your message}! Our team is back {team.next_open} and will pick "
                         "this up first thing.",
                   "ja": "{customer.name}、ご連絡ありがとうございます。{team.next_open}以降、担当者よりご返信いたします。"},
    },
}
DEMO_BRAND_VOICE: Dict[str, Any] = {
    "banned": [{"phrase": "calm down", "severity": "block", "note": "acknowledge the feeling instead"},
               {"phrase": "unfortunately", "severity": "warn"},
               {"phrase": "仕方ない", "severity": "block"}],
    "personal_data": {"order_pattern": "SA-[0-9]{8}"},
}


def seed_templates() -> None:
    from chalicelib.bootstrap import deps
    from chalicelib.domain.brand_voice import validate_rules
    from chalicelib.domain.templates import validate_template

    store, now = deps().templates, deps().now()
    if store is None:
        return
    for template_id, body in DEMO_TEMPLATES.items():
        store.put_template(validate_template(template_id, body, author="demo", at=now))
    store.put_brand_voice(validate_rules(DEMO_BRAND_VOICE), author="demo", at=now)
    print(f"templates: {', '.join(DEMO_TEMPLATES)} for support (GET /templates; reply with "
          '{"template_id": "lost-bag"}); brand voice: banned phrases, no personal data in public replies '
          "(POST /cases/<id>/replies/check)", flush=True)
