"""/api/v1/ for conversations, their messages and agents. Thin: validate, call a service or a
selector, serialise. Customer tokens reach one conversation (its detail and messages) only."""

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response

from integrations.api_base import MAX_ID, ApiView, IdField
from integrations.authentication import ApiTokenAuthentication, CustomerTokenAuthentication
from integrations.pagination import ApiPagination
from integrations.permissions import conversation_in_reach, conversation_queryset, is_customer
from integrations.schema import error_response
from integrations.serializers import (
    ContactSerializer,
    PersonSerializer,
    QueuePlaceSerializer,
    StrictBooleanField,
    queue_place_data,
)
from integrations.throttles import (
    ApiCallerThrottle,
    ConversationStartThrottle,
    CustomerMessageThrottle,
)

from . import realtime, selectors, services
from .errors import DomainError
from .models import AgentProfile, ChannelKind, Conversation, Message


class NotAnAgent(DomainError):
    code = "not_an_agent"
    status = 403


def max_message_chars() -> int:
    return settings.LIVE_ESCALATION["MAX_MESSAGE_CHARS"]


# --- Serializers ------------------------------------------------------------------------------


class ChannelSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    name = serializers.CharField()


class VisitorContextSerializer(serializers.Serializer):
    page_url = serializers.CharField(help_text="The page the chat started on (http(s)).")
    referrer = serializers.CharField(help_text="The page that led there, if the browser said.")
    language = serializers.CharField(
        source="browser_language", help_text="The browser's language tag, e.g. pt-BR."
    )
    time_zone = serializers.CharField(help_text="The browser's IANA time zone.")


def waiting_places(conversations) -> dict:
    """The queue places of those of ``conversations`` waiting for an agent, by id."""
    from escalation.selectors import queue_places_of

    return queue_places_of(
        c.pk for c in conversations if c.mode == Conversation.Mode.AWAITING_AGENT
    )


class ConversationPageSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        # The page's queue places in one go: a fixed number of queries, not a set per row.
        conversations = list(data)
        self.context["queue_places"] = waiting_places(conversations)
        return super().to_representation(conversations)


class ConversationSerializer(serializers.Serializer):
    class Meta:
        list_serializer_class = ConversationPageSerializer

    id = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=Conversation.Mode.choices)
    channel = ChannelSummarySerializer()
    contact = ContactSerializer()
    visitor = VisitorContextSerializer(
        source="*",
        help_text="What the website widget reported when the chat started (empty strings "
        "elsewhere): context from the customer's browser, never identity.",
    )
    team = serializers.IntegerField(source="team_id", allow_null=True)
    assigned_agent = PersonSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    last_message_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    queue = serializers.SerializerMethodField(
        help_text="Where the customer stands while waiting for an agent (the widget's 'You "
        "are number N' line); null when not waiting."
    )

    @extend_schema_field(QueuePlaceSerializer(allow_null=True))
    def get_queue(self, conversation):
        places = self.context.get("queue_places")
        if places is None:  # one conversation, not a page
            places = waiting_places([conversation])
        return queue_place_data(places.get(conversation.pk), self.context)


class ConversationCreatedSerializer(ConversationSerializer):
    customer_token = serializers.CharField(
        help_text="Lets the customer (or your bridge) read and post this conversation's messages "
        "with the X-Customer-Token header. Shown only here."
    )
    first_message = serializers.IntegerField(
        source="first_message_id", allow_null=True, help_text="Id of the first message, if any."
    )


class ContactInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    external_id = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="How your system identifies the customer; the same id finds the same contact.",
    )


class ConversationStartSerializer(serializers.Serializer):
    channel = serializers.CharField(
        max_length=40, help_text="A channel's key, or a channel kind (website, api, whatsapp...)."
    )
    contact = ContactInputSerializer()
    text = serializers.CharField(
        required=False,
        trim_whitespace=True,
        help_text="The customer's first message (optional).",
    )

    def validate_text(self, value):
        return _clean(value)


def _clean(text: str) -> str:
    try:
        return services.clean_text(text)
    except DomainError as exc:
        raise serializers.ValidationError(exc.message) from None


class ConversationFilterSerializer(serializers.Serializer):
    channel = serializers.CharField(
        required=False, max_length=40, help_text="Channel kind or channel key."
    )
    mode = serializers.ChoiceField(choices=Conversation.Mode.choices, required=False)
    team = IdField(required=False)
    contact_email = serializers.EmailField(required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation = serializers.IntegerField(source="conversation_id")
    sender = serializers.ChoiceField(choices=Message.Sender.choices)
    author_name = serializers.CharField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()
    # Staff only (absent for customer tokens):
    is_private_note = serializers.BooleanField(required=False)
    confidence = serializers.FloatField(required=False, allow_null=True)
    delivery_status = serializers.ChoiceField(
        choices=Message.Delivery.choices,
        required=False,
        help_text="For WhatsApp/Instagram replies: pending, sent or failed.",
    )
    delivery_error = serializers.CharField(required=False)

    STAFF_ONLY = ("is_private_note", "confidence", "delivery_status", "delivery_error")

    def to_representation(self, message):
        # What the customer socket sends (realtime.customer_message_payload), the time in the
        # API's format; staff also get the flags and delivery details.
        data = realtime.customer_message_payload(message) | {
            "created_at": serializers.DateTimeField().to_representation(message.created_at),
        }
        if not self.context.get("customer"):
            data.update(
                is_private_note=message.is_private_note,
                confidence=message.confidence,
                delivery_status=message.delivery_status,
                delivery_error=message.delivery_error,
            )
        return data


class MessageFilterSerializer(serializers.Serializer):
    after = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_ID,
        help_text="Only messages with a greater id (catch-up).",
    )


