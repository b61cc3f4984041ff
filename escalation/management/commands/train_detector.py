"""Train the local escalation detector and write its weights into the project.

    python manage.py train_detector [--data ../shared/data] [--output PATH]

Reads the project's own examples (escalation/detection/training/*.tsv) and, when the folder exists,
the public labelled sets in ../shared/data. Only the derived weights are written (numpy npz).
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from escalation.detection.features import WEIGHTS_PATH, load_models


class Command(BaseCommand):
    help = "Train the local escalation detector (intent + emotion classifiers) and save weights."

    def add_arguments(self, parser):
        parser.add_argument(
            "--data",
            type=Path,
            default=Path(settings.BASE_DIR).parent / "shared" / "data",
            help="folder with the shared public data sets (default: ../shared/data)",
        )
        parser.add_argument("--output", type=Path, default=WEIGHTS_PATH, help="weights file")
        parser.add_argument(
            "--no-holdout", action="store_true", help="skip the held-out accuracy check (faster)"
        )

    def handle(self, *args, data: Path, output: Path, no_holdout: bool, **options):
        from escalation.detection.training.trainer import train

        if not data.is_dir():
            self.stderr.write(f"No shared data at {data}: training on the project's examples only.")
        try:
            summary = train(
                data if data.is_dir() else None,
                output,
                progress=self.stdout.write,
                holdout=not no_holdout,
            )
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        load_models.cache_clear()
        self.stdout.write(
            self.style.SUCCESS(
                f"Trained on {summary['examples']} examples "
                f"({', '.join(f'{k}: {v}' for k, v in summary['by_source'].items())}).\n"
                f"  intent labels: {summary['intent_labels']}\n"
                f"  emotion labels: {summary['emotion_labels']}\n"
                f"  held-out accuracy: {self._accuracy(summary)}\n"
                f"  features: intent {summary['intent_features']}, "
                f"emotion {summary['emotion_features']}; "
                f"{output} ({summary['weights_bytes'] / 1024:.0f} KiB)"
            )
        )

    @staticmethod
    def _accuracy(summary: dict) -> str:
        if summary["held_out_intent_accuracy"] is None:
            return "not checked (--no-holdout)"
        return (
            f"intent {summary['held_out_intent_accuracy']:.3f}, "
            f"emotion {summary['held_out_emotion_accuracy']:.3f}"
        )
