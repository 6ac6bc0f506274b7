"""Sarcastic praise and complaints with a thank-you are complaints; genuine thanks stays praise.

The lists SARCASTIC_*, MIXED_* and GENUINE_* were written before the sarcasm handling
was changed and were never used to tune it (the rules were built from the class of
problem: a positive word next to a service failure); SEEN says which cases were in view.
The cases in the last two tests show the shapes the handling reads and were written
with it. Brands are made up.
"""
from __future__ import annotations

import pytest

from chalicelib.triage import classify

# Praise words said about a failure: the customer means the opposite.
SARCASTIC_EN = [
    "@RiverRail thanks for cancelling the last train home, really thoughtful",
    "@QuickShip great job delivering my parcel to the wrong city",
    "@CloudPhone wow, another outage. Amazing service as always",
    "@FreshBox thanks for forgetting the main course again, well done",
    "@BankOne love how your app logs me out every five minutes",
    "@GameHub nice, the patch deleted my inventory. Good job guys",
    "@CityBus perfect, the bus drove right past me in the rain. Thanks a lot",
    "@Streamly thank you for charging me after I cancelled, so kind",
    "@AirNova brilliant, delayed again and no one at the desk",
    "@ParcelGo awesome, my package is lost for the second time",
    "@PizzaNow great, cold pizza again. Keep it up",
    "@NetCo so glad I pay for fast internet that drops every hour",
]
SARCASTIC_JA = [
    "@HoshiRail さすが、今日も10分遅れ。期待を裏切らないね",
    "@MiraiMobile ありがとう、また電波が途切れました",
    "@NagiShop 素晴らしいですね、また違う商品が届きました",
    "@KumaBank 最高です、またアプリが落ちました",
    "@PonDeli さすがの遅さですね。1時間半待ちました",
    "@HoshiGames 神運営ありがとう、またデータが消えました",
    "@SakuraBus お見事です。また時刻表より早く出発してました",
    "@MiraiMobile 素敵な対応をありがとう。おかげで解約を決めました",
    "@NagiShop 今回も安定の遅配。ありがとうございます",
    "@KumaBank 親切にどうも。また窓口で30分待たされました",
]
# A thank-you, then the problem that is still there.
MIXED_EN = [
    "@ShopCo thanks for the quick reply, but my refund still hasn't arrived",
    "@CloudPhone appreciate the apology, the bill is still wrong",
    "@BankOne thank you for your help. The app still crashes every time I open my statement",
]
MIXED_JA = [
    "@NagiShop ご対応ありがとうございます。ただ、まだ商品が届いていません",
    "@PonDeli 配達員さんには感謝してます。でも料理が冷めきってました",
    "@HoshiGames いつも楽しく遊んでますが、昨日からログインできません",
]
# Genuine thanks that mention a problem being solved: must stay positive.
GENUINE_EN = [
    "@RiverRail thanks for holding the train for us, great job",
    "@QuickShip thanks for finding my lost parcel, you're the best",
    "@BankOne great job on the new app, so much faster",
    "@FreshBox thank you for the refund, really appreciated",
    "@CityBus well done on fixing the timetable, the 9 is finally on time",
]
GENUINE_JA = [
    "@HoshiRail さすがの対応でした。忘れ物をすぐに見つけてくださってありがとうございます",
    "@MiraiMobile ありがとうございます、おかげで電波がつながるようになりました",
    "@PonDeli 今日もまた美味しかったです。ありがとう",
    "@KumaBank 素晴らしい対応でした。また利用します",
    "@SakuraBus また乗りたいです。運転手さんありがとう",
]
# In view while building: the examples in the issue, and one held-out case that was looked
# at while the closing-"though" rule was written (so it no longer counts as held out).
SEEN = [
    ("en", "@SkyPort thanks for losing my bag, great job"),
    ("en", "@SkyPort great, another delay, well done"),
    ("ja", "@SkyPort さすが、また遅延ですね"),
    ("ja", "@SkyPort ありがとう、また壊れました"),
    ("en", "@AirNova the crew were lovely, thank you. My suitcase is still missing though"),
]
# Shares of the held-out lists that come out right, measured when the handling was built
# (after: sarcastic EN 9/12, JA 7/10, mixed EN 3/3, JA 2/3; before it: 4/12, 6/10, 3/3,
# 2/3), minus a margin of one case. The misses are vocabulary the lexicons lack ("logs me out",
# "drove right past", "データが消えました"), not the shape of the sentence.
HELD_OUT_FLOORS = {"sarcastic_en": 8 / 12, "sarcastic_ja": 6 / 10, "mixed_en": 2 / 3, "mixed_ja": 1 / 3}


