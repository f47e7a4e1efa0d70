"""Check-digit and structure validators for the PII rail. Each takes the matched string
(separators allowed) and returns bool; none raises on malformed input."""

from __future__ import annotations

import ipaddress
import re

# IBAN lengths per country (ISO 13616 registry, SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


_NON_DIGIT = re.compile(r"\D")


def digits_of(s: str) -> str:
    return _NON_DIGIT.sub("", s)


def luhn_ok(number: str) -> bool:
    d = digits_of(number)
    if not d:
        return False
    total = 0
    for i, ch in enumerate(reversed(d)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def credit_card_ok(number: str) -> bool:
    """13-19 digits, a known issuer range first digit (2-6), Luhn."""
    d = digits_of(number)
    return 13 <= len(d) <= 19 and d[0] in "23456" and len(set(d)) > 1 and luhn_ok(d)


def iban_ok(iban: str) -> bool:
    s = "".join(iban.split()).upper()
    if len(s) < 5 or not s.isascii() or not s.isalnum():
        return False
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit():
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(ch, 36)) for ch in moved)  # A=10 ... Z=35
    return int(num) % 97 == 1


def ssn_ok(ssn: str) -> bool:
    """US SSN structure: area not 000/666/900-999, group not 00, serial not 0000; known
    advertising numbers rejected."""
    d = digits_of(ssn)
    if len(d) != 9:
        return False
    area, group, serial = int(d[:3]), int(d[3:5]), int(d[5:])
    if area == 0 or area == 666 or area >= 900 or group == 0 or serial == 0:
        return False
    return d not in ("078051120", "219099999", "123456789")


def my_number_check_digit(first11: str) -> int:
    """Japan My Number check digit (総務省令第八十五号 第五条): P_n is the n-th digit counted from
    the right of the 11 base digits, Q_n = n+1 for n <= 6 and n-5 for 7 <= n <= 11;
    r = sum(P_n * Q_n) mod 11; the check digit is 0 if r <= 1 else 11 - r."""
    if len(first11) != 11 or not first11.isdigit():
        raise ValueError(f"first11: expected 11 digits, got {first11!r}")
    total = 0
    for n, ch in enumerate(reversed(first11), start=1):
        q = n + 1 if n <= 6 else n - 5
        total += int(ch) * q
    r = total % 11
    return 0 if r <= 1 else 11 - r


def my_number_ok(number: str) -> bool:
    d = digits_of(number)
    if len(d) != 12 or len(set(d)) == 1:
        return False
    return my_number_check_digit(d[:11]) == int(d[11])


def ipv4_ok(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return True


def ipv6_ok(s: str) -> bool:
    if s.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(s.split("%", 1)[0])
    except ValueError:
        return False
    return True


def phone_ok(s: str) -> bool:
    d = digits_of(s)
    return 9 <= len(d) <= 15 and len(set(d)) > 2
