"""/api/v1/ for escalations: the queue (the CRM screen's selector), one escalation with its
summary and signals, manual escalation, take over, reassign, resolve, close; and metrics."""

from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from crm.models import ChannelKind, Team
from integrations.api_base import MAX_USER_ID, ApiView, IdField
from integrations.pagination import ApiPagination
from integrations.permissions import conversation_in_reach
from integrations.schema import error_response
from integrations.serializers import (
    AuditEventSerializer,
    ContactSerializer,
    PersonSerializer,
    PriorityField,
    QueuePlaceSerializer,
    queue_place_data,
)

from . import selectors, services
from .models import Escalation, EscalationEvent, Priority, Reason


def wait_seconds(escalation: Escalation, now: datetime) -> int:
    """Queued: how long it has waited so far. Picked up: how long it waited for the pickup."""
    if escalation.status == Escalation.Status.QUEUED:
        end = now
    else:
        end = escalation.claimed_at or escalation.closed_at or now
    return max(0, int((end - escalation.escalated_at).total_seconds()))


class TeamSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class RuleSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class EscalationPageSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        # The page's queue places in one go: a fixed number of queries, not a set per row.
        escalations = list(data)
        self.context["queue_places"] = waiting_places(escalations)
        return super().to_representation(escalations)


def waiting_places(escalations) -> dict:
    """The queue places of the queued ones of ``escalations``, by conversation id."""
    return selectors.queue_places_of(
        e.conversation_id for e in escalations if e.status == Escalation.Status.QUEUED
    )


class EscalationSerializer(serializers.Serializer):
    class Meta:
        list_serializer_class = EscalationPageSerializer

    id = serializers.IntegerField()
    conversation = serializers.IntegerField(source="conversation_id")
    status = serializers.ChoiceField(choices=Escalation.Status.choices)
    reason = serializers.ChoiceField(choices=Reason.choices)
    detail = serializers.CharField()
    priority = PriorityField()
    wait_seconds = serializers.SerializerMethodField(
        help_text="Queued: seconds waited so far. Otherwise: seconds until the first pickup."
    )
    channel = serializers.ChoiceField(
        source="conversation.channel.kind", choices=ChannelKind.choices
    )
    contact = ContactSerializer(source="conversation.contact")
    team = TeamSummarySerializer(allow_null=True)
    claimed_by = PersonSerializer(allow_null=True)
    assigned_to = PersonSerializer(
        source="claimed_by", allow_null=True, help_text="The agent who holds it (= claimed_by)."
    )
    offered_to = PersonSerializer(
        allow_null=True, help_text="The agent an automatic team offered it to, awaiting accept."
    )
    offer_expires_at = serializers.DateTimeField(allow_null=True)
    sla_due_at = serializers.DateTimeField(
        allow_null=True, help_text="When the time-to-takeover target falls due (open hours)."
    )
    sla_breached = serializers.BooleanField(help_text="Not picked up by sla_due_at.")
    routing_rule = RuleSummarySerializer(
        allow_null=True, help_text="The routing rule that chose the team, if one matched."
    )
    after_hours_until = serializers.DateTimeField(
        allow_null=True, help_text="Escalated while the team was closed: when it opens."
    )
    triggered_by = serializers.ChoiceField(choices=Escalation.Trigger.choices)
    escalated_at = serializers.DateTimeField()
    claimed_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    queue = serializers.SerializerMethodField(
        help_text="Where the customer stands while it is queued (the widget's 'You are number "
        "N' line, as the conversation's `queue`); null otherwise."
    )

    def get_wait_seconds(self, escalation) -> int:
        return wait_seconds(escalation, self.context.get("now") or timezone.now())

    @extend_schema_field(QueuePlaceSerializer(allow_null=True))
    def get_queue(self, escalation):
        places = self.context.get("queue_places")
        if places is None:  # one escalation, not a page
            places = waiting_places([escalation])
        place = places.get(escalation.conversation_id)
        if place is None or place.escalation_id != escalation.pk:
            return None
        return queue_place_data(place, self.context)


class EscalationEventSerializer(AuditEventSerializer):
    kind = serializers.ChoiceField(choices=EscalationEvent.Kind.choices)


class CardFactSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["order", "amount", "date", "email"])
    value = serializers.CharField()


class CardKnownSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["name", "email", "phone", "order", "amount", "date"])
    label = serializers.CharField(help_text="What it is, in words: 'order number'.")
    value = serializers.CharField()


