"""The customer's public opt-out page, /notices/unsubscribe/<token>/ (no tenant in the URL:
the signed token names it)."""

from django.urls import path

from integrations import views_notices as v

urlpatterns = [path("unsubscribe/<str:token>/", v.unsubscribe, name="notice_unsubscribe")]
