"""Quote for repaying a whole loan early (提前还款).

Prepayment happens right after instalment ``after_period`` has been paid: the borrower
repays the outstanding principal, no longer owes the interest of later periods, and may
owe a fee set by the product's FeeRule. For ``bullet`` loans interest accrues monthly
and the interest of the months already used is due with the prepayment.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from actions.errors import InvalidLoanParameters
from actions.finance.money import CALC_CONTEXT, to_decimal, to_fen
from actions.finance.schedule import BULLET, Schedule

_ZERO = Decimal("0.00")


@dataclass(frozen=True)
class FeeRule:
    """Early-repayment fee: ``rate`` x prepaid principal, at least ``minimum`` yuan.

    No fee once ``waived_after_months`` instalments have been paid (None = never waived).
    ``rate`` 0 and ``minimum`` 0 means prepayment is free.
    """

    rate: Decimal = Decimal(0)
    minimum: Decimal = Decimal(0)
    waived_after_months: int | None = None

    def __post_init__(self) -> None:
        rate = to_decimal(self.rate, "fee_rate", "提前还款手续费率设置不正确")
        minimum = to_decimal(self.minimum, "fee_minimum", "提前还款最低手续费设置不正确")
        if not Decimal(0) <= rate < Decimal("0.1"):
            raise InvalidLoanParameters(
                "提前还款手续费率设置不正确",
                field="fee_rate",
                value=self.rate,
                detail="fee rate must be a fraction in [0, 0.1)",
            )
        if minimum < 0 or minimum != minimum.quantize(Decimal("0.01")):
            raise InvalidLoanParameters(
                "提前还款最低手续费设置不正确",
                field="fee_minimum",
                value=self.minimum,
                detail="minimum fee must be >= 0 and whole fen",
            )
        waive = self.waived_after_months
        if waive is not None and (isinstance(waive, bool) or not isinstance(waive, int)
                                  or waive < 0):
            raise InvalidLoanParameters(
                "提前还款免收手续费的期数设置不正确",
                field="waived_after_months",
                value=waive,
                detail="waived_after_months must be a non-negative int or None",
            )
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "minimum", minimum)

    def is_waived(self, after_period: int) -> bool:
        """True when no fee applies after ``after_period`` paid instalments."""
        if self.rate == 0 and self.minimum == 0:
            return True
        return self.waived_after_months is not None and after_period >= self.waived_after_months

    def fee(self, prepaid_principal: Decimal, after_period: int) -> Decimal:
        """Fee in yuan, to the fen (ROUND_HALF_UP)."""
        if prepaid_principal <= 0 or self.is_waived(after_period):
            return _ZERO
        proportional = to_fen(CALC_CONTEXT.multiply(prepaid_principal, self.rate))
        return max(proportional, to_fen(self.minimum))


@dataclass(frozen=True)
class EarlyRepaymentQuote:
    """What repaying everything after ``after_period`` instalments costs and saves."""

    after_period: int
    outstanding_principal: Decimal
    accrued_interest: Decimal
    interest_saved: Decimal
    fee: Decimal
    fee_waived: bool
    net_saving: Decimal
    payoff_amount: Decimal

    @property
    def worthwhile(self) -> bool:
        """True when the interest saved exceeds the fee."""
        return self.net_saving > 0


def quote_early_repayment(
    schedule: Schedule, after_period: int, fee_rule: FeeRule
) -> EarlyRepaymentQuote:
    """Quote full prepayment right after instalment ``after_period`` (0 = before the first)."""
    term = schedule.term_months
    if isinstance(after_period, bool) or not isinstance(after_period, int) or not (
        0 <= after_period < term
    ):
        raise InvalidLoanParameters(
            f"提前还款时已还期数需在0到{term - 1}期之间",
            field="after_period",
            value=after_period,
            detail=f"after_period must be an int in [0, {term - 1}]",
        )
    if schedule.method == BULLET:
        outstanding = schedule.principal
        accrued = to_fen(
            CALC_CONTEXT.multiply(
                CALC_CONTEXT.multiply(schedule.principal, schedule.monthly_rate),
                Decimal(after_period),
            )
        )
        saved = schedule.total_interest - accrued
    else:
        outstanding = (
            schedule.principal if after_period == 0 else schedule.rows[after_period - 1].remaining
        )
        accrued = _ZERO
        saved = sum((row.interest for row in schedule.rows[after_period:]), _ZERO)
    fee = fee_rule.fee(outstanding, after_period)
    return EarlyRepaymentQuote(
        after_period=after_period,
        outstanding_principal=outstanding,
        accrued_interest=accrued,
        interest_saved=saved,
        fee=fee,
        fee_waived=fee_rule.is_waived(after_period),
        net_saving=saved - fee,
        payoff_amount=outstanding + accrued + fee,
    )
