"""Money: exact, by the currency's exponent, never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbook_sdk import Money, ValidationError
from carbook_sdk.money import CURRENCY_EXPONENTS


@pytest.mark.parametrize(
    ("amount", "currency", "minor", "shown"),
    [
        ("1499.00", "INR", 149900, "₹1,499.00"),
        ("1499", "INR", 149900, "₹1,499.00"),
        ("1500", "JPY", 1500, "¥1,500"),
        ("45.500", "KWD", 45500, "KWD 45.500"),
        ("0.01", "USD", 1, "$0.01"),
    ],
)
def test_round_trips(amount: str, currency: str, minor: int, shown: str) -> None:
    money = Money.of(amount, currency)
    assert money.minor_units == minor
    assert Money.from_minor(minor, currency) == money
    assert money.format() == shown


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("1499.001", "INR", "1499.001 has more decimals than INR allows (2)"),
        ("1.5", "JPY", "1.5 has more decimals than JPY allows (0)"),
        ("1.0001", "KWD", "1.0001 has more decimals than KWD allows (3)"),
        ("10", "XYZ", "unknown currency 'XYZ'"),
        ("10", "IRN", "unknown currency 'IRN'; did you mean"),
        ("ten", "INR", "not an amount: 'ten'"),
        ("NaN", "INR", "not an amount: 'NaN'"),
        # Typed the way people type them, and refused rather than stored wrong.
        ("1,49", "INR", "did you mean 1.49?"),
        ("1,4,9", "INR", "not an amount: '1,4,9'"),
        ("1.499,00", "EUR", "did you mean 1499.00?"),
        ("1e3", "INR", "not an amount: '1e3'"),
        ("1_000", "INR", "not an amount: '1_000'"),
        ("١٢٣", "INR", "not an amount"),
        ("\uff11\uff12\uff13", "INR", "not an amount"),  # full-width 123
        ("-5", "INR", "a price has no sign"),
        ("+5", "INR", "a price has no sign"),
        ("12,34,567.89", "USD", "lakh grouping (12,34,567) is for INR only"),
        ("1,23", "USD", "did you mean 1.23?"),
        ("1 499", "INR", "not an amount: '1 499'"),
        ("", "INR", "not an amount: ''"),
    ],
)
def test_bad_money_is_refused(amount: str, currency: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        Money.of(amount, currency)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1,234,567.89", "USD", 123456789),
        ("12,34,567.89", "INR", 123456789),
        ("1,00,000", "INR", 10000000),
        ("100,000", "INR", 10000000),
        (" 1499.00 ", "INR", 149900),
        ("1499", "inr", 149900),
        ("45.5", " kwd ", 45500),
    ],
)
def test_amounts_as_people_type_them(amount: str, currency: str, minor: int) -> None:
    money = Money.of(amount, currency)
    assert money.minor_units == minor and money.currency == currency.strip().upper()


def test_floats_are_refused() -> None:
    with pytest.raises(ValidationError, match="never float"):
        Money.of(14.99, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="minor units must be an integer"):
        Money.from_minor(1.0, "USD")  # type: ignore[arg-type]


currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@given(units=st.integers(min_value=0, max_value=10**15), currency=currencies)
def test_minor_units_round_trip_exactly(units: int, currency: str) -> None:
    money = Money.from_minor(units, currency)
    assert money.minor_units == units
    assert Money.of(str(money.amount), currency) == money


@given(
    amount=st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9),
    currency=currencies,
)
def test_amount_is_accepted_exactly_when_it_fits_the_currency(amount: Decimal, currency: str) -> None:
    exp = CURRENCY_EXPONENTS[currency]
    fits = amount == amount.quantize(Decimal(1).scaleb(-exp))
    if fits:
        money = Money.of(amount, currency)
        assert money.amount == amount and money.minor_units == int(amount.scaleb(exp))
    else:
        with pytest.raises(ValidationError):
            Money.of(amount, currency)


@given(units=st.integers(min_value=0, max_value=10**15), currency=currencies)
def test_what_format_shows_parses_back_to_the_same_money(units: int, currency: str) -> None:
    money = Money.from_minor(units, currency)
    shown = money.format()
    number = shown[len(currency) + 1 :] if shown.startswith(currency + " ") else shown.lstrip("₹¥$€£CN₩")
    assert Money.of(number, currency) == money


refused = st.one_of(
    # a decimal comma, a comma in the wrong place, exponents, underscores, signs, other digits
    st.builds(lambda a, b: f"{a},{b:02d}", st.integers(0, 999), st.integers(0, 99)),
    st.builds(lambda a, b: f"{a},{b}", st.integers(1, 99), st.integers(0, 99)),
    st.builds(lambda a, e: f"{a}e{e}", st.integers(0, 999), st.integers(0, 9)),
    st.builds(lambda a, b: f"{a}_{b:03d}", st.integers(1, 999), st.integers(0, 999)),
    st.builds(lambda s, a: f"{s}{a}", st.sampled_from(["-", "+"]), st.integers(0, 10**6)),
    st.text(
        alphabet="".join(map(chr, [*range(0x660, 0x66A), *range(0xFF10, 0xFF1A)])), min_size=1, max_size=6
    ),
)


@given(text=refused, currency=currencies)
def test_every_refused_form_stays_refused(text: str, currency: str) -> None:
    with pytest.raises(ValidationError, match="not an amount"):
        Money.of(text, currency)
