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
    (gzip.compress(json.dumps({"format": "socialcare-triage-model", "version": 99}).encode()), "version 99"),
])
def test_bad_model_files_are_refused(data, message):
    with pytest.raises(ValueError, match=message):
        load_model(data)


def test_training_is_deterministic(generated_rows):
    assert train_records(generated_rows, SMALL).to_bytes() == train_records(generated_rows, SMALL).to_bytes()
    other_seed = train_records(generated_rows, SMALL._replace(seed=99)).to_bytes()
    assert other_seed != train_records(generated_rows, SMALL).to_bytes()
