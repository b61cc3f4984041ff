"""HTTP and WebSocket entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from .body_limit import RequestBodyLimitMiddleware  # noqa: E402
from .routing import websocket_application  # noqa: E402
from .scheduler import lifespan  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimitMiddleware(
            django_asgi_app,
            max_bytes=settings.MAX_REQUEST_BODY_BYTES,
            timeout_seconds=settings.REQUEST_BODY_TIMEOUT_SECONDS,
        ),
        "websocket": websocket_application,
        "lifespan": lifespan,
    }
)
