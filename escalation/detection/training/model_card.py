"""The model card ``train_detector`` writes beside the model: what it learnt from, how it was
checked, what it scored on data it never saw."""

from __future__ import annotations

import datetime

from escalation.detection.training.cross_source import format_report


def card_data(lines, sizes: dict, fit_report: dict, cross_source: dict | None) -> dict:
    from crm.encoder import MODEL_NAME, bundled_model_file

    return {
        "trained_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "encoder": MODEL_NAME,
        "encoder_sha256": bundled_model_file().sha256,
        "sizes": sizes,
        "validation": fit_report,
        "cross_source": cross_source,
    }


def _table(counts: dict, name: str) -> list[str]:
    rows = [f"| {name} | lines |", "| --- | ---: |"]
    rows += [f"| {key} | {value:,} |" for key, value in counts.items()]
    return rows


def _verdicts(verdicts: dict | None) -> list[str]:
    """What ``--with-verdicts`` added (nothing when it wasn't given)."""
    if not verdicts:
        return []
    out = [
        f"Agents' verdicts (`--with-verdicts`): {verdicts['judged']:,} judged handovers, "
        f"{verdicts['lines']:,} lines kept after removing duplicates and held-out texts. "
        '"Needed" is a positive for the reason\'s head; "not needed" a hard negative '
        "(an ordinary line for request and topic handovers, a calm one for sentiment).",
        "",
        *_table(verdicts["used"], "verdict"),
        "",
    ]
    if verdicts["skipped"]:
        out += [*_table(verdicts["skipped"], "left out"), ""]
    return out


def render(card: dict) -> str:
    sizes, validation = card["sizes"], card["validation"]
    out = [
        "# Model card: the local escalation detector",
        "",
        f"Written by `manage.py train_detector` on {card['trained_at']}. Encoder: "
        f"{card['encoder']} (model file SHA-256 `{(card['encoder_sha256'] or '?')[:16]}…`). "
        "Heads: logistic regression per reason over the 384 embedding numbers plus 7 lexical "
        "cues, Platt-calibrated and thresholded on out-of-fold scores of the training lines; "
        "the model file holds plain arrays (numpy, no pickle).",
        "",
        f"## Training lines ({sizes['lines']:,}, after removing duplicates)",
        "",
        *_table(sizes["by_source"], "source"),
        "",
        *_verdicts(sizes.get("verdicts")),
        "Languages (`?`: the original examples, six languages, and verdicts, untagged):",
        "",
        *_table(sizes["by_language"], "language"),
        "",
        *_table(sizes["by_reason"], "reason"),
        "",
        "## Validation (chooses calibration and thresholds; not a reported figure)",
        "",
        "Out-of-fold scores: each training source scored by a regression fitted on the others "
        "(a 20% split where one source holds every example of a reason).",
        "",
        "| head | threshold | validation precision | validation recall | positives / lines |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, head in validation["heads"].items():
        out.append(
            f"| {name} | {head['threshold']:.3f} | {head['validation_precision']:.3f} | "
            f"{head['validation_recall']:.3f} | "
            f"{head['positives']} / {head['lines']} |"
        )
    joint = validation.get("thresholds")
    if joint:
        tried = ", ".join(f"{t['cap']:.2%} → {t['ordinary_escalated']:.2%}" for t in joint["tried"])
        if joint.get("relaxed_from") == "strict":
            how = (
                f"the heads were relaxed one step at a time from strict thresholds, each step "
                f"where it bought the most validation F1 per ordinary line newly escalated "
                f"({joint['relaxed_steps']} steps), which scored better than one shared "
                f"per-head false-alarm cap (the largest that fits: "
                f"{joint['per_head_cap']:.2%})"
            )
        else:
            how = (
                f"each head's is its best validation F1 with at most "
                f"{joint['per_head_cap']:.2%} false alarms on its validation negatives (the "
                f"largest such cap that fits), then relaxed where the budget allowed "
                f"({joint.get('relaxed_steps', 0)} steps)"
            )
        out += [
            "",
            f"Thresholds were chosen together, so that all heads together escalate at most "
            f"{joint['target']:.1%} of the {joint['ordinary_lines']:,} ordinary validation lines "
            f"(reached: {joint['ordinary_escalated']:.2%}): {how}. Shared caps tried → ordinary "
            f"lines escalated: {tried}. Patterns, context and sentence-level scoring add to "
            "this in the detector itself; the held-out figures below include them.",
        ]
    loop = validation["loop"]
    out += [
        "",
        f"Loop: two turns repeat each other at cosine ≥ {loop.get('threshold', '?')} "
        f"(at most 1% of pairs of different requests reach it; "
        f"{loop.get('same_request_pairs_over', '?')} of same-request pairs do; "
        f"{loop.get('pairs', 0)} pairs).",
        "",
        "## Held-out figures (cross-source)",
        "",
    ]
    if card["cross_source"] is None:
        out.append("Not measured in this run (`--no-holdout`).")
    else:
        out += [
            "Each row: models trained on every other source, tested on this one. The",
            "conversation sets are never trained on. Same as `evaluate_detection --cross-source`.",
            "",
            "```",
            format_report(card["cross_source"]),
            "```",
        ]
    out += [
        "",
        "## Limits",
        "",
        "* Bitext and Rasa are English only and the project's lines are written by a few "
        "people; figures on real customers will be lower than on these sets.",
        "* Sarcasm and indirect requests rest on the encoder's sense of meaning plus the few "
        "examples of them; the multilingual held-out set shows how far that goes.",
        "* Low confidence is not learnt: it is the AI's own answer confidence.",
        "",
    ]
    return "\n".join(out)
