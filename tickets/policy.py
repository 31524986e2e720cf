"""SLA policy matching: pure functions over plain values (no ORM).

A policy's conditions are lists per fact; an empty or missing list means "any". The
first policy in order whose every condition holds wins, and `explain` says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CONDITION_KEYS = ("ticket_types", "priorities", "channels", "tiers", "tags")


@dataclass(frozen=True)
class TicketFacts:
    ticket_type: str | None  # the type's slug
    priority: str
    channel: str
    tier: str
    tags: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class PolicyRule:
    id: int
    name: str
    conditions: dict


def _fact_values(facts: TicketFacts) -> dict[str, set[str]]:
    return {
        "ticket_types": {facts.ticket_type} if facts.ticket_type else set(),
        "priorities": {facts.priority},
        "channels": {facts.channel},
        "tiers": {facts.tier},
        "tags": set(facts.tags),
    }


def matches(conditions: dict, facts: TicketFacts) -> bool:
    values = _fact_values(facts)
    for key in CONDITION_KEYS:
        wanted = conditions.get(key) or []
        if wanted and not values[key].intersection(wanted):
            return False
    return True


def first_match(rules: Iterable[PolicyRule], facts: TicketFacts) -> PolicyRule | None:
    """The first rule (in the given order) whose conditions hold, or None."""
    return next((rule for rule in rules if matches(rule.conditions, facts)), None)


def explain(rule: PolicyRule) -> str:
    """A one-line human reason, e.g. "priority is urgent; channel is email or chat"."""
    labels = {
        "ticket_types": "type",
        "priorities": "priority",
        "channels": "channel",
        "tiers": "customer tier",
        "tags": "tag",
    }
    parts = [
        f"{labels[key]} is {' or '.join(str(v) for v in rule.conditions[key])}"
        for key in CONDITION_KEYS
        if rule.conditions.get(key)
    ]
    return "; ".join(parts) if parts else "it applies to every ticket"


def validate_conditions(conditions: dict, allowed: dict[str, Sequence[str]]) -> dict[str, str]:
    """Errors per key for unknown keys or values; `allowed` maps key -> valid values."""
    errors: dict[str, str] = {}
    for key, values in conditions.items():
        if key not in CONDITION_KEYS:
            errors[key] = f"Unknown condition “{key}”."
            continue
        if not isinstance(values, list):
            errors[key] = "Give a list of values."
            continue
        unknown = [v for v in values if key in allowed and v not in allowed[key]]
        if unknown:
            errors[key] = f"Unknown value(s): {', '.join(map(str, unknown))}."
    return errors
