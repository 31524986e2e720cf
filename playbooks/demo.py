"""Starter playbooks for the demo store: ten ticket types, approved replies, reply sets."""

from __future__ import annotations

from helpdesk.models import Tenant
from helpdesk.services import Actor
from playbooks import services
from playbooks.models import Playbook, ReplyTemplate
from tickets.models import Team, Ticket, TicketType

# name -> (reply set, {language: body})
REPLIES: dict[str, tuple[str, dict[str, str]]] = {
    "Order on its way (tracking)": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Good news: order {{ order.name }} is on its way with {{ fulfillment.carrier }}.\n"
                "You can follow it here: {{ fulfillment.tracking_url }}\n"
                "{% if fulfillment.expected_delivery %}The carrier expects to deliver it on "
                "{{ fulfillment.expected_delivery }}.\n{% endif %}\n"
                "If the tracking hasn't moved in two working days, just reply and I'll chase the carrier for you.\n\n"
                "Best,\n{{ agent.first_name }} at {{ store.name }}"
            ),
            "de": (
                "Hallo {{ customer.first_name }},\n\n"
                "gute Nachrichten: Ihre Bestellung {{ order.name }} ist mit {{ fulfillment.carrier }} unterwegs.\n"
                "Sendungsverfolgung: {{ fulfillment.tracking_url }}\n\n"
                "Viele Grüße\n{{ agent.first_name }} von {{ store.name }}"
            ),
        },
    ),
    "Order not shipped yet": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Thanks for your patience. Order {{ order.name }} (placed {{ order.placed_at }}) is being packed "
                "and hasn't left our warehouse yet. You'll get an email with tracking the moment it ships — "
                "usually within 1–2 working days.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Carrier delay — enquiry opened": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "I'm sorry your parcel is late. The tracking for {{ order.name }} "
                "({{ fulfillment.carrier }} {{ fulfillment.tracking_number }}) hasn't updated, so I've opened an "
                "enquiry with the carrier. I'll update you within one working day — and if it's lost, we'll send "
                "a replacement or refund you in full, your choice.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Damaged item — replacement or refund": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "I'm so sorry your order {{ order.name }} arrived damaged. Could you send a photo of the item and "
                "the box? As soon as I have it I can ship a replacement today or refund you in full — whichever "
                "you prefer. There's no need to send the damaged item back.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Wrong item — we'll fix it": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Sorry we sent the wrong item with order {{ order.name }}. I've arranged the correct one to ship "
                "today and emailed you a prepaid return label for the wrong one — no rush to send it back.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Return started": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Your return for order {{ order.name }} is approved. Please pack the items with the original tags "
                "and drop the parcel at any post office within 14 days using the label we've emailed. "
                "We refund within 3 working days of receiving it.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Refund issued": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "We refunded {{ refund.amount }} {{ refund.currency }} for order {{ order.name }} on "
                "{{ refund.processed_at }}. Banks usually take 5–10 working days to show it on your statement.\n\n"
                "Best,\n{{ agent.first_name }}"
            ),
            "de": (
                "Hallo {{ customer.first_name }},\n\n"
                "wir haben am {{ refund.processed_at }} {{ refund.amount }} {{ refund.currency }} für die Bestellung "
                "{{ order.name }} erstattet. Ihre Bank braucht meist 5–10 Werktage.\n\n"
                "Viele Grüße\n{{ agent.first_name }}"
            ),
        },
    ),
    "Cancellation confirmed": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Order {{ order.name }} is cancelled and the full amount of {{ order.total }} {{ order.currency }} "
                "is on its way back to your original payment method.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Too late to cancel — return instead": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Order {{ order.name }} has already shipped, so I can't cancel it any more. When it arrives you "
                "can return it free of charge within 30 days — just reply and I'll send the label.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Address updated": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Done — order {{ order.name }} will now ship to:\n{{ order.shipping_address.one_line }}\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Payment declined": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Your bank declined the payment for order {{ order.name }}, so it hasn't been charged. "
                "Please try again with another card or PayPal; the items stay reserved for 48 hours.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Sizing advice": (
        "",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Our shirts run true to size with a relaxed fit; if you're between sizes, take the smaller one. "
                "Exchanges are free within 30 days if it doesn't fit.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Shipping times and costs": (
        "Shipping policy",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "We ship within 1–2 working days. Standard delivery takes 3–5 working days (free over 50), "
                "express 1–2 working days. You get a tracking link by email as soon as your parcel leaves us.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "International shipping and customs": (
        "Shipping policy",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "We ship to 30 countries. Outside the EU, customs duties are collected by the carrier on delivery; "
                "we can't predict the exact amount, but it's usually shown on the carrier's tracking page.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Return policy (30 days)": (
        "Return policy",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "You can return unworn items with their tags within 30 days of delivery, free of charge. "
                "Start a return at {{ store.url }} and we refund within 3 working days of receiving it.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
    "Exchange instead of return": (
        "Return policy",
        {
            "en": (
                "Hi {{ customer.first_name }},\n\n"
                "Happy to swap it: tell me the size or colour you'd like and I'll reserve it now and ship it as "
                "soon as your return is on its way.\n\n"
                "Best,\n{{ agent.first_name }}"
            )
        },
    ),
}

# type slug -> (owner team, checklist [(text, required)], replies, required fields,
#               escalation team, due-in minutes, summary template)
PLAYBOOKS: dict[str, tuple[str, list[tuple[str, bool]], list[str], list[str], str, int, str]] = {
    "wismo": (
        "Tier 1",
        [
            ("Find the order and check its fulfillment", True),
            ("Open the carrier tracking", True),
            ("Tell the customer where it is and when it's due", False),
        ],
        ["Order on its way (tracking)", "Order not shipped yet"],
        ["order"],
        "Logistics",
        8 * 60,
        "Order {{ order.name }} for {{ customer.name }}: tracking {{ fulfillment.tracking_number }} "
        "({{ fulfillment.carrier }}) shows no progress. Please contact the carrier and confirm a delivery date.",
    ),
    "delivery-delay": (
        "Logistics",
        [
            ("Check the last carrier scan", True),
            ("Open an enquiry with the carrier", True),
            ("Offer a replacement or refund if lost", False),
        ],
        ["Carrier delay — enquiry opened"],
        ["order"],
        "Logistics",
        4 * 60,
        "{{ fulfillment.carrier }} parcel {{ fulfillment.tracking_number }} for order {{ order.name }} is late "
        "(expected {{ fulfillment.expected_delivery }}). Customer {{ customer.name }} is waiting: please chase the "
        "carrier and decide on a reshipment.",
    ),
    "damaged-item": (
        "Returns & refunds",
        [
            ("Ask for photos of the item and the box", True),
            ("Offer replacement or refund", True),
            ("Log the damage for the carrier claim", False),
        ],
        ["Damaged item — replacement or refund"],
        ["order", "tags"],
        "Returns & refunds",
        8 * 60,
        "Damaged item on order {{ order.name }} ({{ customer.name }}). Photos are on the ticket; please approve "
        "a replacement or refund of {{ order.total }} {{ order.currency }}.",
    ),
    "wrong-item": (
        "Returns & refunds",
        [
            ("Confirm what was ordered and what arrived", True),
            ("Ship the right item", True),
            ("Send a prepaid return label", False),
        ],
        ["Wrong item — we'll fix it"],
        ["order"],
        "Logistics",
        8 * 60,
        "Wrong item shipped on order {{ order.name }}. Please check the pick list and ship the correct item "
        "to {{ order.shipping_address.one_line }}.",
    ),
    "return-request": (
        "Returns & refunds",
        [("Check the order is within 30 days of delivery", True), ("Send the return label", True)],
        ["Return started", "Exchange instead of return"],
        ["order"],
        "Returns & refunds",
        16 * 60,
        "Return request for order {{ order.name }} from {{ customer.name }} outside the usual rules. "
        "Please decide whether to accept it.",
    ),
    "refund-status": (
        "Returns & refunds",
        [("Find the refund on the order", True), ("Tell the customer the date and amount", True)],
        ["Refund issued"],
        ["order"],
        "Returns & refunds",
        8 * 60,
        "Customer {{ customer.name }} says the refund for order {{ order.name }} hasn't arrived. "
        "Please check it with the payment provider.",
    ),
    "cancel-request": (
        "Tier 1",
        [
            ("Check the order hasn't shipped", True),
            ("Cancel and refund from the ticket", False),
            ("Confirm to the customer", True),
        ],
        ["Cancellation confirmed", "Too late to cancel — return instead"],
        ["order"],
        "Logistics",
        2 * 60,
        "Please stop order {{ order.name }} in the warehouse if it hasn't left yet: the customer cancelled.",
    ),
    "address-change": (
        "Tier 1",
        [
            ("Check the order is unfulfilled", True),
            ("Update the address from the ticket", True),
            ("Confirm the new address to the customer", False),
        ],
        ["Address updated"],
        ["order"],
        "Logistics",
        2 * 60,
        "Order {{ order.name }} must ship to a new address: {{ order.shipping_address.one_line }}. "
        "Please update the label if it's already printed.",
    ),
    "payment-issue": (
        "Tier 1",
        [("Check the payment status on the order", True), ("Never ask for card details", True)],
        ["Payment declined"],
        [],
        "Returns & refunds",
        8 * 60,
        "Payment problem on order {{ order.name }} ({{ order.financial_status }}). Please check the payment "
        "provider and advise.",
    ),
    "product-question": (
        "Tier 1",
        [("Answer with the product page facts", False)],
        ["Sizing advice"],
        [],
        "Tier 1",
        16 * 60,
        "Product question we couldn't answer for {{ customer.name }}: please check with the buying team.",
    ),
}


def seed_playbooks(tenant: Tenant) -> None:
    """Replies first, then one playbook per ticket type; idempotent (skips what exists)."""
    actor = Actor.system()
    by_name = {t.name: t for t in ReplyTemplate.objects.filter(tenant=tenant, kind=ReplyTemplate.Kind.REPLY)}
    for name, (collection, bodies) in REPLIES.items():
        if name not in by_name:
            by_name[name] = services.template_save(
                tenant=tenant,
                actor=actor,
                name=name,
                collection=collection,
                variants={lang: {"body": body} for lang, body in bodies.items()},
            )
    teams = {t.name: t for t in Team.objects.filter(tenant=tenant)}
    types = {t.slug: t for t in TicketType.objects.filter(tenant=tenant)}
    done = set(Playbook.objects.filter(tenant=tenant).values_list("ticket_type__slug", flat=True))
    for slug, (owner, checklist, replies, required, escalate_to, due, summary) in PLAYBOOKS.items():
        if slug not in types or slug in done:
            continue
        version = services.playbook_save(
            tenant=tenant,
            ticket_type=types[slug],
            actor=actor,
            owner_team=teams.get(owner),
            checklist=[{"text": text, "required": req} for text, req in checklist],
            replies=[by_name[r].pk for r in replies],
            required_fields=required,
            escalation_team=teams.get(escalate_to),
            escalation_due_minutes=due if teams.get(escalate_to) else None,
            escalation_summary=summary,
            note="Starter playbook",
        )
        # The demo's existing tickets of this type follow it too.
        Ticket.objects.filter(tenant=tenant, ticket_type=types[slug], playbook_version__isnull=True).update(
            playbook_version=version
        )


def seed_escalations(tenant: Tenant, people) -> None:
    """A few escalations in the teams' queues: open, acknowledged and answered ones.

    Runs after the demo orders exist, so the playbooks' summaries fill in from them.
    """
    from tickets.models import OPEN_STATUSES, Escalation
    from tickets.services_escalations import (
        escalation_acknowledge,
        escalation_answer,
        escalation_create,
        escalation_draft,
    )

    if Escalation.objects.filter(tenant=tenant).exists():
        return
    tickets = list(
        Ticket.objects.filter(
            tenant=tenant, status__in=OPEN_STATUSES, order__isnull=False, ticket_type__slug__in=list(PLAYBOOKS)
        )
        .select_related("customer", "ticket_type", "order", "tenant", "assignee")
        .order_by("id")[:24:4]
    )
    for index, ticket in enumerate(tickets):
        agent = ticket.assignee or people.agents[index % len(people.agents)]
        draft = escalation_draft(ticket, agent)
        if draft.team is None or not draft.summary:
            continue
        escalation = escalation_create(
            ticket=ticket, actor=Actor.for_user(agent), summary=draft.summary, team=draft.team
        )
        lead = draft.team.lead or people.leads[0]
        if index % 3 == 1:
            escalation_acknowledge(escalation=escalation, actor=Actor.for_user(lead))
        elif index % 3 == 2:
            escalation_answer(
                escalation=escalation,
                actor=Actor.for_user(lead),
                answer="Checked with the carrier: the parcel is at the local depot and goes out tomorrow.",
            )
