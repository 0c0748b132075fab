"""Decimal helpers shared by the calculators: parsing, validation and rounding to the fen.

All arithmetic runs in ``CALC_CONTEXT`` so results never depend on whatever decimal
context the caller (or a library) left active in the thread.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation

from actions.errors import InvalidLoanParameters

#: One fen (分), the smallest amount a schedule shows or charges.
FEN = Decimal("0.01")
#: Largest loan the calculators accept, in yuan. Products may cap lower.
MAX_PRINCIPAL = Decimal("10000000")
#: Smallest loan the calculators accept, in yuan.
MIN_PRINCIPAL = Decimal("1")
#: Longest term in months (30 years, the longest mortgage term in China).
MAX_TERM_MONTHS = 360
#: Working precision: 40 significant digits keeps (1 + r) ** 360 exact far past the fen.
CALC_CONTEXT = Context(prec=40, rounding=ROUND_HALF_EVEN)

Number = Decimal | int | float | str


def to_fen(value: Decimal) -> Decimal:
    """Round to the fen with ROUND_HALF_UP, the rule borrowers expect (0.005 -> 0.01)."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP, context=CALC_CONTEXT)


def to_decimal(value: object, field: str, message: str) -> Decimal:
    """Turn an int, Decimal, numeric string or finite float into a finite Decimal.

    Floats are accepted because Rasa stores numeric slots as floats; they go through
    ``str`` so 0.072 stays 0.072 instead of its binary approximation.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise InvalidLoanParameters(
            message, field=field, value=value, detail=f"{field} must be a number"
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidLoanParameters(
                message, field=field, value=value, detail=f"{field} must be finite"
            )
        value = repr(value)
    try:
        result = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise InvalidLoanParameters(
            message, field=field, value=value, detail=f"{field} is not a number"
        ) from None
    if not result.is_finite():
        raise InvalidLoanParameters(
            message, field=field, value=value, detail=f"{field} must be finite"
        )
    return result


def parse_principal(value: object, maximum: Decimal = MAX_PRINCIPAL) -> Decimal:
    """Validate a loan amount in yuan: between 1 yuan and ``maximum``, whole fen."""
    message = f"借款金额需在1元到{_wan(maximum)}之间"
    amount = to_decimal(value, "principal", message)
    if not MIN_PRINCIPAL <= amount <= maximum:
        raise InvalidLoanParameters(
            message,
            field="principal",
            value=value,
            detail=f"principal must be between {MIN_PRINCIPAL} and {maximum} yuan",
        )
    if amount != amount.quantize(FEN, context=CALC_CONTEXT):
        raise InvalidLoanParameters(
            "借款金额最多精确到分（小数点后两位）",
            field="principal",
            value=value,
            detail="principal has more than two decimal places",
        )
    return amount.quantize(FEN, context=CALC_CONTEXT)


def parse_term(value: object) -> int:
    """Validate a term in months; accepts integral floats because Rasa slots are floats."""
    message = f"借款期限需在1到{MAX_TERM_MONTHS}个月之间"
    if isinstance(value, bool):
        raise InvalidLoanParameters(
            message, field="term_months", value=value, detail="term must be an integer"
        )
    if isinstance(value, int):
        term = value
    else:
        number = to_decimal(value, "term_months", message)
        if number != number.to_integral_value():
            raise InvalidLoanParameters(
                "借款期限需为整月数",
                field="term_months",
                value=value,
                detail="term must be a whole number of months",
            )
        term = int(number)
    if not 1 <= term <= MAX_TERM_MONTHS:
        raise InvalidLoanParameters(
            message,
            field="term_months",
            value=value,
            detail=f"term must be between 1 and {MAX_TERM_MONTHS} months",
        )
    return term


def parse_annual_rate(value: object, field: str = "annual_rate") -> Decimal:
    """Validate an annual rate given as a fraction (0.072 for 7.2%): 0 <= rate < 1."""
    message = "年利率需在0到100%之间（例如7.2%请填写0.072）"
    rate = to_decimal(value, field, message)
    if not Decimal(0) <= rate < Decimal(1):
        raise InvalidLoanParameters(
            message,
            field=field,
            value=value,
            detail=f"{field} must be a fraction in [0, 1), e.g. 0.072 for 7.2%",
        )
    return rate


def _wan(amount: Decimal) -> str:
    """Write a round amount the way borrowers read it: 10000000 -> 1000万元."""
    if amount >= 10000 and amount % 10000 == 0:
        return f"{int(amount // 10000)}万元"
    return f"{amount.normalize():f}元"
