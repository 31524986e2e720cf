from django.urls import path

from tickets import views

urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("queue/bulk/", views.queue_bulk, name="queue_bulk"),
    path("tickets/", views.tickets_list, name="tickets"),
    path("tickets/new/", views.ticket_new, name="ticket_new"),
    path("tickets/<int:number>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:number>/reply/", views.ticket_reply, name="ticket_reply"),
    path("tickets/<int:number>/update/", views.ticket_update, name="ticket_update"),
    path("tickets/<int:number>/followup/", views.ticket_followup, name="ticket_followup"),
    path("tickets/<int:number>/timeline/", views.ticket_timeline, name="ticket_timeline"),
    path("customers/", views.customers_list, name="customers"),
    path("customers/<int:pk>/", views.customer_detail, name="customer_detail"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/badge/", views.notifications_badge, name="notifications_badge"),
]
