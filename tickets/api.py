"""/api/v1/tickets/: list and read tickets; change status, assignee and priority through the
ticket services (each change leaves a TicketEvent)."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from crm.codes import Reason
from integrations.api_base import MAX_USER_ID, ApiView, IdField
from integrations.pagination import ApiPagination
from integrations.schema import error_response
from integrations.serializers import (
    AuditEventSerializer,
    ContactSerializer,
    PersonSerializer,
    PriorityField,
)

from . import services
from .models import Ticket, TicketEvent


class TicketSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField(help_text="Human-friendly reference, e.g. T-000042.")
    status = serializers.ChoiceField(choices=Ticket.Status.choices)
    priority = PriorityField()
    subject = serializers.CharField()
    reason = serializers.ChoiceField(choices=Reason.choices)
    conversation = serializers.IntegerField(source="conversation_id")
    escalation = serializers.IntegerField(source="escalation_id")
    contact = ContactSerializer()
    assignee = PersonSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)


class TicketEventSerializer(AuditEventSerializer):
    kind = serializers.ChoiceField(choices=TicketEvent.Kind.choices)


class TicketDetailSerializer(TicketSerializer):
    description = serializers.CharField()
    events = TicketEventSerializer(many=True, help_text="History, oldest first.")


class TicketFilterSerializer(serializers.Serializer):
    conversation = IdField(required=False)
    escalation = IdField(required=False)
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    priority = PriorityField(required=False)
    reason = serializers.ChoiceField(choices=Reason.choices, required=False)
    assignee = IdField(required=False, max_value=MAX_USER_ID, help_text="User id.")
    unassigned = serializers.BooleanField(required=False, help_text="Only tickets nobody has.")


class TicketUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    priority = PriorityField(required=False)
    assignee = IdField(
        required=False,
        max_value=MAX_USER_ID,
        allow_null=True,
        help_text="User id of an agent, or null.",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    def validate_assignee(self, value):
        if value is None:
            return None
        user = (
            get_user_model()
            .objects.filter(pk=value, is_active=True, agent_profile__isnull=False)
            .first()
        )
        if user is None:
            raise serializers.ValidationError(_("No active agent with this id."))
        return user

    def validate(self, attrs):
        if not {"status", "priority", "assignee"} & attrs.keys():
            raise serializers.ValidationError(
                _("Change at least one of status, priority, assignee.")
            )
        return attrs


def ticket_queryset():
    return Ticket.objects.select_related("contact", "assignee__agent_profile")


def detail(pk: int) -> Response:
    ticket = ticket_queryset().prefetch_related("events__actor__agent_profile").get(pk=pk)
    return Response(TicketDetailSerializer(ticket).data)


class TicketListView(ApiView):
    pagination_class = ApiPagination

    @extend_schema(
        operation_id="tickets_list",
        tags=["tickets"],
        parameters=[TicketFilterSerializer],
        responses=TicketSerializer(many=True),
        summary="Tickets, newest first",
    )
    def get(self, request):
        filters = self.query(TicketFilterSerializer)
        rows = ticket_queryset().order_by("-created_at", "-id")
        for name in ("conversation", "escalation", "assignee"):
            if name in filters:
                rows = rows.filter(**{f"{name}_id": filters[name]})
        for name in ("status", "priority", "reason"):
            if name in filters:
                rows = rows.filter(**{name: filters[name]})
        if filters.get("unassigned"):
            rows = rows.filter(assignee__isnull=True)
        return self.paginate(rows, TicketSerializer)


class TicketDetailView(ApiView):
    @extend_schema(
        operation_id="tickets_retrieve",
        tags=["tickets"],
        responses=TicketDetailSerializer,
        summary="One ticket with its history",
    )
    def get(self, request, pk: int):
        return detail(get_object_or_404(Ticket.objects.only("id"), pk=pk).pk)

    @extend_schema(
        operation_id="tickets_update",
        tags=["tickets"],
        request=TicketUpdateSerializer,
        responses={
            200: TicketDetailSerializer,
            409: error_response(
                "409",
                "invalid_transition: that status move is not allowed; escalation_active: the "
                "ticket's escalation is queued or claimed (resolve or close the escalation).",
            ),
        },
        summary="Change status, priority and/or assignee",
        description=(
            "Status moves: open ↔ pending, → resolved, → closed, and reopen. Status and assignee "
            "follow the escalation while it is queued or claimed: change them through "
            "/escalations/ until it is resolved, closed or cancelled (409 escalation_active)."
        ),
    )
    def patch(self, request, pk: int):
        ticket = get_object_or_404(Ticket, pk=pk)
        data = self.body(TicketUpdateSerializer)
        with transaction.atomic():
            if "assignee" in data:
                ticket = services.change_ticket_assignee(
                    ticket=ticket, assignee=data["assignee"], actor=request.user
                )
            if "priority" in data:
                ticket = services.set_ticket_priority(
                    ticket=ticket, priority=data["priority"], actor=request.user
                )
            if "status" in data:
                ticket = services.change_ticket_status(
                    ticket=ticket, status=data["status"], actor=request.user, note=data["note"]
                )
        return detail(ticket.pk)
