"""A small learned model: hashed n-grams, multinomial logistic regression.

Pure Python, standard library only, for training and inference.

Features of a post (shared by training and inference, so they cannot drift):

* words, and character 2-5-grams inside each word (fastText-style, with
  ``<`` ``>`` marking the word's ends), so "Cancelled Flightled" and
  "cancelation" still share most of their features;
* (word bigrams were tried and left out: no gain in cross-validation, and
  they doubled the cost of a prediction);
* for Japanese (no spaces), character 1-3-grams of each run of text;
* the rule engine's own verdict and evidence, so the model starts from what
  the lexicon knows and learns the corrections: among them each lexicon term
  found, with the sign it took in context ("not helpful" is "helpful" turned
  negative), which lets the model learn which of the lexicon's words mislead
  on this brand's posts (+0.007 macro-F1 in cross-validation on the dev file).

Feature strings are hashed (CRC-32, stable across processes) into 2**bits
buckets. Inference caches the summed weights per word, which makes the
character n-grams almost free after the first few hundred posts.

Training is multinomial logistic regression by SGD with weight averaging,
class weights (rare classes count more) and a seeded shuffle, so the same
data and options always give the same file. The model file is compact JSON,
gzip-compressed; ``load_model`` accepts a path or the bytes (e.g. from S3).
"""
from __future__ import annotations

import gzip
import io
import json
import math
import os
import zlib
from functools import reduce
from operator import add
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple, Union, cast

from .decide import consistent_score

FORMAT = "socialcare-triage-model"
FORMAT_VERSION = 1
DEFAULT_BITS = 18
# Below this many training posts in a language the model has not learned it;
# the rules decide instead.
MIN_EXAMPLES_PER_LANG = 30
CACHE_LIMIT = 200_000
SENTIMENT_LABELS = ("negative", "neutral", "positive")


class Prediction(NamedTuple):
    sentiment: Optional[str]
    sentiment_score: float
    sentiment_confidence: float
    category: Optional[str]
    category_confidence: float
    category_labels: Tuple[str, ...]


# --- features -------------------------------------------------------------------------

def word_features(word: str) -> List[str]:
    """The unigram and the character n-grams of one word."""
    feats = ["w" + word]
    if len(word) > 1 and word[0].isalpha():
        marked = "<" + word + ">"
        size = len(marked)
        for n in (2, 3, 4, 5):
            if n >= size:
                break
            feats.extend(["c" + marked[i:i + n] for i in range(size - n + 1)])
    return feats


def run_features(run: str) -> List[str]:
    """Character 1-3-grams of a run of unspaced text (Japanese)."""
    feats = []
    size = len(run)
    for n in (1, 2, 3):
        feats.extend(["j" + run[i:i + n] for i in range(size - n + 1)])
    return feats


def unspaced_runs(text: str) -> List[str]:
    """Split unspaced text at punctuation and spaces into runs of letters."""
    runs: List[str] = []
    current: List[str] = []
    for ch in text:
        if ch.isalnum() or ch in "ー々〜~":
            current.append(ch)
        else:
            if current:
                runs.append("".join(current))
                current = []
            if not ch.isspace() and ch not in "、。,.・「」『』()[]【】":
                runs.append(ch)  # emoji, ! and ? are features on their own
    if current:
        runs.append("".join(current))
    return runs


def rule_features(signals: Any, builtin_sentiment: str, builtin_category: Optional[str]) -> List[Tuple[str, float]]:
    """The rule engine's view, as (feature, value) pairs the model can weigh.

    These are not scaled by the post's length like the n-grams: one verdict
    of the lexicon should weigh the same in a short post as in a long one.
    """
    negative, positive = signals.negative, signals.positive
    feats = [_SENTIMENT_FLAG[builtin_sentiment],
             ("rN", min(negative, 6.0) / 3.0), ("rP", min(positive, 6.0) / 3.0),
             _NEGATIVE_BUCKET[_bucket(negative)], _POSITIVE_BUCKET[_bucket(positive)]]
    if builtin_category:
        feats.append(_CATEGORY_FLAG[builtin_category])
    if signals.question:
        feats.append(_QUESTION)
    if signals.time_spent:
        feats.append(_TIME_SPENT)
    if signals.shouting:
        feats.append(_SHOUTING)
    if signals.exclaims:
        feats.append(_EXCLAIMS if signals.exclaims > 1 else _EXCLAIM)
    for label in signals.cues:
        feats.append(_CUE_FLAG[label])
    for term, weight in signals.hits:
        feats.append(_HIT_FLAG[term, weight > 0])
    return feats


