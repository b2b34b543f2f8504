"""Money as an exact type: a ``Decimal`` amount in an ISO 4217 currency.

Prices are stored as integer minor units (``price_in_paise``: paise for INR, yen for
JPY, fils for KWD). ``Money`` converts both ways by the currency's exponent, refuses
amounts with more decimals than the currency has, and never touches a float.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from .errors import ValidationError

__all__ = ["CURRENCY_EXPONENTS", "Money", "currency_exponent"]

_ZERO = [
    "BIF",
    "CLP",
    "DJF",
    "GNF",
    "ISK",
    "JPY",
    "KMF",
    "KRW",
    "PYG",
    "RWF",
    "UGX",
    "UYI",
    "VND",
    "VUV",
    "XAF",
    "XOF",
    "XPF",
]
_THREE = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]
_FOUR = ["CLF", "UYW"]
_TWO = [
    "AED",
    "AFN",
    "ALL",
    "AMD",
    "ANG",
    "AOA",
    "ARS",
    "AUD",
    "AWG",
    "AZN",
    "BAM",
    "BBD",
    "BDT",
    "BGN",
    "BMD",
    "BND",
    "BOB",
    "BOV",
    "BRL",
    "BSD",
    "BTN",
    "BWP",
    "BYN",
    "BZD",
    "CAD",
    "CDF",
    "CHE",
    "CHF",
    "CHW",
    "CNY",
    "COP",
    "COU",
    "CRC",
    "CUP",
    "CVE",
    "CZK",
    "DKK",
    "DOP",
    "DZD",
    "EGP",
    "ERN",
    "ETB",
    "EUR",
    "FJD",
    "FKP",
    "GBP",
    "GEL",
    "GHS",
    "GIP",
    "GMD",
    "GTQ",
    "GYD",
    "HKD",
    "HNL",
    "HTG",
    "HUF",
    "IDR",
    "ILS",
    "INR",
    "IRR",
    "JMD",
    "KES",
    "KGS",
    "KHR",
    "KPW",
    "KYD",
    "KZT",
    "LAK",
    "LBP",
    "LKR",
    "LRD",
    "LSL",
    "MAD",
    "MDL",
    "MGA",
    "MKD",
    "MMK",
    "MNT",
    "MOP",
    "MRU",
    "MUR",
    "MVR",
    "MWK",
    "MXN",
    "MXV",
    "MYR",
    "MZN",
    "NAD",
    "NGN",
    "NIO",
    "NOK",
    "NPR",
    "NZD",
    "PAB",
    "PEN",
    "PGK",
    "PHP",
    "PKR",
    "PLN",
    "QAR",
    "RON",
    "RSD",
    "RUB",
    "SAR",
    "SBD",
    "SCR",
    "SDG",
    "SEK",
    "SGD",
    "SHP",
    "SLE",
    "SOS",
    "SRD",
    "SSP",
    "STN",
    "SVC",
    "SYP",
    "SZL",
    "THB",
    "TJS",
    "TMT",
    "TOP",
    "TRY",
    "TTD",
    "TWD",
    "TZS",
    "UAH",
    "USD",
    "USN",
    "UYU",
    "UZS",
    "VED",
    "VES",
    "WST",
    "XCD",
    "XCG",
    "YER",
    "ZAR",
    "ZMW",
    "ZWG",
]

#: ISO 4217 active codes and their minor-unit exponents.
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_TWO, 2),
    **dict.fromkeys(_ZERO, 0),
    **dict.fromkeys(_THREE, 3),
    **dict.fromkeys(_FOUR, 4),
}

#: Minor units are stored as a bigint.
_MAX_MINOR = 2**63 - 1
#: Beyond this, Decimal's 28 digits could not even be checked for precision.
_LIMIT = Decimal(10) ** 20

_SYMBOLS = {"INR": "₹", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "CNY": "CN¥", "KRW": "₩"}


def currency_exponent(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit.

    Raises:
        ValidationError: not an ISO 4217 code this library knows.
    """
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        raise ValidationError(
            f"unknown currency {currency!r}: expected an ISO 4217 code such as INR, USD or JPY"
        ) from None


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise ValidationError("money amounts must be Decimal, int or str, never float (floats are inexact)")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip().replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise ValidationError(f"not an amount: {value!r}") from None
    else:
        raise ValidationError(f"not an amount: {value!r}")
    if not amount.is_finite():
        raise ValidationError(f"not a finite amount: {value!r}")
    if abs(amount) >= _LIMIT:
        raise ValidationError(f"amount {value!r} is too large")
    return amount


class Money(BaseModel):
    """An exact amount of money: ``Money(amount=Decimal("1499.00"), currency="INR")``."""

    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: str

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return _to_decimal(value)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError(f"currency must be a string, not {type(value).__name__}")
        currency_exponent(value)
        return value

    @model_validator(mode="after")
    def _precision(self) -> Money:
        exp = currency_exponent(self.currency)
        if abs(self.amount.scaleb(exp)) > _MAX_MINOR:
            raise ValidationError(f"{self.amount} {self.currency} is too large to store")
        quantum = Decimal(1).scaleb(-exp)
        if self.amount != self.amount.quantize(quantum):
            raise ValidationError(f"{self.amount} has more decimals than {self.currency} allows ({exp})")
        # Normalise to the currency's decimals: 1499 INR → 1499.00.
        object.__setattr__(self, "amount", self.amount.quantize(quantum))
        return self

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """``Money.of("1499.00", "INR")``.

        Raises:
            ValidationError: unknown currency, float or non-numeric amount, too many decimals.
        """
        return cls(amount=amount, currency=currency)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        """From integer minor units: ``Money.from_minor(149900, "INR")`` is ₹1,499.00."""
        if isinstance(units, bool) or not isinstance(units, int):
            raise ValidationError(f"minor units must be an integer, not {type(units).__name__}")
        return cls(amount=Decimal(units).scaleb(-currency_exponent(currency)), currency=currency)

    @property
    def minor_units(self) -> int:
        """The amount in integer minor units (what the database stores)."""
        return int(self.amount.scaleb(currency_exponent(self.currency)))

    def format(self) -> str:
        """For people: ``₹1,499.00``, ``¥1,500``, ``KWD 45.500``."""
        exp = currency_exponent(self.currency)
        number = f"{self.amount:,.{exp}f}"
        symbol = _SYMBOLS.get(self.currency)
        return f"{symbol}{number}" if symbol else f"{self.currency} {number}"

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
