"""Demo tickets for the apparel store: types, schedules, policies, and a realistic backlog.

Everything goes through the services with back-dated times, so SLA clocks, pauses,
breaches and the timeline are exactly what production would have produced.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from django.utils import timezone

from helpdesk.models import Tenant
from helpdesk.services import Actor
from tickets import services
from tickets.models import (
    BusinessSchedule,
    Channel,
    Holiday,
    Priority,
    SlaPolicy,
    SlaTarget,
    Status,
    Team,
    TicketType,
    Tier,
)

TYPES = [
    ("wismo", "Where is my order", "Order status and tracking questions"),
    ("delivery-delay", "Delivery delay", "Parcel late or stuck with the carrier"),
    ("damaged-item", "Damaged item", "Arrived torn, stained or broken"),
    ("wrong-item", "Wrong item", "Wrong size, colour or product sent"),
    ("return-request", "Return request", "Customer wants to send something back"),
    ("refund-status", "Refund status", "Where is my refund"),
    ("cancel-request", "Cancel request", "Cancel before it ships"),
    ("address-change", "Address change", "Change the shipping address before fulfilment"),
    ("payment-issue", "Payment issue", "Declined card, double charge, invoice"),
    ("product-question", "Product question", "Sizing, fabric, stock and care"),
]

# (type slug, subject, opening message, agent reply, customer follow-up)
SCRIPTS = {
    "wismo": (
        "Where is my order #{order}?",
        "Hi, I ordered a linen shirt on {day} and haven't heard anything since. Can you tell me where it is?",
        "Hi {first}, your order #{order} left our warehouse yesterday with DHL; tracking should update within 24 hours.",
        "Thanks — the tracking link still says label created.",
    ),
    "delivery-delay": (
        "Order #{order} still not delivered",
        "My parcel was supposed to arrive on Tuesday. Tracking hasn't moved for 4 days.",
        "Sorry about the wait, {first}. I've opened an enquiry with the carrier and will update you by tomorrow.",
        "Any news? I need it for a wedding on Saturday.",
    ),
    "damaged-item": (
        "Jacket arrived with a torn seam",
        "The wool jacket from order #{order} has a 5 cm tear along the left sleeve seam. Photos attached.",
        "I'm so sorry, {first}. I can send a replacement today or refund you in full — which would you prefer?",
        "A replacement please, same size (M).",
    ),
    "wrong-item": (
        "Wrong size sent (ordered M, got L)",
        "I ordered the merino sweater in M but the label says L. Order #{order}.",
        "Apologies for the mix-up! A prepaid return label is on its way and we'll ship the M as soon as it scans.",
        "Got the label, thanks.",
    ),
    "return-request": (
        "Return for order #{order}",
        "The chinos don't fit. How do I return them? It's been 12 days.",
        "You're within our 30-day window, {first}. Here is your return link; refunds go out 3–5 days after we receive the parcel.",
        "",
    ),
    "refund-status": (
        "Still waiting for my refund",
        "I returned the dress two weeks ago (order #{order}) and haven't seen the refund.",
        "Your return arrived on Monday and the refund of €59.90 was issued today; banks take 3–5 business days.",
        "Still nothing on my card.",
    ),
    "cancel-request": (
        "Please cancel order #{order}",
        "I ordered the wrong colour by mistake, please cancel before it ships.",
        "Done — order #{order} is cancelled and the authorisation on your card will drop off within a few days.",
        "",
    ),
    "address-change": (
        "Change delivery address for #{order}",
        "I'm moving this week — can you ship to Hauptstraße 12, 10115 Berlin instead?",
        "I've updated the address on #{order}; it hasn't shipped yet so it will go to Hauptstraße 12.",
        "",
    ),
    "payment-issue": (
        "Charged twice for one order",
        "My bank shows two charges of €84.00 for order #{order}.",
        "One of those is a pending authorisation that will disappear within 5 days; only one charge was captured.",
        "It's been 6 days and both are still there.",
    ),
    "product-question": (
        "Does the linen shirt run small?",
        "I'm usually an M in your brand — should I size up for the linen shirt?",
        "It's a relaxed fit; most customers stay with their usual size. Chest in M is 112 cm.",
        "",
    ),
}

FIRST = [
    "Dana",
    "Lee",
    "Kim",
    "Alex",
    "Sofia",
    "Mateo",
    "Hannah",
    "Yusuf",
    "Chloé",
    "Jonas",
    "Mia",
    "Luca",
    "Nora",
    "Omar",
    "Ines",
    "Felix",
    "Zoe",
    "Arjun",
    "Emma",
    "Tariq",
]
LAST = [
    "Ruiz",
    "Park",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Nowak",
    "Jensen",
    "Silva",
    "Kaya",
    "Murphy",
    "Becker",
    "Costa",
    "Novak",
    "Haddad",
    "Lund",
]


def _hours(h: float) -> int:
    return int(h * 60)


def seed_tickets(tenant: Tenant, people) -> None:
    rng = random.Random(42)  # noqa: S311 - demo data, not security
    types = {}
    for pos, (slug, name, desc) in enumerate(TYPES):
        types[slug], _ = TicketType.objects.get_or_create(
            tenant=tenant, slug=slug, defaults={"name": name, "description": desc, "position": pos}
        )

    default = BusinessSchedule.objects.get(tenant=tenant, is_default=True)
    default.name = "Support hours (Mon–Fri 9–17)"
    default.save(update_fields=["name"])
    extended, _ = BusinessSchedule.objects.get_or_create(
        tenant=tenant,
        name="Chat hours (Mon–Sat 8–20)",
        defaults={"timezone": tenant.timezone, "intervals": [[d, 8 * 60, 20 * 60] for d in range(6)]},
    )
    year = timezone.now().year
    for schedule in (default, extended):
        for day, name in [
            (date(year, 12, 24), "Christmas Eve"),
            (date(year, 12, 25), "Christmas Day"),
            (date(year, 12, 26), "Boxing Day"),
            (date(year + 1, 1, 1), "New Year's Day"),
        ]:
            Holiday.objects.get_or_create(tenant=tenant, schedule=schedule, date=day, defaults={"name": name})

    def policy(name, position, conditions, targets, schedule=None, pause_on_hold=False):
        p, created = SlaPolicy.objects.get_or_create(
            tenant=tenant,
            name=name,
            defaults={
                "position": position,
                "conditions": conditions,
                "schedule": schedule,
                "pause_on_hold": pause_on_hold,
            },
        )
        if created:
            SlaTarget.objects.bulk_create(
                [
                    SlaTarget(
                        tenant=tenant,
                        policy=p,
                        metric=m,
                        priority=pr,
                        minutes=mins,
                        business_hours=bh,
                        warn_before_minutes=min(max(mins // 4, 5), 60),
                    )
                    for (m, pr), (mins, bh) in targets.items()
                ]
            )

    all_p = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]
    policy(
        "VIP customers",
        10,
        {"tiers": [Tier.VIP]},
        {
            **{("first_response", p): (_hours(1), True) for p in all_p},
            **{("next_response", p): (_hours(2), True) for p in all_p},
            **{("resolution", p): (_hours(16), True) for p in all_p},
        },
    )
    policy(
        "Live channels (chat, SMS, WhatsApp)",
        20,
        {"channels": [Channel.CHAT, Channel.SMS, Channel.WHATSAPP]},
        {
            **{("first_response", p): (15 if p in (Priority.HIGH, Priority.URGENT) else 30, True) for p in all_p},
            **{("next_response", p): (30, True) for p in all_p},
            **{("resolution", p): (_hours(8), True) for p in all_p},
        },
        schedule=extended,
    )
    policy(
        "Damaged, wrong item and payment problems",
        30,
        {"ticket_types": ["damaged-item", "wrong-item", "payment-issue"]},
        {
            **{
                ("first_response", p): (_hours({"low": 8, "normal": 4, "high": 2, "urgent": 1}[p]), True) for p in all_p
            },
            **{("next_response", p): (_hours(4), True) for p in all_p},
            **{("resolution", p): (_hours(24), True) for p in all_p},
        },
        pause_on_hold=True,
    )
    SlaPolicy.objects.filter(tenant=tenant, name="Standard").update(position=100)
    services.sla_policies_changed(tenant)

    tier1, _ = Team.objects.get_or_create(tenant=tenant, name="Tier 1", defaults={"lead": people.leads[0]})
    tier1.members.set(people.agents[:4])
    returns, _ = Team.objects.get_or_create(tenant=tenant, name="Returns & refunds", defaults={"lead": people.leads[1]})
    returns.members.set(people.agents[3:])
    logistics, _ = Team.objects.get_or_create(
        tenant=tenant, name="Logistics", defaults={"lead": people.leads[0], "schedule": default}
    )

    customers = []
    for i in range(140):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        c = services.customer_get_or_create(
            tenant=tenant, email=f"{first}.{last}{i}@example.com".lower(), name=f"{first} {last}"
        )
        c.tier = rng.choices([Tier.NEW, Tier.REPEAT, Tier.VIP], weights=[55, 38, 7])[0]
        c.save(update_fields=["tier"])
        customers.append(c)

    now = timezone.now()
    agents = people.agents
    channels = [Channel.EMAIL] * 6 + [Channel.CHAT, Channel.FORM, Channel.SMS, Channel.WHATSAPP]
    plan = [
        ("new", 40),
        ("open_replied", 55),
        ("open_waiting", 45),
        ("pending", 45),
        ("on_hold", 15),
        ("solved", 60),
        ("closed", 40),
    ]
    order = 1040
    for state, count in plan:
        for _ in range(count):
            order += rng.randint(1, 7)
            slug = rng.choice(list(SCRIPTS))
            subject, opening, reply, follow = SCRIPTS[slug]
            customer = rng.choice(customers)
            fmt = {"order": order, "first": customer.name.split()[0], "day": (now - timedelta(days=6)).strftime("%A")}
            if state == "new":
                created = now - timedelta(minutes=rng.randint(5, 60 * 6))
            elif state == "open_waiting":
                created = now - timedelta(minutes=rng.randint(30, 60 * 10))
            elif state in ("solved", "closed"):
                created = now - timedelta(hours=rng.randint(30, 24 * 20))
            else:
                created = now - timedelta(hours=rng.randint(2, 24 * 3))
            priority = rng.choices(all_p, weights=[15, 60, 18, 7])[0]
            ticket = services.ticket_create(
                tenant=tenant,
                subject=subject.format(**fmt),
                body=opening.format(**fmt),
                customer=customer,
                actor=Actor(kind="customer"),
                channel=rng.choice(channels),
                priority=priority,
                ticket_type=types[slug],
                order_number=str(order),
                at=created,
                tags=rng.sample(
                    ["dhl", "dpd", "ups", "size-exchange", "gift", "eu", "uk", "repeat-contact"], k=rng.randint(0, 2)
                ),
            )
            agent = rng.choice(agents)
            actor = Actor.for_user(agent)
            if state == "new":
                if rng.random() < 0.25:
                    services.ticket_assign(
                        ticket=ticket,
                        assignee=agent,
                        actor=Actor.for_user(people.leads[0]),
                        at=created + timedelta(minutes=3),
                    )
                continue
            services.ticket_assign(
                ticket=ticket, assignee=agent, actor=actor, at=created + timedelta(minutes=rng.randint(2, 40))
            )
            t1 = created + timedelta(minutes=rng.randint(20, 60 * 10))
            if state == "open_waiting":
                if rng.random() < 0.5:
                    services.ticket_add_note(
                        ticket=ticket,
                        actor=actor,
                        body="Checked the order in the store admin — label created, no carrier scan yet.",
                        at=t1,
                    )
                continue
            services.ticket_reply(ticket=ticket, actor=actor, body=reply.format(**fmt), at=t1)
            if state == "open_replied":
                t2 = max(t1 + timedelta(minutes=10), now - timedelta(minutes=rng.randint(10, 60 * 8)))
                if t2 < now:
                    services.ticket_customer_message(
                        ticket=ticket, body=follow.format(**fmt) or "Thanks, any update?", at=t2
                    )
                continue
            if state == "pending":
                services.ticket_set_status(
                    ticket=ticket, status=Status.PENDING, actor=actor, at=t1 + timedelta(seconds=5)
                )
            elif state == "on_hold":
                services.ticket_add_note(
                    ticket=ticket,
                    actor=actor,
                    body="Waiting for the carrier's investigation (ref. DHL-58231).",
                    at=t1 + timedelta(minutes=1),
                )
                services.ticket_set_status(
                    ticket=ticket, status=Status.ON_HOLD, actor=actor, at=t1 + timedelta(minutes=2)
                )
            else:
                services.ticket_set_status(
                    ticket=ticket, status=Status.SOLVED, actor=actor, at=t1 + timedelta(minutes=5)
                )
                if state == "closed":
                    services.ticket_set_status(
                        ticket=ticket, status=Status.CLOSED, actor=Actor.system(), at=t1 + timedelta(days=4)
                    )
    # What beat would have done by now: fire due warnings and breaches once.
    services.sla_sweep_tenant(tenant.pk)
