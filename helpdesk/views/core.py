"""Landing, workspace switcher, health, and error pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from helpdesk.middleware import error_body
from helpdesk.models import Membership
from helpdesk.tenancy import AuthedHttpRequest


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means "not healthy"
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@login_required
def home(request: AuthedHttpRequest) -> HttpResponse:
    """Send the user to their workspace, or to the switcher when they have several."""
    memberships = list(Membership.objects.filter(user=request.user).select_related("tenant")[:2])
    if len(memberships) == 1:
        return redirect("tenant_home", tenant_slug=memberships[0].tenant.slug)
    return redirect("workspaces")


@login_required
def workspaces(request: AuthedHttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("tenant").order_by("tenant__name")
    return render(request, "workspaces.html", {"memberships": memberships})


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/hooks/"))


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return render(request, "errors/404.html", status=404)


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body("permission_denied", "You do not have permission."), status=403)
    return render(request, "errors/403.html", {"reason": str(exception or "")}, status=403)


def error_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    return render(request, "errors/400.html", status=400)


def error_500(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)
    return render(request, "errors/500.html", status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body("csrf_failed", "CSRF check failed; reload the page."), status=403)
    return render(
        request,
        "errors/403.html",
        {"reason": "Your session form expired. Reload the page and try again."},
        status=403,
    )
