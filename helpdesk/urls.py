from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path

from helpdesk.views import accounts, core, workspace

handler400 = "helpdesk.views.core.error_400"
handler403 = "helpdesk.views.core.error_403"
handler404 = "helpdesk.views.core.error_404"
handler500 = "helpdesk.views.core.error_500"

account_patterns = [
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            template_name="accounts/password_reset.html",
            email_template_name="emails/password-reset-body.txt",
            subject_template_name="emails/password-reset-subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(template_name="accounts/password_reset_confirm.html"),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="accounts/password_reset_complete.html"),
        name="password_reset_complete",
    ),
]

settings_patterns = [
    path("", workspace.settings_home, name="settings_home"),
    path("general/", workspace.settings_general, name="settings_general"),
    path("members/", workspace.settings_members, name="settings_members"),
    path("members/<int:pk>/", workspace.member_update, name="member_update"),
    path("invitations/<int:pk>/revoke/", workspace.invitation_revoke, name="invitation_revoke"),
    path("tokens/", workspace.settings_tokens, name="settings_tokens"),
    path("tokens/<int:pk>/revoke/", workspace.token_revoke, name="token_revoke"),
    path("audit/", workspace.settings_audit, name="settings_audit"),
]

tenant_patterns: list[URLPattern | URLResolver] = [
    path("", workspace.tenant_home, name="tenant_home"),
    path("availability/", workspace.set_availability, name="set_availability"),
    path("settings/", include(settings_patterns)),
]


def _app_tenant_patterns() -> list[URLPattern | URLResolver]:
    from helpdesk.ui_registry import tenant_urlpatterns

    return tenant_urlpatterns()


urlpatterns = [
    path("healthz", core.healthz, name="healthz"),
    path("", core.home, name="home"),
    path("workspaces/", core.workspaces, name="workspaces"),
    path("accounts/", include(account_patterns)),
    path("invite/<int:tenant_id>/<str:secret>/", accounts.accept_invitation, name="invitation_accept"),
    path("api/v1/", include("helpdesk.api.urls")),
    path("hooks/", include("integrations.hooks_urls")),
    path("notices/", include("integrations.urls_notices_public")),
    path("csat/", include("tickets.urls_csat")),
    path("t/<slug:tenant_slug>/", include(tenant_patterns + _app_tenant_patterns())),
]
