"""Money as an exact type: a ``Decimal`` amount in an ISO 4217 currency.

Prices are stored as integer minor units (``price_in_paise``: paise for INR, yen for
JPY, fils for KWD). ``Money`` converts both ways by the currency's exponent, refuses
amounts with more decimals than the currency has, and never touches a float.
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from .errors import ValidationError

__all__ = [
    "ACCEPTED_FORMS",
    "CURRENCY_EXPONENTS",
    "Money",
    "currency_exponent",
    "normalise_currency",
    "parse_amount",
]

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
        ValidationError: not an ISO 4217 code this library knows (naming the closest ones).
    """
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(currency).upper(), CURRENCY_EXPONENTS, n=3, cutoff=0.5)
        suggestion = (
            f"; did you mean {' or '.join(close)}?"
            if close
            else ": expected an ISO 4217 code such as INR, USD or JPY"
        )
        raise ValidationError(f"unknown currency {currency!r}{suggestion}") from None


def normalise_currency(value: Any) -> str:
    """An ISO 4217 code as people type it (``inr``, `` INR ``) in its canonical form.

    Raises:
        ValidationError: not a string, or not a code this library knows.
    """
    if not isinstance(value, str):
        raise ValidationError(f"currency must be a string, not {type(value).__name__}")
    code = value.strip().upper()
    currency_exponent(code if code.isascii() else value)
    return code


# One grammar for amounts typed by people: ASCII digits, '.' as the decimal mark, and
# commas only as real thousands separators (Western 1,234,567.89; for INR also the
# Indian lakh grouping 12,34,567.89). No sign: prices are never negative.
_FRACTION = r"(?:\.(?P<frac>[0-9]+))?"
_PLAIN = re.compile(r"(?P<int>[0-9]+)" + _FRACTION)
_WESTERN = re.compile(r"(?P<int>[0-9]{1,3}(?:,[0-9]{3})+)" + _FRACTION)
_INDIAN = re.compile(r"(?P<int>[0-9]{1,2}(?:,[0-9]{2})*,[0-9]{3})" + _FRACTION)
_DECIMAL_COMMA = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})*,(?P<frac>[0-9]{1,2})|[0-9]+,(?P<frac2>[0-9]{1,2})")
ACCEPTED_FORMS = "digits with '.' for decimals, like 1499.00 or 1,499.00"


def parse_amount(text: str, currency: str | None = None) -> Decimal:
    """An amount as a person types it, by carbook's one grammar (see ``ACCEPTED_FORMS``).

    Raises:
        ValidationError: anything else, with the accepted forms (and, for what looks like
            a decimal comma, the amount that was probably meant).
    """
    value = text.strip()
    for pattern in (_PLAIN, _WESTERN, *((_INDIAN,) if currency == "INR" else ())):
        m = pattern.fullmatch(value)
        if m:
            digits = m["int"].replace(",", "") + (f".{m['frac']}" if m["frac"] else "")
            return Decimal(digits)
    if value.startswith(("-", "+")):
        raise ValidationError(f"not an amount: {text!r}: a price has no sign (it is never negative)")
    comma = _DECIMAL_COMMA.fullmatch(value)
    if comma:
        meant = value.replace(".", "").replace(",", ".")
        raise ValidationError(
            f"not an amount: {text!r}: use '.' for decimals (did you mean {meant}?)",
            hint=f"accepted: {ACCEPTED_FORMS}",
        )
    if currency != "INR" and _INDIAN.fullmatch(value):
        raise ValidationError(
            f"not an amount: {text!r}: lakh grouping (12,34,567) is for INR only",
            hint=f"accepted: {ACCEPTED_FORMS}",
        )
    raise ValidationError(f"not an amount: {text!r}", hint=f"accepted: {ACCEPTED_FORMS}")


def _to_decimal(value: Any, currency: str | None = None) -> Decimal:
    if isinstance(value, bool | float):
        raise ValidationError("money amounts must be Decimal, int or str, never float (floats are inexact)")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        amount = parse_amount(value, currency)
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

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        # The amount is read knowing the currency: INR also takes lakh grouping.
        if isinstance(data, dict) and "currency" in data:
            currency = normalise_currency(data["currency"])
            data = {**data, "currency": currency}
            if "amount" in data:
                data["amount"] = _to_decimal(data["amount"], currency)
        return data

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return _to_decimal(value)

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
