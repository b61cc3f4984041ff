"""/api/v1/ for routing: teams' routing settings and agents' availability, capacity and teams
(managers: the manage scope to change them), and an offered agent's accept or decline. Thin:
validate the shape, call a routing service (which checks the values), serialise."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from crm.api import AgentSerializer, agent_queryset
from crm.models import AgentProfile, Team
from integrations.api_base import MAX_USER_ID, ApiView, IdField
from integrations.models import Scope
from integrations.pagination import ApiPagination
from integrations.schema import error_response

from .api import EscalationDetailSerializer, detail_response, existing
from .routing import services as routing_services
from .routing.models import TeamRouting
from .routing.validation import MAX_ACCEPT_TIMEOUT


class WeeklyHoursSerializer(serializers.Serializer):
    day = serializers.ChoiceField(choices=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    opens = serializers.CharField(max_length=5, help_text="09:00")
    closes = serializers.CharField(max_length=5, help_text="17:00 (24:00 ends the day)")


class SlaTargetsSerializer(serializers.Serializer):
    urgent = serializers.IntegerField(required=False, min_value=10, max_value=604800)
    high = serializers.IntegerField(required=False, min_value=10, max_value=604800)
    normal = serializers.IntegerField(required=False, min_value=10, max_value=604800)
    low = serializers.IntegerField(required=False, min_value=10, max_value=604800)


class TeamSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    mode = serializers.ChoiceField(choices=TeamRouting.Mode.choices)
    strategy = serializers.ChoiceField(choices=TeamRouting.Strategy.choices)
    offer_first = serializers.BooleanField()
    accept_timeout_seconds = serializers.IntegerField()
    max_missed_offers = serializers.IntegerField()
    time_zone = serializers.CharField()
    weekly_hours = WeeklyHoursSerializer(many=True, help_text="Empty: open around the clock.")
    holidays = serializers.ListField(child=serializers.DateField())
    sla_targets = SlaTargetsSerializer(help_text="The team's own targets in seconds.")

    def to_representation(self, team):
        routing = getattr(team, "routing", None) or TeamRouting(team=team)
        data = {"id": team.pk, "name": team.name}
        for name in routing_services.TEAM_FIELDS:
            data[name] = getattr(routing, name)
        return data


class TeamPatchSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=TeamRouting.Mode.choices, required=False)
    strategy = serializers.ChoiceField(choices=TeamRouting.Strategy.choices, required=False)
    offer_first = serializers.BooleanField(required=False)
    accept_timeout_seconds = serializers.IntegerField(
        required=False, min_value=5, max_value=MAX_ACCEPT_TIMEOUT
    )
    max_missed_offers = serializers.IntegerField(required=False, min_value=1, max_value=100)
    time_zone = serializers.CharField(required=False, max_length=64)
    weekly_hours = WeeklyHoursSerializer(many=True, required=False)
    holidays = serializers.ListField(child=serializers.DateField(), required=False, max_length=400)
    sla_targets = SlaTargetsSerializer(required=False)

    def validate(self, attrs):
        if "weekly_hours" in attrs:
            attrs["weekly_hours"] = [dict(row) for row in attrs["weekly_hours"]]
        if "holidays" in attrs:
            attrs["holidays"] = [day.isoformat() for day in attrs["holidays"]]
        if "sla_targets" in attrs:
            attrs["sla_targets"] = dict(attrs["sla_targets"])
        return attrs


class AgentPatchSerializer(serializers.Serializer):
    availability = serializers.ChoiceField(
        choices=AgentProfile.Availability.choices, required=False
    )
    capacity = serializers.IntegerField(required=False, min_value=0, max_value=100)
    teams = serializers.ListField(child=IdField(), required=False, max_length=100)


def team_queryset():
    return Team.objects.select_related("routing").order_by("name", "id")


class TeamListView(ApiView):
    pagination_class = ApiPagination

    @extend_schema(
        operation_id="teams_list",
        tags=["routing"],
        responses=TeamSerializer(many=True),
        summary="Teams and how they receive work",
    )
    def get(self, request):
        return self.paginate(team_queryset(), TeamSerializer)


class TeamDetailView(ApiView):
    required_scopes = {"PATCH": Scope.MANAGE}

    @extend_schema(
        operation_id="teams_retrieve",
        tags=["routing"],
        responses=TeamSerializer,
        summary="One team's routing",
    )
    def get(self, request, pk: int):
        return Response(TeamSerializer(get_object_or_404(team_queryset(), pk=pk)).data)

    @extend_schema(
        operation_id="teams_partial_update",
        tags=["routing"],
        request=TeamPatchSerializer,
        responses=TeamSerializer,
        summary="Change a team's assignment mode, strategy, timeouts, hours or SLA targets",
        description="Needs the manage scope. Bad settings (overlapping hours, an unknown time "
        "zone, automatic assignment with no agent able to take work) are a 400 naming the field.",
    )
    def patch(self, request, pk: int):
        team = get_object_or_404(Team, pk=pk)
        changes = self.body(TeamPatchSerializer)
        routing_services.update_team_routing(team=team, **changes)
        return Response(TeamSerializer(get_object_or_404(team_queryset(), pk=pk)).data)


class AgentDetailView(ApiView):
    required_scopes = {"PATCH": Scope.MANAGE}

    @extend_schema(
        operation_id="agents_retrieve",
        tags=["agents"],
        responses=AgentSerializer,
        summary="One agent (by user id)",
    )
    def get(self, request, pk: int):
        return Response(AgentSerializer(self._profile(pk)).data)

    @extend_schema(
        operation_id="agents_partial_update",
        tags=["agents"],
        request=AgentPatchSerializer,
        responses=AgentSerializer,
        summary="Set an agent's availability, capacity or teams (managers)",
        description="Needs the manage scope. Capacity 0 for an agent of an automatic team is a "
        "400. An agent with new room gets waiting work of their automatic teams.",
    )
    def patch(self, request, pk: int):
        profile = self._profile(pk)
        data = self.body(AgentPatchSerializer)
        routing_services.update_agent_routing(
            profile=profile,
            availability=data.get("availability"),
            capacity=data.get("capacity"),
            team_ids=data.get("teams"),
        )
        return Response(AgentSerializer(self._profile(pk)).data)

    def _profile(self, pk: int) -> AgentProfile:
        if pk > MAX_USER_ID:  # beyond auth's 32-bit ids: no such agent, not a database error
            raise Http404
        return get_object_or_404(agent_queryset(), user_id=pk)


OFFER_ERRORS = {409: error_response("409", "offer_not_yours: it expired or moved on.")}


class AcceptOfferView(ApiView):
    @extend_schema(
        operation_id="escalations_accept_offer",
        tags=["escalations"],
        request=None,
        responses={200: EscalationDetailSerializer, **OFFER_ERRORS},
        summary="Accept the escalation an automatic team offered you",
    )
    def post(self, request, pk: int):
        routing_services.accept_offer(escalation_id=existing(pk), agent=request.user)
        return detail_response(pk)


class DeclineOfferView(ApiView):
    @extend_schema(
        operation_id="escalations_decline_offer",
        tags=["escalations"],
        request=None,
        responses={200: EscalationDetailSerializer, **OFFER_ERRORS},
        summary="Decline an offer: it moves to the next agent",
    )
    def post(self, request, pk: int):
        routing_services.decline_offer(escalation_id=existing(pk), agent=request.user)
        return detail_response(pk)
