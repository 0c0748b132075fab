"""Rate conversions and early-repayment quotes, checked by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actions.errors import InvalidLoanParameters
from actions.finance import (
    FeeRule,
    Schedule,
    build_schedule,
    daily_rate,
    lpr_rate,
    monthly_rate,
    quote_early_repayment,
)

D = Decimal


def test_rate_conversions() -> None:
    assert monthly_rate(D("0.072")) == D("0.006")
    assert daily_rate(D("0.072")) == D("0.0002")  # 360-day year: 7.2% a year = 0.02% a day
    assert daily_rate(D("0.18")) == D("0.0005")
    assert daily_rate(0) == 0
    assert monthly_rate(D("0.1")) * 12 == pytest.approx(D("0.1"), abs=D("1e-30"))


def test_lpr_plus_spread() -> None:
    assert lpr_rate(D("0.030"), 50) == D("0.035")
    assert lpr_rate(D("0.035"), -20) == D("0.033")
    assert lpr_rate(D("0.035"), 0) == D("0.035")


@pytest.mark.parametrize(
    ("lpr", "spread", "field"),
    [
        (D("0.03"), -400, "annual_rate"),  # negative result
        (D("0.03"), 1.5, "spread_bp"),
        (D("3.0"), 50, "lpr"),  # percent instead of fraction
    ],
)
def test_lpr_bad_input(lpr: Decimal, spread: int, field: str) -> None:
    with pytest.raises(InvalidLoanParameters) as info:
        lpr_rate(lpr, spread)
    assert info.value.field == field


@pytest.fixture
def year_loan() -> Schedule:
    return build_schedule(100000, D("0.072"), 12, "equal_installment")


def test_early_repayment_hand_checked(year_loan: Schedule) -> None:
    rule = FeeRule(rate=D("0.02"), minimum=D("100"), waived_after_months=12)
    quote = quote_early_repayment(year_loan, 6, rule)
    assert quote.outstanding_principal == D("50897.20")
    # Interest of periods 7-12: 305.38 + 255.24 + 204.80 + 154.06 + 103.01 + 51.66
    assert quote.interest_saved == D("1074.15")
    assert quote.fee == D("1017.94")  # 2% x 50897.20 = 1017.944
    assert quote.net_saving == D("56.21")
    assert quote.payoff_amount == D("51915.14")
    assert quote.accrued_interest == 0
    assert not quote.fee_waived
    assert quote.worthwhile


def test_minimum_fee_applies_to_small_balances(year_loan: Schedule) -> None:
    rule = FeeRule(rate=D("0.01"), minimum=D("500"), waived_after_months=None)
    quote = quote_early_repayment(year_loan, 10, rule)
    assert quote.outstanding_principal == D("17169.08")
    assert quote.fee == D("500.00")  # 1% would be 171.69
    assert quote.interest_saved == D("154.67")  # 103.01 + 51.66
    assert quote.net_saving == D("-345.33")
    assert not quote.worthwhile


def test_fee_waived_after_n_months() -> None:
    loan = build_schedule(60000, D("0.108"), 24, "equal_principal")
    rule = FeeRule(rate=D("0.01"), minimum=D("50"), waived_after_months=12)
    before = quote_early_repayment(loan, 11, rule)
    after = quote_early_repayment(loan, 12, rule)
    assert before.fee == D("325.00")  # 1% x (60000 - 11 x 2500)
    assert not before.fee_waived
    assert after.fee == 0
    assert after.fee_waived
    assert after.net_saving == after.interest_saved


def test_free_prepayment_and_prepaying_before_the_first_instalment(year_loan: Schedule) -> None:
    quote = quote_early_repayment(year_loan, 0, FeeRule())
    assert quote.outstanding_principal == D("100000.00")
    assert quote.interest_saved == year_loan.total_interest
    assert quote.fee == 0
    assert quote.fee_waived


def test_bullet_prepayment_pays_interest_for_the_months_used() -> None:
    loan = build_schedule(300000, D("0.035"), 12, "bullet")
    quote = quote_early_repayment(loan, 4, FeeRule(D("0.02"), D("200"), 24))
    assert quote.outstanding_principal == D("300000.00")
    assert quote.accrued_interest == D("3500.00")  # 300000 x 0.035/12 x 4
    assert quote.interest_saved == D("7000.00")  # 10500 - 3500
    assert quote.fee == D("6000.00")
    assert quote.payoff_amount == D("309500.00")


@pytest.mark.parametrize("after", [-1, 12, 13, True, 1.0])
def test_after_period_out_of_range(year_loan: Schedule, after: object) -> None:
    with pytest.raises(InvalidLoanParameters, match="已还期数需在0到11期之间"):
        quote_early_repayment(year_loan, after, FeeRule())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"rate": D("-0.01")}, {"rate": D("0.5")}, {"minimum": D("-1")}, {"minimum": D("0.001")},
     {"waived_after_months": -1}, {"waived_after_months": 1.5}],
)
def test_fee_rule_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidLoanParameters):
        FeeRule(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(
    principal=st.integers(min_value=1000, max_value=5_000_000),
    rate=st.integers(min_value=0, max_value=300_000).map(lambda ppm: D(ppm) / 1_000_000),
    term=st.integers(min_value=2, max_value=120),
    method=st.sampled_from(["equal_installment", "equal_principal", "interest_only", "bullet"]),
    data=st.data(),
)
def test_quote_invariants(
    principal: int, rate: Decimal, term: int, method: str, data: st.DataObject
) -> None:
    loan = build_schedule(principal, rate, term, method)
    after = data.draw(st.integers(min_value=0, max_value=term - 1))
    quote = quote_early_repayment(loan, after, FeeRule(D("0.01"), D("0"), None))
    paid_principal = sum(r.principal for r in loan.rows if r.period <= after)
    assert quote.outstanding_principal == principal - paid_principal
    assert 0 <= quote.interest_saved <= loan.total_interest
    assert quote.net_saving == quote.interest_saved - quote.fee
    assert quote.payoff_amount == (
        quote.outstanding_principal + quote.accrued_interest + quote.fee
    )
