"""Starter customer notices for a store: templates a good e-commerce operator would write,
and the rules that send them. `seed_notices(tenant)` is idempotent: templates and rules that
exist (by name / by event) are left as the lead edited them.
"""

from __future__ import annotations

from datetime import time

from helpdesk.models import Tenant
from helpdesk.services import Actor
from integrations import notices
from integrations.notices_models import NoticeEvent, NoticeRule, NoticeSettings
from playbooks.models import ReplyTemplate
from playbooks.services import template_save

SIGN_OFF = "Thanks for shopping with us,\n{{ store.name }}"

# event → (template name, {language: (subject, body)}, delay minutes)
STARTERS: dict[str, tuple[str, dict[str, tuple[str, str]], int]] = {
    NoticeEvent.ORDER_CONFIRMED: (
        "Order confirmed",
        {
            "en": (
                "We’ve got your order {{ order.name }}",
                "Hi {{ customer.first_name }},\n\n"
                "Thank you for your order {{ order.name }} — we’ve received it and are getting it ready.\n\n"
                "{% for line in order.lines %}- {{ line.quantity }} × {{ line.title }}\n{% endfor %}\n"
                "Total: {{ order.total }} {{ order.currency }}\n"
                "Shipping to: {{ order.shipping_address.one_line }}\n\n"
                "We’ll email you the tracking link as soon as it ships. If anything in the address "
                "looks wrong, just reply to this email today and we’ll fix it before it leaves.\n\n" + SIGN_OFF,
            ),
            "de": (
                "Wir haben deine Bestellung {{ order.name }} erhalten",
                "Hallo {{ customer.first_name }},\n\n"
                "danke für deine Bestellung {{ order.name }} — wir haben sie erhalten und packen sie gerade.\n\n"
                "{% for line in order.lines %}- {{ line.quantity }} × {{ line.title }}\n{% endfor %}\n"
                "Summe: {{ order.total }} {{ order.currency }}\n"
                "Lieferadresse: {{ order.shipping_address.one_line }}\n\n"
                "Sobald das Paket unterwegs ist, schicken wir dir den Sendungslink. Stimmt an der Adresse "
                "etwas nicht? Antworte einfach noch heute auf diese E-Mail.\n\n"
                "Danke für deinen Einkauf,\n{{ store.name }}",
            ),
        },
        0,
    ),
    NoticeEvent.SHIPPED: (
        "Shipped with tracking",
        {
            "en": (
                "Your order {{ order.name }} is on its way",
                "Hi {{ customer.first_name }},\n\n"
                "Good news: your order {{ order.name }} has shipped with {{ fulfillment.carrier }}.\n\n"
                "Tracking number: {{ fulfillment.tracking_number }}\n"
                "Track it here: {{ links.tracking }}\n\n"
                "Tracking can take up to 24 hours to show the first scan, so don’t worry if it looks "
                "quiet at first.\n\n" + SIGN_OFF,
            ),
            "de": (
                "Deine Bestellung {{ order.name }} ist unterwegs",
                "Hallo {{ customer.first_name }},\n\n"
                "gute Nachricht: Deine Bestellung {{ order.name }} ist mit {{ fulfillment.carrier }} "
                "unterwegs.\n\n"
                "Sendungsnummer: {{ fulfillment.tracking_number }}\n"
                "Sendung verfolgen: {{ links.tracking }}\n\n"
                "Der erste Scan kann bis zu 24 Stunden dauern — keine Sorge, wenn es anfangs still "
                "aussieht.\n\n"
                "Danke für deinen Einkauf,\n{{ store.name }}",
            ),
        },
        0,
    ),
    NoticeEvent.OUT_FOR_DELIVERY: (
        "Out for delivery",
        {
            "en": (
                "Your order {{ order.name }} arrives today",
                "Hi {{ customer.first_name }},\n\n"
                "Your parcel is out for delivery with {{ fulfillment.carrier }} and should reach "
                "{{ order.shipping_address.one_line }} today.\n\n"
                "Live tracking: {{ links.tracking }}\n\n"
                "Not home? The driver will usually leave a card with how to collect it.\n\n" + SIGN_OFF,
            )
        },
        0,
    ),
    NoticeEvent.DELIVERED: (
        "Delivered",
        {
            "en": (
                "Your order {{ order.name }} has been delivered",
                "Hi {{ customer.first_name }},\n\n"
                "{{ fulfillment.carrier }} tells us your order {{ order.name }} was delivered on "
                "{{ fulfillment.delivered_at }}.\n\n"
                "Can’t find it? Check with neighbours and around the door, then reply to this email "
                "within 48 hours and we’ll open a claim with the carrier for you.\n\n" + SIGN_OFF,
            )
        },
        0,
    ),
    NoticeEvent.DELAY: (
        "Delivery delay",
        {
            "en": (
                "An update on your order {{ order.name }}",
                "Hi {{ customer.first_name }},\n\n"
                "We’re keeping an eye on your order {{ order.name }}, and it’s taking longer than it "
                "should: {{ fulfillment.carrier }} hasn’t reported progress recently.\n\n"
                "Tracking: {{ links.tracking }}\n\n"
                "We’ve asked the carrier to check on it. Most delayed parcels arrive within a few days; "
                "if yours hasn’t moved by then we’ll send a replacement or refund you — your choice. "
                "Just reply to this email if you need it by a particular date.\n\n"
                "Sorry for the wait,\n{{ store.name }}",
            )
        },
        0,
    ),
    NoticeEvent.REFUND_ISSUED: (
        "Refund issued",
        {
            "en": (
                "Your refund for order {{ order.name }}",
                "Hi {{ customer.first_name }},\n\n"
                "We’ve refunded {{ refund.amount }} {{ refund.currency }} for your order {{ order.name }} "
                "to your original payment method.\n\n"
                "Banks usually take 5–10 business days to show it on your statement. If it hasn’t "
                "appeared by then, reply to this email and we’ll send you the payment reference.\n\n" + SIGN_OFF,
            )
        },
        0,
    ),
    NoticeEvent.RETURN_RECEIVED: (
        "Return received",
        {
            "en": (
                "We’ve received your return for {{ order.name }}",
                "Hi {{ customer.first_name }},\n\n"
                "Your return for order {{ order.name }} has arrived at our warehouse. We check every "
                "item within 2 business days and then send your refund or exchange — we’ll email you "
                "the moment it’s done.\n\n" + SIGN_OFF,
            )
        },
        0,
    ),
    NoticeEvent.CSAT_SURVEY: (
        "How did we do?",
        {
            "en": (
                "How did we do with your request #{{ ticket.number }}?",
                "Hi {{ customer.first_name }},\n\n"
                "We’ve marked your request “{{ ticket.subject }}” as solved. Would you take ten seconds "
                "to tell us how we did?\n\n"
                "Rate us: {{ links.survey }}\n\n"
                "If it isn’t actually solved, just reply and the same person will pick it up again.\n\n"
                "Thank you,\n{{ store.name }}",
            )
        },
        0,
    ),
    NoticeEvent.DELIVERY_FEEDBACK: (
        "Delivery feedback",
        {
            "en": (
                "How is your order {{ order.name }}?",
                "Hi {{ customer.first_name }},\n\n"
                "Your order arrived a few days ago — we hope you love it. Is everything as you expected? "
                "If something doesn’t fit or isn’t right, reply to this email and we’ll sort out an "
                "exchange or return.\n\n" + SIGN_OFF,
            )
        },
        3 * 24 * 60,  # three days after delivery
    ),
}


def seed_notices(tenant: Tenant, *, enable: bool = True) -> int:
    """Starter notice templates and rules for `tenant`; how many templates were made."""
    actor = Actor.system()
    made = 0
    existing = {t.name: t for t in ReplyTemplate.objects.filter(tenant=tenant, kind=ReplyTemplate.Kind.NOTICE)}
    rules = set(NoticeRule.objects.filter(tenant=tenant).values_list("event", flat=True))
    for event, (name, texts, delay) in STARTERS.items():
        template = existing.get(name)
        if template is None:
            template = template_save(
                tenant=tenant,
                actor=actor,
                name=name,
                kind=ReplyTemplate.Kind.NOTICE,
                variants={lang: {"subject": subject, "body": body} for lang, (subject, body) in texts.items()},
            )
            made += 1
        if event not in rules:
            notices.notice_rule_save(
                tenant=tenant, actor=actor, event=event, template=template, enabled=enable, delay_minutes=delay
            )
    if not NoticeSettings.objects.filter(tenant=tenant).exists():
        notices.notice_settings_update(
            tenant=tenant,
            actor=actor,
            quiet_start=time(21, 0),
            quiet_end=time(8, 0),
            delay_hours=72,
            from_name=tenant.name,
        )
    return made
