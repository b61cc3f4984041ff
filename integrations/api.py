"""/api/v1/webhooks/: outbound webhook subscriptions and their delivery log (manage scope)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from . import services
from .api_base import ApiView
from .errors import InvalidSubscription
from .models import Scope, WebhookDelivery, WebhookEvent, WebhookSubscription
from .pagination import ApiPagination
from .serializers import StrictBooleanField

MANAGE = {method: Scope.MANAGE for method in ("GET", "POST", "PATCH", "DELETE", "PUT")}


class WebhookURLField(serializers.CharField):
    """Checked by services.check_webhook_url; its schema (integrations.schema.
    WebhookURLFieldSchema) states the same rule."""


class SubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = WebhookURLField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))
    description = serializers.CharField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class SubscriptionCreatedSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        help_text="Signs every delivery; shown only when created or changed. Verify "
        "X-LiveEscalation-Signature `t=<unix time>,v1=<hex HMAC-SHA256(secret, '<t>.' + body)>`."
    )


class SubscriptionChangedSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        required=False, help_text="Only when the change gave it a new secret (a rotation)."
    )


class SubscriptionInputSerializer(serializers.Serializer):
    url = WebhookURLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), min_length=1, max_length=10
    )
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200
    )
    secret = serializers.CharField(
        required=False, min_length=16, max_length=200, help_text="Leave out to have one made."
    )
    is_active = StrictBooleanField(required=False, default=True)

    def validate_url(self, value):
        try:
            services.check_webhook_url(value)
        except InvalidSubscription as exc:
            raise serializers.ValidationError(exc.message) from exc
        return value


class SubscriptionUpdateSerializer(SubscriptionInputSerializer):
    url = WebhookURLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        min_length=1,
        max_length=10,
        required=False,
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)
    is_active = StrictBooleanField(required=False)


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    subscription = serializers.IntegerField(source="subscription_id")
    event = serializers.ChoiceField(choices=WebhookEvent.choices)
    event_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices)
    attempts = serializers.IntegerField()
    response_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    payload = serializers.DictField()
    created_at = serializers.DateTimeField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)


class SubscriptionListView(ApiView):
    required_scopes = MANAGE
    pagination_class = ApiPagination

    @extend_schema(
        operation_id="webhooks_list",
        tags=["webhooks"],
        responses=SubscriptionSerializer(many=True),
        summary="Outbound webhook subscriptions",
    )
    def get(self, request):
        return self.paginate(WebhookSubscription.objects.order_by("id"), SubscriptionSerializer)

    @extend_schema(
        operation_id="webhooks_create",
        tags=["webhooks"],
        request=SubscriptionInputSerializer,
        responses={201: SubscriptionCreatedSerializer},
        summary="Subscribe a URL to events",
    )
    def post(self, request):
        data = self.body(SubscriptionInputSerializer)
        subscription = services.create_webhook_subscription(
            url=data["url"],
            events=data["events"],
            description=data["description"],
            secret=data.get("secret", ""),
            created_by=request.user,
            is_active=data["is_active"],
        )
        return Response(
            SubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED
        )


class SubscriptionDetailView(ApiView):
    required_scopes = MANAGE

    @extend_schema(
        operation_id="webhooks_retrieve", tags=["webhooks"], responses=SubscriptionSerializer
    )
    def get(self, request, pk: int):
        subscription = get_object_or_404(WebhookSubscription, pk=pk)
        return Response(SubscriptionSerializer(subscription).data)

    @extend_schema(
        operation_id="webhooks_update",
        tags=["webhooks"],
        request=SubscriptionUpdateSerializer,
        responses={200: SubscriptionChangedSerializer},
        summary="Change a subscription (give a new secret to rotate it)",
    )
    def patch(self, request, pk: int):
        subscription = get_object_or_404(WebhookSubscription, pk=pk)
        data = self.body(SubscriptionUpdateSerializer)
        subscription = services.update_webhook_subscription(subscription=subscription, **data)
        serializer = SubscriptionCreatedSerializer if "secret" in data else SubscriptionSerializer
        return Response(serializer(subscription).data)  # both fit SubscriptionChangedSerializer

    @extend_schema(operation_id="webhooks_destroy", tags=["webhooks"], responses={204: None})
    def delete(self, request, pk: int):
        subscription = get_object_or_404(WebhookSubscription, pk=pk)
        services.delete_webhook_subscription(subscription=subscription)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryListView(ApiView):
    required_scopes = MANAGE
    pagination_class = ApiPagination

    @extend_schema(
        operation_id="webhooks_deliveries_list",
        tags=["webhooks"],
        responses=DeliverySerializer(many=True),
        summary="The delivery log of a subscription, newest first",
    )
    def get(self, request, pk: int):
        subscription = get_object_or_404(WebhookSubscription, pk=pk)
        return self.paginate(subscription.deliveries.order_by("-id"), DeliverySerializer)


class RedeliverView(ApiView):
    required_scopes = MANAGE

    @extend_schema(
        operation_id="webhooks_deliveries_redeliver",
        tags=["webhooks"],
        request=None,
        responses={202: DeliverySerializer},
        summary="Send a delivery again",
    )
    def post(self, request, pk: int):
        delivery = get_object_or_404(WebhookDelivery, pk=pk)
        delivery = services.redeliver_webhook(delivery=delivery)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