class CustomerMessageInputSerializer(serializers.Serializer):
    text = serializers.CharField(trim_whitespace=True)
    external_id = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Your id for this message: sending it again returns the stored message (200).",
    )

    def validate_text(self, value):
        return _clean(value)


class AgentMessageInputSerializer(serializers.Serializer):
    text = serializers.CharField(trim_whitespace=True)
    private_note = StrictBooleanField(
        required=False, default=False, help_text="Staff only, never sent to the customer."
    )

    def validate_text(self, value):
        return _clean(value)


class AgentSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="user_id", help_text="The agent's user id.")
    username = serializers.CharField(source="user.username")
    name = serializers.CharField(source="display_name")
    role = serializers.ChoiceField(choices=AgentProfile.Role.choices)
    availability = serializers.ChoiceField(choices=AgentProfile.Availability.choices)
    capacity = serializers.IntegerField()
    teams = serializers.SerializerMethodField()

    def get_teams(self, profile) -> list[int]:
        return [team.pk for team in profile.teams.all()]


class AgentFilterSerializer(serializers.Serializer):
    availability = serializers.ChoiceField(
        choices=AgentProfile.Availability.choices, required=False
    )
    team = IdField(required=False)


class AvailabilityInputSerializer(serializers.Serializer):
    availability = serializers.ChoiceField(choices=AgentProfile.Availability.choices)


# --- Views ------------------------------------------------------------------------------------


def agent_queryset():
    return AgentProfile.objects.select_related("user").prefetch_related("teams")


CUSTOMER_AUTH = [ApiTokenAuthentication, SessionAuthentication, CustomerTokenAuthentication]


class ConversationListView(ApiView):
    pagination_class = ApiPagination
    throttle_classes = [ApiCallerThrottle, ConversationStartThrottle]

    @extend_schema(
        operation_id="conversations_list",
        tags=["conversations"],
        parameters=[ConversationFilterSerializer],
        responses=ConversationSerializer(many=True),
        summary="List conversations, newest first",
    )
    def get(self, request):
        filters = self.query(ConversationFilterSerializer)
        rows = conversation_queryset().order_by("-created_at", "-id")
        if "channel" in filters:
            rows = rows.filter(
                Q(channel__kind=filters["channel"]) | Q(channel__key=filters["channel"])
            )
        if "mode" in filters:
            rows = rows.filter(mode=filters["mode"])
        if "team" in filters:
            rows = rows.filter(team_id=filters["team"])
        if "contact_email" in filters:
            rows = rows.filter(contact__email__iexact=filters["contact_email"])
        if "created_after" in filters:
            rows = rows.filter(created_at__gte=filters["created_after"])
        if "created_before" in filters:
            rows = rows.filter(created_at__lt=filters["created_before"])
        return self.paginate(rows, ConversationSerializer)

    @extend_schema(
        operation_id="conversations_create",
        tags=["conversations"],
        request=ConversationStartSerializer,
        responses={
            201: ConversationCreatedSerializer,
            404: error_response("404", "No active channel with this key or kind."),
        },
        summary="Start a conversation with a customer's first message",
        description="The AI (or the human queue, if the first message already needs a person) "
        "answers as on any channel. Throttled per caller.",
    )
    def post(self, request):
        data = self.body(ConversationStartSerializer)
        channel = services.find_channel(data["channel"])
        with transaction.atomic():  # a refused first message leaves no orphan contact behind
            contact = services.find_or_create_contact(
                channel_kind=channel.kind,
                name=data["contact"]["name"],
                email=data["contact"]["email"],
                external_id=data["contact"]["external_id"],
            )
            conversation = services.start_conversation(
                channel=channel, contact=contact, text=data.get("text")
            )
        conversation = conversation_queryset().get(pk=conversation.pk)  # mode may have moved on
        conversation.first_message_id = (
            conversation.messages.order_by("id").values_list("id", flat=True).first()
        )
        return Response(
            ConversationCreatedSerializer(conversation).data, status=status.HTTP_201_CREATED
        )


