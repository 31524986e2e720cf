"""Fill the bench database with a realistic help-desk data set, fast.

    .venv/bin/python bench/generate.py [--tenants 100] [--tickets-per-tenant 10000] [--reset]

Tenants are made through ``helpdesk.services.tenant_create`` (so every default a real
workspace has exists: business hours, the Standard SLA policy, the ticket counter). The
bulk rows — people, ticket types, tags, customers, tickets, messages, the timeline, SLA
clocks — are written with Postgres ``COPY … FROM STDIN`` from in-memory buffers, in
blocks of ~10,000 tickets (ticket j of every tenant, then j+1, …, so tenants' rows are
interleaved in id order and on disk, as in production), by one worker process per core.
While loading, the big tables' secondary indexes are dropped and rebuilt afterwards from
their saved definitions, and foreign-key triggers are off for the loading sessions
(``session_replication_role = replica``; the rows are consistent by construction). Then
VACUUM and ANALYZE, so the planner and the visibility map look like a database that has
been running for a while (and autovacuum has nothing to do during the benchmark).

Data shape per tenant (defaults): 10,000 tickets over the past year, ~3 tickets per customer,
2–6 messages per ticket (the hot tenant ``bench-000`` also has 20 tickets of exactly 30
messages), a timeline event per change, SLA clocks consistent with each ticket's status,
10 ticket types, 30 tags, 8 agents and 2 leads (password ``bench-password``), 2 teams.

The database is only ever one whose name ends in ``_bench`` (see bench/common.py).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
from bisect import bisect_right
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    HOT_SLUG,
    PASSWORD,
    THREAD_MESSAGES,
    connect,
    cursor,
    database_exists,
    db_params,
    describe_db,
    migrate,
    setup_django,
)

MARKER = "storedesk-bench"
DAY = 86400
NO_DUE = "9999-01-01 00:00:00+00"
NULL = "\\N"

# Tables written in bulk by the workers (model label, our columns). Any other NOT NULL
# column without a database default (added by a later migration) is filled with the
# model field's default — see `_constant_columns`.
BULK_TABLES: dict[str, tuple[str, list[str]]] = {
    "customer": (
        "tickets.Customer",
        [
            "id",
            "tenant_id",
            "email",
            "name",
            "phone",
            "language",
            "tier",
            "external_ids",
            "note",
            "created_at",
        ],
    ),
    "ticket": (
        "tickets.Ticket",
        [
            "id",
            "tenant_id",
            "number",
            "subject",
            "status",
            "priority",
            "ticket_type_id",
            "channel",
            "customer_id",
            "assignee_id",
            "team_id",
            "sla_policy_id",
            "followup_of_id",
            "created_at",
            "updated_at",
            "last_activity_at",
            "first_response_at",
            "solved_at",
            "last_customer_message_at",
            "last_agent_reply_at",
            "sla_due_at",
            "snippet",
            "message_count",
        ],
    ),
    "tickettag": ("tickets.TicketTag", ["id", "tenant_id", "ticket_id", "tag_id"]),
    "message": (
        "tickets.Message",
        [
            "id",
            "tenant_id",
            "ticket_id",
            "author_type",
            "author_user_id",
            "kind",
            "channel",
            "body_text",
            "body_html",
            "external_id",
            "created_at",
        ],
    ),
    "event": (
        "tickets.TicketEvent",
        [
            "id",
            "tenant_id",
            "ticket_id",
            "created_at",
            "actor_type",
            "actor_user_id",
            "actor_label",
            "kind",
            "data",
        ],
    ),
    "clock": (
        "tickets.SlaClock",
        [
            "id",
            "tenant_id",
            "ticket_id",
            "metric",
            "status",
            "target_seconds",
            "business_hours",
            "warn_before_seconds",
            "started_at",
            "elapsed_seconds",
            "running_since",
            "due_at",
            "warn_at",
            "warned_at",
            "breached_at",
            "fulfilled_at",
            "pauses",
        ],
    ),
}
SMALL_TABLES: dict[str, tuple[str, list[str]]] = {
    "user": (
        "helpdesk.User",
        [
            "id",
            "password",
            "last_login",
            "is_superuser",
            "email",
            "name",
            "is_active",
            "is_staff",
            "date_joined",
        ],
    ),
    "membership": (
        "helpdesk.Membership",
        ["id", "tenant_id", "user_id", "role", "availability", "created_at"],
    ),
    "tickettype": (
        "tickets.TicketType",
        ["id", "tenant_id", "name", "slug", "description", "position", "is_active"],
    ),
    "tag": ("tickets.Tag", ["id", "tenant_id", "name"]),
    "team": ("tickets.Team", ["id", "tenant_id", "name", "lead_id", "schedule_id"]),
    "team_members": ("tickets.Team.members", ["id", "team_id", "user_id"]),
}
# Id blocks per ticket (ids are explicit so rows can point at each other; gaps are fine).
PER_TICKET = {"message": 32, "event": 64, "clock": 3, "tickettag": 4}

TICKET_TYPES = [
    ("Where is my order", "where-is-my-order"),
    ("Return request", "return-request"),
    ("Refund", "refund"),
    ("Damaged item", "damaged-item"),
    ("Wrong item received", "wrong-item"),
    ("Cancel order", "cancel-order"),
    ("Change address", "change-address"),
    ("Product question", "product-question"),
    ("Discount code", "discount-code"),
    ("Payment problem", "payment-problem"),
]
TAGS = [
    "vip",
    "repeat-buyer",
    "fragile",
    "express",
    "international",
    "gift",
    "wholesale",
    "influencer",
    "chargeback-risk",
    "bulk-order",
    "preorder",
    "backorder",
    "subscription",
    "warranty",
    "size-exchange",
    "colour-exchange",
    "missing-parcel",
    "courier-dpd",
    "courier-ups",
    "courier-dhl",
    "courier-gls",
    "promo-spring",
    "promo-black-friday",
    "marketplace",
    "instagram",
    "tiktok",
    "b2b",
    "loyalty",
    "press",
    "escalated",
]
SUBJECTS = {
    "where-is-my-order": [
        "Where is my order #{o}?",
        "Order #{o} not arrived yet",
        "Tracking for #{o}",
    ],
    "return-request": [
        "Return for order #{o}",
        "I want to send back #{o}",
        "How do I return this?",
    ],
    "refund": [
        "Refund for #{o} not received",
        "When do I get my money back?",
        "Refund status #{o}",
    ],
    "damaged-item": ["Item arrived broken (#{o})", "Damaged parcel #{o}", "Cracked on arrival"],
    "wrong-item": [
        "Wrong size sent for #{o}",
        "Received the wrong item",
        "This is not what I ordered",
    ],
    "cancel-order": ["Please cancel #{o}", "Cancel my order", "Ordered by mistake #{o}"],
    "change-address": [
        "Change delivery address #{o}",
        "Moved house — new address",
        "Typo in address #{o}",
    ],
    "product-question": ["Is this waterproof?", "Sizing question", "Does it come in blue?"],
    "discount-code": [
        "Discount code not working",
        "Code SPRING20 rejected",
        "Forgot to apply my code",
    ],
    "payment-problem": ["Charged twice for #{o}", "Payment declined", "PayPal error at checkout"],
}
FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Katrin",
    "Lukas",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Quentin",
    "Rosa",
    "Sven",
    "Tara",
    "Uwe",
    "Vera",
    "Wim",
    "Xenia",
    "Yusuf",
    "Zoe",
    "Amir",
    "Bea",
    "Chloe",
    "Dario",
    "Elif",
    "Finn",
]
LAST = [
    "Schmidt",
    "Meyer",
    "Weber",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Martin",
    "Bernard",
    "Dubois",
    "Rossi",
    "Russo",
    "Garcia",
    "Lopez",
    "Jansen",
    "Visser",
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Silva",
    "Santos",
    "Novak",
    "Kowalski",
    "Nowak",
    "Horvat",
    "Larsen",
]
CUSTOMER_LINES = [
    "Hi, I ordered last week and still have not received anything.",
    "The tracking link says the parcel is at the depot since Monday.",
    "Could you please check what is going on with my order?",
    "I need it before Saturday, it is a birthday present.",
    "The box was crushed and the glass inside is broken.",
    "I attached photos of the damage.",
    "I would like a refund rather than a replacement.",
    "Can I exchange it for a larger size instead?",
    "My discount code was not applied at checkout.",
    "I was charged twice, please look into it.",
    "Thanks for the quick answer!",
    "That did not work, the page shows an error.",
    "I moved last month, the old address is wrong.",
    "Is there a way to speed up the delivery?",
    "I never received the return label.",
    "Please cancel the order if it has not shipped yet.",
    "The colour is quite different from the photos.",
    "It still has not arrived, this is the third time I am writing.",
]
AGENT_LINES = [
    "Thanks for reaching out, and sorry for the trouble.",
    "I checked with the carrier: your parcel is on its way and should arrive within two days.",
    "I have issued a full refund; it will show on your statement in 3–5 business days.",
    "I have sent you a prepaid return label by email.",
    "Could you send us a photo of the item and the packaging?",
    "I updated the delivery address on your order.",
    "I applied the discount manually and refunded the difference.",
    "A replacement is on its way; you do not need to send the damaged one back.",
    "I cancelled the order before it shipped, so you will not be charged.",
    "Let me know if there is anything else I can do.",
    "Best regards,",
]
NOTE_LINES = [
    "Carrier claim opened, waiting for their answer.",
    "Customer is VIP — refund approved without return.",
    "Checked payment provider: duplicate authorisation, will drop off in 7 days.",
    "Escalated to warehouse for a stock check.",
    "Second contact about this order this week.",
]


def esc(text: str) -> str:
    """A value for COPY's text format."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def snippet(text: str) -> str:
    return " ".join(text.split())[:160]


