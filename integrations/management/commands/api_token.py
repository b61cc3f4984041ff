"""``manage.py api_token create --user <username> --scopes read,write`` prints a new token on
its last line; ``list`` and ``revoke <prefix>`` manage existing ones."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from integrations import services
from integrations.errors import InvalidScopes, InvalidTokenOwner
from integrations.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke API tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token; prints it once, last line.")
        create.add_argument("--user", required=True, help="Username of the token's owner.")
        create.add_argument("--scopes", default="read", help="Comma-separated: read,write,manage")
        create.add_argument("--name", default="", help="What the token is for.")
        sub.add_parser("list", help="List tokens (prefix, owner, scopes).")
        revoke = sub.add_parser("revoke", help="Revoke tokens by their prefix.")
        revoke.add_argument("prefix")

    def handle(self, *args, action, **options):
        return getattr(self, f"handle_{action}")(**options)

    def handle_create(self, *, user, scopes, name, **_):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user {user!r}.")
        try:
            token, raw = services.create_api_token(
                owner=owner, name=name or f"{user} (command line)", scopes=scopes
            )
        except (InvalidScopes, InvalidTokenOwner) as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Created token {token.key_prefix}… for {owner.username} with scopes "
            f"{','.join(token.scopes)}. It is shown only once:"
        )
        self.stdout.write(raw)

    def handle_list(self, **_):
        for token in ApiToken.objects.select_related("owner"):
            state = "revoked" if token.is_revoked else "active"
            self.stdout.write(
                f"{token.key_prefix}  {token.owner.username}  {','.join(token.scopes)}  "
                f"{state}  {token.name}"
            )

    def handle_revoke(self, *, prefix, **_):
        tokens = ApiToken.objects.filter(key_prefix__startswith=prefix, revoked_at__isnull=True)
        if len(prefix) < 6 or not tokens.exists():
            raise CommandError("No active token with that prefix (give at least 6 characters).")
        for token in tokens:
            services.revoke_api_token(token=token)
            self.stdout.write(f"Revoked {token.key_prefix}… ({token.name})")
