"""Run the detector over labelled conversations.

    python manage.py evaluate_detection FILE.jsonl [--backend local|claude] [--report]

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

from escalation.detection import DetectorSettings, detect
from escalation.detection.evaluation import ConversationFormatError, read_conversations, score
from escalation.detection.features import load_models

PROGRESS_EVERY = 50


class Command(BaseCommand):
    help = "Decide escalation for each conversation in a JSON-lines file (see module docstring)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="JSON lines, one conversation per line")
        parser.add_argument("--backend", choices=["local", "claude"], default="local")
        parser.add_argument("--report", action="store_true", help="score against 'expected'")

    def handle(self, *args, file: Path, backend: str, report: bool, **options):
        try:
            with file.open(encoding="utf-8") as handle:
                conversations = read_conversations(handle, with_expected=report)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{file}: not UTF-8 text") from None
        except ConversationFormatError as exc:
            raise CommandError(f"{file}: {exc}") from None

        settings = DetectorSettings(backend=backend)
        load_models()  # once, before timing: the per-conversation figures are steady-state
        total = len(conversations)
        self.stderr.write(f"Evaluating {total} conversations with the {backend} backend")
        if backend == "claude":
            from crm.llm import claude_available

            if not claude_available():
                self.stderr.write("Claude is not available (no ANTHROPIC_API_KEY): local answers.")
        pairs, durations, backends, escalated = [], [], Counter(), 0
        for step, conversation in enumerate(conversations, 1):
            result = detect(conversation.turns, settings)
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
