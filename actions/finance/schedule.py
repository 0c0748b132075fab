"""Repayment schedules for the four repayment methods.

Every amount is a Decimal exact to the fen. Each period's interest is the outstanding
principal times the monthly rate (annual / 12), rounded ROUND_HALF_UP to the fen; the
last period repays whatever principal is left, so the principal column always sums to
the loan exactly and the rounding remainder lands in the final payment.
See docs/calculations.md for the formulas and a worked example.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actions.errors import InvalidLoanParameters
from actions.finance.money import (
    CALC_CONTEXT,
    MAX_PRINCIPAL,
    parse_annual_rate,
    parse_principal,
    parse_term,
    to_fen,
)
from actions.finance.rates import monthly_rate

EQUAL_INSTALLMENT = "equal_installment"
EQUAL_PRINCIPAL = "equal_principal"
INTEREST_ONLY = "interest_only"
BULLET = "bullet"

#: Method codes in the order they are usually presented; matches docs/contracts.md.
METHODS: tuple[str, ...] = (EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, INTEREST_ONLY, BULLET)

#: Borrower-facing names; must equal the labels in data/dictionaries/lexicon.yml.
METHOD_LABELS: dict[str, str] = {
    EQUAL_INSTALLMENT: "等额本息",
    EQUAL_PRINCIPAL: "等额本金",
    INTEREST_ONLY: "先息后本",
    BULLET: "到期一次还本付息",
}

_ZERO = Decimal("0.00")


@dataclass(frozen=True)
class ScheduleRow:
    """One instalment: what is paid in ``period`` and the principal still owed after it."""

    period: int
    payment: Decimal
    principal: Decimal
    interest: Decimal
    remaining: Decimal

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form; amounts as strings so no float ever rounds them."""
        return {
            "period": self.period,
            "payment": str(self.payment),
            "principal": str(self.principal),
            "interest": str(self.interest),
            "remaining": str(self.remaining),
        }


@dataclass(frozen=True)
class Schedule:
    """A full repayment plan. For ``bullet`` there is a single row at period ``term_months``."""

    method: str
    principal: Decimal
    annual_rate: Decimal
    term_months: int
    rows: tuple[ScheduleRow, ...]
    total_interest: Decimal
    total_payment: Decimal
    first_payment: Decimal
    last_payment: Decimal

    @property
    def method_label(self) -> str:
        """Chinese name of the repayment method, e.g. 等额本息."""
        return METHOD_LABELS[self.method]

    @property
    def monthly_rate(self) -> Decimal:
        """Unrounded monthly rate used to build the rows."""
        return monthly_rate(self.annual_rate)

    def as_dict(self) -> dict[str, Any]:
        """Payload for the ``custom.schedule`` message the chat page renders."""
        return {
            "method": self.method,
            "method_label": self.method_label,
            "principal": str(self.principal),
            "annual_rate": str(self.annual_rate),
            "term_months": self.term_months,
            "total_interest": str(self.total_interest),
            "total_payment": str(self.total_payment),
            "first_payment": str(self.first_payment),
            "last_payment": str(self.last_payment),
            "rows": [row.as_dict() for row in self.rows],
        }


def parse_method(method: object) -> str:
    """Validate a repayment-method code (see docs/contracts.md)."""
    if isinstance(method, str) and method.strip().lower() in METHOD_LABELS:
        return method.strip().lower()
    choices = "、".join(METHOD_LABELS.values())
    raise InvalidLoanParameters(
        f"暂不支持该还款方式，可选：{choices}",
        field="method",
        value=method,
        detail=f"method must be one of {', '.join(METHODS)}",
    )


