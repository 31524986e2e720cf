from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.services import tenant_create


class Command(BaseCommand):
    help = "Create a store workspace and its owner: create_tenant --name N --slug S --owner-email E"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--timezone", default="UTC")
        parser.add_argument("--language", default="en")

    def handle(self, *args, **opts) -> None:
        try:
            tenant, owner = tenant_create(
                name=opts["name"],
                slug=opts["slug"],
                owner_email=opts["owner_email"],
                time_zone=opts["timezone"],
                default_language=opts["language"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"Created workspace {tenant.slug} (id {tenant.pk}) owned by {owner.email}")
        if not owner.has_usable_password():
            self.stdout.write(f"{owner.email} has no password yet: use “Forgot your password?” on the sign-in page.")