def _bucket(value: float) -> str:
    if value <= 0:
        return "0"
    if value < 1:
        return "1"
    if value < 2.5:
        return "2"
    if value < 5:
        return "3"
    return "4"


class _Memo(dict):
    """function(key), computed once per key, then found by a lookup that runs in C.

    rule_features runs for every post: its (feature, 1.0) pairs are built
    once, and the model finds their strings' hash already computed.
    """

    def __init__(self, function: Any):
        super().__init__()
        self.function = function

    def __missing__(self, key: Any) -> Any:
        value = self.function(key)
        if len(self) < 10_000:  # labels and lexicon terms: a few thousand, but not bounded here
            self[key] = value
        return value


_SENTIMENT_FLAG = _Memo(lambda label: ("rs" + label, 1.0))
_CATEGORY_FLAG = _Memo(lambda label: ("rc" + label, 1.0))
_CUE_FLAG = _Memo(lambda label: ("rk" + label, 1.0))
_HIT_FLAG = _Memo(lambda hit: ("rh" + hit[0] + ("+" if hit[1] else "-"), 1.0))
_NEGATIVE_BUCKET = {bucket: ("rn" + bucket, 1.0) for bucket in "01234"}
_POSITIVE_BUCKET = {bucket: ("rp" + bucket, 1.0) for bucket in "01234"}
_QUESTION, _TIME_SPENT, _SHOUTING = ("rq", 1.0), ("rt", 1.0), ("rS", 1.0)
_EXCLAIM, _EXCLAIMS = ("r!1", 1.0), ("r!2", 1.0)


_NEGATORS = frozenset("""
not no never nothing nobody none cannot dont don't didnt didn't doesnt doesn't isnt isn't wasnt wasn't
arent aren't werent weren't cant can't couldnt couldn't wont won't wouldnt wouldn't havent haven't
hasnt hasn't hadnt hadn't
""".split())
_CLAUSE_END = frozenset(".!?,;")
NEGATION_SCOPE = 3
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")


def units_of(tokens: Sequence[str], spaced: bool, lower_text: str) -> List[str]:
    """Words (or runs of unspaced text) whose features are summed and cached per unit.

    Digits become 0 (flight and order numbers are noise, their length is
    not), and words right after a negator are marked ("not_helpful").
    """
    if not spaced:
        return unspaced_runs(lower_text)
    words: List[str] = []
    scope = 0
    negators, clause_end = _NEGATORS, _CLAUSE_END
    for token in tokens:
        if scope:
            if token in clause_end:
                scope = 0
            elif token not in negators:
                scope -= 1
                token = "not_" + token
        if token in negators:
            scope = NEGATION_SCOPE
        elif token[0] in "0123456789":
            token = token.translate(_DIGITS_TO_ZERO)
        words.append(token)
    return words


def _hash(feature: str, mask: int) -> int:
    return zlib.crc32(feature.encode("utf-8")) & mask


# --- the model ------------------------------------------------------------------------

