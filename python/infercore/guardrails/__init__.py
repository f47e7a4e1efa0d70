"""Guardrails that need no model: prompt injection / jailbreak patterns over normalized views,
PII detection and redaction with validators, harmful-content lexicons (English and Japanese).

    from infercore.guardrails import Guard
    guard = Guard.default()                      # or Guard.from_config("guard.yaml")
    r = guard.check_input("mail me at a@b.io")   # GuardResult(status="modified", text="mail me at <EMAIL>", ...)

Input policy: bytes raise TypeError (decode first); lone surrogates become U+FFFD ("modified");
texts longer than Guard.max_chars (default 200k) are blocked without running the rails; every
pattern is linear-time, so a rail on a megabyte ends in bounded time.
"""

from .events import EventSink, GuardMetrics, ListSink, LoggingSink
from .guard import Guard
from .harmful import CATEGORIES, HarmfulRail
from .injection import InjectionRail
from .pii import ENTITIES, PIIRail, find_entities
from .types import GuardResult, Rail, RailDecision, Violation

__all__ = [
    "CATEGORIES", "ENTITIES", "EventSink", "Guard", "GuardMetrics", "GuardResult", "HarmfulRail", "InjectionRail",
    "ListSink", "LoggingSink", "PIIRail", "Rail", "RailDecision", "Violation", "find_entities",
]
