"""Run the detector over labelled conversations, or measure it source by source.

    python manage.py evaluate_detection FILE.jsonl [--backend local|claude] [--report]
                                        [--model PATH]
    python manage.py evaluate_detection --cross-source [--hold-out SOURCE ...] [--data DIR]
                                        [--json PATH]

--cross-source trains on every source but one and tests on the one held out, for each source in
turn (own, data-train, bitext, rasa; the labelled conversation sets are never trained on and are
scored with a model trained on every line source); stdout gets the report, stderr the progress.
Nothing is written except the optional --json report.

Input: one JSON object per line, {"id": ..., "turns": [{"role", "text", "confidence"?}, ...]}
(other keys ignored). The decision is for the last customer turn in the context of the turns
before it. Stdout: one JSON object per input line — {"id", "escalate", "reason", "priority"} — and
nothing else. Stderr: progress, a summary and, with --report (lines carrying
"expected": {"escalate": bool, "reasons": [...]}), precision, recall, F1 and reason accuracy.
"""

import json
import statistics
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm.encoder import EncoderUnavailable, get_encoder
from escalation.detection import DetectorSettings, detect
from escalation.detection.evaluation import ConversationFormatError, read_conversations, score
from escalation.detection.model import MODEL_PATH, ModelUnavailable, load_model

PROGRESS_EVERY = 50


class Command(BaseCommand):
    help = "Decide escalation for each conversation in a JSON-lines file (see module docstring)."

    def add_arguments(self, parser):
        parser.add_argument(
            "file", type=Path, nargs="?", help="JSON lines, one conversation per line"
        )
        parser.add_argument("--backend", choices=["local", "claude"], default="local")
        parser.add_argument("--report", action="store_true", help="score against 'expected'")
        parser.add_argument("--model", type=Path, default=MODEL_PATH, help="model file (npz)")
        parser.add_argument(
            "--cross-source", action="store_true", help="held-out figures source by source"
        )
        parser.add_argument(
            "--hold-out",
            action="append",
            default=None,
            metavar="SOURCE",
            help="with --cross-source: only these folds (repeatable)",
        )
        parser.add_argument("--data", type=Path, default=None, help="the shared public data")
        parser.add_argument("--json", type=Path, default=None, help="also write the report here")
        parser.add_argument(
            "--sensitivity",
            type=float,
            default=0.5,
            help="an assistant's sensitivity, 0..1 (0.5: the thresholds as trained)",
        )

    def handle(
        self, *args, file, backend, report, model, cross_source, hold_out, sensitivity, **options
    ):
        if not 0.0 <= sensitivity <= 1.0:  # NaN fails too
            raise CommandError(f"--sensitivity must be between 0 and 1; got {sensitivity}")
        if cross_source:
            if file is not None:
                raise CommandError("--cross-source reads the training sources; give no FILE")
            return self._cross_source(hold_out, options["data"], options["json"], sensitivity)
        if file is None:
            raise CommandError("give a FILE.jsonl, or --cross-source")
        try:
            with file.open(encoding="utf-8") as handle:
                conversations = read_conversations(handle, with_expected=report)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{file}: not UTF-8 text") from None
        except ConversationFormatError as exc:
            raise CommandError(f"{file}: {exc}") from None
        if not conversations:
            raise CommandError(f"{file}: no conversations in it")

        settings = DetectorSettings(backend=backend, sensitivity=sensitivity)
        try:  # once, before timing: the per-conversation figures are steady-state
            detector = load_model(model)
            get_encoder()
        except (ModelUnavailable, EncoderUnavailable) as exc:
            raise CommandError(str(exc)) from None
        total = len(conversations)
        self.stderr.write(f"Evaluating {total} conversations with the {backend} backend")
        if backend == "claude":
            from crm.llm import claude_available

            if not claude_available():
                self.stderr.write("Claude is not available (no ANTHROPIC_API_KEY): local answers.")
        pairs, durations, backends, escalated = [], [], Counter(), 0
        for step, conversation in enumerate(conversations, 1):
            result = (
                detect(conversation.turns, settings)
                if model == MODEL_PATH
                else _detect_with(conversation.turns, settings, detector)
            )
            decision = result.decision
            self.stdout.write(
                json.dumps(
                    {
                        "id": conversation.id,
                        "escalate": decision.escalate,
                        "reason": decision.reason if decision.escalate else None,
                        "priority": decision.priority if decision.escalate else None,
                    },
                    ensure_ascii=False,
                )
            )
            durations.append(result.duration_ms)
            escalated += decision.escalate
            backends[result.backend] += 1
            if conversation.expected is not None:
                pairs.append((conversation.expected, (decision.escalate, decision.reason)))
            if step % PROGRESS_EVERY == 0 or step == total:
                self.stderr.write(f"[{step}/{total}] conversations decided")

        self.stderr.write(self._summary(total, durations, backends, escalated))
        if report:
            self.stderr.write(self._report(pairs, total))

    def _cross_source(self, hold_out, data, json_path, sensitivity):
        from escalation.detection.training.cross_source import (
            CONVERSATIONS,
            conversation_texts,
            format_report,
            run_cross_source,
        )
        from escalation.detection.training.trainer import (
            LINE_SOURCES,
            EmbeddingStore,
            TrainingDataError,
        )
        from escalation.management.commands.train_detector import (
            _conversation_sets,
            default_data_dir,
            embedding_cache,
            training_lines,
        )

        known = (*LINE_SOURCES, CONVERSATIONS)
        unknown = [h for h in hold_out or () if h not in known]
        if unknown:
            raise CommandError(
                f"unknown source {', '.join(unknown)}; the sources are {', '.join(known)}"
            )
        data = data or default_data_dir()
        try:
            lines = training_lines(data)
            sets = _conversation_sets()
            self.stderr.write(f"Embedding {len(lines)} training lines and the conversation sets")
            store = EmbeddingStore(embedding_cache())
            store.ensure(
                [line.text for line in lines] + conversation_texts(sets), self.stderr.write
            )
            report = run_cross_source(
                lines,
                sets,
                store,
                hold_out=hold_out,
                progress=self.stderr.write,
                settings=DetectorSettings(sensitivity=sensitivity),
            )
        except (TrainingDataError, ConversationFormatError, EncoderUnavailable) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(format_report(report))
        if json_path is not None:
            try:
                json_path.write_text(json.dumps(report, indent=1), encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {json_path}: {exc.strerror or exc}") from None
        folds = report["folds"]
        self.stderr.write(f"Summary: {len(folds)} held-out folds ({', '.join(folds)})")

    @staticmethod
    def _summary(total, durations, backends, escalated) -> str:
        if not durations:
            return "Summary: no conversations."
        ordered = sorted(durations)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        used = ", ".join(f"{name} {count}" for name, count in backends.items())
        return (
            f"Summary: {total} conversations, {escalated} escalated; answered by {used}; "
            f"{statistics.median(ordered):.2f} ms median, {p99:.2f} ms p99 per conversation"
        )

    @staticmethod
    def _report(pairs, total) -> str:
        if not pairs:
            return 'Report: no line has an "expected" key; nothing to score.'
        m = score(pairs)
        return (
            f"Report over {m['n']} labelled of {total} conversations:\n"
            f"  precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}\n"
            f"  reason accuracy {m['reason_accuracy']:.3f} (of {m['tp']} correctly escalated)\n"
            f"  tp {m['tp']}  fp {m['fp']}  fn {m['fn']}  tn {m['tn']}"
        )


def _detect_with(turns, settings, detector):
    from escalation.detection.local import detect_local

    return detect_local(turns, settings, model=detector)
