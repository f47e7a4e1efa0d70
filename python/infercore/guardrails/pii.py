"""PII rail: find entities in the original text (positions are real), validate the structured ones
(check digits, registries), then redact with typed placeholders, flag, or block per entity.

All patterns are linear: a lookbehind pins each scan to the start of a run, repetitions are
bounded and unambiguous (one way to split any input), so a megabyte is one pass per pattern.
Digit sequences are found once by a generic candidate pattern and classified in code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import validators as V
from .types import RailDecision, Violation

ENTITIES: tuple[str, ...] = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP", "SSN", "MY_NUMBER", "ADDRESS")
ACTIONS: tuple[str, ...] = ("redact", "detect", "block")

# Each pattern starts with a character class and checks the character before it with a 2-wide
# lookbehind: sre's fast first-character scan only works when a pattern starts with characters.
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-](?<![A-Za-z0-9._%+-]{2})[A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
_IPV4 = re.compile(r"\d(?<![\d.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:.])[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{2,44}(?:%[0-9A-Za-z]{1,15})?")
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}")
# Digit groups joined by one separator: card, My Number, SSN, phone numbers. Classified in code.
_DIGITS = re.compile(r"[+(\d](?<![0-9A-Za-z_+][+(\d])[(\d]?\d{0,19}\)?(?:[ .\-]\(?\d{1,19}\)?){0,7}(?![0-9A-Za-z_])")
_PREFS = (
    "北海道|東京都|大阪府|京都府|青森県|岩手県|宮城県|秋田県|山形県|福島県|茨城県|栃木県|群馬県|埼玉県|千葉県|神奈川県"
    "|新潟県|富山県|石川県|福井県|山梨県|長野県|岐阜県|静岡県|愛知県|三重県|滋賀県|兵庫県|奈良県|和歌山県|鳥取県|島根県"
    "|岡山県|広島県|山口県|徳島県|香川県|愛媛県|高知県|福岡県|佐賀県|長崎県|熊本県|大分県|宮崎県|鹿児島県|沖縄県"
)
_NUM = r"[0-9０-９]{1,4}"
_JA_ADDRESS = re.compile(
    r"(?:" + _PREFS + r")[^\s、。,!?！？「」()（）]{1,30}?"
    + _NUM + r"(?:(?:丁目|番地|番|号|[-－ー‐の])" + _NUM + r"){0,3}(?:号)?"
)
_JA_POSTCODE = re.compile(r"〒\s?[0-9０-９]{3}[-－][0-9０-９]{4}")
_US_ADDRESS = re.compile(
    r"\d(?<![0-9A-Za-z]\d)\d{0,5} (?:[A-Z][a-z]{1,20} ){1,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct"
    r"|Way|Place|Pl|Terrace|Parkway|Pkwy)(?![A-Za-z])\.?(?:,? (?:Apt|Suite|Unit|#) ?[0-9A-Za-z]{1,6})?"
)
_GROUPS_NANP = re.compile(r"\(?\d{3}\)?[ .\-]?\d{3}[ .\-]\d{4}")
_SSN_SHAPE = re.compile(r"\d{3}([ \-])\d{2}\1\d{4}")
_MYNUM_SHAPE = re.compile(r"\d{12}|\d{4}([ \-])\d{4}\1\d{4}")
_CARD_SHAPE = re.compile(r"\d{13,19}|\d{4}([ \-])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ \-])\d{6}\2\d{4,5}")


def _classify_digits(s: str) -> str | None:
    """Which entity a digit-group string is, or None."""
    if len(s) < 9:  # every entity here has at least 9 digits
        return None
    d = V.digits_of(s)
    if 13 <= len(d) <= 19 and _CARD_SHAPE.fullmatch(s) and V.credit_card_ok(d):
        return "CREDIT_CARD"
    if len(d) == 12 and _MYNUM_SHAPE.fullmatch(s) and V.my_number_ok(d):
        return "MY_NUMBER"
    if len(d) == 9 and _SSN_SHAPE.fullmatch(s) and V.ssn_ok(d):
        return "SSN"
    if not V.phone_ok(d):
        return None
    if s.startswith("+") and 8 <= len(d) <= 15 and not s.startswith("+0"):
        return "PHONE"
    if len(d) == 10 and _GROUPS_NANP.fullmatch(s) and d[0] in "23456789":
        return "PHONE"
    if d[0] == "0" and 10 <= len(d) <= 11 and (len(s) > len(d) or re.fullmatch(r"0[5789]0\d{8}", d)):
        return "PHONE"  # Japanese numbers: trunk prefix 0, grouped with separators, or a bare mobile
    return None


@dataclass(frozen=True)
class Entity:
    type: str
    start: int
    end: int


def find_entities(text: str, entities: tuple[str, ...] = ENTITIES) -> list[Entity]:
    """Non-overlapping entities sorted by start. Earlier-listed finders win overlaps."""
    want = set(entities)
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, a: int, b: int) -> None:
        for x, y in taken:
            if a < y and x < b:
                return
        taken.append((a, b))
        if kind in want:
            found.append(Entity(kind, a, b))

    if "EMAIL" in want:
        for m in _EMAIL.finditer(text):
            tld = m.group(0).rsplit(".", 1)[-1]
            if tld.isalpha() and len(tld) >= 2:
                add("EMAIL", m.start(), m.end())
    if "IBAN" in want:
        for m in _IBAN.finditer(text):
            _iban(text, m, add)
    if want & {"IP", "PHONE"}:  # IPs claim dotted digits before the phone finder sees them
        for m in _IPV4.finditer(text):
            if V.ipv4_ok(m.group(0)):
                add("IP", m.start(), m.end())
        for m in _IPV6.finditer(text):
            s = m.group(0).rstrip(".:") if not m.group(0).endswith("::") else m.group(0)
            a = m.start()
            if not V.ipv6_ok(s) and s.startswith(":") and not s.startswith("::"):
                s, a = s[1:], a + 1  # "contact:2001:db8::1": the colon belongs to the label
            if V.ipv6_ok(s):
                add("IP", a, a + len(s))
    if want & {"ADDRESS"}:
        for pat in (_JA_ADDRESS, _JA_POSTCODE, _US_ADDRESS):
            for m in pat.finditer(text):
                add("ADDRESS", m.start(), m.end())
    if want & {"CREDIT_CARD", "MY_NUMBER", "SSN", "PHONE"}:
        for m in _DIGITS.finditer(text):
            s = m.group(0)
            kind = _classify_digits(s)
            if kind is not None:
                add(kind, m.start(), m.end())
                continue
            if " " in s and len(s) >= 13:  # the run may join a number to its neighbours: try each group alone
                pos = m.start()
                for part in s.split(" "):
                    kind = _classify_digits(part)
                    if kind is not None:
                        add(kind, pos, pos + len(part))
                    pos += len(part) + 1
    found.sort(key=lambda e: e.start)
    return found


def _iban(text: str, m: re.Match[str], add: Any) -> None:
    s = m.group(0)
    n = V.IBAN_LENGTHS.get(s[:2])
    if n is None:
        return
    # the greedy run may have swallowed a following code: keep exactly the country's length
    count, end = 0, m.start()
    for i, ch in enumerate(s):
        if ch != " ":
            count += 1
        if count == n:
            end = m.start() + i + 1
            break
    else:
        return
    if V.iban_ok(text[m.start():end]):
        add("IBAN", m.start(), end)


def _validate_entities(entities: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(entities, Mapping):
        raise TypeError(f"entities: expected a mapping of entity -> action, got {type(entities).__name__}")
    out: dict[str, str] = {}
    for k, v in entities.items():
        if k not in ENTITIES:
            raise ValueError(f"entities.{k}: unknown entity; expected one of {ENTITIES}")
        if v not in ACTIONS:
            raise ValueError(f"entities.{k}: action must be one of {ACTIONS}, got {v!r}")
        out[k] = v
    return out


@dataclass
class PIIRail:
    """Redacts (`<EMAIL>`...), flags, or blocks PII per entity. `entities` maps entity -> action;
    entities left out are not looked for."""

    name: str = "pii"
    entities: Mapping[str, str] = field(default_factory=lambda: {e: "redact" for e in ENTITIES})
    can_modify: bool = True

    def __post_init__(self) -> None:
        self.entities = _validate_entities(self.entities)
        self._kinds = tuple(self.entities)

    def find(self, text: str) -> list[Entity]:
        return find_entities(text, self._kinds)

    def check(self, text: str, context: Any = None) -> RailDecision:
        ents = self.find(text)
        if not ents:
            return RailDecision("passed", text)
        viol = [Violation(self.name, e.type, (e.start, e.end), 1.0) for e in ents]
        if any(self.entities[e.type] == "block" for e in ents):
            return RailDecision("blocked", text, viol)
        parts: list[str] = []
        pos = 0
        for e in ents:
            if self.entities[e.type] == "redact":
                parts.append(text[pos:e.start])
                parts.append(f"<{e.type}>")
                pos = e.end
        if pos == 0:
            return RailDecision("passed", text, viol)
        parts.append(text[pos:])
        return RailDecision("modified", "".join(parts), viol)
