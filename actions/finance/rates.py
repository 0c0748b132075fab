"""Rate conversions.

Rates are fractions (0.072 means 7.2% a year). Monthly rate = annual / 12; daily rate =
annual / 360, the day-count convention (Actual/360 style "日利率 = 年利率 ÷ 360") that
Chinese banks and consumer lenders quote, e.g. 年化7.2% -> 日利率0.02%.
"""

from __future__ import annotations

from decimal import Decimal

from actions.errors import InvalidLoanParameters
from actions.finance.money import CALC_CONTEXT, parse_annual_rate

MONTHS_PER_YEAR = 12
DAYS_PER_YEAR = 360
#: Basis points in 1.0 (1 bp = 0.01%).
BP_PER_UNIT = Decimal(10000)


def monthly_rate(annual_rate: Decimal | int | float | str) -> Decimal:
    """Monthly rate used by every schedule: annual / 12, unrounded."""
    rate = parse_annual_rate(annual_rate)
    return CALC_CONTEXT.divide(rate, Decimal(MONTHS_PER_YEAR))


def daily_rate(annual_rate: Decimal | int | float | str) -> Decimal:
    """Daily rate on a 360-day year (the convention Chinese lenders quote), unrounded."""
    rate = parse_annual_rate(annual_rate)
    return CALC_CONTEXT.divide(rate, Decimal(DAYS_PER_YEAR))


def lpr_rate(lpr: Decimal | int | float | str, spread_bp: int) -> Decimal:
    """Annual rate of an LPR-linked product: LPR plus a spread in basis points.

    The spread may be negative (LPR - 20bp is common for mortgages); the result must
    still be a valid rate.
    """
    base = parse_annual_rate(lpr, field="lpr")
    if isinstance(spread_bp, bool) or not isinstance(spread_bp, int):
        raise InvalidLoanParameters(
            "利率加点数值不正确",
            field="spread_bp",
            value=spread_bp,
            detail="spread must be an integer number of basis points",
        )
    rate = CALC_CONTEXT.add(base, CALC_CONTEXT.divide(Decimal(spread_bp), BP_PER_UNIT))
    return parse_annual_rate(rate)