def triage(text, lang):
    return classify({"text": text, "lang": lang, "platform": "x", "kind": "mention"})


def is_complaint(result):
    return result.category == "complaint" and result.case


def share(texts, lang, check):
    return sum(1 for text in texts if check(triage(text, lang))) / len(texts)


@pytest.mark.parametrize("lang, text", SEEN)
def test_the_issue_examples_are_complaints(lang, text):
    result = triage(text, lang)
    assert result.sentiment == "negative", result.why
    assert is_complaint(result), result.why


@pytest.mark.parametrize("name, texts, lang", [("sarcastic_en", SARCASTIC_EN, "en"),
                                               ("sarcastic_ja", SARCASTIC_JA, "ja")])
def test_held_out_sarcasm_is_read_as_a_complaint(name, texts, lang):
    assert share(texts, lang, lambda r: r.sentiment == "negative" and is_complaint(r)) >= HELD_OUT_FLOORS[name]


@pytest.mark.parametrize("name, texts, lang", [("mixed_en", MIXED_EN, "en"), ("mixed_ja", MIXED_JA, "ja")])
def test_held_out_complaints_with_a_thank_you_stay_complaints(name, texts, lang):
    assert share(texts, lang, is_complaint) >= HELD_OUT_FLOORS[name]


@pytest.mark.parametrize("lang, text", [("en", t) for t in GENUINE_EN] + [("ja", t) for t in GENUINE_JA])
def test_genuine_thanks_is_not_mistaken_for_sarcasm(lang, text):
    result = triage(text, lang)
    assert result.sentiment == "positive", result.why
    assert result.category != "complaint" and not any("(sarcastic)" in reason for reason in result.why)


def test_sarcasm_says_why():
    result = triage("@SkyPort thanks for losing my bag, great job", "en")
    assert any("(sarcastic)" in reason for reason in result.why)
    assert "acknowledge" not in result.tags


@pytest.mark.parametrize("text, lang", [
    # Thanks for a helping act, with the old problem named: gratitude.
    ("@SkyPort thanks for finding my lost bag, great job", "en"),
    # Ironic words, but the problem was solved.
    ("@SkyPort great job fixing the outage so fast", "en"),
    # A worry that went away is relief, not a failure.
    ("@SkyPort 丁寧に説明してくださって、不安がなくなりました。感謝しています", "ja"),
    # A grievance told first, then さすが about the fix.
    ("@SkyPort 遅延で困ったけど、さすがです、すぐ振替してくれた", "ja"),
])
def test_solved_problems_keep_their_praise(text, lang):
    assert triage(text, lang).sentiment == "positive"


@pytest.mark.parametrize("text, lang", [
    # A closing thank-you after a grievance is a sign-off.
    ("@SkyPort 電話窓口、40分待たされたあげく切れました。ありがとうございました", "ja"),
    # "thanks for <an act the lexicon does not know>" read from the rest of the post.
    ("@SkyPort thanks for doubling my bill without telling me, really appreciate it", "en"),
    # "X. Y though": the closing sentence is the point.
    ("@SkyPort the driver was polite, thanks. The heating is still broken though", "en"),
])
def test_the_shapes_of_a_complaint_with_a_thank_you(text, lang):
    result = triage(text, lang)
    assert result.sentiment == "negative", result.why
    assert is_complaint(result), result.why
