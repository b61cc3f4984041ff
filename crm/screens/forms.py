"""Forms of the CRM screens: they validate input; services make the changes."""

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm import customer_texts
from crm.errors import InvalidMessage
from crm.models import COMPLEXITY_TOPICS, AgentProfile, Assistant, ChannelKind, Team
from escalation.models import Priority, Reason
from escalation.selectors import MetricsFilters, QueueFilters
from tickets.models import Ticket

PRIORITY_CHOICES = [("", _("Any priority"))] + [
    (member.code, member.label) for member in sorted(Priority, reverse=True)
]
CHANNEL_CHOICES = [("", _("Any channel"))] + list(ChannelKind.choices)
WAIT_CHOICES = [
    ("", _("Any wait")),
    ("lt5", _("Under 5 minutes")),
    ("5to15", _("5–15 minutes")),
    ("gt15", _("Over 15 minutes")),
    ("gt60", _("Over an hour")),
]
WAIT_BOUNDS = {
    "lt5": (None, 300),
    "5to15": (300, 900),
    "gt15": (900, None),
    "gt60": (3600, None),
}


class TeamChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.name


class QueueFilterForm(forms.Form):
    channel = forms.ChoiceField(choices=CHANNEL_CHOICES, required=False)
    priority = forms.ChoiceField(choices=PRIORITY_CHOICES, required=False)
    wait = forms.ChoiceField(choices=WAIT_CHOICES, required=False)
    team = TeamChoiceField(queryset=Team.objects.all(), required=False, empty_label=_("Any team"))
    reason = forms.ChoiceField(
        choices=[("", _("Any reason"))] + list(Reason.choices), required=False
    )

    def queue_filters(self) -> QueueFilters:
        """The filters that validated; an invalid field is ignored (and shown as an error)."""
        data = self.cleaned_data if self.is_bound and hasattr(self, "cleaned_data") else {}
        low, high = WAIT_BOUNDS.get(data.get("wait") or "", (None, None))
        team = data.get("team")
        priority = data.get("priority")
        return QueueFilters(
            channel=data.get("channel") or None,
            priority=int(Priority.from_code(priority)) if priority else None,
            team=team.pk if team else None,
            reason=data.get("reason") or None,
            min_wait_seconds=low,
            max_wait_seconds=high,
        )


class TicketFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", _("Any status"))] + list(Ticket.Status.choices), required=False
    )
    priority = forms.ChoiceField(choices=PRIORITY_CHOICES, required=False)
    assignee = forms.ChoiceField(required=False)

    def __init__(self, *args, agents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [
            ("", _("Anyone")),
            ("me", _("Me")),
            ("none", _("Unassigned")),
        ] + [(str(profile.user_id), profile.display_name) for profile in agents]


class CloseForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


class ReassignForm(forms.Form):
    """``target``: ``queue``, ``agent:<user id>`` or ``team:<team id>``."""

    target = forms.CharField(max_length=40)
    note = forms.CharField(max_length=500, required=False)


PERIOD_CHOICES = [
    ("7", _("Last 7 days")),
    ("30", _("Last 30 days")),
    ("90", _("Last 90 days")),
    ("1", _("Today")),
]


class AnalyticsFilterForm(forms.Form):
    period = forms.ChoiceField(choices=PERIOD_CHOICES, required=False)
    start = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"})
    )
    channel = forms.ChoiceField(choices=CHANNEL_CHOICES, required=False)
    team = TeamChoiceField(queryset=Team.objects.all(), required=False, empty_label=_("Any team"))

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError(_("The end date is before the start date."))
        return data

    def metrics_filters(self, *, now: datetime | None = None) -> MetricsFilters:
        """From/To dates (whole days, either may be open) win over the preset period."""
        data = dict(getattr(self, "cleaned_data", {}))
        if self.is_bound and self.non_field_errors():  # dates in the wrong order: ignore them
            data.pop("start", None)
            data.pop("end", None)
        now = now or timezone.now()
        days = int(data.get("period") or 7)
        end = now
        team = data.get("team")
        channel = data.get("channel") or None
        if data.get("start") or data.get("end"):
            zone = timezone.get_current_timezone()
            first = data.get("start") or (timezone.localdate(now) - timedelta(days=days))
            last = data.get("end") or timezone.localdate(now)
            return MetricsFilters(
                start=timezone.make_aware(datetime.combine(first, time.min), zone),
                end=timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min), zone),
                channel=channel,
                team=team.pk if team else None,
            )
        if days == 1:
            start = timezone.make_aware(
                datetime.combine(timezone.localdate(now), time.min), timezone.get_current_timezone()
            )
        else:
            start = now - timedelta(days=days)
        team = data.get("team")
        return MetricsFilters(
            start=start,
            end=end,
            channel=data.get("channel") or None,
            team=team.pk if team else None,
        )