class ConversationDetailView(ApiView):
    authentication_classes = CUSTOMER_AUTH
    allow_customer = True

    @extend_schema(
        operation_id="conversations_retrieve",
        tags=["conversations"],
        responses=ConversationSerializer,
        summary="Read one conversation (API token, or its own X-Customer-Token)",
    )
    def get(self, request, pk: int):
        return Response(ConversationSerializer(conversation_in_reach(request, pk)).data)


class MessageListView(ApiView):
    authentication_classes = CUSTOMER_AUTH
    throttle_classes = [ApiCallerThrottle, CustomerMessageThrottle]
    pagination_class = ApiPagination
    allow_customer = True

    @extend_schema(
        operation_id="conversations_messages_list",
        tags=["conversations"],
        parameters=[MessageFilterSerializer],
        responses=MessageSerializer(many=True),
        summary="Messages of a conversation, oldest first",
        description="With `?after=<message id>`, only newer ones (poll or catch up). Customer "
        "tokens never see private notes or delivery details.",
    )
    def get(self, request, pk: int):
        conversation = conversation_in_reach(request, pk)
        filters = self.query(MessageFilterSerializer)
        customer = is_customer(request)
        rows = selectors.messages_after(
            conversation.pk, filters.get("after", 0), private_notes=not customer
        )
        return self.paginate(rows, MessageSerializer, context={"customer": customer})

    @extend_schema(
        operation_id="conversations_messages_create",
        tags=["conversations"],
        request=CustomerMessageInputSerializer,
        responses={201: MessageSerializer, 200: MessageSerializer},
        summary="Post a customer message",
        description="As the customer: with an API token (write scope) or the conversation's "
        "X-Customer-Token. A closed conversation reopens with the AI. Throttled per "
        "conversation.",
    )
    def post(self, request, pk: int):
        conversation = conversation_in_reach(request, pk)
        data = self.body(CustomerMessageInputSerializer)
        external_id = data.get("external_id") or None
        if external_id:
            existing = Message.objects.filter(
                channel_id=conversation.channel_id, provider_message_id=external_id
            ).first()
            if existing is not None:
                if existing.conversation_id != conversation.pk:
                    raise serializers.ValidationError(
                        {"external_id": [_("This id belongs to another conversation.")]}
                    )
                return Response(
                    MessageSerializer(existing, context={"customer": is_customer(request)}).data
                )
        message = services.receive_customer_message(
            conversation=conversation, text=data["text"], provider_message_id=external_id
        )
        return Response(
            MessageSerializer(message, context={"customer": is_customer(request)}).data,
            status=status.HTTP_201_CREATED,
        )


class AgentMessageView(ApiView):
    @extend_schema(
        operation_id="conversations_agent_messages_create",
        tags=["conversations"],
        request=AgentMessageInputSerializer,
        responses={
            201: MessageSerializer,
            403: error_response(
                "403", "not_assigned: take the conversation over before replying; or scope."
            ),
            409: error_response(
                "409", "reply_window_closed: WhatsApp's 24-hour window has closed."
            ),
        },
        summary="Reply as the agent (the token's owner), or add a private note",
        description="A reply needs the conversation to be taken over by the caller; on "
        "WhatsApp/Instagram it is then sent through the provider (see delivery_status).",
    )
    def post(self, request, pk: int):
        conversation = conversation_in_reach(request, pk)
        data = self.body(AgentMessageInputSerializer)
        message = services.send_agent_message(
            conversation=conversation,
            agent=request.user,
            text=data["text"],
            private_note=data["private_note"],
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class AgentListView(ApiView):
    pagination_class = ApiPagination

    @extend_schema(
        operation_id="agents_list",
        tags=["agents"],
        parameters=[AgentFilterSerializer],
        responses=AgentSerializer(many=True),
        summary="Agents and their availability",
    )
    def get(self, request):
        filters = self.query(AgentFilterSerializer)
        rows = agent_queryset().filter(user__is_active=True).order_by("display_name", "id")
        if "availability" in filters:
            rows = rows.filter(availability=filters["availability"])
        if "team" in filters:
            rows = rows.filter(teams__id=filters["team"])
        return self.paginate(rows, AgentSerializer)


def own_profile(request) -> AgentProfile:
    profile = agent_queryset().filter(user=request.user).first()
    if profile is None:
        raise NotAnAgent(_("The caller has no agent profile."))
    return profile


class MyAgentView(ApiView):
    @extend_schema(
        operation_id="agents_me_retrieve",
        tags=["agents"],
        responses={200: AgentSerializer},
        summary="The calling agent (the token's owner)",
    )
    def get(self, request):
        return Response(AgentSerializer(own_profile(request)).data)


class MyAvailabilityView(ApiView):
    @extend_schema(
        operation_id="agents_me_availability",
        tags=["agents"],
        request=AvailabilityInputSerializer,
        responses={200: AgentSerializer},
        summary="Set your own availability (online, away, offline)",
    )
    def post(self, request):
        data = self.body(AvailabilityInputSerializer)
        own_profile(request)
        services.set_agent_availability(user=request.user, availability=data["availability"])
        return Response(AgentSerializer(own_profile(request)).data)