def _body_pool(rng: random.Random, lines: list[str], size: int, html_share: float) -> list[tuple]:
    """(escaped text, escaped html, escaped snippet) bodies built from a few lines each."""
    pool = []
    for _ in range(size):
        chosen = rng.sample(lines, k=min(len(lines), rng.randint(1, 4)))
        text = "\n".join(chosen)
        if rng.random() < 0.3:
            text = "Hello,\n\n" + text + "\n\nKind regards"
        html = ""
        if rng.random() < html_share:
            html = "".join(f"<p>{line}</p>" for line in text.split("\n") if line)
        pool.append((esc(text), esc(html), esc(snippet(text))))
    return pool


class Stamp:
    """Fast epoch-seconds -> timestamptz text: a cached hour prefix plus "MM:SS+00"."""

    MINSEC = [f"{m:02d}:{s:02d}+00" for m in range(60) for s in range(60)]

    def __init__(self) -> None:
        self.hours: dict[int, str] = {}

    def __call__(self, epoch: float) -> str:
        hour, rest = divmod(int(epoch), 3600)
        prefix = self.hours.get(hour)
        if prefix is None:
            prefix = time.strftime("%Y-%m-%d %H:", time.gmtime(hour * 3600))
            self.hours[hour] = prefix
        return prefix + self.MINSEC[rest]


STAMP = Stamp()


