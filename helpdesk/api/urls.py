from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from helpdesk.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
# JSON is the only format; `.json` suffix routes would only pass a stray `format` kwarg to
# actions (a 500 on e.g. POST tokens/1/revoke.json).
router.include_format_suffixes = False
router.register("me", views.MeViewSet, basename="me")
router.register("members", views.MemberViewSet, basename="member")
router.register("tokens", views.ApiTokenViewSet, basename="token")
router.register("audit-log", views.AuditLogViewSet, basename="auditlog")


def register_app_routes() -> None:
    """Each app adds its resources to the one router (tickets, orders, …)."""
    from helpdesk.api_registry import register_all

    register_all(router)


register_app_routes()

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include(router.urls)),
]
