"""Customer-facing HTTP: the widget script, its demo page and its conversation start."""

from django.urls import path
from django.views.generic import RedirectView

from . import widget

urlpatterns = [
    path("", RedirectView.as_view(url="/crm/", permanent=False)),
    path("widget.js", widget.widget_script, name="widget-script"),
    path("widget/demo/", widget.widget_demo, name="widget-demo"),
    path("widget/config/", widget.widget_config, name="widget-config"),
    path("widget/prechat/", widget.check_prechat, name="widget-prechat"),
    path(
        "widget/conversations/",
        widget.start_widget_conversation,
        name="widget-start-conversation",
    ),
    path(
        "widget/conversations/<int:conversation_id>/messages/",
        widget.widget_messages,
        name="widget-messages",
    ),
    path(
        "widget/conversations/<int:conversation_id>/rating/",
        widget.rate_conversation,
        name="widget-rating",
    ),
]
