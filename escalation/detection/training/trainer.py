"""Train the local detector's two text classifiers and write ``weights.npz``.

* ``intent``: request for a person, the complexity topics, or other.
* ``emotion``: anger, frustration, confusion, mild (grumbling that needs no person) or neutral.

Sources: the project's own examples in this folder (six languages, traps and hard negatives), plus,
when present, the public English sets under ``../shared/data`` (Bitext customer support, Rasa
financial-demo NLU). Only derived weights are committed, never rows of the shared data. Run time
never reads this module: ``features.load_models`` reads the npz with numpy alone.
"""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from escalation.detection.features import WEIGHTS_PATH, analyze, save_models

TRAINING_DIR = Path(__file__).resolve().parent
INTENTS = (
    "request",
    "refund",
    "billing_dispute",
    "account_security",
    "legal",
    "privacy",
    "contract",
    "other",
)
EMOTIONS = ("anger", "frustration", "confusion", "mild", "neutral")
INTENT_BALANCE = 0.5
EMOTION_BALANCE = 1.0

# Bitext intents that map onto ours; everything else is "other".
_BITEXT_INTENTS = {
    "contact_human_agent": "request",
    "contact_customer_service": "request",
    "get_refund": "refund",
}
# "what hours can I contact customer service" asks about a person, it doesn't ask for one.
_INFO_ABOUT_SUPPORT = re.compile(
    r"\b(hour|hours|number|phone|email|e-mail|when|schedule|time)\b", re.I
)


@dataclass
class Example:
    text: str
    intent: str
    emotion: str | None  # None: not used for the emotion model
    source: str
    lang: str | None = None  # ISO code, where the file names it


def own_examples(folder: Path = TRAINING_DIR) -> list[Example]:
    examples = []
    for path in sorted(folder.glob("examples_*.tsv")):
        lines = path.read_text(encoding="utf-8").splitlines()
        # A header "# lang<TAB>intent<TAB>emotion<TAB>text" means each line names its language.
        with_lang = bool(lines) and lines[0].startswith("# lang\t")
        columns = (
            ("lang", "intent", "emotion", "text") if with_lang else ("intent", "emotion", "text")
        )
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t", len(columns) - 1)
            if len(fields) != len(columns) or not fields[-1].strip():
                raise ValueError(f"{path.name}:{number}: expected {'<TAB>'.join(columns)}")
            row = dict(zip(columns, fields, strict=True))
            lang, intent, emotion = row.get("lang"), row["intent"], row["emotion"]
            if intent not in INTENTS or emotion not in EMOTIONS:
                raise ValueError(f"{path.name}:{number}: unknown label {intent!r}/{emotion!r}")
            if with_lang and not re.fullmatch(r"[a-z]{2,3}", lang):
                raise ValueError(f"{path.name}:{number}: {lang!r} is not an ISO language code")
            examples.append(Example(row["text"].strip(), intent, emotion, path.name, lang))
    return examples


def bitext_examples(path: Path, rng: random.Random, max_other: int = 5000) -> list[Example]:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    examples, others = [], []
    for row in rows:
        text, source_intent, tags = row["instruction"], row["intent"], row.get("tags", "")
        intent = _BITEXT_INTENTS.get(source_intent, "other")
        if source_intent == "contact_customer_service" and _INFO_ABOUT_SUPPORT.search(text):
            intent = "other"
        # Complaints and offensive variants carry feeling we haven't labelled: intent only.
        emotion = None if source_intent == "complaint" or "W" in tags else "neutral"
        example = Example(text, intent, emotion, "bitext")
        (others if intent == "other" else examples).append(example)
    rng.shuffle(others)
    return examples + others[:max_other]


def rasa_examples(path: Path) -> list[Example]:
    examples, intent = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        header = re.match(r"- intent: (\w+)", line.strip())
        if header:
            intent = "request" if header.group(1) == "human_handoff" else "other"
            continue
        item = re.match(r"\s+- (.+)$", line)
        if intent and item:
            text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", item.group(1)).strip()  # entity markup
            examples.append(Example(text, intent, "neutral" if ":(" not in text else None, "rasa"))
    return examples


