"""WebSocket routes. Consumers live in their apps; this only wires them.

- ``ws/conversations/<id>/``: the customer's widget socket. Authenticated by the conversation's
  customer token; its Origin is checked in the consumer against the site's own hosts plus the
  channel's ``allowed_origins`` (widgets are embedded on other sites).
- ``ws/agent/``: staff only, by session cookie; Origin must be one of ALLOWED_HOSTS (checked in
  the consumer, which accepts and then closes with 4403, so the browser sees why).
"""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.urls import path, re_path

from crm.consumers import AgentConsumer, CustomerConsumer, NotFoundConsumer, RefuseWhenFull

websocket_urlpatterns = [
    # A full conversation or address is refused before a consumer is made (crm.limits caps).
    path("ws/conversations/<int:conversation_id>/", RefuseWhenFull(CustomerConsumer.as_asgi())),
    path("ws/agent/", AuthMiddlewareStack(AgentConsumer.as_asgi())),
    re_path(r"", NotFoundConsumer.as_asgi()),
]

websocket_application = URLRouter(websocket_urlpatterns)
