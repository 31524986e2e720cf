"""Sign-in, sign-out, password reset and invitation acceptance."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from helpdesk import services
from helpdesk.forms import AcceptInvitationForm, EmailAuthenticationForm
from helpdesk.models import User


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


def accept_invitation(request: HttpRequest, tenant_id: int, secret: str) -> HttpResponse:
    invitation = services.invitation_for_secret(tenant_id=tenant_id, secret=secret)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    existing = User.objects.filter(email=invitation.email).first()
    if request.user.is_authenticated:
        if request.method == "POST":
            try:
                services.invitation_accept(invitation=invitation, user=request.user)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect(request.path)
            messages.success(request, f"Welcome to {invitation.tenant.name}.")
            return redirect("tenant_home", tenant_slug=invitation.tenant.slug)
        return render(request, "accounts/invitation.html", {"invitation": invitation, "mode": "confirm"})
    if existing is not None:
        login_url = f"{reverse('login')}?next={request.path}"
        return render(
            request,
            "accounts/invitation.html",
            {"invitation": invitation, "mode": "login", "login_url": login_url},
        )
    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        user = User.objects.create_user(
            email=invitation.email,
            password=form.cleaned_data["password"],
            name=form.cleaned_data["name"],
        )
        services.invitation_accept(invitation=invitation, user=user)
        login(request, user, backend="helpdesk.auth_backends.CachedModelBackend")
        messages.success(request, f"Welcome to {invitation.tenant.name}.")
        return redirect("tenant_home", tenant_slug=invitation.tenant.slug)
    return render(
        request,
        "accounts/invitation.html",
        {"invitation": invitation, "mode": "signup", "form": form},
    )
