from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.models import Tenant
from helpdesk.tenancy import tenant_context
from integrations import crypto
from integrations.services import connections_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt stored store credentials and webhook secrets under the newest "
        "ENCRYPTION_KEYS key. Run after prepending a new key; then the old key may be removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default="", help="only this workspace (slug)")

    def handle(self, *args, **opts) -> None:
        tenants = Tenant.objects.order_by("pk")
        if opts["tenant"]:
            tenants = tenants.filter(slug=opts["tenant"])
            if not tenants.exists():
                raise CommandError(f"No workspace with slug “{opts['tenant']}”.")
        total = 0
        for tenant in tenants:
            with tenant_context(tenant.pk):
                try:
                    total += connections_reencrypt(tenant=tenant)
                except crypto.InvalidToken as exc:
                    raise CommandError(
                        f"A secret of {tenant.slug} fits no ENCRYPTION_KEYS key; keep the old key listed."
                    ) from exc
        self.stdout.write(f"Re-encrypted the credentials of {total} connection(s).")
