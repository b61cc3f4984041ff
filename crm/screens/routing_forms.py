"""Forms of the routing settings screen. They check the shape of what was typed; the routing
services check the values (the same errors as the admin and the API) and the view puts those
errors back on these fields."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.codes import Priority, Reason
from crm.models import ChannelKind, Team
from escalation.routing import hours
from escalation.routing.models import ROUTING_TOPICS, TeamRouting
from escalation.routing.validation import DELETED_TEAM_CHOICE

PRIORITY_CODES = Priority.codes()


class TeamRoutingForm(forms.Form):
    mode = forms.ChoiceField(label=_("Assignment"), choices=TeamRouting.Mode.choices)
    strategy = forms.ChoiceField(label=_("Strategy"), choices=TeamRouting.Strategy.choices)
    offer_first = forms.BooleanField(label=_("Offer first (the agent accepts)"), required=False)
    accept_timeout_seconds = forms.IntegerField(label=_("Accept timeout (s)"), min_value=5)
    max_missed_offers = forms.IntegerField(label=_("Missed offers before away"), min_value=1)
    time_zone = forms.CharField(label=_("Time zone"), max_length=64)
    hours_text = forms.CharField(
        label=_("Opening hours"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "mon 09:00-17:00"}),
        help_text=_("One line per interval, e.g. “mon 09:00-17:00”; empty: always open."),
    )
    holidays_text = forms.CharField(
        label=_("Holidays"),
        required=False,
        help_text=_("Dates, comma separated, e.g. 2026-12-25, 2026-12-26."),
    )
    sla_urgent = forms.IntegerField(label=_("SLA urgent (s)"), required=False, min_value=10)
    sla_high = forms.IntegerField(label=_("SLA high (s)"), required=False, min_value=10)
    sla_normal = forms.IntegerField(label=_("SLA normal (s)"), required=False, min_value=10)
    sla_low = forms.IntegerField(label=_("SLA low (s)"), required=False, min_value=10)

    @classmethod
    def for_team(cls, team: Team, data=None):
        routing = getattr(team, "routing", None) or TeamRouting(team=team)
        initial = {
            "mode": routing.mode,
            "strategy": routing.strategy,
            "offer_first": routing.offer_first,
            "accept_timeout_seconds": routing.accept_timeout_seconds,
            "max_missed_offers": routing.max_missed_offers,
            "time_zone": routing.time_zone,
            "hours_text": hours.hours_as_text(routing.weekly_hours),
            "holidays_text": ", ".join(routing.holidays or []),
            **{f"sla_{code}": (routing.sla_targets or {}).get(code) for code in PRIORITY_CODES},
        }
        return cls(data, initial=initial, prefix=f"team-{team.pk}")

    def clean_hours_text(self):
        try:
            return hours.hours_from_text(self.cleaned_data["hours_text"])
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from None

    def clean_holidays_text(self):
        parts = [p for p in self.cleaned_data["holidays_text"].replace(";", ",").split(",")]
        try:
            return hours.clean_holidays([p.strip() for p in parts if p.strip()])
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from None

    def changes(self) -> dict:
        data = self.cleaned_data
        return {
            "mode": data["mode"],
            "strategy": data["strategy"],
            "offer_first": data["offer_first"],
            "accept_timeout_seconds": data["accept_timeout_seconds"],
            "max_missed_offers": data["max_missed_offers"],
            "time_zone": data["time_zone"],
            "weekly_hours": data["hours_text"],
            "holidays": data["holidays_text"],
            "sla_targets": {
                code: data[f"sla_{code}"]
                for code in PRIORITY_CODES
                if data.get(f"sla_{code}") is not None
            },
        }

    # The service's field names → this form's fields, for its errors.
    FIELD_OF = {
        "weekly_hours": "hours_text",
        "holidays": "holidays_text",
        "sla_targets": "sla_urgent",
    }


DELETED_TEAM = {"invalid_choice": DELETED_TEAM_CHOICE}


class RoutingRuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    team = forms.ModelChoiceField(
        label=_("Team"), queryset=Team.objects.all(), error_messages=DELETED_TEAM
    )
    reasons = forms.MultipleChoiceField(
        label=_("Reasons"),
        choices=Reason.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    topics = forms.MultipleChoiceField(
        label=_("Topics"),
        choices=ROUTING_TOPICS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    channel_kinds = forms.MultipleChoiceField(
        label=_("Channels"),
        choices=ChannelKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    languages = forms.CharField(
        label=_("Languages"),
        required=False,
        help_text=_("Two-letter codes, comma separated, e.g. de, es. Empty: any."),
    )

    def clean_languages(self):
        return [p.strip().lower() for p in self.cleaned_data["languages"].split(",") if p.strip()]


class RoutingDefaultsForm(forms.Form):
    default_team = forms.ModelChoiceField(
        label=_("Default team"),
        queryset=Team.objects.all(),
        required=False,
        error_messages=DELETED_TEAM,
    )
    sla_urgent = forms.IntegerField(label=_("Urgent (s)"), min_value=10)
    sla_high = forms.IntegerField(label=_("High (s)"), min_value=10)
    sla_normal = forms.IntegerField(label=_("Normal (s)"), min_value=10)
    sla_low = forms.IntegerField(label=_("Low (s)"), min_value=10)
    age_low = forms.IntegerField(label=_("Low → normal after (s)"), required=False, min_value=30)
    age_normal = forms.IntegerField(
        label=_("Normal → high after (s)"), required=False, min_value=30
    )
    age_high = forms.IntegerField(label=_("High → urgent after (s)"), required=False, min_value=30)
    sentiment_raise_step = forms.FloatField(
        label=_("Sentiment rise that raises priority (0–1)"), min_value=0.05, max_value=1
    )

    @classmethod
    def for_settings(cls, row, data=None):
        initial = {
            "default_team": row.default_team_id,
            "sentiment_raise_step": row.sentiment_raise_step,
            **{f"sla_{c}": (row.sla_targets or {}).get(c) for c in PRIORITY_CODES},
            **{f"age_{c}": (row.ageing_seconds or {}).get(c) for c in ("low", "normal", "high")},
        }
        return cls(data, initial=initial, prefix="defaults")

    def changes(self) -> dict:
        data = self.cleaned_data
        return {
            "default_team": data["default_team"],
            "sla_targets": {c: data[f"sla_{c}"] for c in PRIORITY_CODES},
            "ageing_seconds": {
                c: data[f"age_{c}"] for c in ("low", "normal", "high") if data.get(f"age_{c}")
            },
            "sentiment_raise_step": data["sentiment_raise_step"],
        }

    FIELD_OF = {"sla_targets": "sla_urgent", "ageing_seconds": "age_low"}
