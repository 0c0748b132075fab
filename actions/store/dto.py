"""Plain frozen records the repository returns, so callers never hold ORM sessions.

Sensitive borrower fields (full phone number, ID fragment) are deliberately absent:
actions only get what they may show, and identity checks stay inside the repository.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from actions.errors import InvalidLoanParameters
from actions.finance.early_repayment import FeeRule
from actions.finance.money import CALC_CONTEXT
from actions.finance.rates import daily_rate, lpr_rate
from actions.finance.schedule import METHOD_LABELS, Schedule, build_schedule

PRODUCT_LABELS: dict[str, str] = {
    "credit": "信用贷",
    "provident_fund": "公积金贷",
    "business": "经营贷",
    "mortgage": "抵押贷",
}

LPR_TENOR_LABELS: dict[str, str] = {"1y": "1年期", "5y": "5年期以上"}


@dataclass(frozen=True)
class LprInfo:
    """One LPR fixing (published on the 20th of each month)."""

    effective_date: dt.date
    one_year: Decimal
    five_year: Decimal

    def for_tenor(self, tenor: str) -> Decimal:
        """The 1-year ("1y") or over-5-year ("5y") LPR."""
        if tenor == "1y":
            return self.one_year
        if tenor == "5y":
            return self.five_year
        raise InvalidLoanParameters(
            "LPR期限不正确", field="lpr_tenor", value=tenor, detail="tenor must be '1y' or '5y'"
        )


@dataclass(frozen=True)
class ProductInfo:
    code: str
    name: str
    description: str
    rate_type: str
    apr: Decimal | None
    lpr_tenor: str | None
    lpr_spread_bp: int | None
    min_amount: Decimal
    max_amount: Decimal
    terms: tuple[int, ...]
    methods: tuple[str, ...]
    fee_rule: FeeRule
    requirements: tuple[str, ...]
    documents: tuple[str, ...]
    grace_days: int
    penalty_rate_multiplier: Decimal
    credit_report_after_days: int

    @property
    def method_labels(self) -> tuple[str, ...]:
        return tuple(METHOD_LABELS[m] for m in self.methods)

    def annual_rate(self, lpr: LprInfo | None = None) -> Decimal:
        """The product's annual rate; LPR-linked products need the current LPR."""
        if self.rate_type == "fixed" and self.apr is not None:
            return self.apr
        if lpr is None or self.lpr_tenor is None or self.lpr_spread_bp is None:
            raise InvalidLoanParameters(
                "暂时无法获取该产品的利率，请稍后再试",
                field="lpr",
                value=lpr,
                detail=f"product {self.code} is LPR-linked; pass the current LPR",
            )
        return lpr_rate(lpr.for_tenor(self.lpr_tenor), self.lpr_spread_bp)

    def penalty_daily_rate(self, annual_rate: Decimal) -> Decimal:
        """Overdue (罚息) daily rate: the loan's daily rate times the penalty multiplier."""
        return CALC_CONTEXT.multiply(daily_rate(annual_rate), self.penalty_rate_multiplier)

    def offers(self, *, amount: Decimal | int, term_months: int, method: str) -> bool:
        """True when the product lends this amount for this term with this method."""
        return (
            self.min_amount <= Decimal(amount) <= self.max_amount
            and term_months in self.terms
            and method in self.methods
        )


@dataclass(frozen=True)
class BorrowerInfo:
    id: str
    name: str
    masked_phone: str  # 138****0001
    credit_limit: Decimal
    limit_used: Decimal

    @property
    def available_limit(self) -> Decimal:
        return max(self.credit_limit - self.limit_used, Decimal("0.00"))


@dataclass(frozen=True)
class ApplicationInfo:
    id: str
    borrower_id: str
    product_code: str
    product_name: str
    amount: Decimal
    term_months: int
    method: str
    status: str
    status_label: str
    missing_documents: tuple[str, ...]
    submitted_at: dt.datetime
    updated_at: dt.datetime
    expected_completion: dt.date | None
    reject_reason: str | None

    @property
    def method_label(self) -> str:
        return METHOD_LABELS[self.method]


@dataclass(frozen=True)
class ApplicationEventInfo:
    application_id: str
    seq: int
    status: str
    status_label: str
    at: dt.datetime
    note: str


@dataclass(frozen=True)
class LoanInfo:
    id: str
    borrower_id: str
    product_code: str
    product_name: str
    application_id: str | None
    principal: Decimal
    outstanding: Decimal
    method: str
    annual_rate: Decimal
    term_months: int
    periods_paid: int
    start_date: dt.date
    next_due_date: dt.date | None
    next_due_amount: Decimal | None
    overdue_days: int
    overdue_amount: Decimal

    @property
    def method_label(self) -> str:
        return METHOD_LABELS[self.method]

    @property
    def is_overdue(self) -> bool:
        return self.overdue_days > 0

    def schedule(self) -> Schedule:
        """The loan's full repayment plan, recomputed from its contract terms."""
        return build_schedule(self.principal, self.annual_rate, self.term_months, self.method)


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of an identity check; on failure it never says which field was wrong.

    ``needs_more`` is True when the caller did not supply enough fields to attempt a
    check (it depends only on which arguments were given, not on stored data).
    """

    ok: bool
    borrower_id: str | None = None
    application_ids: tuple[str, ...] = ()
    needs_more: bool = False
