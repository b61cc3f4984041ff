"""What detection would do with an assistant's current settings, on the conversations stored.

    python manage.py replay_detection --since 30d [--assistant NAME_OR_ID] [--json]

Replays each conversation's customer messages through the local detector (never Claude) up to
the first that would hand over, and prints the predicted escalation rate by reason and by
channel with sample conversations. Read-only: nothing is stored or sent. The Settings page's
"Replay stored conversations" button runs the same as a job.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from crm.models import Assistant
from escalation import replay

PROGRESS_EVERY = 10


class Command(BaseCommand):
    help = "Predict the escalation rate of stored conversations under the current settings."

    def add_arguments(self, parser):
        parser.add_argument("--since", default="30d", help="how far back: 30d, 12h, 2w")
        parser.add_argument(
            "--assistant", help="name or id (default: every assistant, each on its own)"
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print the tallies as JSON"
        )

    def handle(self, *args, since: str, assistant: str | None, as_json: bool, **options):
        try:
            start = replay.parse_since(since)
            assistants = (
                [replay.find_assistant(assistant)]
                if assistant is not None
                else list(Assistant.objects.order_by("pk"))
            )
        except replay.ReplayInputError as exc:
            raise CommandError(str(exc)) from None
        if not assistants:
            raise CommandError("No assistants to replay; create one in Settings or the admin.")
        tallies = {}
        for each in assistants:
            tallies[each.name] = self.replay_one(each, start)
        if as_json:
            self.stdout.write(json.dumps(tallies, ensure_ascii=False, indent=2))

    def replay_one(self, assistant: Assistant, start) -> dict:
        settings = replay.replay_settings(assistant)
        conversations = list(
            replay.conversations_to_replay(assistant, start).select_related("channel")
        )
        total = len(conversations)
        self.stderr.write(
            f"{assistant.name}: replaying {total} conversations since {start:%Y-%m-%d %H:%M}"
        )
        tally = replay.empty_tally()
        for step, conversation in enumerate(conversations, 1):
            replay.add_outcome(tally, replay.replay_conversation(conversation, settings))
            if step % PROGRESS_EVERY == 0 or step == total:
                self.stderr.write(f"  [{step}/{total}] {tally['escalated']} would escalate")
        tally["rate"] = replay.rate(tally["escalated"], tally["conversations"])
        tally["actual_escalated"] = replay.actual_escalations(assistant, start)
        tally["actual_rate"] = replay.rate(tally["actual_escalated"], tally["conversations"])
        self.stderr.write(self.summary(assistant, tally))
        return tally

    def summary(self, assistant: Assistant, tally: dict) -> str:
        n = tally["conversations"]
        lines = [
            f"{assistant.name}: {tally['escalated']} of {n} conversations would escalate "
            f"({100 * tally['rate']:.1f}%; detection handed over {100 * tally['actual_rate']:.1f}%)"
        ]
        for reason, count in sorted(tally["by_reason"].items(), key=lambda item: -item[1]):
            lines.append(f"  reason {reason:<15} {count:>5}  {100 * replay.rate(count, n):5.1f}%")
        for channel, row in sorted(tally["by_channel"].items()):
            share = replay.rate(row["escalated"], row["conversations"])
            lines.append(
                f"  channel {channel:<14} {row['escalated']:>5} of {row['conversations']:<5} "
                f"{100 * share:5.1f}%"
            )
        for sample in tally["samples"]:
            lines.append(
                f"  e.g. #{sample['conversation_id']} ({sample['reason']}): {sample['text'][:80]}"
            )
        return "\n".join(lines)
