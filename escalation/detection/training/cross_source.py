"""Held-out evaluation across sources: train on every source but one, test on the one left out.

Line sources (``own``, ``data-train``, ``bitext``, ``rasa``) take turns being held out; the
labelled conversation sets (never trained on) are scored with a model trained on every line
source. Each held-out line is decided by the full local detector (``detect_local`` with the
fold's model), so the figures are what a customer would get, per source, per language and per
reason. A held-out line whose normalised text is also a training line is not scored (there are
none after ``dedupe``; the check stays so a future source can't leak).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

from escalation.detection.evaluation import Conversation, score
from escalation.detection.features import text_key
from escalation.detection.local import detect_local
from escalation.detection.model import DetectorModel
from escalation.detection.training.trainer import (
    LINE_SOURCES,
    UPSET,
    EmbeddingStore,
    Line,
    fit_model,
)
from escalation.detection.types import TOPICS, DetectorSettings, Turn

CONVERSATIONS = "conversations"
# An ordinary message: no request, no topic, and labelled calm (unlabelled feeling, such as
# Bitext's offensive variants, is left out of the false-alarm rate).
ORDINARY_EMOTIONS = ("neutral", "mild", "confusion")


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _f1(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def line_metrics(decided: list[tuple[Line, object]]) -> dict:
    """decided: (line, DetectionResult) → request P/R/F1, recall of upset and topic lines,
    escalation rate of ordinary lines."""
    tp = fp = fn = 0
    upset = upset_hit = topic = topic_hit = topic_right = ordinary = ordinary_escalated = 0
    ordinary_reasons: Counter = Counter()
    ordinary_groups: Counter = Counter()  # the source's own label (Bitext's intents, ...)
    for line, result in decided:
        decision = result.decision
        said_request = decision.escalate and decision.reason == "request"
        if line.intent == "request":
            tp += said_request
            fn += not said_request
        elif line.intent is not None and said_request:
            fp += 1
        if line.emotion in UPSET:
            upset += 1
            upset_hit += decision.escalate
        if line.intent in TOPICS:
            topic += 1
            topic_hit += decision.escalate
            topic_right += line.intent in result.signals["complexity"]["topics"]
        if line.intent == "other" and line.emotion in ORDINARY_EMOTIONS:
            ordinary += 1
            ordinary_escalated += decision.escalate
            if decision.escalate:
                ordinary_reasons[decision.reason] += 1
                ordinary_groups[line.group] += 1
    return {
        "lines": len(decided),
        "request": {**_f1(tp, fp, fn), "positives": tp + fn},
        "sentiment_recall": _rate(upset_hit, upset),
        "sentiment_lines": upset,
        "complexity_recall": _rate(topic_hit, topic),
        "complexity_right_topic": _rate(topic_right, topic),
        "complexity_lines": topic,
        "ordinary_escalated": _rate(ordinary_escalated, ordinary),
        "ordinary_escalated_by_reason": dict(ordinary_reasons.most_common()),
        "ordinary_escalated_by_label": dict(ordinary_groups.most_common(8)),
        "ordinary_lines": ordinary,
    }


def conversation_metrics(decided: list[tuple[Conversation, object]]) -> dict:
    pairs = [(c.expected, (r.decision.escalate, r.decision.reason)) for c, r in decided]
    overall = score(pairs) if pairs else {}
    by_reason = {}
    for reason in ("request", "sentiment", "complexity", "loop", "low_confidence"):
        wanted = [(c, r) for c, r in decided if reason in c.expected["reasons"]]
        by_reason[reason] = {
            "conversations": len(wanted),
            "recall": _rate(sum(r.decision.escalate for _, r in wanted), len(wanted)),
        }
    calm = [r for c, r in decided if not c.expected["escalate"]]
    false_alarms = Counter(r.decision.reason for r in calm if r.decision.escalate)
    return {
        "conversations": len(decided),
        "precision": round(overall.get("precision", 0.0), 4),
        "recall": round(overall.get("recall", 0.0), 4),
        "f1": round(overall.get("f1", 0.0), 4),
        "reason_accuracy": round(overall.get("reason_accuracy", 0.0), 4),
        "by_reason": by_reason,
        "ordinary_escalated": _rate(sum(r.decision.escalate for r in calm), len(calm)),
        "ordinary_escalated_by_reason": dict(false_alarms.most_common()),
        "ordinary_conversations": len(calm),
    }


def _by_language(items, lang_of, metrics):
    groups = defaultdict(list)
    for item in items:
        groups[lang_of(item[0])].append(item)
    return {lang: metrics(group) for lang, group in sorted(groups.items())}


def run_cross_source(
    lines: list[Line],
    conversation_sets: dict[str, list[Conversation]],
    store: EmbeddingStore,
    *,
    hold_out: list[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
    seed: int = 7,
    settings: DetectorSettings | None = None,
) -> dict:
    """The report: one entry per held-out source (see the module docstring); ``settings`` are an
    assistant's (default: as trained, sensitivity 0.5)."""
    present = [s for s in LINE_SOURCES if any(line.source == s for line in lines)]
    folds = [*present, CONVERSATIONS] if conversation_sets else present
    if hold_out:
        folds = [f for f in folds if f in hold_out]
    settings = settings or DetectorSettings()
    report: dict = {"folds": {}, "leaks_skipped": 0, "sensitivity": settings.sensitivity}
    for number, held in enumerate(folds, 1):
        training = [line for line in lines if line.source != held]
        progress(f"[{number}/{len(folds)}] held out: {held}; training on {len(training)} lines")
        model, _ = fit_model(training, store, seed=seed)
        if held == CONVERSATIONS:
            report["folds"][held] = {
                name: _score_conversations(conversations, model, store, settings, progress)
                for name, conversations in conversation_sets.items()
            }
            continue
        seen = {text_key(line.text) for line in training}
        held_lines = [line for line in lines if line.source == held]
        test = [line for line in held_lines if text_key(line.text) not in seen]
        report["leaks_skipped"] += len(held_lines) - len(test)
        decided = []
        for i, line in enumerate(test, 1):
            decided.append((line, _decide([Turn("customer", line.text)], model, store, settings)))
            if i % 1000 == 0 or i == len(test):
                progress(f"  decided {i}/{len(test)} held-out lines")
        report["folds"][held] = {
            "training_lines": len(training),
            **line_metrics(decided),
            "by_language": _by_language(decided, lambda line: line.lang, line_metrics),
        }
    return report


