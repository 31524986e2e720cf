from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from helpdesk.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Build the demo store (a mid-size apparel shop). Idempotent: a second run changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="quiet when the demo store already exists")

    def handle(self, *args, **opts) -> None:
        tenant, _people, created = seed_demo()
        if created:
            self.stdout.write(self.style.SUCCESS(f"Demo store “{tenant.name}” created."))
        elif not opts["once"]:
            self.stdout.write(f"Demo store “{tenant.name}” already exists; nothing changed.")
        self.stdout.write(f"  Open {settings.BASE_URL}/t/{tenant.slug}/ and sign in (password: {DEMO_PASSWORD}):")
        for role, email in DEMO_LOGINS:
            self.stdout.write(f"    {role:<10} {email}")
