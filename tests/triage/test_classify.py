"""Behaviour a support team would notice, one mention at a time."""
from __future__ import annotations

import pytest

from chalicelib.domain.mention import Mention
from chalicelib.triage import RuleSet, TriageResult, classify, load_default_rules

RESULT_KEYS = {"sentiment", "sentiment_score", "category", "tags", "priority", "case", "case_reason", "lang",
               "why", "escalate", "team"}


def mention(text, **extra):
    author = extra.pop("author", {"id": "u1", "handle": "someone", "followers": 120})
    return {"id": "x:1", "platform": extra.pop("platform", "x"), "kind": extra.pop("kind", "mention"),
            "text": text, "author": author, **extra}


def rules_with(**changes) -> RuleSet:
    document = load_default_rules().to_dict()
    document.update(changes)
    return RuleSet.from_dict(document)


def test_english_complaint_without_textbook_words_is_negative_and_opens_a_case():
    result = classify(mention("@AcmeAir 3 hours on hold and still no bag"))
    assert result.sentiment == "negative"
    assert result.sentiment_score < -0.3
    assert result.category == "complaint"
    assert result.case is True
    assert result.lang == "en"
    assert result.priority in ("normal", "high")


def test_japanese_complaint_is_negative_complaint():
    for text in ("@SoraAir_JP 欠航の連絡もなく返金もない。最悪です", "注文した商品が届かない。二度と買わない",
                 "返金して。サイズが全然違う"):
        result = classify(mention(text))
        assert result.lang == "ja", text
        assert result.sentiment == "negative", text
        assert result.category == "complaint", text
        assert result.case is True, text


def test_japanese_praise_and_question():
    praise = classify(mention("@QuickEats_JP 雨の中届けてくれてありがとうございました(^^)"))
    assert (praise.sentiment, praise.category, praise.case) == ("positive", "praise", False)
    question = classify(mention("@SoraAir_JP 国内線でモバイルバッテリーは何個まで持ち込めますか？"))
    assert (question.sentiment, question.category, question.case) == ("neutral", "question", True)


def test_friend_tagged_under_a_post_is_noise_without_a_case():
    result = classify(mention("@jessie_k look at this lol", platform="instagram", kind="comment"))
    assert result.category == "noise"
    assert result.case is False
    assert result.priority == "low"
    ja = classify(mention("@yuki_0312 これ見て！笑", platform="instagram", kind="comment"))
    assert (ja.category, ja.case) == ("noise", False)


def test_retweet_and_spam_are_noise():
    assert classify(mention("RT @ShopNow: Flash sale starts now! Up to 50% off")).category == "noise"
    spam = classify(mention("Follow me for daily crypto signals, 500% gains guaranteed, link in bio"))
    assert (spam.category, spam.case) == ("noise", False)


def test_plain_praise_needs_no_case():
    result = classify(mention("@NetLink shoutout to Priya in support, she was amazing. Thank you!"))
    assert result.sentiment == "positive"
    assert result.category == "praise"
    assert result.case is False
    assert result.case_reason
    # ... but it is worth a like or a thank-you, and is tagged so.
    assert "acknowledge" in result.tags
    asked = classify(mention("@NetLink love the new plan! Does it include roaming?"))
    assert asked.case is True
    assert "acknowledge" not in asked.tags


def test_question_and_sales_lead_are_cases_for_the_right_category():
    question = classify(mention("@ShopNow do you ship to Canada?"))
    assert (question.category, question.sentiment, question.case) == ("question", "neutral", True)
    lead = classify(mention("@ShopNow planning to buy 10 laptops for my team, any bulk discount?"))
    assert lead.category == "sales_lead"
    assert lead.case is True


def test_verified_author_complaining_is_urgent_vip_and_escalated_by_default_rules():
    author = {"id": "42", "handle": "famous", "verified": True, "followers": 300}
    result = classify(mention("@AcmeAir you lost my luggage again. Unacceptable.", author=author))
    assert "vip" in result.tags
    assert result.priority == "urgent"
    assert result.escalate is True
    assert any("vip-negative-escalate" in reason for reason in result.why)


