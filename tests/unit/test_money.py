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
        ("10", "inr", "unknown currency 'inr'"),
        ("ten", "INR", "not an amount: 'ten'"),
        ("NaN", "INR", "not a finite amount"),
    ],
)
def test_bad_money_is_refused(amount: str, currency: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        Money.of(amount, currency)
    assert message in str(err.value)


def test_floats_are_refused() -> None:
    with pytest.raises(ValidationError, match="never float"):
        Money.of(14.99, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="minor units must be an integer"):
        Money.from_minor(1.0, "USD")  # type: ignore[arg-type]


currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@given(units=st.integers(min_value=-(10**15), max_value=10**15), currency=currencies)
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
