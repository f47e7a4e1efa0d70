import pytest

from infercore.guardrails import PIIRail, find_entities


def kinds(text):
    return [e.type for e in find_entities(text)]


def test_redacts_each_entity_with_typed_placeholder():
    r = PIIRail()
    d = r.check("write to ops-team@example.net or ring +44 20 7946 0958 today")
    assert d.status == "modified"
    assert d.text == "write to <EMAIL> or ring <PHONE> today"
    assert [v.reason for v in d.violations] == ["EMAIL", "PHONE"]
    assert d.violations[0].span == (9, 29)


@pytest.mark.parametrize("text,kind", [
    ("pay with 5500-0000-0000-0004 now", "CREDIT_CARD"),
    ("IBAN GB82WEST12345698765432.", "IBAN"),
    ("IBAN NO93 8601 1117 947 please", "IBAN"),
    ("host 172.16.254.1 is down", "IP"),
    ("host fe80::1ff:fe23:4567:890a is down", "IP"),
    ("ssn 536-22-4081", "SSN"),
    ("個人番号は123456789018です", "MY_NUMBER"),
    ("tel 06-6345-1234", "PHONE"),
    ("携帯 080-9876-5432 まで", "PHONE"),
    ("call (415) 555-2671", "PHONE"),
    ("送付先 〒530-0001 大阪府大阪市北区梅田1-1-3", "ADDRESS"),
    ("ship to 42 Elm Street, Apt 5", "ADDRESS"),
])
def test_finds(text, kind):
    assert kind in kinds(text)


@pytest.mark.parametrize("text", [
    "card 5500 0000 0000 0005 fails luhn",
    "IBAN GB82WEST12345698765433 has a bad checksum",
    "version 300.1.2.3 and 1.2.3",
    "ssn 666-12-3456 is not issued",
    "管理番号 123456789017",
    "on 2025-11-25 at 12:30:45 we sold 1,234,567 units",
    "",
])
def test_no_false_positive(text):
    assert kinds(text) == []


def test_actions_per_entity():
    text = "card 4111 1111 1111 1111, mail a.b@example.org"
    assert PIIRail(entities={"CREDIT_CARD": "block", "EMAIL": "redact"}).check(text).status == "blocked"
    d = PIIRail(entities={"EMAIL": "detect"}).check(text)
    assert d.status == "passed" and d.text == text and [v.reason for v in d.violations] == ["EMAIL"]
    d = PIIRail(entities={"EMAIL": "redact"}).check(text)
    assert d.text == "card 4111 1111 1111 1111, mail <EMAIL>"


def test_bad_entity_config():
    with pytest.raises(ValueError, match=r"entities.PASSPORT"):
        PIIRail(entities={"PASSPORT": "redact"})
    with pytest.raises(ValueError, match=r"entities.EMAIL"):
        PIIRail(entities={"EMAIL": "shred"})
    with pytest.raises(TypeError, match="entities"):
        PIIRail(entities=["EMAIL"])


def test_fullwidth_digits_my_number():
    assert "MY_NUMBER" in kinds("番号：１２３４５６７８９０１８")