class _Head:
    """One linear classifier over hashed features (sentiment, or category)."""

    def __init__(self, labels: Sequence[str], bias: Sequence[float], label_bias: Sequence[float],
                 weights: Dict[int, Tuple[float, ...]], mask: int):
        self.labels = tuple(labels)
        self.bias = tuple(float(b) + float(lb) for b, lb in zip(bias, label_bias))
        self.raw_bias = tuple(float(b) for b in bias)
        self.label_bias = tuple(float(b) for b in label_bias)
        self.weights = weights
        self.mask = mask
        self.zero = tuple(0.0 for _ in labels)
        self.negative_index = self.labels.index("negative") if "negative" in self.labels else None
        self.positive_index = self.labels.index("positive") if "positive" in self.labels else None
        # Per unit, the summed weights of its features and their number, as one
        # flat row (w_0, ..., w_k, n): see probabilities.
        # Words and runs of unspaced text have different features ("ok" as a word
        # has character n-grams with word-end marks, as a run it has not): one cache each.
        self._unit_cache: Dict[str, Tuple[float, ...]] = {}
        self._run_cache: Dict[str, Tuple[float, ...]] = {}
        self._feature_cache: Dict[str, Tuple[float, ...]] = {}
        # Per (feature, value) pair of rule_features, the weights times the value
        # (heads of other than three labels). 0.0 and -0.0 are one key: only the
        # sign of a zero logit could differ, and no probability depends on it.
        self._extra_cache: Dict[Tuple[str, float], Tuple[float, ...]] = {}

    def _sum_features(self, feats: Iterable[str]) -> Tuple[float, ...]:
        totals = list(self.zero)
        weights, mask = self.weights, self.mask
        for feat in feats:
            row = weights.get(zlib.crc32(feat.encode("utf-8")) & mask)
            if row is not None:
                for k, w in enumerate(row):
                    totals[k] += w
        return tuple(totals)

    def unit(self, unit: str, spaced: bool) -> Tuple[float, ...]:
        """The row of one unit: its summed weights, then its number of features."""
        cache = self._unit_cache if spaced else self._run_cache
        cached = cache.get(unit)
        if cached is None:
            feats = word_features(unit) if spaced else run_features(unit)
            cached = self._sum_features(feats) + (len(feats),)
            if len(cache) >= CACHE_LIMIT:
                cache.clear()
            cache[unit] = cached
        return cached

    def feature(self, feat: str) -> Tuple[float, ...]:
        cached = self._feature_cache.get(feat)
        if cached is None:
            cached = self._sum_features((feat,))
            if len(self._feature_cache) >= CACHE_LIMIT:
                self._feature_cache.clear()
            self._feature_cache[feat] = cached
        return cached

    def extra(self, pair: Tuple[str, float]) -> Tuple[float, ...]:
        """The weights of a rule feature times its value."""
        cached = self._extra_cache.get(pair)
        if cached is None:
            feat, value = pair
            cached = tuple(w * value for w in self.feature(feat))
            if len(self._extra_cache) >= CACHE_LIMIT:
                self._extra_cache.clear()
            self._extra_cache[(feat, value)] = cached
        return cached

    def probabilities(self, units: Sequence[str], extra: Sequence[Tuple[str, float]], spaced: bool) -> List[float]:
        # Both ways below add in the same order, so they give the same floats to
        # the last bit (tests/triage/test_model.py checks them against plain
        # loops): per label, 0.0 + each unit's weight in turn; then the bias plus
        # the scaled total; then each rule feature's weight times its value in turn.
        unit_cache = self._unit_cache if spaced else self._run_cache
        if len(self.labels) == 3:
            # Sentiment: three labels, unrolled (this runs for every word of every
            # post). A plain loop beats map/zip/sum here: the time goes to finding
            # the rows in memory, and the loop reads each row once.
            t0 = t1 = t2 = 0.0
            # An int at run time (the last item of a unit row is its feature count).
            count: float = 0
            get = unit_cache.get
            for unit in units:
                cached = get(unit)
                if cached is None:
                    cached = self.unit(unit, spaced)
                w0, w1, w2, n = cached
                t0 += w0
                t1 += w1
                t2 += w2
                count += n
            scale = 1.0 / math.sqrt(count) if count else 0.0
            b0, b1, b2 = self.bias
            t0, t1, t2 = b0 + scale * t0, b1 + scale * t1, b2 + scale * t2
            feature_cache = self._feature_cache
            for feat, value in extra:
                x0, x1, x2 = feature_cache.get(feat) or self.feature(feat)
                t0 += x0 * value
                t1 += x1 * value
                t2 += x2 * value
            # _softmax, unrolled: the same operations, and sum() of the same three values.
            top = max(t0, t1, t2)
            e0, e1, e2 = math.exp(t0 - top), math.exp(t1 - top), math.exp(t2 - top)
            total = sum((e0, e1, e2))
            return [e0 / total, e1 / total, e2 / total]
        # Other heads (categories, mostly more labels): map, zip and sum run in
        # C, twice as fast as a loop with a list comprehension per word.
        rows = list(map(unit_cache.get, units))
        if not all(rows):
            # A unit not cached yet (None). Look every unit up again one by one,
            # in order, as the loop above does: a full cache is cleared on the
            # way, and a unit looked up before the clearing keeps what it found.
            rows = [self.unit(unit, spaced) for unit in units]
        if rows:
            *columns, counts = zip(*rows)
            totals: Iterable[float] = map(_sum_in_order, columns)
            count = sum(counts)
        else:
            totals, count = self.zero, 0
        scale = 1.0 / math.sqrt(count) if count else 0.0
        logits = [b + scale * t for b, t in zip(self.bias, totals)]
        if extra:
            extra_rows = list(map(self._extra_cache.get, extra))
            if not all(extra_rows):
                extra_rows = [self.extra(pair) for pair in extra]
            logits = list(map(_sum_in_order, zip(*extra_rows), logits))
        return _softmax(logits)

    def to_dict(self) -> Dict[str, Any]:
        indices = sorted(self.weights)
        deltas, previous = [], 0
        for index in indices:
            deltas.append(index - previous)
            previous = index
        # Four decimals is far below what changes a decision; ints keep JSON small.
        values = [[round(self.weights[i][k] * 10000) for i in indices] for k in range(len(self.labels))]
        return {"labels": list(self.labels), "bias": [round(b, 6) for b in self.raw_bias],
                "label_bias": [round(b, 6) for b in self.label_bias],
                "index_deltas": deltas, "values_e4": values}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], mask: int) -> "_Head":
        labels = list(data["labels"])
        indices, position = [], 0
        for delta in data["index_deltas"]:
            position += int(delta)
            indices.append(position)
        columns = data["values_e4"]
        if len(columns) != len(labels) or any(len(col) != len(indices) for col in columns):
            raise ValueError("model file is damaged: weight table does not match its labels")
        rows = zip(*columns)
        weights = {index: tuple(v / 10000.0 for v in row) for index, row in zip(indices, rows)}
        return cls(labels, data["bias"], data.get("label_bias") or [0.0] * len(labels), weights, mask)


