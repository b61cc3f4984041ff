"""`manage.py evaluate_detection`: the fixed interface others run on data we don't see."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

DATASET = Path(__file__).resolve().parent.parent / "data" / "escalation_conversations.jsonl"


def run(path, *args):
    out, err = StringIO(), StringIO()
    call_command("evaluate_detection", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path, *lines) -> Path:
    path = tmp_path / "input.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_one_json_object_per_line_and_nothing_else_on_stdout(tmp_path):
    path = write(
        tmp_path,
        json.dumps({"id": "a", "turns": [{"role": "customer", "text": "I want a human"}]}),
        json.dumps(
            {
                "id": 7,
                "turns": [
                    {"role": "customer", "text": "does it fit the 2019 dock?"},
                    {"role": "assistant", "text": "I'm not sure.", "confidence": 0.2},
                    {"role": "customer", "text": "and the 2020 one?"},
                ],
                "expected": {"escalate": True, "reasons": ["low_confidence"]},
                "notes": "ignored",
            }
        ),
        "",
        json.dumps({"id": "c", "turns": [{"role": "customer", "text": "what are your hours?"}]}),
    )
    out, err = run(path)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == [
        {"id": "a", "escalate": True, "reason": "request", "priority": "high"},
        {"id": "7", "escalate": True, "reason": "low_confidence", "priority": "low"},
        {"id": "c", "escalate": False, "reason": None, "priority": None},
    ]
    assert "[3/3]" in err and "Summary" in err
    assert "precision" not in err


def test_decides_for_the_last_customer_turn_in_context(tmp_path):
    path = write(
        tmp_path,
        json.dumps(
            {
                "id": "x",
                "turns": [
                    {"role": "customer", "text": "I want to talk to a person"},
                    {"role": "assistant", "text": "Sure, connecting you.", "confidence": 0.9},
                    {"role": "customer", "text": "actually no need for a person, thanks"},
                ],
            }
        ),
    )
    out, _ = run(path)
    assert json.loads(out)["escalate"] is False


def test_report_on_the_labelled_set_goes_to_stderr():
    out, err = run(DATASET, "--report", "--backend", "local")
    assert len(out.splitlines()) == sum(1 for line in DATASET.open() if line.strip())
    assert "precision" in err and "recall" in err and "F1" in err and "reason accuracy" in err
    f1 = float(err.split("F1 ")[1].split()[0])
    assert f1 >= 0.90


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        ('{"turns": [{"role": "customer", "text": "hi"}]}', 'line 2: missing "id"'),
        ('{"id": "b", "turns": []}', "line 2 (id 'b'): \"turns\" must be a non-empty list"),
        ('{"id": "b", "turns": [{"role": "bot", "text": "hi"}]}', "turn 0 has role 'bot'"),
        ('{"id": "b", "turns": [{"role": "assistant", "text": "hi"}]}', "no customer turn"),
    ],
)
def test_a_bad_line_is_a_clear_error_naming_the_line(tmp_path, line, message):
    good = json.dumps({"id": "a", "turns": [{"role": "customer", "text": "hi"}]})
    path = write(tmp_path, good, line)
    with pytest.raises(CommandError) as error:
        run(path)
    assert message in str(error.value)


def test_expected_is_ignored_without_report_and_checked_with_it(tmp_path):
    odd = '{"id": "b", "turns": [{"role": "customer", "text": "hi"}], "expected": {"x": 1}}'
    path = write(tmp_path, odd)
    out, _ = run(path)
    assert json.loads(out)["id"] == "b"
    with pytest.raises(CommandError, match='line 1 .*"expected" must be'):
        run(path, "--report")


def test_report_accepts_a_single_reason_string(tmp_path):
    line = {
        "id": "r",
        "turns": [{"role": "customer", "text": "I want to talk to a human"}],
        "expected": {"escalate": True, "reason": "request"},
    }
    _, err = run(write(tmp_path, json.dumps(line)), "--report")
    assert "reason accuracy 1.000" in err


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run(tmp_path / "nope.jsonl")


def test_report_without_expected_keys_says_so(tmp_path):
    path = write(tmp_path, json.dumps({"id": "a", "turns": [{"role": "customer", "text": "hi"}]}))
    _, err = run(path, "--report")
    assert "nothing to score" in err


def test_an_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CommandError, match="no conversations"):
        run(path)


def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"id": "é"}'.encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        run(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "is missing"),
        (b"not a zip archive", "damaged"),
        (b"PK\x03\x04 truncated", "damaged"),
    ],
)
def test_a_missing_or_damaged_model_is_a_clear_error_and_changes_nothing(
    tmp_path, content, message
):
    model = tmp_path / "model.npz"
    if content is not None:
        model.write_bytes(content)
    path = write(tmp_path, json.dumps({"id": "a", "turns": [{"role": "customer", "text": "hi"}]}))
    before = sorted((p.name, p.stat().st_size) for p in tmp_path.iterdir())
    with pytest.raises(CommandError, match=message):
        run(path, "--model", str(model))
    assert sorted((p.name, p.stat().st_size) for p in tmp_path.iterdir()) == before


def test_a_model_from_another_shape_is_refused(tmp_path):
    import numpy as np

    model = tmp_path / "model.npz"
    np.savez(model, **{"request.coef": np.zeros(3), "request.calibration": np.zeros(4)})
    path = write(tmp_path, json.dumps({"id": "a", "turns": [{"role": "customer", "text": "hi"}]}))
    with pytest.raises(CommandError, match="damaged or from another version"):
        run(path, "--model", str(model))


def test_cross_source_refuses_an_unknown_source_and_a_file():
    with pytest.raises(CommandError, match="unknown source nope; the sources are own, "):
        call_command("evaluate_detection", "--cross-source", "--hold-out", "nope")
    with pytest.raises(CommandError, match="give no FILE"):
        call_command("evaluate_detection", str(DATASET), "--cross-source")
    with pytest.raises(CommandError, match="give a FILE.jsonl, or --cross-source"):
        call_command("evaluate_detection")


def test_cross_source_holds_each_source_out_and_reports_by_language_and_reason():
    """Two small line sources and one conversation set: each source is scored by a model that
    never saw it, and a held-out line that is also a training line is not scored."""
    from collections import defaultdict

    from escalation.detection.evaluation import read_conversations
    from escalation.detection.training.cross_source import format_report, run_cross_source
    from escalation.detection.training.trainer import EmbeddingStore, Line, project_examples

    by_label, lines = defaultdict(int), []
    for line in project_examples():
        key = (line.intent, line.emotion)
        if by_label[key] < 8:
            by_label[key] += 1
            source = "own" if by_label[key] % 2 else "data-train"
            lines.append(Line(line.text, line.intent, line.emotion, source, "xx", line.intent))
    copied = next(line for line in lines if line.source == "own")
    lines.append(Line(copied.text, copied.intent, copied.emotion, "data-train", "yy", "x"))
    conversations = read_conversations(DATASET.read_text(encoding="utf-8").splitlines()[:6])
    steps = []
    report = run_cross_source(
        lines, {"set": conversations}, EmbeddingStore(None), progress=steps.append
    )
    assert list(report["folds"]) == ["own", "data-train", "conversations"]
    assert report["leaks_skipped"] == 2  # the copied line, in each direction
    own = report["folds"]["own"]
    assert own["training_lines"] == sum(line.source != "own" for line in lines)
    assert own["lines"] == sum(line.source == "own" for line in lines) - 1
    assert set(own["request"]) >= {"precision", "recall", "f1"}
    assert set(own["by_language"]) == {"xx"}
    assert report["folds"]["conversations"]["set"]["conversations"] == 6
    assert [s for s in steps if s.startswith("[")] == [
        f"[{i}/3] held out: {name}; training on {n} lines"
        for i, (name, n) in enumerate(
            [
                ("own", own["training_lines"]),
                ("data-train", sum(line.source != "data-train" for line in lines)),
                ("conversations", len(lines)),
            ],
            1,
        )
    ]
    assert "Held-out figures" in format_report(report)


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_a_sensitivity_outside_0_to_1_is_a_clear_error(tmp_path, value):
    path = write(tmp_path, json.dumps({"id": "a", "turns": [{"role": "customer", "text": "hi"}]}))
    with pytest.raises(CommandError, match="--sensitivity must be between 0 and 1"):
        run(path, "--sensitivity", value)
    with pytest.raises(CommandError, match="--sensitivity must be between 0 and 1"):
        call_command("evaluate_detection", "--cross-source", "--sensitivity", value)


def test_a_higher_sensitivity_decides_as_an_assistant_set_that_way_would(tmp_path):
    from escalation.detection import DetectorSettings, Turn, detect
    from escalation.detection.policy import adjusted_threshold

    text = "can someone from billing call me?"
    intent = detect([Turn("customer", text)]).signals["intent"]
    # a borderline ask: under the trained threshold, over the threshold at sensitivity 1
    assert adjusted_threshold(intent["threshold"], 1.0) <= intent["confidence"]
    assert intent["confidence"] < intent["threshold"]
    assert detect([Turn("customer", text)], DetectorSettings(sensitivity=1.0)).decision.escalate
    path = write(tmp_path, json.dumps({"id": "a", "turns": [{"role": "customer", "text": text}]}))
    assert json.loads(run(path)[0])["escalate"] is False
    assert json.loads(run(path, "--sensitivity", "1")[0])["escalate"] is True


def test_the_cross_source_report_names_a_sensitivity_other_than_the_trained_one():
    from escalation.detection.training.cross_source import format_report

    assert "at sensitivity 0.8" in format_report(
        {"folds": {}, "leaks_skipped": 0, "sensitivity": 0.8}
    )
    assert "at sensitivity" not in format_report({"folds": {}, "leaks_skipped": 0})