class HandoffCardSerializer(serializers.Serializer):
    problem = serializers.CharField(help_text="The problem in one sentence.")
    ai_tried = serializers.CharField(help_text="What the AI offered (empty if nothing).")
    facts = CardFactSerializer(
        many=True, help_text="Order numbers, amounts, dates, emails said in the conversation."
    )
    mood = serializers.ListField(
        child=serializers.ChoiceField(
            choices=["calm", "pleased", "confused", "frustrated", "angry"]
        ),
        help_text="The customer's mood over the conversation, repeats folded: calm → frustrated.",
    )
    dont_ask = CardKnownSerializer(
        many=True, help_text="What the customer already gave: do not ask for it again."
    )
    reason = serializers.CharField(
        help_text="The escalation's reason code when the card was built."
    )
    why = serializers.CharField(help_text="Why it escalated, in words.")


class EscalationDetailSerializer(EscalationSerializer):
    summary = serializers.CharField(
        help_text="What the agent needs to know: the handoff card as plain text, one labelled "
        "line each (Problem, AI tried, Facts, Mood, Don't ask again, Escalated because)."
    )
    card = HandoffCardSerializer(
        source="handoff_card",
        allow_null=True,
        help_text="The handoff card; null for escalations from before cards.",
    )
    signals = serializers.DictField(help_text="What the detector saw (sentiment, intent...).")
    close_reason = serializers.CharField()
    ticket = serializers.SerializerMethodField()
    events = EscalationEventSerializer(many=True, help_text="The audit trail, oldest first.")

    def get_ticket(self, escalation) -> int | None:
        ticket = getattr(escalation, "ticket", None)
        return ticket.pk if ticket is not None else None


class QueueFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=Escalation.Status.choices, required=False, default=Escalation.Status.QUEUED
    )
    channel = serializers.ChoiceField(choices=ChannelKind.choices, required=False)
    priority = PriorityField(required=False)
    team = IdField(required=False)
    reason = serializers.ChoiceField(choices=Reason.choices, required=False)
    min_wait = serializers.IntegerField(
        required=False, min_value=0, max_value=10**8, help_text="Seconds waited, at least."
    )
    max_wait = serializers.IntegerField(
        required=False, min_value=0, max_value=10**8, help_text="Seconds waited, at most."
    )
    conversation = IdField(required=False)


class EscalateInputSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Reason.choices, default=Reason.MANUAL)
    priority = PriorityField(default=Priority.NORMAL)
    detail = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class ReassignInputSerializer(serializers.Serializer):
    agent = IdField(
        required=False, max_value=MAX_USER_ID, help_text="User id of the agent who gets it at once."
    )
    team = IdField(
        required=False,
        help_text="Team it moves to: its queue, or with `agent` that agent's team for it. "
        "Neither: back to the queue.",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    def validate_agent(self, value):
        user = (
            get_user_model()
            .objects.filter(pk=value, is_active=True, agent_profile__isnull=False)
            .first()
        )
        if user is None:  # a reference to nothing is a 404, like a URL to nothing
            raise exceptions.NotFound(_("No active agent with this id."))
        return user

    def validate_team(self, value):
        team = Team.objects.filter(pk=value).first()
        if team is None:
            raise exceptions.NotFound(_("No team with this id."))
        return team


class NoteInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class CloseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=300,
        help_text="Required unless the escalation was resolved first.",
    )


def escalation_queryset():
    return Escalation.objects.select_related(
        "conversation__contact",
        "conversation__channel",
        "team",
        "claimed_by__agent_profile",
        "offered_to__agent_profile",
        "routing_rule",
        "ticket",
    )


def detail_response(escalation_id: int, *, code=status.HTTP_200_OK) -> Response:
    escalation = (
        escalation_queryset().prefetch_related("events__actor__agent_profile").get(pk=escalation_id)
    )
    return Response(EscalationDetailSerializer(escalation).data, status=code)


def existing(pk: int) -> int:
    return get_object_or_404(Escalation.objects.only("id"), pk=pk).pk


