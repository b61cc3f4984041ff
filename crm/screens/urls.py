"""CRM screens for agents and managers (under /crm/)."""

from django.urls import path
from django.views.generic import RedirectView

from .views import (
    agent_framework,
    analytics,
    canned,
    contacts,
    conversations,
    inbox,
    me,
    queue,
    routing,
    settings,
    tickets,
)

app_name = "crm"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="crm:queue", permanent=False), name="home"),
    path("live-escalation/", queue.queue, name="queue"),
    # The agent's workspace: the inbox, canned replies, search and contacts
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/lists/", inbox.inbox_lists, name="inbox-lists"),
    path(
        "inbox/conversations/<int:conversation_id>/",
        inbox.inbox_conversation,
        name="inbox-conversation",
    ),
    path("canned-replies/", canned.canned_list, name="canned"),
    path("canned-replies/new/", canned.canned_save, name="canned-create"),
    path("canned-replies/<int:reply_id>/", canned.canned_save, name="canned-update"),
    path("canned-replies/<int:reply_id>/delete/", canned.canned_delete, name="canned-delete"),
    path("canned-replies/search/", canned.canned_search, name="canned-search"),
    path("conversations/<int:conversation_id>/canned/", canned.canned_use, name="canned-use"),
    path(
        "conversations/<int:conversation_id>/template/",
        conversations.send_template,
        name="conversation-template",
    ),
    path("search/", contacts.search, name="search"),
    path("contacts/<int:contact_id>/", contacts.contact_detail, name="contact"),
    # Conversations
    path("conversations/", conversations.conversation_list, name="conversations"),
    path(
        "conversations/<int:conversation_id>/",
        conversations.conversation_detail,
        name="conversation",
    ),
    path(
        "conversations/<int:conversation_id>/messages/",
        conversations.conversation_messages,
        name="conversation-messages",
    ),
    path(
        "conversations/<int:conversation_id>/panel/",
        conversations.conversation_panel,
        name="conversation-panel",
    ),
    path(
        "conversations/<int:conversation_id>/sentiment/",
        conversations.conversation_sentiment,
        name="conversation-sentiment",
    ),
    path(
        "conversations/<int:conversation_id>/reply/", conversations.reply, name="conversation-reply"
    ),
    # Escalation actions
    path("escalations/<int:escalation_id>/take-over/", conversations.take_over, name="take-over"),
    path("escalations/<int:escalation_id>/resolve/", conversations.resolve, name="resolve"),
    path("escalations/<int:escalation_id>/close/", conversations.close, name="close"),
    path("escalations/<int:escalation_id>/reassign/", conversations.reassign, name="reassign"),
    path("escalations/<int:escalation_id>/hand-back/", conversations.hand_back, name="hand-back"),
    path(
        "escalations/<int:escalation_id>/verdict/",
        agent_framework.handoff_verdict,
        name="handoff-verdict",
    ),
    # Tickets
    path("tickets/", tickets.ticket_list, name="tickets"),
    path("tickets/<int:ticket_id>/", tickets.ticket_detail, name="ticket"),
    path("tickets/<int:ticket_id>/status/", tickets.ticket_status, name="ticket-status"),
    path("tickets/<int:ticket_id>/assign/", tickets.ticket_assign, name="ticket-assign"),
    # Analytics and settings
    path("analytics/", analytics.analytics, name="analytics"),
    path("settings/", settings.settings_page, name="settings"),
    path("settings/messages/", settings.save_messages, name="settings-messages"),
    path("settings/messages/preview/", settings.preview_messages, name="settings-preview"),
    path(
        "settings/assistants/<int:assistant_id>/",
        agent_framework.save_assistant,
        name="settings-assistant",
    ),
    path(
        "settings/assistants/<int:assistant_id>/preview/",
        agent_framework.preview_sensitivity,
        name="settings-assistant-preview",
    ),
    path(
        "settings/assistants/<int:assistant_id>/replay/",
        agent_framework.start_replay,
        name="settings-replay",
    ),
    path("settings/replays/<int:job_id>/", agent_framework.replay_job, name="settings-replay-job"),
    path(
        "settings/agents/<int:profile_id>/", settings.save_agent_preferences, name="settings-agent"
    ),
    path("settings/routing/", routing.routing_settings, name="routing-settings"),
    path(
        "settings/routing/teams/<int:team_id>/",
        routing.save_team_routing,
        name="routing-team",
    ),
    path("settings/routing/rules/", routing.add_rule, name="routing-rule-add"),
    path("settings/routing/rules/<int:rule_id>/", routing.change_rule, name="routing-rule"),
    path("settings/routing/defaults/", routing.save_defaults, name="routing-defaults"),
    path("escalations/<int:escalation_id>/accept/", routing.accept_offer, name="accept-offer"),
    path("escalations/<int:escalation_id>/decline/", routing.decline_offer, name="decline-offer"),
    path("preferences/", settings.my_preferences, name="preferences"),
    # Header
    path("me/availability/", me.set_availability, name="availability"),
    path("notifications/", me.notification_list, name="notifications"),
    path("notifications/badge/", me.notification_badge, name="notification-badge"),
    path("notifications/read-all/", me.notifications_read_all, name="notifications-read-all"),
    path(
        "notifications/<int:notification_id>/read/", me.notification_read, name="notification-read"
    ),
]
