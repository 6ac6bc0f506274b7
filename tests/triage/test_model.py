"""The learned model: file format, coverage, and how classify uses it."""
from __future__ import annotations

import gzip
import json

import pytest

from chalicelib.triage import Model, classify, load_model
from chalicelib.triage.learn import train_records
from chalicelib.triage.model import TrainingOptions

SMALL = TrainingOptions(bits=14, epochs=4)


@pytest.fixture
def model(generated_rows):
    return train_records(generated_rows, SMALL)


def test_model_loads_from_bytes_path_gzip_and_plain_json(model, tmp_path):
    data = model.to_bytes()
    assert data[:2] == b"\x1f\x8b"
    plain = tmp_path / "model.json"
    model.save(str(plain))
    json.loads(plain.read_text(encoding="utf-8"))
    for source in (data, bytearray(data), str(plain), plain):
        loaded = load_model(source)
        assert isinstance(loaded, Model)
        assert loaded.to_dict() == model.to_dict()


def test_loaded_model_predicts_like_the_trained_one(model):
    loaded = load_model(model.to_bytes())
    for text in ("@shop my phone never arrived", "@shop do you sell the lamp in blue?", "@shop great sofa!"):
        assert classify({"text": text}, model=model).to_dict() == classify({"text": text}, model=loaded).to_dict()


def test_category_head_is_used_where_it_knows_the_answer(model):
    assert model.category is not None
    result = classify({"text": "@shop the jacket team was amazing"}, model=model)
    assert result.category == "praise"
    assert any(r.startswith("model:") for r in result.why)


def test_rules_still_decide_noise_and_languages_the_model_never_saw(model):
    noise = classify({"text": "RT @shop: big sale today", "kind": "mention"}, model=model)
    assert noise.category == "noise"
    ja = classify({"text": "届いた商品が壊れていました。返金してください"}, model=model)
    assert ja.lang == "ja" and ja.sentiment == "negative"
    assert not any(r.startswith("model:") for r in ja.why)


def test_sentiment_only_training_has_no_category_head(generated_rows):
    rows = [{"text": r["text"], "label": {"sentiment": r["label"]["sentiment"]}} for r in generated_rows]
    model = train_records(rows, SMALL)
    assert model.category is None
    assert classify({"text": "@shop my lamp never arrived"}, model=model).category == "complaint"


@pytest.mark.parametrize("data, message", [
    (b"not a model", "not a triage model"),
    (json.dumps({"format": "other"}).encode(), "format marker"),
    # mtime=0: the same bytes in every process (test workers must collect the same parameters).
    (gzip.compress(json.dumps({"format": "socialcare-triage-model", "version": 99}).encode(), mtime=0), "version 99"),
], ids=["not-json", "other-format", "newer-version"])
def test_bad_model_files_are_refused(data, message):
    with pytest.raises(ValueError, match=message):
        load_model(data)


def test_training_is_deterministic(generated_rows):
    assert train_records(generated_rows, SMALL).to_bytes() == train_records(generated_rows, SMALL).to_bytes()
    other_seed = train_records(generated_rows, SMALL._replace(seed=99)).to_bytes()
    assert other_seed != train_records(generated_rows, SMALL).to_bytes()


def test_sum_in_order_adds_left_to_right():
    # What the model has always computed, on every Python: 1e16 + 1.0 rounds back to 1e16.
    from chalicelib.triage.model import _sum_in_order

    assert _sum_in_order([1e16, 1.0, -1e16]) == 0.0
    assert _sum_in_order([1.0, -1e16], 1e16) == 0.0
    assert _sum_in_order([0.1] * 10) == 0.9999999999999999


def _plain_probabilities(head, units, extra, spaced):
    """Head.probabilities as plain loops, in the order that defines the model's arithmetic."""
    import math
    import zlib

    from chalicelib.triage.model import _softmax, run_features, word_features

    def summed(feats):
        vector = [0.0] * len(head.labels)
        for feat in feats:
            row = head.weights.get(zlib.crc32(feat.encode("utf-8")) & head.mask)
            for k, w in enumerate(row or ()):
                vector[k] += w
        return vector

    totals, count = [0.0] * len(head.labels), 0
    for unit in units:
        feats = word_features(unit) if spaced else run_features(unit)
        count += len(feats)
        for k, w in enumerate(summed(feats)):
            totals[k] += w
    scale = 1.0 / math.sqrt(count) if count else 0.0
    logits = [b + scale * t for b, t in zip(head.bias, totals)]
    for feat, value in extra:
        for k, w in enumerate(summed([feat])):
            logits[k] += w * value
    return _softmax(logits)


@pytest.mark.parametrize("size", [2, 3, 4, 7])
def test_head_probabilities_are_the_plain_loops_to_the_last_bit(size):
    import random

    from chalicelib.triage.model import _Head

    rng = random.Random(size)
    mask = (1 << 8) - 1  # a small table: most features find weights
    weights = {i: tuple(rng.uniform(-2, 2) for _ in range(size)) for i in range(0, mask + 1, 2)}

    def new_head():
        return _Head([f"l{k}" for k in range(size)], [rng.uniform(-1, 1) for _ in range(size)], [0.0] * size,
                     weights, mask)

    head = new_head()
    words = ["great", "not_great", "flight", "000", "delayed", "!", "?", "x", "cancelled", "thanks", "a"]
    extra = [("rsnegative", 1.0), ("rN", 0.7333333333333333), ("rP", 0.0), ("rn2", 1.0), ("rp0", 1.0),
             ("rq", 1.0), ("rN", -0.0)]
    for _ in range(50):
        units = rng.choices(words, k=rng.randint(0, 12))
        ext = rng.sample(extra, rng.randint(0, len(extra)))
        for __ in range(2):  # computing the cache, then reading it
            assert head.probabilities(units, ext, True) == _plain_probabilities(head, units, ext, True)
    # The same head: "!" and "x", read as words above, are runs of Japanese text here,
    # with other features (a mixed-language model sees both).
    runs = ["遅延", "ありがとう", "!", "最悪", "x"]
    assert head.probabilities(runs, extra, False) == _plain_probabilities(head, runs, extra, False)
