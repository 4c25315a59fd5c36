"""Money as integer units of 1e-10 USD: the ledger's precision, exact in both stores.

The ledger keeps costs as Decimals with 10 places (billing.usage.COST_PLACES), so a
ledger value converts to units and back without loss; Redis adds the units as 64-bit
integers (HINCRBY), which never round.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

UNIT_PLACES = 10
UNITS_PER_USD = 10**UNIT_PLACES
# Wide enough that no value we can store is ever rounded by the arithmetic itself.
_EXACT = Context(prec=100)


def to_units(value: Decimal) -> int:
    """USD -> units. Exact for any value with at most 10 decimal places (every ledger
    value); finer values are rounded half-even, as the ledger's quantize() does, so a
    cost converts to exactly what the ledger will record."""
    if not isinstance(value, Decimal):
        raise TypeError(f"to_units() takes a Decimal, not {type(value).__name__}")  # floats are never exact
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    scaled = value.scaleb(UNIT_PLACES, context=_EXACT)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN, context=_EXACT))


def from_units(units: int) -> Decimal:
    """Units -> USD, with the ledger's 10 decimal places."""
    return Decimal(int(units)).scaleb(-UNIT_PLACES, context=_EXACT)