def _adds_in_order() -> bool:
    """Whether sum() adds floats one by one, left to right (Python 3.11).

    From Python 3.12, sum() compensates rounding errors: closer to the true
    sum, but not what the model has always computed.
    """
    big = 1e16  # 1e16 + 1.0 rounds back to 1e16
    return sum([big, 1.0, -big]) == 0.0


if _adds_in_order():
    _sum_in_order = sum
else:
    def _sum_in_order(values: Iterable[float], start: float = 0.0) -> float:  # type: ignore[misc]
        return reduce(add, values, start)


def _softmax(logits: Sequence[float]) -> List[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


class Model:
    """A trained model. Build with ``load_model`` or ``train``; use via ``classify(model=...)``."""

    def __init__(self, bits: int, langs: Iterable[str], sentiment: _Head, category: Optional[_Head],
                 info: Optional[Dict[str, Any]] = None):
        self.bits = bits
        self.mask = (1 << bits) - 1
        self.langs = frozenset(langs)
        self.sentiment = sentiment
        self.category = category
        self.info = dict(info or {})

    def covers(self, lang: str) -> bool:
        return lang in self.langs

    def predict(self, cleaned: Any, signals: Any, builtin_sentiment: str,
                builtin_category: Optional[str] = None) -> Optional[Prediction]:
        """The model's view of one post, or None for a language it was not trained on."""
        if signals.lang not in self.langs:
            return None
        spaced = signals.tokens is not None
        units = units_of(signals.tokens or (), spaced, cleaned.lower)
        extra = rule_features(signals, builtin_sentiment, builtin_category)
        head = self.sentiment
        probs = head.probabilities(units, extra, spaced)
        # index(max()) runs in C and picks the first of equal maxima, as max(range(...), key=...) did.
        confidence = max(probs)
        sentiment = head.labels[probs.index(confidence)]
        p_neg = probs[head.negative_index] if head.negative_index is not None else 0.0
        p_pos = probs[head.positive_index] if head.positive_index is not None else 0.0
        score = consistent_score(sentiment, p_pos - p_neg)
        category: Optional[str] = None
        category_confidence = 0.0
        category_labels: Tuple[str, ...] = ()
        if self.category is not None:
            cat_probs = self.category.probabilities(units, extra, spaced)
            category_confidence = max(cat_probs)
            category_labels = self.category.labels
            category = category_labels[cat_probs.index(category_confidence)]
        # tuple.__new__ spares the Python-level __new__ of a NamedTuple (every post).
        return tuple.__new__(Prediction, (sentiment, score, confidence, category, category_confidence, category_labels))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "bits": self.bits,
            "langs": sorted(self.langs), "info": self.info,
            "heads": {"sentiment": self.sentiment.to_dict(),
                      **({"category": self.category.to_dict()} if self.category else {})},
        }

    def to_bytes(self) -> bytes:
        text = json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        # mtime=0 keeps the file byte-identical for identical training runs.
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as out:
            out.write(text.encode("utf-8"))
        return buffer.getvalue()

    def save(self, path: str) -> None:
        data = self.to_bytes() if not str(path).endswith(".json") else \
            json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")
        with open(path, "wb") as out:
            out.write(data)


