"""Table and property tests for SLA policy matching in tickets.policy (pure, no database),
with the order conditions: value, currency, payment and fulfillment status, late shipment
and "address can still change"."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickets.policy import (
    FINANCIAL_STATUSES,
    FULFILLMENT_STATUSES,
    OrderFacts,
    PolicyRule,
    TicketFacts,
    clean_conditions,
    explain,
    first_match,
    matches,
    uses_order,
    validate_conditions,
)

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def order(
    value: str = "250.00",
    currency: str = "EUR",
    financial: str = "paid",
    fulfillment: str = "unfulfilled",
    placed_days_ago: float | None = 1,
    cancelled: bool = False,
) -> OrderFacts:
    return OrderFacts(
        number="1042",
        value=Decimal(value),
        currency=currency,
        financial_status=financial,
        fulfillment_status=fulfillment,
        placed_at=NOW - dt.timedelta(days=placed_days_ago) if placed_days_ago is not None else None,
        cancelled=cancelled,
    )


def facts(linked: OrderFacts | None = None, **kwargs) -> TicketFacts:
    base = {"ticket_type": "shipping", "priority": "normal", "channel": "email", "tier": "new"}
    return TicketFacts(**{**base, **kwargs}, order=linked, now=NOW)


# --- The table ------------------------------------------------------------------------------

CASES = [
    # (conditions, order facts or None, matches?)
    ({}, None, True),
    ({}, order(), True),
    ({"order_value_min": "200.00"}, order("250.00"), True),
    ({"order_value_min": "200.00"}, order("200.00"), True),  # at least: inclusive
    ({"order_value_min": "200.00"}, order("199.99"), False),
    ({"order_value_min": "200.00"}, None, False),  # no linked order: order conditions fail
    ({"order_value_max": "50.00"}, order("49.99"), True),
    ({"order_value_max": "50.00"}, order("50.00"), False),  # below: exclusive
    ({"order_value_min": "50", "order_value_max": "200"}, order("120"), True),
    ({"order_value_min": "50", "order_value_max": "200"}, order("200"), False),
    ({"order_value_min": "200.00", "order_currencies": ["EUR"]}, order("250", "EUR"), True),
    ({"order_value_min": "200.00", "order_currencies": ["EUR"]}, order("25000", "JPY"), False),
    ({"order_currencies": ["USD", "EUR"]}, order(currency="EUR"), True),
    ({"order_financial_statuses": ["paid"]}, order(financial="paid"), True),
    ({"order_financial_statuses": ["refunded", "partially_refunded"]}, order(financial="paid"), False),
    ({"order_financial_statuses": ["partially_refunded"]}, order(financial="partially_refunded"), True),
    ({"order_fulfillment_statuses": ["unfulfilled"]}, order(fulfillment=""), True),  # blank is unfulfilled
    ({"order_fulfillment_statuses": ["fulfilled"]}, order(fulfillment="partial"), False),
    ({"order_unshipped_days": 3}, order(placed_days_ago=4), True),
    ({"order_unshipped_days": 3}, order(placed_days_ago=3), True),  # exactly three days: late
    ({"order_unshipped_days": 3}, order(placed_days_ago=2.9), False),
    ({"order_unshipped_days": 3}, order(placed_days_ago=5, fulfillment="partial"), True),
    ({"order_unshipped_days": 3}, order(placed_days_ago=5, fulfillment="fulfilled"), False),
    ({"order_unshipped_days": 3}, order(placed_days_ago=5, cancelled=True), False),
    ({"order_unshipped_days": 3}, order(placed_days_ago=None), False),  # never placed: not late
    ({"order_address_changeable": True}, order(fulfillment="unfulfilled"), True),
    ({"order_address_changeable": True}, order(fulfillment="partial"), False),
    ({"order_address_changeable": True}, order(cancelled=True), False),
    ({"order_address_changeable": True}, None, False),
    ({"order_address_changeable": False}, None, True),  # false is "not a condition"
    # Unreadable stored values fail closed: the policy does not hand out its targets.
    ({"order_value_min": "lots"}, order(), False),
    ({"order_unshipped_days": "soon"}, order(placed_days_ago=30), False),
]


@pytest.mark.parametrize(("conditions", "linked", "expected"), CASES)
def test_order_conditions_match_as_the_table_says(conditions, linked, expected):
    assert matches(conditions, facts(linked)) is expected


def test_order_and_ticket_conditions_must_all_hold():
    conditions = {"priorities": ["urgent"], "order_value_min": "200"}
    assert matches(conditions, facts(order("300"), priority="urgent"))
    assert not matches(conditions, facts(order("300"), priority="normal"))
    assert not matches(conditions, facts(order("100"), priority="urgent"))


def test_the_first_matching_policy_wins_and_falls_back_when_the_order_changes():
    rules = [
        PolicyRule(1, "Big orders", {"order_value_min": "200.00"}),
        PolicyRule(2, "Standard", {}),
    ]
    assert first_match(rules, facts(order("250"))).id == 1
    assert first_match(rules, facts(order("150"))).id == 2
    assert first_match(rules, facts(None)).id == 2


def test_the_late_shipment_condition_is_measured_to_when_the_facts_were_read():
    late = {"order_unshipped_days": 2}
    linked = order(placed_days_ago=1.5)
    assert not matches(late, facts(linked))
    later = TicketFacts("shipping", "normal", "email", "new", order=linked, now=NOW + dt.timedelta(days=1))
    assert matches(late, later)
    assert not matches(late, TicketFacts("shipping", "normal", "email", "new", order=linked, now=None))


def test_uses_order_says_whether_a_policy_looks_at_orders():
    assert not uses_order({"priorities": ["urgent"]})
    assert not uses_order({"order_address_changeable": False, "order_currencies": []})
    assert uses_order({"order_value_max": "20"})
    assert uses_order({"order_address_changeable": True})


# --- Explanations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"order_value_min": "200.00"}, "order value is at least 200.00"),
        ({"order_value_min": "200", "order_currencies": ["EUR"]}, "order value is at least 200.00 EUR"),
        (
            {"order_value_min": "50", "order_value_max": "200", "order_currencies": ["EUR", "USD"]},
            "order value is at least 50.00 and below 200.00; order currency is EUR or USD",
        ),
        ({"order_value_max": "20"}, "order value is below 20.00"),
        ({"order_financial_statuses": ["paid", "partially_refunded"]}, "payment is paid or partially refunded"),
        ({"order_fulfillment_statuses": ["partial"]}, "fulfillment is partially fulfilled"),
        ({"order_unshipped_days": 3}, "order placed 3+ days ago and not fully shipped"),
        ({"order_unshipped_days": 1}, "order placed 1+ day ago and not fully shipped"),
        ({"order_address_changeable": True}, "order not shipped yet (address can still change)"),
        ({"priorities": ["urgent"], "order_value_min": "200"}, "priority is urgent; order value is at least 200.00"),
    ],
)
def test_explain_says_the_order_conditions_in_words(conditions, expected):
    assert explain(PolicyRule(1, "P", conditions)) == expected


def test_explain_quotes_the_order_it_matched_on():
    rule = PolicyRule(1, "Big orders", {"order_value_min": "200", "order_currencies": ["EUR"]})
    text = explain(rule, facts(order("250.00", financial="paid", fulfillment="")))
    assert text == "order value is at least 200.00 EUR — order #1042: 250.00 EUR, paid, unfulfilled"
    # A policy without order conditions does not quote the order.
    assert explain(PolicyRule(2, "Standard", {}), facts(order())) == "it applies to every ticket"


def test_order_facts_read_the_value_after_refunds_and_never_below_zero():
    class Row:
        number = "1042"
        total = Decimal("250.00")
        refunded_total = Decimal("60.00")
        currency = "eur"
        financial_status = "PARTIALLY_REFUNDED"
        fulfillment_status = None
        placed_at = NOW
        cancelled_at = None

    read = OrderFacts.of(Row())
    assert (read.value, read.currency, read.financial_status, read.fulfillment) == (
        Decimal("190.00"),
        "EUR",
        "partially_refunded",
        "unfulfilled",
    )
    Row.refunded_total = Decimal("300.00")
    assert OrderFacts.of(Row()).value == Decimal("0")


# --- Validation -----------------------------------------------------------------------------

ALLOWED = {"priorities": ["low", "normal", "high", "urgent"]}


@pytest.mark.parametrize(
    ("conditions", "key", "message"),
    [
        ({"order_value_min": "two hundred"}, "order_value_min", "Give an amount"),
        ({"order_value_min": "-5"}, "order_value_min", "can’t be negative"),
        ({"order_value_max": "12.345"}, "order_value_max", "two decimals"),
        ({"order_value_max": "1e20"}, "order_value_max", "larger than any order"),
        ({"order_value_min": True}, "order_value_min", "Give an amount"),
        ({"order_value_min": "NaN"}, "order_value_min", "Give an amount"),
        ({"order_value_min": "200", "order_value_max": "100"}, "order_value_max", "above the lower one"),
        ({"order_value_min": "200", "order_value_max": "200"}, "order_value_max", "above the lower one"),
        ({"order_currencies": ["EURO"]}, "order_currencies", "three-letter"),
        ({"order_currencies": "EUR"}, "order_currencies", "list"),
        ({"order_financial_statuses": ["paid", "chargeback"]}, "order_financial_statuses", "chargeback"),
        ({"order_fulfillment_statuses": ["shipped"]}, "order_fulfillment_statuses", "shipped"),
        ({"order_unshipped_days": 0}, "order_unshipped_days", "from 1 to 365"),
        ({"order_unshipped_days": 400}, "order_unshipped_days", "from 1 to 365"),
        ({"order_unshipped_days": 2.5}, "order_unshipped_days", "whole number"),
        ({"order_unshipped_days": True}, "order_unshipped_days", "whole number"),
        ({"order_address_changeable": "yes"}, "order_address_changeable", "true or false"),
        ({"order_total": "200"}, "order_total", "Unknown condition"),
    ],
)
def test_bad_order_condition_values_are_named_with_a_clear_message(conditions, key, message):
    errors = validate_conditions(conditions, ALLOWED)
    assert list(errors) == [key]
    assert message in errors[key]


def test_good_order_conditions_validate_and_are_stored_in_one_form():
    conditions = {
        "priorities": ["urgent"],
        "order_value_min": "200",
        "order_value_max": 1000,
        "order_currencies": ["usd", "EUR", "usd"],
        "order_financial_statuses": ["paid"],
        "order_fulfillment_statuses": [],
        "order_unshipped_days": "3",
        "order_address_changeable": False,
    }
    assert validate_conditions(conditions, ALLOWED) == {}
    assert clean_conditions(conditions) == {
        "priorities": ["urgent"],
        "order_value_min": "200.00",
        "order_value_max": "1000.00",
        "order_currencies": ["EUR", "USD"],
        "order_financial_statuses": ["paid"],
        "order_unshipped_days": 3,
    }


# --- Properties -----------------------------------------------------------------------------

fast = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
amounts = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
orders = st.builds(
    OrderFacts,
    number=st.just("1042"),
    value=amounts,
    currency=st.sampled_from(["EUR", "USD", "JPY", ""]),
    financial_status=st.sampled_from([*FINANCIAL_STATUSES, ""]),
    fulfillment_status=st.sampled_from([*FULFILLMENT_STATUSES, ""]),
    placed_at=st.one_of(st.none(), st.integers(0, 60 * 24 * 30).map(lambda m: NOW - dt.timedelta(minutes=m))),
    cancelled=st.booleans(),
)
order_conditions = st.fixed_dictionaries(
    {},
    optional={
        "order_value_min": amounts.map(str),
        "order_value_max": amounts.map(str),
        "order_currencies": st.lists(st.sampled_from(["EUR", "USD", "JPY"]), max_size=2),
        "order_financial_statuses": st.lists(st.sampled_from(list(FINANCIAL_STATUSES)), max_size=3),
        "order_fulfillment_statuses": st.lists(st.sampled_from(list(FULFILLMENT_STATUSES)), max_size=2),
        "order_unshipped_days": st.integers(1, 30),
        "order_address_changeable": st.booleans(),
    },
)


@fast
@given(order_conditions, orders)
def test_a_match_means_every_order_condition_holds_on_its_own(conditions, linked):
    """Conditions combine with AND: the whole matches iff each one alone matches."""
    alone = [matches({key: value}, facts(linked)) for key, value in conditions.items()]
    assert matches(conditions, facts(linked)) == all(alone)


@fast
@given(order_conditions)
def test_a_ticket_without_an_order_matches_only_policies_that_ignore_orders(conditions):
    assert matches(conditions, facts(None)) == (not uses_order(conditions))


@fast
@given(amounts, amounts, orders)
def test_value_bounds_split_orders_without_gap_or_overlap(low, high, linked):
    """ "At least X" and "below X" never both match and never both miss."""
    del high
    at_least = matches({"order_value_min": str(low)}, facts(linked))
    below = matches({"order_value_max": str(low)}, facts(linked))
    assert at_least != below


@fast
@given(order_conditions)
def test_cleaning_keeps_what_a_policy_matches(conditions):
    if validate_conditions(conditions, {}):
        return
    cleaned = clean_conditions(conditions)
    assert validate_conditions(cleaned, {}) == {}
    for linked in (order(), order("0.00", fulfillment="fulfilled"), order("99999", placed_days_ago=40)):
        assert matches(cleaned, facts(linked)) == matches(conditions, facts(linked))
