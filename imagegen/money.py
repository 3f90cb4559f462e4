"""Money formatting for the admin and reports: costs are 6-decimal Decimals, shown to 4 at most."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

#: Currencies written with a symbol before the amount; others get their code after it.
SYMBOLS = {"USD": "$"}

_PLACES = Decimal("0.0001")


def format_cost(amount: Decimal | None, currency: str = "USD") -> str:
    """Return ``amount`` as a price: 2 to 4 decimals, "$" for USD, "—" when there is none.

    Provider prices run to fractions of a cent, so up to 4 decimals are kept (rounded half
    up); zeros beyond the second decimal are dropped, so ordinary amounts read as usual::

        format_cost(Decimal("0.04"))      -> "$0.04"
        format_cost(Decimal("0.0025"))    -> "$0.0025"
        format_cost(Decimal("1.234567"))  -> "$1.2346"
        format_cost(Decimal(0))           -> "$0.00"
        format_cost(None)                 -> "—"
        format_cost(Decimal("1.23"), "EUR") -> "1.23 EUR"

    ``amount`` may also be an int, a float or a numeric string; anything else gives "—".
    """
    if amount is None:
        return "—"
    try:
        # str() first: a float's binary noise must not leak into the digits.
        value = Decimal(str(amount)).quantize(_PLACES, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return "—"
    if not value.is_finite():
        return "—"
    text = f"{abs(value):f}"
    whole, _dot, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    sign = "-" if value < 0 else ""  # after quantizing, so -0.00001 is "$0.00", not "-$0.00"
    number = f"{whole}.{fraction}"
    code = (currency or "USD").upper()
    if code in SYMBOLS:
        return f"{sign}{SYMBOLS[code]}{number}"
    return f"{sign}{number} {code}"