def _decide(turns, model: DetectorModel, store: EmbeddingStore, settings):
    return detect_local(turns, settings, model=model, embed=store)


def _score_conversations(conversations, model, store, settings, progress) -> dict:
    decided = [(c, _decide(c.turns, model, store, settings)) for c in conversations]
    progress(f"  decided {len(decided)} conversations")
    return {
        **conversation_metrics(decided),
        "by_language": _by_language(decided, lambda c: c.lang, conversation_metrics),
    }


def conversation_texts(conversation_sets: dict[str, list[Conversation]]) -> list[str]:
    return [t.text for cs in conversation_sets.values() for c in cs for t in c.turns if t.text]


def format_report(report: dict) -> str:
    """A plain-text summary: one row per held-out source, then languages."""
    sensitivity = report.get("sensitivity", 0.5)
    out = ["Held-out figures (trained without the source in each row):", ""]
    if sensitivity != 0.5:
        out[0] = (
            f"Held-out figures at sensitivity {sensitivity} "
            "(trained without the source in each row):"
        )
    out.append(
        f"{'held out':<24}{'n':>6}{'request P':>11}{'R':>7}{'F1':>7}{'upset R':>9}"
        f"{'complex R':>11}{'ordinary esc.':>15}"
    )

    def pct(value):
        return "—" if value is None else f"{value:.3f}"

    for held, figures in report["folds"].items():
        if held == CONVERSATIONS:
            for name, conv in figures.items():
                reasons = conv["by_reason"]
                out.append(
                    f"{name:<24}{conv['conversations']:>6}{conv['precision']:>11.3f}"
                    f"{conv['recall']:>7.3f}{conv['f1']:>7.3f}"
                    f"{pct(reasons['sentiment']['recall']):>9}"
                    f"{pct(reasons['complexity']['recall']):>11}"
                    f"{pct(conv['ordinary_escalated']):>15}   (conversations: P/R/F1 of escalate)"
                )
            continue
        r = figures["request"]
        out.append(
            f"{held:<24}{figures['lines']:>6}{r['precision']:>11.3f}{r['recall']:>7.3f}"
            f"{r['f1']:>7.3f}{pct(figures['sentiment_recall']):>9}"
            f"{pct(figures['complexity_recall']):>11}{pct(figures['ordinary_escalated']):>15}"
        )
    out.append("")
    out.append("Ordinary messages escalated, by reason and by the source's own label:")
    for held, figures in report["folds"].items():
        sets = figures.items() if held == CONVERSATIONS else [(held, figures)]
        for name, fig in sets:
            labels = fig.get("ordinary_escalated_by_label")
            out.append(
                f"  {name:<22} {fig.get('ordinary_escalated_by_reason') or '—'}"
                + (f"  labels {labels}" if labels else "")
            )
    for held, figures in report["folds"].items():
        sets = figures.items() if held == CONVERSATIONS else [(held, figures)]
        for name, fig in sets:
            out.append("")
            out.append(f"{name} by language:")
            for lang, lf in fig["by_language"].items():
                if "request" in lf:
                    out.append(
                        f"  {lang:<4} n {lf['lines']:>5}  request F1 {lf['request']['f1']:.3f} "
                        f"(of {lf['request']['positives']})  upset R "
                        f"{pct(lf['sentiment_recall'])}  complex R {pct(lf['complexity_recall'])}"
                        f"  ordinary esc. {pct(lf['ordinary_escalated'])}"
                    )
                else:
                    reasons = " ".join(
                        f"{k} {pct(v['recall'])}/{v['conversations']}"
                        for k, v in lf["by_reason"].items()
                        if v["conversations"]
                    )
                    out.append(
                        f"  {lang:<4} n {lf['conversations']:>4}  F1 {lf['f1']:.3f}  "
                        f"ordinary esc. {pct(lf['ordinary_escalated'])}  recall: {reasons}"
                    )
    out.append("")
    out.append(f"Held-out lines skipped as also in training: {report['leaks_skipped']}")
    return "\n".join(out)