class CustomerTextsForm(forms.Form):
    """The customer texts of one language: one field per kind, the built-in default shown when
    there is no override. Empty resets a text to its default; an unknown placeholder is a field
    error naming the allowed ones."""

    def __init__(self, *args, language: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.language = language
        saved = customer_texts.overrides(language)
        for kind in customer_texts.KINDS:
            allowed = " ".join("{" + name + "}" for name in kind.placeholders)
            self.fields[kind.code] = forms.CharField(
                label=kind.label,
                required=False,
                max_length=customer_texts.MAX_CHARS,
                initial=saved.get(kind.code) or customer_texts.default_text(kind.code, language),
                help_text=f"{kind.when} {allowed}".strip(),
                widget=forms.Textarea(attrs={"rows": 2}),
            )

    def clean(self):
        cleaned = super().clean()
        for kind in customer_texts.KINDS:
            text = cleaned.get(kind.code)
            if text and text.strip():
                try:
                    cleaned[kind.code] = customer_texts.validate(kind.code, text)
                except InvalidMessage as error:
                    self.add_error(kind.code, error.message)
        return cleaned


class AssistantSettingsForm(forms.Form):
    """An assistant's "Agent Framework" section: the handoff switch and how detection decides."""

    handoff_enabled = forms.BooleanField(required=False, label=_("Enable Human Handoff"))
    sensitivity = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        label=_("Sensitivity"),
        widget=forms.NumberInput(attrs={"type": "range", "step": "0.05", "min": "0", "max": "1"}),
    )
    backend = forms.ChoiceField(choices=Assistant.Backend.choices, label=_("Backend"))
    claude_band_low = forms.FloatField(
        min_value=0.0, max_value=1.0, label=_("Claude when the local probability is from")
    )
    claude_band_high = forms.FloatField(min_value=0.0, max_value=1.0, label=_("to"))
    sentiment_threshold = forms.FloatField(
        min_value=0.0, max_value=1.0, label=_("Sentiment threshold (0–1)")
    )
    confidence_threshold = forms.FloatField(
        min_value=0.0, max_value=1.0, label=_("Low-confidence threshold (0–1)")
    )
    loop_threshold = forms.IntegerField(min_value=1, max_value=10, label=_("Loop repeats"))
    always_human_topics = forms.MultipleChoiceField(
        choices=COMPLEXITY_TOPICS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Topics that always need a human"),
    )

    def __init__(self, *args, claude_available: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.claude_available = claude_available

    def clean(self):
        data = super().clean()
        low, high = data.get("claude_band_low"), data.get("claude_band_high")
        if low is not None and high is not None and not low < high:
            self.add_error("claude_band_high", _("The band's end must be above its start."))
        if data.get("backend", "local") != Assistant.Backend.LOCAL and not self.claude_available:
            self.add_error(
                "backend",
                _("Claude needs ANTHROPIC_API_KEY set on the server; choose Local until it is."),
            )
        return data


class AgentPreferencesForm(forms.Form):
    notify_via = forms.ChoiceField(choices=AgentProfile.NotifyVia.choices)
    availability = forms.ChoiceField(choices=AgentProfile.Availability.choices, required=False)


class AvailabilityForm(forms.Form):
    availability = forms.ChoiceField(choices=AgentProfile.Availability.choices)