class EscalationListView(ApiView):
    pagination_class = ApiPagination

    @extend_schema(
        operation_id="escalations_list",
        tags=["escalations"],
        parameters=[QueueFilterSerializer],
        responses=EscalationSerializer(many=True),
        summary="The queue: most urgent first, then longest waiting",
        description="The same rows and order as the CRM's Live Escalation screen. `status` "
        "defaults to queued.",
    )
    def get(self, request):
        filters = self.query(QueueFilterSerializer)
        now = timezone.now()
        rows = selectors.queued_escalations(
            selectors.QueueFilters(
                status=filters["status"],
                channel=filters.get("channel"),
                priority=filters.get("priority"),
                team=filters.get("team"),
                reason=filters.get("reason"),
                min_wait_seconds=filters.get("min_wait"),
                max_wait_seconds=filters.get("max_wait"),
            ),
            now=now,
        ).select_related("ticket")
        if "conversation" in filters:
            rows = rows.filter(conversation_id=filters["conversation"])
        return self.paginate(rows, EscalationSerializer, context={"now": now})


class EscalationDetailView(ApiView):
    @extend_schema(
        operation_id="escalations_retrieve",
        tags=["escalations"],
        responses=EscalationDetailSerializer,
        summary="One escalation with its summary, signals and audit trail",
    )
    def get(self, request, pk: int):
        return detail_response(existing(pk))


class EscalateConversationView(ApiView):
    @extend_schema(
        operation_id="conversations_escalate",
        tags=["escalations"],
        request=EscalateInputSerializer,
        responses={
            201: EscalationDetailSerializer,
            200: EscalationDetailSerializer,
            409: error_response("409", "The conversation is closed."),
        },
        summary="Escalate a conversation to the human queue by hand",
        description="201 with the new escalation; 200 with the active one when the conversation "
        "is already escalated (its priority is raised if the new one is higher).",
    )
    def post(self, request, pk: int):
        conversation = conversation_in_reach(request, pk)
        data = self.body(EscalateInputSerializer)
        escalation, created = services.escalate_conversation(
            conversation=conversation,
            reason=data["reason"],
            priority=data["priority"],
            triggered_by=Escalation.Trigger.API,
            detail=data["detail"],
            actor=request.user,
        )
        return detail_response(
            escalation.pk, code=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class TakeOverView(ApiView):
    @extend_schema(
        operation_id="escalations_take_over",
        tags=["escalations"],
        request=None,
        responses={
            200: EscalationDetailSerializer,
            409: error_response(
                "409",
                "already_claimed: another agent has it (`error.message` and `error.agent` name "
                "them); invalid_transition: it is resolved or closed.",
            ),
        },
        summary="Take over: the caller becomes the agent and the AI steps back",
        description="Exactly one of several concurrent callers wins. Calling again as the "
        "winner is a no-op 200.",
    )
    def post(self, request, pk: int):
        escalation = services.take_over_escalation(escalation_id=existing(pk), agent=request.user)
        return detail_response(escalation.pk)


class ReassignView(ApiView):
    @extend_schema(
        operation_id="escalations_reassign",
        tags=["escalations"],
        request=ReassignInputSerializer,
        responses={
            200: EscalationDetailSerializer,
            403: error_response("403", "Not your escalation (only its agent or a manager)."),
            409: error_response("409", "The escalation is no longer active."),
        },
        summary="Reassign to an agent, to a team's queue, or back to the queue",
    )
    def post(self, request, pk: int):
        escalation_id = existing(pk)
        data = self.body(ReassignInputSerializer)
        escalation = services.reassign_escalation(
            escalation_id=escalation_id,
            actor=request.user,
            to_agent=data.get("agent"),
            to_team=data.get("team"),
            note=data["note"],
        )
        return detail_response(escalation.pk)


class ResolveView(ApiView):
    @extend_schema(
        operation_id="escalations_resolve",
        tags=["escalations"],
        request=NoteInputSerializer,
        responses={
            200: EscalationDetailSerializer,
            403: error_response("403", "Not your escalation (only its agent or a manager)."),
            409: error_response("409", "Only a taken-over escalation can be resolved."),
        },
        summary="Resolve (the ticket is resolved too)",
    )
    def post(self, request, pk: int):
        escalation_id = existing(pk)
        data = self.body(NoteInputSerializer)
        escalation = services.resolve_escalation(
            escalation_id=escalation_id, agent=request.user, note=data["note"]
        )
        return detail_response(escalation.pk)


class CloseView(ApiView):
    @extend_schema(
        operation_id="escalations_close",
        tags=["escalations"],
        request=CloseInputSerializer,
        responses={
            200: EscalationDetailSerializer,
            400: error_response("400", "reason_required: closing unresolved needs a reason."),
            403: error_response("403", "Not your escalation (only its agent or a manager)."),
            409: error_response("409", "Already closed."),
        },
        summary="Close the escalation and end the conversation",
    )
    def post(self, request, pk: int):
        escalation_id = existing(pk)
        data = self.body(CloseInputSerializer)
        escalation = services.close_escalation(
            escalation_id=escalation_id, agent=request.user, reason=data["reason"]
        )
        return detail_response(escalation.pk)


# --- Metrics ----------------------------------------------------------------------------------


class FlexibleDateTimeField(serializers.DateTimeField):
    """Accepts a date (midnight) or a date-time; naive values are in the server's zone."""

    def to_internal_value(self, value):
        if isinstance(value, str) and len(value) == 10:
            date = serializers.DateField().to_internal_value(value)
            return timezone.make_aware(datetime.combine(date, time.min))
        return super().to_internal_value(value)


class MetricsFilterSerializer(serializers.Serializer):
    from_ = FlexibleDateTimeField(
        required=False, help_text="Start (date or date-time); default 7 days before `to`."
    )
    to = FlexibleDateTimeField(
        required=False,
        help_text="End, exclusive; default now. A `from` at or after `to` is an empty period.",
    )
    channel = serializers.ChoiceField(choices=ChannelKind.choices, required=False)
    team = IdField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # "from" is a Python keyword
        return fields

    def validate(self, attrs):
        end = attrs.get("to") or timezone.now()
        start = attrs.get("from") or end - timedelta(days=7)
        attrs["from"], attrs["to"] = start, end
        return attrs


class DurationSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)


