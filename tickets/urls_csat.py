"""The public CSAT survey (no login; a signed token names the ticket)."""

from django.urls import path

from tickets import views_csat

urlpatterns = [
    path("<str:token>/", views_csat.csat_survey, name="csat_survey"),
]