def load_model(source: Union[str, os.PathLike, bytes, bytearray]) -> Model:
    """Load a model file (gzip JSON or plain JSON) from a path or from its bytes."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        with open(source, "rb") as handle:
            data = handle.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"not a triage model file: {err}") from err
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("not a triage model file (format marker missing)")
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"model file version {document.get('version')} is not supported "
                         f"(this code reads version {FORMAT_VERSION})")
    bits = int(document["bits"])
    mask = (1 << bits) - 1
    heads = document["heads"]
    category = _Head.from_dict(heads["category"], mask) if "category" in heads else None
    return Model(bits, document.get("langs") or [], _Head.from_dict(heads["sentiment"], mask), category,
                 document.get("info"))


# --- training ---------------------------------------------------------------------------

class TrainingOptions(NamedTuple):
    bits: int = DEFAULT_BITS
    epochs: int = 4
    learning_rate: float = 0.25
    seed: int = 13
    # Rare classes count more: weight = (n / (k * n_class)) ** class_weight_power.
    class_weight_power: float = 0.5
    # Added to the negative logit at prediction: in customer service a missed
    # complaint costs more than a neutral post read by a person.
    negative_bias: float = 0.7
    prune_below: float = 0.0005


def document_features(units: Sequence[str], spaced: bool) -> List[str]:
    """The n-gram features of a post (scaled by 1/sqrt(count) in the model)."""
    feats: List[str] = []
    for unit in units:
        feats.extend(word_features(unit) if spaced else run_features(unit))
    return feats


def train_head(documents: Sequence[Sequence[int]], extras: Sequence[Sequence[Tuple[int, float]]],
               labels: Sequence[int], n_labels: int, options: TrainingOptions
               ) -> Tuple[List[float], Dict[int, Tuple[float, ...]]]:
    """Averaged SGD for multinomial logistic regression.

    ``documents`` are bucket ids (scaled by 1/sqrt(len)); ``extras`` are
    (bucket, value) pairs used as they are.
    """
    size = 1 << options.bits
    weights = [[0.0] * size for _ in range(n_labels)]
    # Sum of (step * update): the averaged weight is w - accumulated / steps.
    accumulated = [[0.0] * size for _ in range(n_labels)]
    bias = [0.0] * n_labels
    bias_accumulated = [0.0] * n_labels
    counts = [0] * n_labels
    for y in labels:
        counts[y] += 1
    total = len(labels)
    class_weight = [((total / (n_labels * c)) ** options.class_weight_power) if c else 0.0 for c in counts]
    scales = [1.0 / math.sqrt(len(doc)) if doc else 0.0 for doc in documents]
    import random  # training only: keeps the import out of every Lambda cold start

    order = list(range(len(documents)))
    rng = random.Random(options.seed)
    step = 1
    for epoch in range(options.epochs):
        rng.shuffle(order)
        rate = options.learning_rate / (1.0 + epoch)
        for d in order:
            doc = documents[d]
            extra = extras[d]
            scale = scales[d]
            logits = []
            for k in range(n_labels):
                row = weights[k]
                logits.append(bias[k] + scale * sum(map(row.__getitem__, doc))
                              + sum(row[f] * v for f, v in extra))
            probs = _softmax(logits)
            y = labels[d]
            for k in range(n_labels):
                gradient = (probs[k] - (1.0 if k == y else 0.0)) * class_weight[y]
                if -1e-6 < gradient < 1e-6:
                    continue
                change = rate * gradient
                bias[k] -= change
                bias_accumulated[k] -= step * change
                row, acc = weights[k], accumulated[k]
                for f, v in extra:
                    row[f] -= change * v
                    acc[f] -= step * change * v
                change *= scale
                timed = step * change
                for f in doc:
                    row[f] -= change
                    acc[f] -= timed
            step += 1
    averaged_bias = [b - a / step for b, a in zip(bias, bias_accumulated)]
    sparse: Dict[int, Tuple[float, ...]] = {}
    touched: Set[int] = set()
    for doc in documents:
        touched.update(doc)
    for extra in extras:
        touched.update(f for f, _ in extra)
    for f in touched:
        averaged = tuple(weights[k][f] - accumulated[k][f] / step for k in range(n_labels))
        if max(abs(w) for w in averaged) >= options.prune_below:
            sparse[f] = averaged
    return averaged_bias, sparse


class Example(NamedTuple):
    units: List[str]
    extra: List[Tuple[str, float]]
    spaced: bool
    lang: str
    sentiment: Optional[str]
    category: Optional[str]


def train(examples: Sequence[Example], options: TrainingOptions = TrainingOptions()) -> Model:
    """Train sentiment (and category, where labelled) heads from prepared examples."""
    mask = (1 << options.bits) - 1
    hashed = [[_hash(f, mask) for f in document_features(e.units, e.spaced)] for e in examples]
    hashed_extra = [[(_hash(f, mask), v) for f, v in e.extra] for e in examples]
    with_sentiment = [i for i, e in enumerate(examples) if e.sentiment in SENTIMENT_LABELS]
    if not with_sentiment:
        raise ValueError("no training example has label.sentiment (negative, neutral or positive)")
    present = [label for label in SENTIMENT_LABELS if any(examples[i].sentiment == label for i in with_sentiment)]
    if len(present) < 2:
        raise ValueError("training needs at least two different sentiment labels")
    # with_sentiment holds only examples whose sentiment is one of SENTIMENT_LABELS.
    y = [present.index(cast(str, examples[i].sentiment)) for i in with_sentiment]
    bias, weights = train_head([hashed[i] for i in with_sentiment], [hashed_extra[i] for i in with_sentiment],
                               y, len(present), options)
    label_bias = [options.negative_bias if label == "negative" else 0.0 for label in present]
    sentiment = _Head(present, bias, label_bias, weights, mask)

    category = None
    with_category = [i for i, e in enumerate(examples) if e.category]
    # with_category holds only examples with a category (a non-empty str).
    category_labels = sorted({cast(str, examples[i].category) for i in with_category})
    if len(category_labels) >= 2:
        y = [category_labels.index(cast(str, examples[i].category)) for i in with_category]
        bias, weights = train_head([hashed[i] for i in with_category], [hashed_extra[i] for i in with_category],
                                   y, len(category_labels), options)
        category = _Head(category_labels, bias, [0.0] * len(category_labels), weights, mask)

    lang_counts: Dict[str, int] = {}
    for e in examples:
        lang_counts[e.lang] = lang_counts.get(e.lang, 0) + 1
    langs = [lang for lang, count in lang_counts.items()
             if count >= min(MIN_EXAMPLES_PER_LANG, max(1, len(examples) // 2))]
    info = {"examples": len(examples), "sentiment_examples": len(with_sentiment),
            "category_examples": len(with_category), "langs": lang_counts,
            "options": options._asdict()}
    return Model(options.bits, langs, sentiment, category, info)
