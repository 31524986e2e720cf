"""Playbook pages, included under /t/<tenant_slug>/playbooks/."""

from django.urls import path

from playbooks import views

urlpatterns = [
    path("", views.index, name="playbooks"),
    path("coverage/", views.coverage, name="playbook_coverage"),
    path("preview/", views.preview, name="playbook_preview"),
    path("templates/", views.templates_list, name="playbook_templates"),
    path("templates/new/", views.template_edit, name="playbook_template_new"),
    path("templates/<int:pk>/", views.template_edit, name="playbook_template_edit"),
    path("ticket/<int:number>/", views.ticket_panel, name="ticket_playbook"),
    path("ticket/<int:number>/checklist/", views.ticket_checklist, name="ticket_checklist"),
    path("ticket/<int:number>/replies/<int:pk>/", views.ticket_reply_insert, name="ticket_reply_insert"),
    path("types/<slug:type_slug>/", views.playbook_edit, name="playbook_edit"),
]
