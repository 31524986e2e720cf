from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.models import Tenant
from helpdesk.services import Actor, api_token_create


class Command(BaseCommand):
    help = "Create an API token for a workspace; prints the token alone on the last line, once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="workspace slug")
        parser.add_argument("--name", required=True)

    def handle(self, *args, **opts) -> None:
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No workspace with slug “{opts['tenant']}”.")
        try:
            token, plaintext = api_token_create(tenant=tenant, name=opts["name"], actor=Actor.system())
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            f"Created API token “{token.name}” ({token.display_prefix}) for {tenant.slug}. It is shown once:"
        )
        self.stdout.write(plaintext)
