from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    name = "helpdesk"
    verbose_name = "Storedesk core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from helpdesk import auth_backends  # noqa: F401  (drops cached users on save, in every process)
        from helpdesk.api import schema  # noqa: F401  (registers OpenAPI auth extensions)
