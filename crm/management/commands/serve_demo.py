"""Serve HTTP and WebSocket with uvicorn (``make run``), then say where to go and who to sign in
as: printed once the server listens, so they are the last lines before its request log."""

import uvicorn
from django.core.management.base import BaseCommand, CommandError


def banner(base_url: str) -> str:
    return "\n".join(
        [
            "",
            f"  Live Escalation: {base_url}/crm/   (admin: {base_url}/admin/)",
            f"  Widget demo:     {base_url}/widget/demo/",
            "  Logins (password 'demo'): marina (billing agent), alex (support agent), manager",
            "",
        ]
    )


class AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, announcement: str):
        super().__init__(config)
        self.announcement = announcement

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:  # bound and listening (startup failures leave it False)
            print(self.announcement, flush=True)


class Command(BaseCommand):
    help = "Serve the product with uvicorn and print the URLs and demo logins once it listens."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        if not 0 < port < 65536:
            raise CommandError(f"--port must be 1..65535, not {port}.")
        config = uvicorn.Config("config.asgi:application", host=host, port=port)
        server = AnnouncingServer(config, announcement=banner(f"http://{host}:{port}"))
        server.run()
        if not server.started:
            raise CommandError(f"Could not serve on {host}:{port} (see the error above).")