def build_schedule(
    principal: Decimal | int,
    annual_rate: Decimal,
    term_months: int,
    method: str,
    *,
    max_principal: Decimal = MAX_PRINCIPAL,
) -> Schedule:
    """Build the repayment plan; raises InvalidLoanParameters (Chinese message) on bad input."""
    amount = parse_principal(principal, max_principal)
    rate = parse_annual_rate(annual_rate)
    term = parse_term(term_months)
    code = parse_method(method)
    r = monthly_rate(rate)
    builders = {
        EQUAL_INSTALLMENT: _equal_installment,
        EQUAL_PRINCIPAL: _equal_principal,
        INTEREST_ONLY: _interest_only,
        BULLET: _bullet,
    }
    rows = builders[code](amount, r, term)
    return Schedule(
        method=code,
        principal=amount,
        annual_rate=rate,
        term_months=term,
        rows=rows,
        total_interest=sum((row.interest for row in rows), _ZERO),
        total_payment=sum((row.payment for row in rows), _ZERO),
        first_payment=rows[0].payment,
        last_payment=rows[-1].payment,
    )


def compare_methods(
    principal: Decimal | int,
    annual_rate: Decimal,
    term_months: int,
    methods: Iterable[str] = METHODS,
) -> list[Schedule]:
    """Schedules for the same loan under several methods, in the order asked."""
    codes = [parse_method(m) for m in methods]
    if not codes:
        raise InvalidLoanParameters(
            "请至少选择一种还款方式",
            field="methods",
            value=methods,
            detail="no repayment method given",
        )
    return [build_schedule(principal, annual_rate, term_months, code) for code in codes]


def annuity_payment(principal: Decimal, r: Decimal, term: int) -> Decimal:
    """Equal-instalment payment P*r*(1+r)^n / ((1+r)^n - 1) rounded to the fen; P/n if r=0."""
    ctx = CALC_CONTEXT
    if r == 0:
        return to_fen(ctx.divide(principal, Decimal(term)))
    growth = ctx.power(ctx.add(Decimal(1), r), term)
    exact = ctx.divide(ctx.multiply(ctx.multiply(principal, r), growth), growth - 1)
    return to_fen(exact)


def _interest(remaining: Decimal, r: Decimal) -> Decimal:
    return to_fen(CALC_CONTEXT.multiply(remaining, r))


def _equal_installment(principal: Decimal, r: Decimal, term: int) -> tuple[ScheduleRow, ...]:
    """等额本息: fixed payment; the principal part grows as interest shrinks.

    The principal part is kept within [0, remaining] so tiny loans with long terms never
    amortise negatively or overshoot; the last row settles the rest.
    """
    payment = annuity_payment(principal, r, term)
    rows = []
    remaining = principal
    for period in range(1, term + 1):
        interest = _interest(remaining, r)
        last = period == term
        part = remaining if last else min(max(payment - interest, _ZERO), remaining)
        remaining -= part
        rows.append(ScheduleRow(period, part + interest, part, interest, remaining))
    return tuple(rows)


def _equal_principal(principal: Decimal, r: Decimal, term: int) -> tuple[ScheduleRow, ...]:
    """等额本金: the same principal every month plus interest on what is still owed."""
    base = to_fen(CALC_CONTEXT.divide(principal, Decimal(term)))
    rows = []
    remaining = principal
    for period in range(1, term + 1):
        interest = _interest(remaining, r)
        part = remaining if period == term else min(base, remaining)
        remaining -= part
        rows.append(ScheduleRow(period, part + interest, part, interest, remaining))
    return tuple(rows)


def _interest_only(principal: Decimal, r: Decimal, term: int) -> tuple[ScheduleRow, ...]:
    """先息后本: interest every month, all principal with the last payment."""
    interest = _interest(principal, r)
    rows = [
        ScheduleRow(period, interest, _ZERO, interest, principal) for period in range(1, term)
    ]
    rows.append(ScheduleRow(term, principal + interest, principal, interest, _ZERO))
    return tuple(rows)


def _bullet(principal: Decimal, r: Decimal, term: int) -> tuple[ScheduleRow, ...]:
    """到期一次还本付息: simple interest P*r*n and the principal in one payment at the end."""
    interest = to_fen(CALC_CONTEXT.multiply(CALC_CONTEXT.multiply(principal, r), Decimal(term)))
    return (ScheduleRow(term, principal + interest, principal, interest, _ZERO),)