def test_business_verified_type_is_vip_but_a_neutral_question_is_not_urgent():
    author = {"id": "7", "handle": "acme_corp", "verified": False, "verified_type": "business"}
    result = classify(mention("@ShopNow do you ship to Canada?", author=author))
    assert "vip" in result.tags
    assert result.priority == "high"
    assert result.escalate is False


def test_influencer_threshold_comes_from_the_rule_set():
    post = mention("@AcmeAir flight delayed 4 hours, nobody at the gate", author={"id": "9", "followers": 5000})
    assert "influencer" not in classify(post).tags  # default threshold 10000
    low_bar = rules_with(influencer_threshold=1000)
    result = classify(post, rules=low_bar)
    assert "influencer" in result.tags
    assert result.priority == "urgent"


def test_competitor_list_tags_the_author_and_default_rules_open_no_case():
    rules = rules_with(source_tags={"competitor": {"handles": ["@RivalAir"], "ids": []},
                                    "tier1_customer": {"handles": [], "ids": ["x:555"]}})
    rival = classify(mention("@AcmeAir your delays are legendary", author={"id": "1", "handle": "rivalair"}),
                     rules=rules)
    assert "competitor" in rival.tags
    assert rival.case is False
    tier1 = classify(mention("@AcmeAir where is my refund?", author={"id": "555", "handle": "bigco"}),
                     rules=rules)
    assert "tier1_customer" in tier1.tags
    assert tier1.team == "vip"


def test_rule_actions_apply_in_order_and_later_rules_see_earlier_changes():
    rules = RuleSet.from_dict({
        "rules": [
            {"id": "warranty", "when": {"text_matches": r"\bwarrant(y|ies)\b"},
             "then": {"set_category": "product_feedback", "add_tags": ["warranty"]}},
            {"id": "warranty-team", "when": {"category": "product_feedback", "tags": ["warranty"]},
             "then": {"route_team": "hardware", "set_priority": "high", "escalate": True}},
            {"id": "never-on-instagram", "when": {"platform": "instagram"}, "then": {"case": False}},
        ],
    })
    result = classify(mention("Is the warranty on the X200 two years?"), rules=rules)
    assert result.category == "product_feedback"
    assert "warranty" in result.tags
    assert (result.team, result.priority, result.escalate, result.case) == ("hardware", "high", True, True)
    assert [r for r in result.why if r.startswith("rule ")] == [
        "rule warranty: set_category=product_feedback, add_tags=warranty",
        "rule warranty-team: route_team=hardware, set_priority=high, escalate=true"]
    muted = classify(mention("Is the warranty on the X200 two years?", platform="instagram"), rules=rules)
    assert muted.case is False
    assert "never-on-instagram" in muted.case_reason


def test_escalation_by_a_rule_opens_a_case_even_for_praise():
    rules = RuleSet.from_dict({"rules": [{"id": "ceo", "when": {"text_contains": ["ceo"]},
                                          "then": {"escalate": True}}]})
    result = classify(mention("Met your CEO today, lovely person, thanks!"), rules=rules)
    assert result.category == "praise"
    assert (result.escalate, result.case) == (True, True)


def test_safety_and_legal_threats_are_urgent_by_default():
    result = classify(mention("@FeedMeApp I got food poisoning from your order, talking to my lawyer"))
    assert result.priority == "urgent"
    assert result.escalate is True
    assert classify(mention("@QuickEats_JP 食中毒になりました")).priority == "urgent"


def test_lexicon_additions_change_sentiment():
    text = "@GlowCo the new shade is totally bussin"
    assert classify(mention(text)).sentiment == "neutral"
    rules = rules_with(lexicon={"en": {"bussin": 2.5}})
    assert classify(mention(text), rules=rules).sentiment == "positive"


def test_lexicon_additions_can_be_emoji_and_japanese():
    rules = rules_with(lexicon={"en": {"🦄": 2.5}, "ja": {"エモい": 2.5}})
    assert classify(mention("@GlowCo new palette 🦄"), rules=rules).sentiment == "positive"
    assert classify(mention("@LumiereCosme 新作パレット、エモい"), rules=rules).sentiment == "positive"


