"""Train the local escalation detector and write its model and model card into the project.

    python manage.py train_detector [--data ../shared/data] [--output PATH] [--card PATH]
                                    [--no-holdout] [--examples DIR] [--cache PATH]
                                    [--with-verdicts]

Reads the project's examples (escalation/detection/training/examples_*.tsv) and, when the folder
exists, the public sets in ../shared/data; embeds every line with the sentence encoder; measures
held-out figures source by source (``evaluate_detection --cross-source`` does the same alone);
fits the heads on everything and writes ``model.npz`` and ``MODEL_CARD.md``. Nothing is written
unless every step succeeded.

``--with-verdicts`` adds the agents' answers to "Was handing this over needed?" from the database
(``trainer.verdict_lines``): a source of its own that every fold trains on and none holds out.
"""

import os
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from escalation.detection.model import MODEL_PATH, load_model

CARD_PATH = MODEL_PATH.with_name("MODEL_CARD.md")


def default_data_dir() -> Path:
    return Path(settings.BASE_DIR).parent / "shared" / "data"


def conversation_set_paths() -> dict[str, Path]:
    data = Path(settings.BASE_DIR) / "tests" / "data"
    return {
        "conversations": data / "escalation_conversations.jsonl",
        "multilingual-heldout": data / "escalation_multilingual_heldout.jsonl",
    }


def held_out_texts() -> set[str]:
    """The customer turns of the labelled conversation sets: never trained on."""
    from escalation.detection.features import text_key

    texts = set()
    for conversations in _conversation_sets().values():
        for conversation in conversations:
            texts.update(text_key(t.text) for t in conversation.turns if t.role == "customer")
    return texts - {""}


def training_lines(data: Path | None, examples: Path | None = None, verdicts=()):
    """What ``train_detector`` trains on (and ``--cross-source`` rotates)."""
    from escalation.detection.training.trainer import TRAINING_DIR, read_sources

    return read_sources(
        data if data is not None and data.is_dir() else None,
        examples or TRAINING_DIR,
        held_out=held_out_texts(),
        verdicts=verdicts,
    )


def judged_handovers(say) -> tuple[list, dict]:
    """The agents' verdicts as training lines, with their counts; a ``CommandError`` when there
    is nothing to learn from."""
    from escalation.detection.training.trainer import VERDICT_REASONS, verdict_lines
    from escalation.selectors import verdict_training_rows

    rows = verdict_training_rows()
    if not rows:
        raise CommandError(
            "--with-verdicts: no handover has been judged yet (agents answer 'Was handing this "
            "over needed?' after resolving or closing one); train without the flag"
        )
    lines, report = verdict_lines(rows)
    say(f"  {report['judged']} judged handovers: {report['used'] or 'none usable'}")
    if report["skipped"]:
        say(f"  left out: {report['skipped']}")
    if not lines:
        raise CommandError(
            f"--with-verdicts: none of the {report['judged']} judged handovers can train a head "
            f"(only {', '.join(VERDICT_REASONS)} verdicts do); train without the flag"
        )
    return lines, report


def embedding_cache() -> Path:
    return Path(settings.BASE_DIR) / ".cache" / "embeddings.npz"


class Command(BaseCommand):
    help = "Train the local escalation detector (heads over the sentence encoder)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--data", type=Path, default=None, help="the shared public data (../shared/data)"
        )
        parser.add_argument("--output", type=Path, default=MODEL_PATH, help="model file (npz)")
        parser.add_argument("--card", type=Path, default=CARD_PATH, help="model card (markdown)")
        parser.add_argument(
            "--no-holdout", action="store_true", help="skip the cross-source figures (faster)"
        )
        parser.add_argument(
            "--cache",
            type=Path,
            default=None,
            help="embeddings kept between runs (default: .cache/embeddings.npz)",
        )
        parser.add_argument(
            "--examples",
            type=Path,
            default=None,
            help="folder of examples_*.tsv (default: escalation/detection/training)",
        )
        parser.add_argument(
            "--with-verdicts",
            action="store_true",
            help="add the agents' 'was handing over needed?' answers from the database",
        )

    def handle(
        self, *args, data, output, card, no_holdout, examples, cache, with_verdicts, **options
    ):
        from crm.encoder import EncoderUnavailable
        from escalation.detection.evaluation import ConversationFormatError
        from escalation.detection.training import model_card
        from escalation.detection.training.cross_source import (
            conversation_texts,
            format_report,
            run_cross_source,
        )
        from escalation.detection.training.trainer import (
            TRAINING_DIR,
            EmbeddingStore,
            TrainingDataError,
            counts,
            fit_model,
        )

        started = time.monotonic()
        data = data or default_data_dir()
        examples = examples or TRAINING_DIR
        steps = 5
        say = self.stdout.write
        try:
            say(f"[1/{steps}] reading training lines")
            if not data.is_dir():
                say(f"  no shared data at {data}: the project's examples only")
            if not examples.is_dir():
                raise CommandError(f"no examples folder at {examples}")
            verdicts, verdict_report = judged_handovers(say) if with_verdicts else ([], None)
            lines = training_lines(data, examples, verdicts)
            if not lines:
                raise CommandError(f"no training lines in {examples}")
            sizes = counts(lines)
            if verdict_report is not None:
                kept = sizes["by_source"].get("verdicts", 0)
                sizes["verdicts"] = {**verdict_report, "lines": kept}
                say(f"  {kept} verdict lines after removing duplicates and held-out texts")
            say(f"  {sizes['lines']} lines: {sizes['by_source']}")
            sets = {} if no_holdout else _conversation_sets()
            say(f"[2/{steps}] embedding with the sentence encoder")
            store = EmbeddingStore(cache or embedding_cache())
            store.ensure([line.text for line in lines] + conversation_texts(sets), say)
            if no_holdout:
                say(f"[3/{steps}] held-out figures skipped (--no-holdout)")
                report = None
            else:
                say(f"[3/{steps}] held-out figures, one source left out at a time")
                report = run_cross_source(lines, sets, store, progress=say)
            say(f"[4/{steps}] fitting the heads on every line")
            model, fit_report = fit_model(lines, store, progress=say)
            say(f"[5/{steps}] writing {output} and {card}")
            card_data = model_card.card_data(lines, sizes, fit_report, report)
            model = type(model)(**{**model.__dict__, "card": card_data})
            _write_atomically(output, model.save)
            _write_atomically(card, lambda p: p.write_text(model_card.render(card_data)))
        except (TrainingDataError, ConversationFormatError, EncoderUnavailable) as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(
                f"{getattr(exc, 'filename', '') or ''} {exc.strerror or exc}"
            ) from None
        load_model.cache_clear()
        if report is not None:
            say(format_report(report))
        thresholds = {name: h["threshold"] for name, h in fit_report["heads"].items()}
        self.stdout.write(
            self.style.SUCCESS(
                f"Trained on {sizes['lines']} lines in {time.monotonic() - started:.0f} s; "
                f"thresholds (chosen on validation) {thresholds}; loop similarity "
                f"{model.loop_similarity:.3f}; wrote {output} "
                f"({output.stat().st_size / 1024:.0f} KiB) and {card}"
            )
        )


def _conversation_sets():
    from escalation.detection.evaluation import read_conversations

    sets = {}
    for name, path in conversation_set_paths().items():
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                sets[name] = read_conversations(handle)
    return sets


def _write_atomically(path: Path, write) -> None:
    """Write next to ``path`` and rename over it, so a failure leaves the old file as it was."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
