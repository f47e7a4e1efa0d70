import pytest

from infercore.guardrails import validators as V


@pytest.mark.parametrize("n", ["4111111111111111", "5500 0000 0000 0004", "3400-0000-0000-009", "6011000990139424"])
def test_luhn_and_card_good(n):
    assert V.luhn_ok(n) and V.credit_card_ok(n)


@pytest.mark.parametrize("n", ["4111111111111112", "5500 0000 0000 0005", "1234567812345678", "0000000000000000",
                               "4111111111111", ""])
def test_card_bad(n):
    assert not V.credit_card_ok(n)


def test_luhn_hand_computed():
    # 79927398713: the classic worked example; changing any digit breaks it
    assert V.luhn_ok("79927398713")
    assert not V.luhn_ok("79927398710")


@pytest.mark.parametrize("iban", ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000",
                                  "FR1420041010050500013M02606", "NO9386011117947", "gb82west12345698765432"])
def test_iban_good(iban):
    assert V.iban_ok(iban)


@pytest.mark.parametrize("iban", ["GB82 WEST 1234 5698 7654 33", "DE8937040044053201300", "XX89370400440532013000",
                                  "GB82WEST1234569876543!", "GBxxWEST12345698765432", ""])
def test_iban_bad(iban):
    assert not V.iban_ok(iban)


@pytest.mark.parametrize("ssn,ok", [("123-45-6780", True), ("536 22 4081", True), ("000-12-3456", False),
                                    ("666-12-3456", False), ("900-12-3456", False), ("123-00-4567", False),
                                    ("123-45-0000", False), ("078-05-1120", False), ("12-345-678", False)])
def test_ssn(ssn, ok):
    assert V.ssn_ok(ssn) is ok


def test_my_number_check_digit_by_hand():
    # base 12345678901, digits from the right P1..P11 = 1,0,9,8,7,6,5,4,3,2,1
    # weights Q = 2,3,4,5,6,7,2,3,4,5,6 -> sum 2+0+36+40+42+42+10+12+12+10+6 = 212; 212 % 11 = 3 -> 11-3 = 8
    assert V.my_number_check_digit("12345678901") == 8
    assert V.my_number_ok("123456789018")
    assert V.my_number_ok("1234 5678 9018")
    assert not V.my_number_ok("123456789017")
    assert not V.my_number_ok("12345678901")  # 11 digits
    assert not V.my_number_ok("000000000000")
    with pytest.raises(ValueError, match="first11"):
        V.my_number_check_digit("123")


def test_my_number_remainder_le_1_gives_zero():
    # find bases whose weighted sum has remainder 0 or 1: their check digit must be 0
    for base in ("00000000011", "00000000100", "10000000000"):
        total = sum(int(c) * (n + 1 if n <= 6 else n - 5) for n, c in enumerate(reversed(base), start=1))
        expect = 0 if total % 11 <= 1 else 11 - total % 11
        assert V.my_number_check_digit(base) == expect


@pytest.mark.parametrize("ip,ok", [("10.0.0.1", True), ("255.255.255.255", True), ("256.1.1.1", False),
                                   ("1.2.3", False), ("01.2.3.4", False)])
def test_ipv4(ip, ok):
    assert V.ipv4_ok(ip) is ok


@pytest.mark.parametrize("ip,ok", [("::1", True), ("2001:db8::ff00:42:8329", True), ("fe80::1%eth0", True),
                                   ("12:30:45", False), ("2001:db8:::1", False), ("gggg::1", False)])
def test_ipv6(ip, ok):
    assert V.ipv6_ok(ip) is ok
