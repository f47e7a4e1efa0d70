"""Guardrails. Model-free: prompt injection / jailbreak patterns over normalized views plus a fast
hashed n-gram classifier (InjectionRail(classifier="fast"), on in Guard.default()), PII detection
and redaction with validators, harmful-content lexicons (English and Japanese) plus a per-category
hashed n-gram classifier (HarmfulRail(classifier="fast"); opt-in in Guard.default). Over the Embedder
(MiniLM): the accurate injection classifier (classifier="accurate"), topic boundaries (TopicRail),
groundedness of answers in their contexts (GroundednessRail). Over an LLM: an injection judge
(LLMJudge). NeMo Guardrails integration: infercore.guardrails.nemo (the `nemo` extra).

    from infercore.guardrails import Guard
    guard = Guard.default()                      # or Guard.from_config("guard.yaml")
    r = guard.check_input("mail me at a@b.io")   # GuardResult(status="modified", text="mail me at <EMAIL>", ...)

Input policy: bytes raise TypeError (decode first); lone surrogates become U+FFFD ("modified");
texts longer than Guard.max_chars (default 200k) are blocked without running the rails; every
pattern is linear-time, so a rail on a megabyte ends in bounded time.
"""

from .classifier import EmbeddingClassifier
from .events import EventSink, GuardMetrics, ListSink, LoggingSink
from .grounded import GroundednessRail
from .guard import Guard
from .harmful import CATEGORIES, HarmfulRail
from .harmful_classifier import HarmfulClassifier
from .injection import InjectionRail
from .judge import LLMJudge
from .ngram_classifier import NgramClassifier
from .pii import ENTITIES, PIIRail, find_entities
from .topic import TopicRail
from .types import GuardResult, Rail, RailDecision, Violation

__all__ = [
    "CATEGORIES", "ENTITIES", "EmbeddingClassifier", "EventSink", "GroundednessRail", "Guard", "GuardMetrics",
    "GuardResult", "HarmfulClassifier", "HarmfulRail", "InjectionRail", "LLMJudge", "ListSink", "LoggingSink",
    "NgramClassifier", "PIIRail",
    "Rail", "RailDecision", "TopicRail", "Violation", "find_entities",
]
