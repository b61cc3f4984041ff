"""`manage.py train_detector`: works for a newcomer without ../shared, writes weights that load
without pickle, and the committed weights match the training code's features."""

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from escalation.detection.features import WEIGHTS_PATH, load_models
from escalation.detection.training.trainer import INTENTS, own_examples


def test_trains_on_the_projects_own_examples_when_shared_data_is_absent(tmp_path):
    output = tmp_path / "weights.npz"
    out, err = StringIO(), StringIO()
    call_command(
        "train_detector", "--data", str(tmp_path / "missing"), "--output", str(output),
        "--no-holdout",
        stdout=out, stderr=err,
    )  # fmt: skip
    assert "own examples only" in out.getvalue()
    assert "[6/6]" in out.getvalue() and "held-out accuracy" in out.getvalue()
    models = load_models(output)
    probabilities = models["intent"].predict_proba("quiero hablar con una persona")
    assert max(probabilities, key=probabilities.get) == "request"
    with np.load(output, allow_pickle=False) as data:  # plain arrays, no pickled objects
        assert all(data[key].dtype != object for key in data.files)


def test_own_examples_cover_every_label_in_six_languages():
    examples = own_examples()
    assert {e.intent for e in examples} == set(INTENTS)
    requests = [e.text for e in examples if e.intent == "request"]
    for word in ("person", "persona", "atendente", "conseiller", "Mitarbeiter", "operatore"):
        assert any(word in text for text in requests), word


def test_committed_weights_load_and_agree_with_the_feature_code():
    models = load_models(WEIGHTS_PATH)
    intent = models["intent"]
    assert intent.classes[-1] == "other" and "request" in intent.classes
    assert "w:human" in intent.index  # the vocabulary is made of features.analyze's output


def test_no_training_example_is_a_turn_of_a_held_out_set():
    import json
    from pathlib import Path

    datasets = sorted((Path(__file__).resolve().parent.parent / "data").glob("*.jsonl"))
    assert len(datasets) >= 2  # the labelled set and the multilingual held-out set
    turns = {
        turn["text"].strip().lower()
        for dataset in datasets
        for line in dataset.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for turn in json.loads(line)["turns"]
    }
    leaked = [e.text for e in own_examples() if e.text.strip().lower() in turns]
    assert leaked == []


def test_multilingual_examples_name_a_language_and_cover_the_languages_customers_write_in():
    examples = [e for e in own_examples() if e.source.startswith("examples_multilingual_")]
    assert examples and all(e.lang for e in examples)
    languages = {e.lang for e in examples}
    fifteen = "en es pt fr de it ja zh ko ar hi ru tr pl nl"
    assert set(fifteen.split(" ")) <= languages
    for language in languages:
        lines = [e for e in examples if e.lang == language]
        hard_negatives = [e for e in lines if (e.intent, e.emotion) == ("other", "neutral")]
        assert any(e.intent == "request" for e in lines), language
        assert len(hard_negatives) * 3 >= len(lines), language  # a third asks for no one


def test_a_language_file_line_without_its_four_fields_names_file_and_line(tmp_path):
    header = "# lang\tintent\temotion\ttext\n"
    (tmp_path / "examples_x.tsv").write_text(
        header + "nl\trequest\tneutral\tmag ik iemand spreken\nnl\trequest\tneutral\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"examples_x\.tsv:3: expected lang<TAB>intent"):
        own_examples(tmp_path)
    (tmp_path / "examples_x.tsv").write_text(header + "Dutch\tother\tneutral\tok\n", "utf-8")
    with pytest.raises(ValueError, match=r"examples_x\.tsv:2: 'Dutch' is not an ISO"):
        own_examples(tmp_path)
    (tmp_path / "examples_x.tsv").write_text(
        header + "nl\tother\tneutral\tprima, dank je\n", "utf-8"
    )
    [example] = own_examples(tmp_path)
    assert (example.lang, example.intent, example.text) == ("nl", "other", "prima, dank je")