class PeriodSerializer(serializers.Serializer):
    from_ = serializers.DateTimeField()
    to = serializers.DateTimeField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class RatingGroupSerializer(serializers.Serializer):
    id = serializers.IntegerField(required=False, help_text="The agent's user id or the team's id.")
    name = serializers.CharField(required=False)
    reason = serializers.ChoiceField(choices=Reason.choices, required=False)
    count = serializers.IntegerField()
    average = serializers.FloatField()


class SatisfactionSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Customers' ratings of escalations in the period.")
    average = serializers.FloatField(allow_null=True, help_text="Mean score, 1–5.")
    satisfied_share = serializers.FloatField(
        allow_null=True, help_text="Share of ratings that are 4 or 5 (CSAT), 0–1."
    )
    scores = serializers.DictField(
        child=serializers.IntegerField(), help_text='Ratings per score, "1" … "5".'
    )
    by_agent = RatingGroupSerializer(many=True, help_text="`id` and `name` of the agent.")
    by_team = RatingGroupSerializer(many=True, help_text="`id` and `name` of the team.")
    by_reason = RatingGroupSerializer(many=True, help_text="`reason` of the escalation.")


class MetricsSerializer(serializers.Serializer):
    period = PeriodSerializer()
    conversations = serializers.IntegerField(help_text="Conversations started in the period.")
    escalations = serializers.IntegerField()
    escalated_conversations = serializers.IntegerField()
    escalation_rate = serializers.FloatField(help_text="Escalated / started, 0–1.")
    wait_time = DurationSummarySerializer(help_text="Escalation → first pickup, seconds.")
    resolution_time = DurationSummarySerializer(help_text="Pickup → resolution, seconds.")
    reasons = serializers.DictField(child=serializers.IntegerField())
    priorities = serializers.DictField(child=serializers.IntegerField())
    satisfaction = SatisfactionSerializer(help_text="Customers' ratings (CSAT).")


class EscalationMetricsView(ApiView):
    @extend_schema(
        operation_id="metrics_escalations",
        tags=["metrics"],
        parameters=[MetricsFilterSerializer],
        responses=MetricsSerializer,
        summary=(
            "Escalation rate, wait and resolution time (mean, median, p90), reasons, "
            "customer satisfaction"
        ),
    )
    def get(self, request):
        filters = self.query(MetricsFilterSerializer)
        period = selectors.MetricsFilters(
            start=filters["from"],
            end=filters["to"],
            channel=filters.get("channel"),
            team=filters.get("team"),
        )
        metrics = selectors.escalation_metrics(period)
        metrics["satisfaction"] = selectors.satisfaction_report(period)
        return Response(metrics)