def iso(stamp: str) -> str:
    """COPY timestamp text -> the ISO 8601 form the product writes into JSON."""
    return stamp.replace(" ", "T") + ":00"


# --- The per-tenant generator (runs in worker processes) --------------------------------


def prepared(table: list[tuple[str, float]]) -> tuple[list[str], list[float], float]:
    """A weighted table as (values, cumulative weights, total) for `pick`."""
    values = [v for v, _ in table]
    cum, total = [], 0.0
    for _, weight in table:
        total += weight
        cum.append(total)
    return values, cum, total


def pick(rnd, table: tuple[list[str], list[float], float]) -> str:
    """A value of a prepared table at random, by weight (bisect; cheaper than choices())."""
    values, cum, total = table
    return values[bisect_right(cum, rnd() * total)]


STATUS_BY_AGE = [
    # (max age in days, weights new/open/pending/on_hold/solved/closed)
    (3, [35, 30, 15, 5, 15, 0]),
    (30, [2, 12, 12, 4, 45, 25]),
    (10**9, [0, 1, 1, 0.5, 2.5, 95]),
]
STATUSES = ["new", "open", "pending", "on_hold", "solved", "closed"]
PRIORITIES = [("low", 15), ("normal", 60), ("high", 20), ("urgent", 5)]
CHANNELS = [
    ("email", 55),
    ("chat", 15),
    ("form", 15),
    ("sms", 4),
    ("whatsapp", 6),
    ("phone", 3),
    ("api", 2),
]
TIERS = [("new", 60), ("repeat", 35), ("vip", 5)]
PRIORITIES_P, CHANNELS_P, TIERS_P = prepared(PRIORITIES), prepared(CHANNELS), prepared(TIERS)
STATUS_P = [(limit * DAY, prepared(list(zip(STATUSES, weights, strict=True)))) for limit, weights in STATUS_BY_AGE]