def test_brand_handles_make_friend_tags_exact_on_x():
    rules = rules_with(brand_handles=["@SoraAir_JP"])
    assert classify(mention("@SoraAir_JP @friend これ見て"), rules=rules).category == "noise"
    assert classify(mention("@friend これ見て"), rules=rules).category == "noise"
    asked = classify(mention("@SoraAir_JP 手荷物は何個まで預けられますか？"), rules=rules)
    assert (asked.category, asked.case) == ("question", True)


def test_posts_in_languages_without_a_lexicon_are_never_dismissed():
    result = classify(mention("这个产品太差了，我要退款"))
    assert result.lang == "zh"
    assert result.case is True


def test_keywords_from_the_rule_set_pick_the_category():
    text = "@AcmeAir what does the FlyPass subscription include?"
    rules = rules_with(keywords={"sales_lead": {"en": ["flypass"]}})
    assert classify(mention(text), rules=rules).category == "sales_lead"


def test_result_shape_and_score_consistency():
    for text in ("great flight, thanks!", "worst airline ever", "do you fly to Oslo?", "", "😡😡", "...."):
        result = classify(mention(text))
        data = result.to_dict()
        assert set(data) == RESULT_KEYS
        assert -1.0 <= data["sentiment_score"] <= 1.0
        if data["sentiment"] == "negative":
            assert data["sentiment_score"] < 0
        if data["sentiment"] == "positive":
            assert data["sentiment_score"] > 0
        assert isinstance(data["why"], list) and data["why"]
        assert data["team"] is None


def test_accepts_a_mention_object_and_its_dict():
    payload = {"platform": "x", "kind": "reply", "platform_id": "99", "text": "@AcmeAir still waiting for my refund",
               "created_at": "2026-11-23T10:00:00Z", "author": {"id": "5", "handle": "pat", "followers": 12}}
    as_object = classify(Mention.from_dict(payload))
    as_dict = classify(Mention.from_dict(payload).to_dict())
    assert isinstance(as_object, TriageResult)
    assert as_object == as_dict
    assert as_object.sentiment == "negative"


def test_language_detection_prefers_the_script_and_uses_the_hint_for_ties():
    assert classify(mention("ありがとう")).lang == "ja"
    assert classify(mention("欠航。返金希望")).lang == "ja"          # kanji only
    assert classify(mention("Thanks a lot!", lang="en")).lang == "en"
    assert classify(mention("Thanks a lot!", lang="ja")).lang == "en"   # no kana: not Japanese
    assert classify(mention("muchas gracias por la ayuda con el vuelo")).lang == "es"


@pytest.mark.parametrize("text", ["not good at all", "no help whatsoever", "wasn't helpful"])
def test_negated_praise_is_negative(text):
    assert classify(mention(text)).sentiment == "negative"


def test_sarcastic_thanks_is_negative_but_thanks_for_a_fix_is_positive():
    assert classify(mention("@AcmeAir thanks for losing my bag")).sentiment == "negative"
    assert classify(mention("@AcmeAir thank you for finding my lost passport!")).sentiment == "positive"


def test_japanese_negation_and_hypothetical():
    assert classify(mention("@LumiereCosme 正直、満足できない仕上がりでした")).sentiment == "negative"
    assert classify(mention("@ShopMart_jp 並び替え機能があったら嬉しいです")).sentiment == "neutral"


@pytest.mark.parametrize("text", [
    "@SoraAir 機内で痴漢にあいました。乗務員に伝えたのに何もしてくれません",   # groped on board
    "@QuickEats_JP 届いたモバイルバッテリーが発火しました",                  # a delivered battery caught fire
    "@SoraAir 隣の席の人から暴行を受けました",
    "@FeedMeApp my son needed his EpiPen after your 'nut-free' meal",
    "@GadgetHub the charger you sold me caught fire on my desk",
    "@SoraAir I was groped by a passenger and the crew did nothing",
])
def test_harassment_assault_fire_and_allergy_emergencies_are_urgent_and_escalated(text):
    result = classify(mention(text))
    assert (result.priority, result.escalate, result.case) == ("urgent", True, True), result.why


def test_praise_that_only_sounds_hot_is_not_a_safety_case():
    result = classify(mention("@SoraAir your new lounge is fire, best coffee in Haneda!"))
    assert result.priority != "urgent" and result.escalate is False
