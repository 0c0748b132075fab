"""Repayment schedules against hand-checked tables and an independent Fraction model."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actions.errors import InvalidLoanParameters, LoanbotError
from actions.finance import (
    METHOD_LABELS,
    METHODS,
    build_schedule,
    compare_methods,
    format_percent,
    format_yuan,
)

D = Decimal
CJK = re.compile(r"[\u4e00-\u9fff]")
LEXICON = Path(__file__).resolve().parents[3] / "data" / "dictionaries" / "lexicon.yml"


def fen_half_up(x: Fraction) -> Fraction:
    """Reference rounding, written without the decimal module: nearest fen, .5 up."""
    return Fraction(int(x * 100 + Fraction(1, 2)) // 1, 100) if x >= 0 else -fen_half_up(-x)


def ref_annuity(principal: int | Fraction, apr: str, n: int) -> Fraction:
    """P*r*(1+r)^n / ((1+r)^n - 1) in exact rational arithmetic."""
    r = Fraction(apr) / 12
    if r == 0:
        return fen_half_up(Fraction(principal) / n)
    growth = (1 + r) ** n
    return fen_half_up(Fraction(principal) * r * growth / (growth - 1))


def as_fraction(value: Decimal) -> Fraction:
    return Fraction(value)


# Hand-checked: 100,000 yuan, 7.2% a year (0.6% a month), 12 months.


def test_equal_installment_hand_checked_table() -> None:
    s = build_schedule(100000, D("0.072"), 12, "equal_installment")
    first, second, last = s.rows[0], s.rows[1], s.rows[-1]
    assert s.first_payment == D("8661.90")  # 100000*0.006*1.006^12/(1.006^12-1) = 8661.898...
    assert (first.interest, first.principal, first.remaining) == (
        D("600.00"), D("8061.90"), D("91938.10"),
    )
    assert second.interest == D("551.63")  # 91938.10 * 0.006 = 551.6286
    assert (last.principal, last.interest, last.payment) == (
        D("8610.19"), D("51.66"), D("8661.85"),
    )
    assert s.total_interest == D("3942.75")
    assert s.total_payment == D("103942.75")
    assert all(row.payment == D("8661.90") for row in s.rows[:-1])


def test_equal_principal_hand_checked() -> None:
    s = build_schedule(100000, D("0.072"), 12, "equal_principal")
    assert s.first_payment == D("8933.33")  # 8333.33 principal + 600.00 interest
    assert s.rows[1].payment == D("8883.33")  # interest falls by 8333.33*0.006 = 50.00
    assert s.rows[-1].principal == D("8333.37")  # absorbs 12 x 0.0033 of rounding
    assert s.last_payment == D("8383.37")
    assert s.total_interest == D("3900.00")  # P*r*(n+1)/2 = 100000*0.006*6.5


def test_interest_only_and_bullet_hand_checked() -> None:
    io = build_schedule(100000, D("0.072"), 12, "interest_only")
    assert [r.payment for r in io.rows[:-1]] == [D("600.00")] * 11
    assert io.last_payment == D("100600.00")
    assert io.total_interest == D("7200.00")
    bullet = build_schedule(100000, D("0.072"), 12, "bullet")
    assert len(bullet.rows) == 1
    assert bullet.rows[0].period == 12
    assert (bullet.rows[0].interest, bullet.rows[0].payment) == (D("7200.00"), D("107200.00"))


@pytest.mark.parametrize(
    ("principal", "apr", "n"),
    [
        (100000, "0.072", 12),
        (50000, "0.108", 24),
        (1000000, "0.038", 240),
        (2000000, "0.0435", 360),
        (3333, "0.1799", 7),
        (10000000, "0.999999", 360),
        (1, "0.18", 1),
    ],
)
def test_equal_installment_payment_matches_exact_rational_formula(
    principal: int, apr: str, n: int
) -> None:
    s = build_schedule(principal, D(apr), n, "equal_installment")
    assert as_fraction(s.first_payment) == ref_annuity(principal, apr, n)


@pytest.mark.parametrize(("principal", "apr", "n"), [(100000, "0.072", 12), (90001, "0.1", 7)])
def test_equal_principal_first_payment_formula(principal: int, apr: str, n: int) -> None:
    s = build_schedule(principal, D(apr), n, "equal_principal")
    r = Fraction(apr) / 12
    expected = fen_half_up(Fraction(principal, n)) + fen_half_up(principal * r)
    assert as_fraction(s.first_payment) == expected


def test_equal_installment_rows_follow_an_independent_simulation() -> None:
    principal, apr, n = 123456, "0.0888", 36
    payment = ref_annuity(principal, apr, n)
    r = Fraction(apr) / 12
    remaining = Fraction(principal)
    s = build_schedule(principal, D(apr), n, "equal_installment")
    for row in s.rows:
        interest = fen_half_up(remaining * r)
        part = remaining if row.period == n else payment - interest
        remaining -= part
        assert (as_fraction(row.interest), as_fraction(row.principal)) == (interest, part)
        assert as_fraction(row.remaining) == remaining
    assert remaining == 0


@pytest.mark.parametrize("method", METHODS)
def test_term_of_one_month_is_one_payment_of_principal_plus_a_month_of_interest(
    method: str,
) -> None:
    s = build_schedule(D("5000.55"), D("0.12"), 1, method)
    assert len(s.rows) == 1
    assert s.rows[0].principal == D("5000.55")
    assert s.rows[0].interest == D("50.01")  # 5000.55 * 0.01 = 50.0055 -> 50.01 (half up)
    assert s.first_payment == s.last_payment == D("5050.56")


@pytest.mark.parametrize("method", METHODS)
def test_zero_rate_has_no_interest_and_no_division_by_zero(method: str) -> None:
    s = build_schedule(100000, D(0), 7, method)
    assert s.total_interest == 0
    assert sum(r.principal for r in s.rows) == D("100000")
    if method in ("equal_installment", "equal_principal"):
        assert s.first_payment == D("14285.71")
        assert s.last_payment == D("14285.74")


@pytest.mark.parametrize("method", METHODS)
def test_maximum_amount_and_term(method: str) -> None:
    s = build_schedule(10_000_000, D("0.049"), 360, method)
    assert sum(r.principal for r in s.rows) == D("10000000.00")
    assert s.rows[-1].remaining == 0
    assert s.total_payment == s.principal + s.total_interest


def test_rasa_style_floats_and_strings_are_accepted_exactly() -> None:
    from_float = build_schedule(50000.0, 0.072, 12.0, "equal_installment")  # type: ignore[arg-type]
    exact = build_schedule(50000, D("0.072"), 12, "equal_installment")
    assert from_float == exact
    assert build_schedule("50000", "0.072", 12, " Equal_Installment ") == exact  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field", "chinese"),
    [
        ({"principal": 0}, "principal", "借款金额需在1元到1000万元之间"),
        ({"principal": -100}, "principal", "借款金额需在1元到1000万元之间"),
        ({"principal": D("10000000.01")}, "principal", "借款金额需在1元到1000万元之间"),
        ({"principal": D("100.001")}, "principal", "借款金额最多精确到分"),
        ({"principal": "五万"}, "principal", "借款金额需在1元到1000万元之间"),
        ({"principal": float("nan")}, "principal", "借款金额需在1元到1000万元之间"),
        ({"principal": True}, "principal", "借款金额需在1元到1000万元之间"),
        ({"term_months": 0}, "term_months", "借款期限需在1到360个月之间"),
        ({"term_months": 361}, "term_months", "借款期限需在1到360个月之间"),
        ({"term_months": 12.5}, "term_months", "借款期限需为整月数"),
        ({"annual_rate": D(1)}, "annual_rate", "年利率需在0到100%之间"),
        ({"annual_rate": D("-0.01")}, "annual_rate", "年利率需在0到100%之间"),
        ({"annual_rate": D("7.2")}, "annual_rate", "年利率需在0到100%之间"),
        ({"method": "monthly"}, "method", "暂不支持该还款方式"),
        ({"method": None}, "method", "暂不支持该还款方式"),
    ],
)
def test_bad_input_raises_with_chinese_message_and_english_repr(
    kwargs: dict[str, object], field: str, chinese: str
) -> None:
    args: dict[str, object] = {
        "principal": 100000,
        "annual_rate": D("0.072"),
        "term_months": 12,
        "method": "equal_installment",
    }
    args.update(kwargs)
    with pytest.raises(InvalidLoanParameters) as info:
        build_schedule(**args)  # type: ignore[arg-type]
    exc = info.value
    assert isinstance(exc, LoanbotError)
    assert isinstance(exc, ValueError)
    assert chinese in str(exc)
    assert CJK.search(str(exc))
    assert exc.field == field
    assert repr(exc).startswith(f"InvalidLoanParameters(field='{field}'")
    assert not CJK.search(exc.detail)


def test_lower_product_cap_changes_the_limit_and_the_message() -> None:
    with pytest.raises(InvalidLoanParameters, match="借款金额需在1元到20万元之间"):
        build_schedule(200001, D("0.1"), 12, "equal_installment", max_principal=D(200000))


def test_compare_methods_keeps_order_and_ranks_total_interest() -> None:
    schedules = compare_methods(200000, D("0.06"), 36)
    assert [s.method for s in schedules] == list(METHODS)
    by = {s.method: s.total_interest for s in schedules}
    assert by["equal_principal"] < by["equal_installment"] < by["interest_only"]
    assert abs(by["interest_only"] - by["bullet"]) <= D("0.01") * 36
    chosen = compare_methods(200000, D("0.06"), 36, methods=["bullet", "equal_principal"])
    assert [s.method for s in chosen] == ["bullet", "equal_principal"]
    with pytest.raises(InvalidLoanParameters):
        compare_methods(200000, D("0.06"), 36, methods=[])


def test_schedule_as_dict_is_json_exact() -> None:
    s = build_schedule(100000, D("0.072"), 12, "equal_installment")
    payload = s.as_dict()
    assert payload["method_label"] == "等额本息"
    assert payload["first_payment"] == "8661.90"
    assert payload["rows"][-1] == {
        "period": 12,
        "payment": "8661.85",
        "principal": "8610.19",
        "interest": "51.66",
        "remaining": "0.00",
    }


def test_method_labels_match_the_lexicon() -> None:
    lexicon = yaml.safe_load(LEXICON.read_text(encoding="utf-8"))
    labels = {code: entry["label"] for code, entry in lexicon["repayment_method"].items()}
    assert labels == METHOD_LABELS


def test_formatting() -> None:
    assert format_yuan(D("8661.9")) == "8,661.90元"
    assert format_yuan(100000) == "100,000.00元"
    assert format_yuan(D("0.005")) == "0.01元"
    assert format_percent(D("0.072")) == "7.2%"
    assert format_percent(D("0.0002")) == "0.02%"
    assert format_percent(D("0.035")) == "3.5%"


# Properties over the whole input space.

fen_amounts = st.integers(min_value=100, max_value=1_000_000_000).map(lambda f: D(f) / 100)
rates = st.integers(min_value=0, max_value=999_999).map(lambda ppm: D(ppm) / 1_000_000)
terms = st.integers(min_value=1, max_value=360)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(principal=fen_amounts, rate=rates, term=terms, method=st.sampled_from(METHODS))
def test_schedule_invariants(principal: Decimal, rate: Decimal, term: int, method: str) -> None:
    s = build_schedule(principal, rate, term, method)
    assert sum(r.principal for r in s.rows) == principal
    assert s.rows[-1].remaining == 0
    assert s.rows[-1].period == term
    assert s.total_payment == principal + s.total_interest
    previous = principal
    for row in s.rows:
        for value in (row.payment, row.principal, row.interest, row.remaining):
            assert value == value.quantize(D("0.01"))
            assert value.as_tuple().exponent == -2
            assert value >= 0
        assert row.payment == row.principal + row.interest
        assert row.remaining == previous - row.principal
        previous = row.remaining
    if method == "equal_installment":
        # Equal payments until the last row; only absurd loans (a few yuan over many
        # years, where the rounded-up payment repays early) end with zero rows.
        for row in s.rows[:-1]:
            assert row.payment == s.first_payment or row.remaining == 0


@settings(max_examples=60, deadline=None)
@given(principal=fen_amounts, rate=rates, term=terms)
def test_equal_installment_payment_property(principal: Decimal, rate: Decimal, term: int) -> None:
    s = build_schedule(principal, rate, term, "equal_installment")
    assert as_fraction(s.first_payment) == ref_annuity(Fraction(principal), str(rate), term)