class TenantState:
    """What one worker knows of a tenant: ids, people, targets, its ticket timeline."""

    def __init__(self, spec: dict, plan: dict, now: int):
        m = plan["tickets_per_tenant"]
        self.index = spec["index"]
        self.tid = spec["tenant_id"]
        rng = random.Random(1000 + self.index)
        self.created_times = sorted(now - 600 - int(rng.random() * 365 * DAY) for _ in range(m))
        self.threads = set()
        if spec["slug"] == HOT_SLUG:
            self.threads = set(range(m - 1, max(-1, m - 201), -10))
        self.n_cust = max(1, m // 3)
        self.agents, self.leads = spec["agents"], spec["leads"]  # [(user id, email)]
        self.staff = self.agents + self.leads
        self.types, self.tags, self.teams = spec["type_ids"], spec["tag_ids"], spec["team_ids"]
        self.type_slugs = spec["type_slugs"]
        self.targets = spec["targets"]  # "metric:priority" -> [seconds, business, warn_before_s]
        self.policy_id = spec["policy_id"]
        self.rnd = rng.random


class BlockWriter:
    """Builds COPY text lines for blocks of ticket numbers across every tenant.

    Rows are produced ticket number first, tenant second (ticket j of every tenant, then
    j+1, …), and ids are `j * tenants + tenant index`: like a production database, where
    tenants' rows are interleaved in id order and on disk, not clustered per tenant.
    Written for speed (~18 rows per ticket): local names, one f-string per row, each
    timestamp formatted once, bisect instead of random.choices.
    """

    def __init__(self, specs: list[dict], plan: dict, now: int):
        self.plan = plan
        self.now = now
        self.n_tenants = len(specs)
        self.states = [TenantState(spec, plan, now) for spec in specs]
        self.rows: dict[str, list[str]] = {name: [] for name in BULK_TABLES}
        pools_rng = random.Random(7)
        self.customer_bodies = _body_pool(pools_rng, CUSTOMER_LINES, 400, 0.3)
        self.agent_bodies = _body_pool(pools_rng, AGENT_LINES, 300, 0.0)
        self.note_bodies = _body_pool(pools_rng, NOTE_LINES, 40, 0.0)
        self.pol_event = esc(json.dumps({"policy": "Standard", "reason": "it applies to every ticket"}))

    def take(self) -> dict[str, list[str]]:
        rows, self.rows = self.rows, {name: [] for name in BULK_TABLES}
        for name, suffix in self.plan["suffix"].items():
            if suffix:
                rows[name] = [line + suffix for line in rows[name]]
        return rows

    def block(self, b: int, size: int) -> int:
        """Tickets b*size .. (b+1)*size-1 of every tenant; returns how many were made."""
        m = self.plan["tickets_per_tenant"]
        made = 0
        for st in self.states:  # deterministic whatever the number of workers
            st.rnd = random.Random((st.index + 1) * 1_000_003 + b).random
        for j in range(b * size, min(m, (b + 1) * size)):
            for st in self.states:
                if j < st.n_cust:
                    self.customer(st, j)
                self.ticket(st, j)
                made += 1
        return made

    def customer(self, st: TenantState, c: int) -> None:
        rnd = st.rnd
        cid = self.plan["id_base"]["customer"] + c * self.n_tenants + st.index
        first, last = FIRST[int(rnd() * len(FIRST))], LAST[int(rnd() * len(LAST))]
        phone = f"+4917{10**7 + int(rnd() * 9 * 10**7)}" if rnd() < 0.4 else ""
        created = STAMP(self.now - 400 * DAY + int(rnd() * 30 * DAY))
        self.rows["customer"].append(
            f"{cid}\t{st.tid}\t{first.lower()}.{last.lower()}.{c}@example.com\t"
            f"{first} {last}\t{phone}\ten\t{pick(rnd, TIERS_P)}\t{{}}\t\t{created}"
        )

    def ticket(self, st: TenantState, j: int) -> None:  # noqa: C901 - kept flat for speed
        now, rnd, ts = self.now, st.rnd, STAMP
        ids = self.plan["id_base"]
        tid = st.tid
        created_times, threads, n_cust = st.created_times, st.threads, st.n_cust
        agents, leads, staff = st.agents, st.leads, st.staff
        types, tags, teams, type_slugs = st.types, st.tags, st.teams, st.type_slugs
        targets, policy_id = st.targets, st.policy_id
        cust_base = ids["customer"] + st.index
        cbodies, abodies, nbodies = self.customer_bodies, self.agent_bodies, self.note_bodies
        n_cb, n_ab, n_nb = len(cbodies), len(abodies), len(nbodies)
        ticket_base, msg_base0, ev_base0 = ids["ticket"], ids["message"], ids["event"]
        clock_base0, tag_base0 = ids["clock"], ids["tickettag"]
        per_msg, per_ev = PER_TICKET["message"], PER_TICKET["event"]
        per_clock, per_tag = PER_TICKET["clock"], PER_TICKET["tickettag"]
        cust_actor = f"customer\t{NULL}\tSystem"
        sys_actor = f"system\t{NULL}\tSystem"
        pol_event = self.pol_event
        rows = self.rows
        ticket_rows, msg_rows = rows["ticket"], rows["message"]
        ev_rows, clock_rows, tag_rows = rows["event"], rows["clock"], rows["tickettag"]

        g = j * self.n_tenants + st.index
        ticket_id = ticket_base + g
        created = created_times[j]
        if j in threads:
            status, n_msgs = "open", THREAD_MESSAGES
        else:
            age = now - created
            for limit, table in STATUS_P:
                if age < limit:
                    status = pick(rnd, table)
                    break
            n_msgs = 2 + int(rnd() * 5)
        priority = pick(rnd, PRIORITIES_P)
        channel = pick(rnd, CHANNELS_P)
        if rnd() < 0.85:
            type_index = int(rnd() * len(types))
            type_id, slug = str(types[type_index]), type_slugs[type_index]
        else:
            type_id, slug = NULL, "product-question"
        options = SUBJECTS[slug]
        subject = options[int(rnd() * len(options))].format(o=10000 + int(rnd() * 90000))
        customer_id = cust_base + int(rnd() * n_cust) * self.n_tenants
        solved = status == "solved" or status == "closed"
        if status == "new" and rnd() > 0.25:
            assignee = None
        elif rnd() < 0.9:
            assignee = agents[int(rnd() * len(agents))]
        else:
            assignee = leads[int(rnd() * len(leads))]
        team_id = str(teams[int(rnd() * len(teams))]) if assignee and rnd() < 0.6 else NULL
        handler = assignee or staff[int(rnd() * len(staff))]
        user_actor = f"user\t{handler[0]}\t{handler[1]}"
        pre = f"\t{tid}\t{ticket_id}\t"

        # Message times and authors (C customer, A agent reply, N internal note).
        if solved:
            end = min(now - 60, created + 3600 + int(rnd() * 5 * DAY))
        else:
            end = now - 60 - int(rnd() * 600)
        span = max(end - created, n_msgs * 60) - 60
        times = sorted(created + 60 + int(rnd() * span) for _ in range(n_msgs - 1))
        times.insert(0, created)
        for k in range(1, n_msgs):
            if times[k] <= times[k - 1]:
                times[k] = times[k - 1] + 1
        stamps = [ts(t) for t in times]
        if status == "new":
            authors = ["C"] + ["C" if rnd() < 0.7 else "N" for _ in range(n_msgs - 1)]
        else:
            authors = ["C" if k % 2 == 0 else "A" for k in range(n_msgs)]
            for k in range(3, n_msgs):
                if authors[k] == "A" and rnd() < 0.1:
                    authors[k] = "N"
            if n_msgs == THREAD_MESSAGES and status == "open":
                authors[-1] = "C"
            elif status in ("pending", "solved", "closed"):
                authors[-1] = "A"

        msg_base = msg_base0 + g * per_msg
        ev_id = ev_base0 + g * per_ev
        first_reply = last_reply = last_cust = None
        last_snip = ""
        is_email = channel == "email"
        for k in range(n_msgs):
            mid = msg_base + k
            stamp = stamps[k]
            a = authors[k]
            if a == "C":
                text, html, snip = cbodies[int(rnd() * n_cb)]
                if is_email:
                    msg_rows.append(
                        f"{mid}{pre}customer\t{NULL}\treply\temail\t{text}\t{html}\t<{g}.{k}@mail.example.com>\t{stamp}"
                    )
                else:
                    msg_rows.append(f"{mid}{pre}customer\t{NULL}\treply\t{channel}\t{text}\t\t\t{stamp}")
                last_cust = k
                last_snip = snip
                if k:
                    ev_rows.append(f'{ev_id}{pre}{stamp}\t{cust_actor}\tcustomer_message\t{{"message": {mid}}}')
                    ev_id += 1
            elif a == "A":
                text, _html, snip = abodies[int(rnd() * n_ab)]
                msg_rows.append(f"{mid}{pre}agent\t{handler[0]}\treply\t{channel}\t{text}\t\t\t{stamp}")
                ev_rows.append(f'{ev_id}{pre}{stamp}\t{user_actor}\treply\t{{"message": {mid}}}')
                ev_id += 1
                if first_reply is None:
                    first_reply = k
                    ev_rows.append(f'{ev_id}{pre}{stamp}\t{user_actor}\tstatus\t{{"old": "new", "new": "open"}}')
                    ev_id += 1
                last_reply = k
                last_snip = snip
            else:
                text = nbodies[int(rnd() * n_nb)][0]
                msg_rows.append(f"{mid}{pre}agent\t{handler[0]}\tnote\t{channel}\t{text}\t\t\t{stamp}")
                ev_rows.append(f'{ev_id}{pre}{stamp}\t{user_actor}\tnote\t{{"message": {mid}}}')
                ev_id += 1

        created_s = stamps[0]
        ev_rows.append(
            f"{ev_id}{pre}{created_s}\t{cust_actor}\tcreated\t"
            f'{{"channel": "{channel}", "priority": "{priority}", "followup_of": null}}'
        )
        ev_rows.append(f"{ev_id + 1}{pre}{created_s}\t{sys_actor}\tsla_policy\t{pol_event}")
        ev_id += 2
        if assignee:
            ev_rows.append(f'{ev_id}{pre}{ts(created + 30)}\t{sys_actor}\tassigned\t{{"to": "{assignee[1]}"}}')
            ev_id += 1
        solved_at = None
        last_activity = times[-1]
        if solved:
            solved_at = min(times[-1] + 60 + int(rnd() * 3 * 3600), now - 30)
            last_activity = solved_at
        if status != "new" and status != "open":
            final = "solved" if status == "closed" else status
            at = solved_at if solved else times[-1] + 5
            ev_rows.append(f'{ev_id}{pre}{ts(at)}\t{user_actor}\tstatus\t{{"old": "open", "new": "{final}"}}')
            ev_id += 1
            if status == "closed":
                ev_rows.append(
                    f'{ev_id}{pre}{ts(at + 4 * DAY)}\t{sys_actor}\tstatus\t{{"old": "solved", "new": "closed"}}'
                )
                ev_id += 1

        # SLA clocks, consistent with the status and the messages.
        clock_id = clock_base0 + g * per_clock
        first_reply_t = times[first_reply] if first_reply is not None else None
        last_reply_t = times[last_reply] if last_reply is not None else None
        resumed = None
        if first_reply is not None and last_cust is not None and last_cust > first_reply:
            resumed = times[last_cust]
        due_min = None
        for metric, slot in (("first_response", 0), ("next_response", 1), ("resolution", 2)):
            if slot == 1 and resumed is None:
                continue
            target, business, warn_before = targets[f"{metric}:{priority}"]
            started = resumed if slot == 1 else created
            running = due = warn = warned = breached = fulfilled = NULL
            elapsed = 0
            pauses = "[]"
            done_at = None
            if slot == 0 and first_reply_t is not None:
                done_at = first_reply_t
            elif slot == 1 and last_reply_t is not None and last_reply_t > resumed:
                done_at = last_reply_t
            elif slot == 2 and solved:
                done_at = solved_at
            if done_at is not None:
                state = "fulfilled"
                due_e = started + target
                elapsed = min(done_at - started, 10 * target)
                due = ts(due_e)
                fulfilled = ts(done_at)
                if done_at > due_e:
                    breached = due
                if warn_before and done_at > due_e - warn_before:
                    warned = ts(due_e - warn_before + 30)
            elif slot == 2 and status == "pending":
                state = "paused"
                paused_at = last_reply_t or times[-1]
                elapsed = max(0, min(paused_at - started, target - 60))
                pauses = f'[{{"paused_at": "{iso(ts(paused_at))}", "resumed_at": null, "reason": "pending"}}]'
            else:
                state = "active"
                due_e = now - 2 * DAY + int(rnd() * 7 * DAY)
                running = ts(started)
                due = ts(due_e)
                if warn_before:
                    warn = ts(due_e - warn_before)
                    if due_e - warn_before <= now:
                        warned = ts(due_e - warn_before + 30)
                if due_e <= now:
                    state = "breached"
                    breached = ts(due_e + 20)
                    ev_rows.append(
                        f"{ev_id}{pre}{breached}\t{sys_actor}\tsla_breached\t"
                        f'{{"metric": "{metric}", "due_at": "{iso(due)}"}}'
                    )
                    ev_id += 1
                if due_min is None or due_e < due_min:
                    due_min = due_e
            clock_rows.append(
                f"{clock_id + slot}{pre}{metric}\t{state}\t{target}\t{'t' if business else 'f'}\t"
                f"{warn_before}\t{ts(started)}\t{elapsed}\t{running}\t{due}\t{warn}\t{warned}\t"
                f"{breached}\t{fulfilled}\t{pauses}"
            )

        # Tags: 60% of tickets carry one or two.
        if rnd() < 0.6:
            tag_id = tag_base0 + g * per_tag
            first_tag = int(rnd() * len(tags))
            tag_rows.append(f"{tag_id}{pre}{tags[first_tag]}")
            if rnd() < 0.4:
                tag_rows.append(f"{tag_id + 1}{pre}{tags[(first_tag + 1 + int(rnd() * (len(tags) - 1))) % len(tags)]}")

        last_activity_s = ts(last_activity)
        ticket_rows.append(
            f"{ticket_id}\t{tid}\t{1001 + j}\t{esc(subject)}\t{status}\t{priority}\t{type_id}\t"
            f"{channel}\t{customer_id}\t{assignee[0] if assignee else NULL}\t{team_id}\t"
            f"{policy_id}\t{NULL}\t{created_s}\t{last_activity_s}\t{last_activity_s}\t"
            f"{stamps[first_reply] if first_reply is not None else NULL}\t"
            f"{ts(solved_at) if solved_at else NULL}\t"
            f"{stamps[last_cust] if last_cust is not None else NULL}\t"
            f"{stamps[last_reply] if last_reply is not None else NULL}\t"
            f"{ts(due_min) if due_min is not None else NO_DUE}\t{last_snip}\t{n_msgs}"
        )


def _worker(plan: dict, specs: list[dict], blocks: list[int], now: int, out: mp.Queue) -> None:
    """One loading process: its own connection, FK triggers off, one commit per block."""
    stats = {name: [0, 0.0] for name in BULK_TABLES}
    gen_seconds = 0.0
    try:
        conn = connect()
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            cur.execute("SET synchronous_commit = off")
        conn.commit()
        start = time.perf_counter()
        writer = BlockWriter(specs, plan, now)
        gen_seconds += time.perf_counter() - start
        for b in blocks:
            start = time.perf_counter()
            made = writer.block(b, plan["block_size"])
            rows = writer.take()
            gen_seconds += time.perf_counter() - start
            with conn.cursor() as cur:
                for name, lines in rows.items():
                    if not lines:
                        continue
                    data = ("\n".join(lines) + "\n").encode()
                    start = time.perf_counter()
                    cur.copy_expert(plan["copy_sql"][name], io.BytesIO(data), size=1 << 20)
                    stats[name][0] += len(lines)
                    stats[name][1] += time.perf_counter() - start
            conn.commit()
            out.put(("block", made))
        conn.close()
        out.put(("done", {"stats": stats, "gen_seconds": gen_seconds}))
    except BaseException as exc:  # report to the parent, which stops and says so
        out.put(("error", f"{type(exc).__name__}: {exc}"))
        raise


# --- Orchestration (main process) -------------------------------------------------------


def marker() -> str | None:
    with cursor() as cur:
        cur.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [db_params()["dbname"]],
        )
        row = cur.fetchone()
    return row[0] if row else None


