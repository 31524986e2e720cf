"""Tenant-scoped pages under /t/<tenant_slug>/: home and settings."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from helpdesk import services
from helpdesk.forms import ApiTokenForm, InvitationForm, MemberRoleForm, TenantSettingsForm
from helpdesk.models import ApiToken, AuditLog, Availability, Invitation, Membership, Role
from helpdesk.services import actor_from_request
from helpdesk.tenancy import TenantHttpRequest, get_for_tenant
from helpdesk.views.decorators import role_required


def tenant_home(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """The workspace's landing page: the agent's queue once tickets exist."""
    from django.urls import NoReverseMatch, reverse

    try:
        return redirect(reverse("queue", kwargs={"tenant_slug": tenant_slug}))
    except NoReverseMatch:
        return render(request, "workspace/home.html")


def section_placeholder(request: TenantHttpRequest, tenant_slug: str, section: str) -> HttpResponse:
    return render(request, "workspace/section.html", {"section": section})


def settings_home(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """Settings opens on the first page the member's role may use."""
    if request.membership.has_role(Role.ADMIN):
        return redirect("settings_general", tenant_slug=tenant_slug)
    if request.membership.has_role(Role.LEAD):
        return redirect("settings_sla_policies", tenant_slug=tenant_slug)
    return redirect("settings_members", tenant_slug=tenant_slug)


@require_POST
def set_availability(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    value = request.POST.get("availability", "")
    if value not in Availability.values:
        messages.error(request, "Choose online, away or offline.")
    else:
        services.membership_set_availability(membership=request.membership, availability=value)
    if request.htmx:
        return render(request, "components/availability.html#menu", {"membership": request.membership})
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("tenant_home", tenant_slug=tenant_slug)


@role_required(Role.ADMIN)
def settings_general(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    form = TenantSettingsForm(request.POST or None, instance=tenant)
    if request.method == "POST" and form.is_valid():
        # Re-read pristine values: ModelForm has already written cleaned data to the instance.
        tenant.refresh_from_db()
        services.tenant_update(tenant=tenant, actor=actor_from_request(request), **form.cleaned_data)
        messages.success(request, "Workspace settings saved.")
        return redirect("settings_general", tenant_slug=tenant.slug)
    return render(request, "settings/general.html", {"form": form, "active": "general"})


@role_required(Role.AGENT)
def settings_members(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    members = Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__name", "user__email")
    invitations = (
        Invitation.objects.filter(tenant=tenant, accepted_at=None, revoked_at=None)
        .select_related("invited_by")
        .order_by("-created_at")
    )
    can_manage = request.membership.has_role(Role.ADMIN)
    form = InvitationForm()
    if request.method == "POST":
        if not can_manage:
            messages.error(request, "Only admins can invite people.")
            return redirect("settings_members", tenant_slug=tenant.slug)
        form = InvitationForm(request.POST)
        if form.is_valid():
            try:
                services.invitation_create(
                    tenant=tenant,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    actor=actor_from_request(request),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
                return redirect("settings_members", tenant_slug=tenant.slug)
    context = {
        "members": members,
        "invitations": [i for i in invitations if i.is_pending],
        "form": form,
        "can_manage": can_manage,
        "roles": Role.choices,
        "active": "members",
    }
    return render(request, "settings/members.html", context)


@require_POST
@role_required(Role.ADMIN)
def member_update(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    membership = get_for_tenant(Membership.objects.select_related("user", "tenant"), request.tenant, pk=pk)
    actor = actor_from_request(request)
    try:
        if request.POST.get("remove"):
            services.membership_remove(membership=membership, actor=actor)
            messages.success(request, f"{membership.user.email} was removed.")
        else:
            form = MemberRoleForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Choose a valid role.")
            else:
                services.membership_set_role(membership=membership, role=form.cleaned_data["role"], actor=actor)
                messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("settings_members", tenant_slug=tenant_slug)


@require_POST
@role_required(Role.ADMIN)
def invitation_revoke(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    invitation = get_for_tenant(Invitation.objects.select_related("tenant"), request.tenant, pk=pk)
    services.invitation_revoke(invitation=invitation, actor=actor_from_request(request))
    messages.success(request, f"Invitation for {invitation.email} revoked.")
    return redirect("settings_members", tenant_slug=tenant_slug)


@role_required(Role.ADMIN)
def settings_tokens(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    form = ApiTokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        token, plaintext = services.api_token_create(
            tenant=tenant, name=form.cleaned_data["name"], actor=actor_from_request(request)
        )
        created = {"token": token, "plaintext": plaintext}
        form = ApiTokenForm()
    tokens = ApiToken.objects.filter(tenant=tenant).select_related("created_by").order_by("revoked_at", "-created_at")
    return render(
        request,
        "settings/tokens.html",
        {"form": form, "tokens": tokens, "created": created, "active": "tokens"},
    )


@require_POST
@role_required(Role.ADMIN)
def token_revoke(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    token = get_for_tenant(ApiToken.objects.select_related("tenant"), request.tenant, pk=pk)
    services.api_token_revoke(token=token, actor=actor_from_request(request))
    messages.success(request, f"Token “{token.name}” revoked. Requests using it now get 401.")
    return redirect("settings_tokens", tenant_slug=tenant_slug)


@role_required(Role.ADMIN)
def settings_audit(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    entries = AuditLog.objects.filter(tenant=request.tenant).order_by("-created_at", "-id")
    action_filter = request.GET.get("action", "")
    if action_filter:
        entries = entries.filter(action=action_filter)
    page = Paginator(entries, 50, allow_empty_first_page=True).get_page(request.GET.get("page"))
    return render(
        request,
        "settings/audit.html",
        {"page": page, "action_filter": action_filter, "active": "audit"},
    )