def _fit(texts: list[str], labels: list[str], classes: tuple[str, ...], balance: float) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, min_df=2, dtype=np.float32)
    matrix = vectorizer.fit_transform(texts)
    present = [c for c in classes if c in set(labels)]
    # balance 1.0 weighs every class equally; 0.5 (square root) lets rare classes (a few dozen
    # topic examples) count more than their share, but not so much that any unfamiliar text
    # looks like a rare class.
    counts = Counter(labels)
    largest = max(counts.values())
    weights = np.array([(largest / counts[label]) ** balance for label in labels])
    model = LogisticRegression(C=8.0, max_iter=3000)
    model.fit(matrix, labels, sample_weight=weights / weights.mean())
    order = [list(model.classes_).index(c) for c in present]
    return {
        "vocabulary": vectorizer.get_feature_names_out().tolist(),
        "idf": vectorizer.idf_,
        "coef": model.coef_[order].T,
        "intercept": model.intercept_[order],
        "classes": present,
        "_vectorizer": vectorizer,
        "_model": model,
    }


def _holdout_accuracy(examples: list[Example], rng: random.Random) -> tuple[float, float]:
    shuffled = examples[:]
    rng.shuffle(shuffled)
    cut = len(shuffled) // 10
    held, fit_on = shuffled[:cut], shuffled[cut:]
    intent_check = _fit(
        [e.text for e in fit_on], [e.intent for e in fit_on], INTENTS, INTENT_BALANCE
    )
    held_pred = intent_check["_model"].predict(
        intent_check["_vectorizer"].transform([e.text for e in held])
    )
    intent_acc = float(np.mean([p == e.intent for p, e in zip(held_pred, held, strict=True)]))
    emo_fit = [e for e in fit_on if e.emotion]
    emo_held = [e for e in held if e.emotion]
    emotion_check = _fit(
        [e.text for e in emo_fit], [e.emotion for e in emo_fit], EMOTIONS, EMOTION_BALANCE
    )
    emo_pred = emotion_check["_model"].predict(
        emotion_check["_vectorizer"].transform([e.text for e in emo_held])
    )
    emotion_acc = float(np.mean([p == e.emotion for p, e in zip(emo_pred, emo_held, strict=True)]))
    return intent_acc, emotion_acc


def train(
    shared_dir: Path | None,
    out_path: Path = WEIGHTS_PATH,
    progress: Callable[[str], None] = print,
    seed: int = 7,
    holdout: bool = True,
) -> dict:
    """Train both models; return a summary (counts and, with ``holdout``, the accuracy of
    models trained on 90% of the examples on the other 10%)."""
    from threadpoolctl import threadpool_limits

    # One BLAS/OpenMP thread: these problems are small, and on a busy machine extra threads
    # made the fit about eight times slower, not faster.
    with threadpool_limits(limits=1):
        return _train(shared_dir, out_path, progress, seed, holdout)


def _train(shared_dir, out_path, progress, seed, holdout) -> dict:
    rng = random.Random(seed)
    steps = 6
    progress(f"[1/{steps}] reading own examples from {TRAINING_DIR}")
    examples = own_examples()
    if shared_dir is not None and shared_dir.is_dir():
        progress(f"[2/{steps}] reading shared data from {shared_dir}")
        bitext = shared_dir / "bitext_customer_support_sample.csv"
        rasa = shared_dir / "rasa_financial_demo_nlu.yml"
        if bitext.exists():
            examples += bitext_examples(bitext, rng)
        if rasa.exists():
            examples += rasa_examples(rasa)
    else:
        progress(f"[2/{steps}] no shared data found; own examples only")
    by_source = Counter(e.source for e in examples)

    if holdout:
        progress(f"[3/{steps}] holding out 10% to check generalisation")
        intent_acc, emotion_acc = _holdout_accuracy(examples, rng)
    else:
        progress(f"[3/{steps}] held-out check skipped")
        intent_acc = emotion_acc = None

    progress(f"[4/{steps}] training intent model on {len(examples)} examples")
    intent = _fit([e.text for e in examples], [e.intent for e in examples], INTENTS, INTENT_BALANCE)
    emo_all = [e for e in examples if e.emotion]
    progress(f"[5/{steps}] training emotion model on {len(emo_all)} examples")
    emotion = _fit(
        [e.text for e in emo_all], [e.emotion for e in emo_all], EMOTIONS, EMOTION_BALANCE
    )

    progress(f"[6/{steps}] writing {out_path}")
    strip = lambda parts: {k: v for k, v in parts.items() if not k.startswith("_")}  # noqa: E731
    save_models(out_path, {"intent": strip(intent), "emotion": strip(emotion)})
    return {
        "examples": len(examples),
        "by_source": dict(by_source),
        "intent_labels": dict(Counter(e.intent for e in examples)),
        "emotion_labels": dict(Counter(e.emotion for e in emo_all)),
        "intent_features": len(intent["vocabulary"]),
        "emotion_features": len(emotion["vocabulary"]),
        "held_out_intent_accuracy": intent_acc,
        "held_out_emotion_accuracy": emotion_acc,
        "weights_bytes": out_path.stat().st_size,
    }