def generated_size() -> tuple[int, int] | None:
    """(tenants, tickets per tenant) of a completed generation, or None."""
    if not database_exists():
        return None
    text = marker() or ""
    if not text.startswith(MARKER + " complete"):
        return None
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    return int(fields["tenants"]), int(fields["tickets_per_tenant"])


def reset_database() -> None:
    name = db_params()["dbname"]
    with cursor("postgres") as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    print(f"  reset: dropped and created {name}")


def ensure_database() -> None:
    if not database_exists():
        name = db_params()["dbname"]
        with cursor("postgres") as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        print(f"  created database {name}")


def _copy_value(field, value) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if field.get_internal_type() == "JSONField":
        return esc(json.dumps(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return esc(str(value))


def _model(label: str):
    from django.apps import apps

    parts = label.split(".")
    model = apps.get_model(parts[0], parts[1])
    if len(parts) == 3:  # an auto-created many-to-many table
        model = getattr(model, parts[2]).through
    return model


def _constant_columns(label: str, columns: list[str]) -> tuple[list[str], str]:
    """NOT NULL columns we do not write and that have no DB default: the model's default."""
    model = _model(label)
    table = model._meta.db_table
    with cursor() as cur:
        cur.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL
                 AND is_identity = 'NO'""",
            [table],
        )
        required = [r[0] for r in cur.fetchall()]
    by_column = {f.column: f for f in model._meta.concrete_fields}
    extra, values = [], []
    for column in required:
        if column in columns:
            continue
        field = by_column.get(column)
        if field is None:
            raise SystemExit(f"bench: {table}.{column} is NOT NULL and unknown to the model")
        extra.append(column)
        values.append(_copy_value(field, field.get_default()))
    return extra, "".join("\t" + v for v in values)


def _copy_sql(label: str, columns: list[str]) -> tuple[str, str, str]:
    table = _model(label)._meta.db_table
    extra, suffix = _constant_columns(label, columns)
    cols = ", ".join(f'"{c}"' for c in columns + extra)
    return table, f"COPY {table} ({cols}) FROM STDIN", suffix


def _copy_small(cur, label: str, lines: list[str]) -> None:
    table, sql, suffix = _copy_sql(label, SMALL_TABLES_BY_LABEL[label])
    data = "".join(line + suffix + "\n" for line in lines).encode()
    cur.copy_expert(sql, io.BytesIO(data))


SMALL_TABLES_BY_LABEL = dict(SMALL_TABLES.values())


def _next_ids(cur, tables: list[str]) -> dict[str, int]:
    result = {}
    for table in tables:
        cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
        result[table] = cur.fetchone()[0]
    return result


def _secondary_indexes(cur, tables: list[str]) -> list[tuple[str, str]]:
    """(name, definition) of indexes that back no constraint, on these tables."""
    cur.execute(
        """SELECT ci.relname, pg_get_indexdef(i.indexrelid)
           FROM pg_index i
           JOIN pg_class ci ON ci.oid = i.indexrelid
           JOIN pg_class ct ON ct.oid = i.indrelid
           WHERE ct.relname = ANY(%s) AND NOT i.indisprimary
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                             WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
           ORDER BY pg_relation_size(i.indrelid) DESC, ci.relname""",
        [tables],
    )
    return cur.fetchall()


def _parallel(statements: list[tuple[str, str]], jobs: int) -> float:
    """Run (label, SQL) statements on `jobs` autocommit connections at once; seconds taken."""
    start = time.perf_counter()
    queue = list(statements)
    lock = threading.Lock()
    errors: list[str] = []

    def run() -> None:
        conn = connect(autocommit=True)
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '512MB'")
            while True:
                with lock:
                    if not queue or errors:
                        break
                    label, sql = queue.pop(0)
                try:
                    cur.execute(sql)
                except Exception as exc:
                    errors.append(f"{label}: {exc}")
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("bench: " + "; ".join(errors) + " (rerun with --reset)")
    return time.perf_counter() - start


def create_tenants(n: int) -> list[dict]:
    """Tenants through the product's service (defaults included), then their people etc."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from helpdesk.models import Tenant, User
    from helpdesk.services import tenant_create
    from tickets.models import SlaPolicy, SlaTarget

    password_hash = make_password(PASSWORD)  # one Argon2 hash, shared by every bench user
    specs = []
    for i in range(n):
        slug = f"bench-{i:03d}"
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            tenant, _owner = tenant_create(
                name=f"Bench Store {i:03d}", slug=slug, owner_email=f"owner@{slug}.example.com"
            )
        specs.append({"index": i, "slug": slug, "tenant_id": tenant.pk})
    User.objects.filter(email__endswith=".example.com", email__startswith="owner@bench-").update(password=password_hash)

    with connection.cursor() as cur:
        tables = [
            "helpdesk_user",
            "helpdesk_membership",
            "tickets_tickettype",
            "tickets_tag",
            "tickets_team",
            "tickets_team_members",
        ]
        ids = _next_ids(cur, tables)
        users, members, types, tags, teams, team_members = [], [], [], [], [], []
        stamp = Stamp()
        joined = stamp(time.time() - 500 * DAY)
        for spec in specs:
            slug, tid = spec["slug"], spec["tenant_id"]
            spec["agents"], spec["leads"] = [], []
            for role, count in (("agent", 8), ("lead", 2)):
                for k in range(1, count + 1):
                    uid = ids["helpdesk_user"]
                    ids["helpdesk_user"] += 1
                    email = f"{role}{k}@{slug}.example.com"
                    name = f"{rng_name(uid)} ({role} {k})"
                    users.append(f"{uid}\t{esc(password_hash)}\t{NULL}\tf\t{email}\t{name}\tt\tf\t{joined}")
                    members.append(f"{ids['helpdesk_membership']}\t{tid}\t{uid}\t{role}\tonline\t{joined}")
                    ids["helpdesk_membership"] += 1
                    spec["agents" if role == "agent" else "leads"].append((uid, email))
            spec["type_ids"], spec["type_slugs"] = [], []
            for pos, (name, tslug) in enumerate(TICKET_TYPES):
                types.append(f"{ids['tickets_tickettype']}\t{tid}\t{name}\t{tslug}\t\t{pos}\tt")
                spec["type_ids"].append(ids["tickets_tickettype"])
                spec["type_slugs"].append(tslug)
                ids["tickets_tickettype"] += 1
            spec["tag_ids"] = []
            for name in TAGS:
                tags.append(f"{ids['tickets_tag']}\t{tid}\t{name}")
                spec["tag_ids"].append(ids["tickets_tag"])
                ids["tickets_tag"] += 1
            spec["team_ids"] = []
            for t, name in enumerate(("Frontline", "Escalations")):
                team_id = ids["tickets_team"]
                ids["tickets_team"] += 1
                teams.append(f"{team_id}\t{tid}\t{name}\t{spec['leads'][t][0]}\t{NULL}")
                spec["team_ids"].append(team_id)
                for uid, _email in spec["agents"][t * 4 : t * 4 + 4] + [spec["leads"][t]]:
                    team_members.append(f"{ids['tickets_team_members']}\t{team_id}\t{uid}")
                    ids["tickets_team_members"] += 1
        raw = cur.cursor  # psycopg2 cursor under Django's wrapper
        _copy_small(raw, "helpdesk.User", users)
        _copy_small(raw, "helpdesk.Membership", members)
        _copy_small(raw, "tickets.TicketType", types)
        _copy_small(raw, "tickets.Tag", tags)
        _copy_small(raw, "tickets.Team", teams)
        _copy_small(raw, "tickets.Team.members", team_members)
        for table in tables:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")

    by_tenant = {s["tenant_id"]: s for s in specs}
    for policy in SlaPolicy.objects.filter(tenant_id__in=by_tenant, name="Standard"):
        by_tenant[policy.tenant_id]["policy_id"] = policy.pk
    for spec in specs:
        spec["targets"] = {}
    for t in SlaTarget.objects.filter(policy_id__in=[s["policy_id"] for s in specs]):
        by_tenant[t.tenant_id]["targets"][f"{t.metric}:{t.priority}"] = [
            t.minutes * 60,
            t.business_hours,
            t.warn_before_minutes * 60,
        ]
    return specs


def stats_rows(stats: dict, tables: dict, table: str) -> int:
    return next(stats[k][0] for k, t in tables.items() if t == table)


def rng_name(seed: int) -> str:
    r = random.Random(seed)
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


def generate(tenants: int, tickets_per_tenant: int, jobs: int) -> None:
    t0 = time.perf_counter()
    setup_django()
    from django.db import connections

    from helpdesk.models import Tenant

    if Tenant.objects.filter(slug__startswith="bench-").exists():
        raise SystemExit(
            "bench: the bench database already holds (possibly partial) bench data; rerun with --reset to regenerate it"
        )
    specs = create_tenants(tenants)
    t_tenants = time.perf_counter() - t0
    print(f"  {tenants} tenants with defaults, people, types, tags, teams: {t_tenants:.1f}s")

    plan: dict = {
        "tickets_per_tenant": tickets_per_tenant,
        "copy_sql": {},
        "suffix": {},
    }
    tables = {}
    for name, (label, columns) in BULK_TABLES.items():
        table, sql, suffix = _copy_sql(label, columns)
        tables[name] = table
        plan["copy_sql"][name] = sql
        plan["suffix"][name] = suffix
    connections.close_all()

    conn = connect(autocommit=True)
    cur = conn.cursor()
    next_ids = _next_ids(cur, list(tables.values()))
    plan["id_base"] = {name: next_ids[table] for name, table in tables.items()}
    indexes = _secondary_indexes(cur, list(tables.values()))
    for name, _definition in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    print(f"  dropped {len(indexes)} secondary indexes for the load (rebuilt afterwards)")

    now = int(time.time())
    # Blocks of ticket numbers across all tenants (~10,000 tickets per COPY batch).
    block_size = max(1, 10_000 // tenants)
    plan["block_size"] = block_size
    n_blocks = -(-tickets_per_tenant // block_size)
    total_tickets = tenants * tickets_per_tenant
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()
    procs = []
    for w in range(jobs):
        mine = list(range(w, n_blocks, jobs))
        if mine:
            p = ctx.Process(target=_worker, args=(plan, specs, mine, now, out), daemon=True)
            p.start()
            procs.append(p)
    t_load = time.perf_counter()
    made, finished, next_report = 0, [], 0.1
    while len(finished) < len(procs):
        kind, payload = out.get(timeout=3600)
        if kind == "error":
            for p in procs:
                p.terminate()
            raise SystemExit(f"bench: a loader failed: {payload} (rerun with --reset)")
        if kind == "block":
            made += payload
            if made >= next_report * total_tickets:
                rate = made / (time.perf_counter() - t_load)
                print(f"    {made:,}/{total_tickets:,} tickets ({rate:,.0f} tickets/s)", flush=True)
                next_report += 0.1
        else:
            finished.append(payload)
    for p in procs:
        p.join(timeout=60)
    load_seconds = time.perf_counter() - t_load

    stats = {name: [0, 0.0] for name in BULK_TABLES}
    gen_seconds = 0.0
    for f in finished:
        gen_seconds += f["gen_seconds"]
        for name, (rows, secs) in f["stats"].items():
            stats[name][0] += rows
            stats[name][1] += secs

    # VACUUM first (sets hint bits and the visibility map, so index builds read a clean
    # heap and autovacuum has nothing to do during the benchmark), then the indexes.
    by_size = sorted(tables.values(), key=lambda t: -stats_rows(stats, tables, t))
    vac_seconds = _parallel([(t, f"VACUUM {t}") for t in by_size], jobs)
    print(f"  VACUUM: {vac_seconds:.1f}s")
    idx_seconds = _parallel(indexes, jobs)
    print(f"  rebuilt {len(indexes)} indexes: {idx_seconds:.1f}s")

    counter_value = 1000 + tickets_per_tenant
    cur.execute(
        "UPDATE tickets_ticketcounter SET value = %s WHERE tenant_id = ANY(%s)",
        [counter_value, [s["tenant_id"] for s in specs]],
    )
    for table in tables.values():
        cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    t_an = time.perf_counter()
    cur.execute("ANALYZE")
    an_seconds = time.perf_counter() - t_an
    print(f"  ANALYZE: {an_seconds:.1f}s")

    total = time.perf_counter() - t0
    name = db_params()["dbname"]
    cur.execute(
        f'COMMENT ON DATABASE "{name}" IS %s',
        [
            f"{MARKER} complete tenants={tenants} tickets_per_tenant={tickets_per_tenant} "
            f"generated_at={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))}"
        ],
    )

    print()
    print(f"  {'table':<22}{'rows':>12}{'COPY s':>9}{'rows/s (COPY)':>15}{'rows/s (wall)':>15}{'size':>10}")
    for key, (rows, secs) in stats.items():
        cur.execute("SELECT pg_total_relation_size(%s)", [tables[key]])
        size = cur.fetchone()[0]
        print(
            f"  {tables[key]:<22}{rows:>12,}{secs:>9.1f}{rows / secs if secs else 0:>15,.0f}"
            f"{rows / load_seconds:>15,.0f}{size / 2**20:>8,.0f}MB"
        )
    all_rows = sum(r for r, _ in stats.values())
    print(f"  {'all bulk rows':<22}{all_rows:>12,}{'':>9}{'':>15}{all_rows / load_seconds:>15,.0f}")
    print(
        f"  load {load_seconds:.1f}s ({jobs} workers; Python generation {gen_seconds:.1f} "
        f"worker-s, COPY {sum(s for _, s in stats.values()):.1f} worker-s), "
        f"vacuum {vac_seconds:.1f}s, indexes {idx_seconds:.1f}s, analyze {an_seconds:.1f}s, "
        f"total {total:.1f}s"
    )
    cur.execute("SELECT pg_database_size(%s)", [name])
    db_size = cur.fetchone()[0]
    cur.execute("SHOW data_directory")
    data_dir = cur.fetchone()[0]
    conn.close()
    print(
        f"  data: {describe_db()} ({db_size / 2**30:.1f} GB, Postgres data directory {data_dir}); "
        f"hot tenant {HOT_SLUG}, users agent1..agent8@/lead1..lead2@<slug>.example.com, "
        f"password {PASSWORD!r}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--tickets-per-tenant", type=int, default=10_000)
    parser.add_argument("--reset", action="store_true", help="drop and recreate the bench DB first")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="loader processes")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.tickets_per_tenant < 1:
        parser.error("--tenants and --tickets-per-tenant must be at least 1")
    print(f"bench generate: {args.tenants} tenants x {args.tickets_per_tenant:,} tickets into {describe_db()}")
    if args.reset:
        reset_database()
    else:
        ensure_database()
        size = generated_size()
        if size is not None:
            print(f"  already generated ({size[0]} tenants x {size[1]:,} tickets); use --reset to redo")
            return 0
    migrate()
    generate(args.tenants, args.tickets_per_tenant, max(1, args.jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
