"""/api/: the DRF v1 API, its OpenAPI schema and docs, and inbound channel webhooks."""

from django.urls import include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from crm import api as crm_api
from escalation import api as escalation_api
from escalation import routing_api
from integrations import api as integrations_api
from integrations import webhooks
from integrations.api_base import IdConverter
from integrations.exceptions import api_not_found
from tickets import api as tickets_api

register_converter(IdConverter, "api_id")

v1 = [
    path("conversations/", crm_api.ConversationListView.as_view(), name="conversations"),
    path(
        "conversations/<api_id:pk>/",
        crm_api.ConversationDetailView.as_view(),
        name="conversation-detail",
    ),
    path(
        "conversations/<api_id:pk>/messages/",
        crm_api.MessageListView.as_view(),
        name="conversation-messages",
    ),
    path(
        "conversations/<api_id:pk>/agent-messages/",
        crm_api.AgentMessageView.as_view(),
        name="conversation-agent-messages",
    ),
    path(
        "conversations/<api_id:pk>/escalate/",
        escalation_api.EscalateConversationView.as_view(),
        name="conversation-escalate",
    ),
    path("escalations/", escalation_api.EscalationListView.as_view(), name="escalations"),
    path(
        "escalations/<api_id:pk>/",
        escalation_api.EscalationDetailView.as_view(),
        name="escalation-detail",
    ),
    path(
        "escalations/<api_id:pk>/take-over/",
        escalation_api.TakeOverView.as_view(),
        name="escalation-take-over",
    ),
    path(
        "escalations/<api_id:pk>/reassign/",
        escalation_api.ReassignView.as_view(),
        name="escalation-reassign",
    ),
    path(
        "escalations/<api_id:pk>/resolve/",
        escalation_api.ResolveView.as_view(),
        name="escalation-resolve",
    ),
    path(
        "escalations/<api_id:pk>/close/",
        escalation_api.CloseView.as_view(),
        name="escalation-close",
    ),
    path(
        "escalations/<api_id:pk>/accept/",
        routing_api.AcceptOfferView.as_view(),
        name="escalation-accept",
    ),
    path(
        "escalations/<api_id:pk>/decline/",
        routing_api.DeclineOfferView.as_view(),
        name="escalation-decline",
    ),
    path("tickets/", tickets_api.TicketListView.as_view(), name="tickets"),
    path("tickets/<api_id:pk>/", tickets_api.TicketDetailView.as_view(), name="ticket-detail"),
    path(
        "metrics/escalations/",
        escalation_api.EscalationMetricsView.as_view(),
        name="metrics-escalations",
    ),
    path("agents/", crm_api.AgentListView.as_view(), name="agents"),
    path("agents/me/", crm_api.MyAgentView.as_view(), name="agents-me"),
    path(
        "agents/me/availability/",
        crm_api.MyAvailabilityView.as_view(),
        name="agents-me-availability",
    ),
    path("agents/<api_id:pk>/", routing_api.AgentDetailView.as_view(), name="agent-detail"),
    path("teams/", routing_api.TeamListView.as_view(), name="teams"),
    path("teams/<api_id:pk>/", routing_api.TeamDetailView.as_view(), name="team-detail"),
    path("webhooks/", integrations_api.SubscriptionListView.as_view(), name="webhooks"),
    path(
        "webhooks/<api_id:pk>/",
        integrations_api.SubscriptionDetailView.as_view(),
        name="webhook-detail",
    ),
    path(
        "webhooks/<api_id:pk>/deliveries/",
        integrations_api.DeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/deliveries/<api_id:pk>/redeliver/",
        integrations_api.RedeliverView.as_view(),
        name="webhook-redeliver",
    ),
]

app_name = "api"
urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI from drf-spectacular-sidecar's static files, its start-up script served as a
    # file of its own, its page without inline style: no CDN, no inline script or style (the
    # Content-Security-Policy allows none of them).
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    path(
        "webhooks/whatsapp/<str:channel_key>/",
        webhooks.WhatsAppWebhookView.as_view(),
        name="webhook-whatsapp",
    ),
    path(
        "webhooks/instagram/<str:channel_key>/",
        webhooks.InstagramWebhookView.as_view(),
        name="webhook-instagram",
    ),
    # Anything else under /api/ (a malformed id, a typo) is a JSON 404, not an HTML page.
    re_path(r"^", api_not_found),
]
