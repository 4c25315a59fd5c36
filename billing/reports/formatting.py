"""The one rule for showing money on the report pages (CSV files carry exact values).

    usd(Decimal("1234.5"))      -> "$1,234.50"    2 decimals from a cent up, half up
    usd(Decimal("0.0000031"))   -> "$0.0000031"   below a cent: 2 significant digits,
    usd(Decimal("0.000003"))    -> "$0.000003"    so a non-zero amount never shows $0.00
    usd(Decimal("0"))           -> "$0.00"
    usd(Decimal("-0.25"))       -> "-$0.25"       (savings can be negative)
    usd(None)                   -> "–"

Pages show the exact amount (10 decimals) in each figure's tooltip.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
SIGNIFICANT_BELOW_A_CENT = 2


def usd(value: Decimal | int | float | str | None) -> str:
    if value is None or value == "":
        return "–"
    amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    sign, amount = ("-" if amount < 0 else ""), abs(amount)
    if amount == 0:
        return "$0.00"
    if amount < CENT:
        # quantize to the SIGNIFICANT_BELOW_A_CENT-th significant digit
        place = Decimal(1).scaleb(amount.adjusted() - SIGNIFICANT_BELOW_A_CENT + 1)
        small = amount.quantize(place, rounding=ROUND_HALF_UP)
        if small < CENT:  # 0.00999 rounds up to a cent: shown like one below
            return f"{sign}${format(small.normalize(), 'f')}"
    return f"{sign}${amount.quantize(CENT, rounding=ROUND_HALF_UP):,}"
