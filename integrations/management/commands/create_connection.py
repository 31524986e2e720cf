from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.models import Tenant
from helpdesk.services import Actor
from integrations.models import Platform
from integrations.services import connection_create, webhook_url


class Command(BaseCommand):
    help = (
        "Connect a store: create_connection --tenant S --platform shopify|woocommerce|magento|generic "
        "--name N [--shop-domain D] [--api-url U]. Prints the connection id, webhook URL and "
        "webhook secret, one per line on the last three lines, this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="workspace slug")
        parser.add_argument("--platform", required=True, help=", ".join(Platform.values))
        parser.add_argument("--name", required=True)
        parser.add_argument("--shop-domain", default="", help="Shopify: the myshopify.com domain")
        parser.add_argument("--api-url", default="", help="WooCommerce/Magento: the store URL")
        parser.add_argument("--webhook-secret", default="", help="Shopify: the app's client secret (else generated)")
        parser.add_argument(
            "--public-key-file",
            default="",
            help="Adobe Commerce: the webhook public key (PEM file)",
        )

    def handle(self, *args, **opts) -> None:
        if opts["platform"] not in Platform.values:
            raise CommandError(f"Unknown platform “{opts['platform']}”: use one of {', '.join(Platform.values)}.")
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No workspace with slug “{opts['tenant']}”.")
        public_key = ""
        if opts["public_key_file"]:
            try:
                public_key = Path(opts["public_key_file"]).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"Cannot read {opts['public_key_file']}: {exc}") from exc
        try:
            connection, secret = connection_create(
                tenant=tenant,
                platform=opts["platform"],
                name=opts["name"],
                shop_domain=opts["shop_domain"],
                api_url=opts["api_url"],
                webhook_secret=opts["webhook_secret"],
                public_key_pem=public_key,
                actor=Actor.system(),
            )
        except ValidationError as exc:
            raise CommandError(" ".join(_messages(exc))) from exc
        self.stdout.write(
            f"Connected {connection.get_platform_display()} store “{connection.name}” to "
            f"{tenant.slug}. Connection id, webhook URL and webhook secret (shown once):"
        )
        self.stdout.write(str(connection.pk))
        self.stdout.write(webhook_url(connection))
        self.stdout.write(secret)


_OPTION = {"public_key_pem": "public-key-file"}


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [
            f"--{_OPTION.get(name, name.replace('_', '-'))}: {message}"
            for name, messages in exc.message_dict.items()
            for message in messages
        ]
    return list(exc.messages)
