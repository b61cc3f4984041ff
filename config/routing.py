"""WebSocket routes. Consumers live in their apps; this only wires them."""

from channels.routing import URLRouter

websocket_urlpatterns = []

websocket_application = URLRouter(websocket_urlpatterns)
