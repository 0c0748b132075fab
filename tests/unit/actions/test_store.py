"""Loan store on a temporary SQLite file filled by the seed."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from actions.errors import InvalidIdentifier, NotFound, StoreUnavailable
from actions.finance import build_schedule
from actions.store import (
    APPLICATION_STATUSES,
    DEFAULT_URL,
    PRODUCT_LABELS,
    LoanRepository,
    VerificationResult,
)
from actions.store.models import Application, ApplicationEvent, Borrower, Loan, Money, Product
from actions.store.seed import SEED_TODAY, add_months, main, seed

D = Decimal
LEXICON = Path(__file__).resolve().parents[3] / "data" / "dictionaries" / "lexicon.yml"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoanRepository]:
    path = tmp_path_factory.mktemp("store") / "nested" / "loans.sqlite"
    repository = LoanRepository(f"sqlite:///{path}")
    seed(repository)
    yield repository
    repository.dispose()


def row_counts(repo: LoanRepository) -> dict[str, int]:
    with repo.session() as s:
        return {
            model.__tablename__: s.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Product, Borrower, Application, ApplicationEvent, Loan)
        }


def test_seed_is_idempotent_and_reset_recreates(repo: LoanRepository) -> None:
    before = row_counts(repo)
    assert before == {
        "products": 4,
        "borrowers": 20,
        "applications": 16,
        "application_events": 44,
        "loans": 14,
    }
    seed(repo)
    assert row_counts(repo) == before
    seed(repo, reset=True)
    assert row_counts(repo) == before


def test_every_status_has_at_least_two_applications(repo: LoanRepository) -> None:
    statuses: Counter[str] = Counter()
    for borrower in (f"B{i:04d}" for i in range(1, 21)):
        statuses.update(a.status for a in repo.applications_for_borrower(borrower))
    assert set(statuses) == set(APPLICATION_STATUSES)
    assert min(statuses.values()) >= 2


def test_application_details_by_status(repo: LoanRepository) -> None:
    app = repo.get_application("ln20261121001")  # normalised to upper case
    assert app is not None
    assert app.id == "LN20261121001"
    assert app.status == "need_documents"
    assert app.status_label == "待补充材料"
    assert app.missing_documents == ("店面租赁合同", "近6个月银行流水")
    assert app.product_name == "经营贷"
    assert app.amount == D("500000.00")
    assert app.method_label == "等额本息"
    assert app.expected_completion == SEED_TODAY + dt.timedelta(days=5)

    rejected = repo.get_application("LN20261114001")
    assert rejected is not None and rejected.status == "rejected"
    assert rejected.reject_reason and "营业执照" in rejected.reject_reason
    assert rejected.expected_completion is None
    assert repo.get_application("LN20991231999") is None


@pytest.mark.parametrize("bad", ["", "LN123", "AB20261123001", "LN2026112300X", None, 123])
def test_malformed_application_id_is_rejected(repo: LoanRepository, bad: object) -> None:
    with pytest.raises(InvalidIdentifier, match="申请编号格式不正确"):
        repo.get_application(bad)  # type: ignore[arg-type]


def test_timelines_are_ordered_and_end_in_the_current_status(repo: LoanRepository) -> None:
    for app_id in ("LN20261123001", "LN20261116001", "LN20261105001", "LN20261112001"):
        app = repo.get_application(app_id)
        events = repo.timeline(app_id)
        assert app is not None
        assert events[0].status == "submitted"
        assert events[-1].status == app.status
        assert [e.at for e in events] == sorted(e.at for e in events)
        assert all(e.note for e in events)
    mortgage = [e.status for e in repo.timeline("LN20261116001")]
    assert mortgage == ["submitted", "reviewing", "collateral_appraisal", "approved"]
    assert repo.timeline("LN20991231999") == []


def test_applications_for_phone_newest_first(repo: LoanRepository) -> None:
    apps = repo.applications_for_phone("138-0000-0001")
    assert [a.id for a in apps] == ["LN20261123001", "LN20261121002"]
    assert repo.applications_for_phone("13900000000") == []
    with pytest.raises(InvalidIdentifier, match="手机号格式不正确"):
        repo.applications_for_phone("12345")


def test_products_are_complete_and_consistent(repo: LoanRepository) -> None:
    products = repo.list_products()
    lexicon = yaml.safe_load(LEXICON.read_text(encoding="utf-8"))["product"]
    assert {p.code: p.name for p in products} == {c: e["label"] for c, e in lexicon.items()}
    assert {c: e["label"] for c, e in lexicon.items()} == PRODUCT_LABELS
    lpr = repo.current_lpr()
    for p in products:
        assert p.requirements and p.documents and p.terms and p.methods
        assert p.min_amount < p.max_amount
        rate = p.annual_rate(lpr)
        assert D("0.02") < rate < D("0.24")  # under the 24% legal-protection ceiling
        assert abs(p.penalty_daily_rate(rate) - rate * D("1.5") / 360) < D("1e-30")
    credit = repo.get_product(" CREDIT ")
    assert credit is not None
    assert credit.apr == D("0.108")
    assert credit.fee_rule.waived_after_months == 12
    assert credit.penalty_daily_rate(credit.apr) == D("0.00045")  # 10.8% x 1.5 / 360
    assert repo.get_product("payday") is None


def test_lpr_linked_rates(repo: LoanRepository) -> None:
    lpr = repo.current_lpr()
    assert (lpr.effective_date, lpr.one_year, lpr.five_year) == (
        dt.date(2025, 5, 20), D("0.03"), D("0.035"),
    )
    assert repo.product_annual_rate("business")[1] == D("0.035")  # 1y LPR + 50bp
    assert repo.product_annual_rate("mortgage")[1] == D("0.038")  # 5y LPR + 30bp
    assert repo.product_annual_rate("credit")[1] == D("0.108")
    with pytest.raises(NotFound, match="暂未找到该贷款产品"):
        repo.product_annual_rate("payday")


def test_seeded_applications_and_loans_fit_their_products(repo: LoanRepository) -> None:
    products = {p.code: p for p in repo.list_products()}
    for borrower in (f"B{i:04d}" for i in range(1, 21)):
        for a in repo.applications_for_borrower(borrower):
            assert products[a.product_code].offers(
                amount=a.amount, term_months=a.term_months, method=a.method
            ), a.id
        for loan in repo.loans_for_borrower(borrower):
            assert products[loan.product_code].offers(
                amount=loan.principal, term_months=loan.term_months, method=loan.method
            ), loan.id


def test_loan_balances_come_from_the_calculator(repo: LoanRepository) -> None:
    loans = [loan for i in range(1, 21) for loan in repo.loans_for_borrower(f"B{i:04d}")]
    assert len(loans) == 14
    overdue = [loan for loan in loans if loan.is_overdue]
    assert len(overdue) >= 3
    for loan in loans:
        schedule = build_schedule(loan.principal, loan.annual_rate, loan.term_months, loan.method)
        assert loan.schedule() == schedule
        paid = [r for r in schedule.rows if r.period <= loan.periods_paid]
        assert loan.outstanding == (paid[-1].remaining if paid else loan.principal)
        nxt = next(r for r in schedule.rows if r.period > loan.periods_paid)
        assert loan.next_due_amount == nxt.payment
        assert loan.next_due_date == add_months(loan.start_date, nxt.period)
        if loan.is_overdue:
            assert loan.next_due_date is not None and loan.next_due_date < SEED_TODAY
            assert loan.overdue_days == (SEED_TODAY - loan.next_due_date).days
            assert loan.overdue_amount >= loan.next_due_amount
        else:
            assert loan.next_due_date is not None and loan.next_due_date > SEED_TODAY
            assert loan.overdue_amount == 0
    worst = repo.loans_for_borrower("B0020")[0]
    assert worst.overdue_days == 64  # three instalments missed since 2026-09-20


def test_borrower_dto_hides_sensitive_fields(repo: LoanRepository) -> None:
    borrower = repo.borrower_by_phone("13800000003")
    assert borrower is not None
    assert borrower.id == "B0003"
    assert borrower.masked_phone == "138****0003"
    fields = {f.name for f in dataclasses.fields(borrower)}
    assert "phone" not in fields and "id_last6" not in fields
    assert borrower.limit_used == sum(
        (loan.outstanding for loan in repo.loans_for_borrower("B0003")), D(0)
    )
    assert borrower.available_limit == borrower.credit_limit - borrower.limit_used
    assert repo.get_borrower("B0003") == borrower
    assert repo.get_borrower("B9999") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        borrower.name = "x"  # type: ignore[misc]


# Identity verification. Borrower B0001: phone 13800000001, ID last six 123456,
# applications LN20261123001 and LN20261121002. B0002 owns LN20261123002.

OWNED = ("LN20261123001", "LN20261121002")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"application_id": "LN20261123001", "phone_last4": "0001"},
        {"application_id": "ln20261121002", "id_last6": "123456"},
        {"application_id": "LN20261123001", "phone": "13800000001"},
        {"phone": "13800000001", "id_last6": "123456"},
        {"application_id": "LN20261123001", "phone": "13800000001", "id_last6": "123456"},
    ],
)
def test_verify_identity_success(repo: LoanRepository, kwargs: dict[str, str]) -> None:
    result = repo.verify_identity(**kwargs)
    assert result == VerificationResult(ok=True, borrower_id="B0001", application_ids=OWNED)


def test_verify_identity_accepts_lower_case_x(repo: LoanRepository) -> None:
    result = repo.verify_identity(phone="13800000002", id_last6="20121x")
    assert result.ok and result.borrower_id == "B0002"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"application_id": "LN20261123001", "phone_last4": "0002"},  # wrong last four
        {"application_id": "LN20261123001", "id_last6": "654321"},  # wrong ID
        {"application_id": "LN20261123002", "phone_last4": "0001"},  # someone else's app
        {"application_id": "LN20261123001", "phone": "13800000002"},  # phone of another
        {"phone": "13800000001", "id_last6": "20121X"},  # ID of another borrower
        {"application_id": "LN20991231999", "phone_last4": "0001"},  # unknown application
        {"phone": "13999999999", "id_last6": "123456"},  # unknown phone
        # one right secret does not excuse a wrong one
        {"application_id": "LN20261123001", "phone_last4": "0001", "id_last6": "000000"},
    ],
)
def test_verify_identity_failure_reveals_nothing(
    repo: LoanRepository, kwargs: dict[str, str]
) -> None:
    assert repo.verify_identity(**kwargs) == VerificationResult(ok=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"application_id": "LN20261123001"},
        {"phone": "13800000001"},
        {"phone": "13800000001", "phone_last4": "0001"},  # last four of the phone itself
        {"phone_last4": "0001", "id_last6": "123456"},  # nothing to locate the borrower
    ],
)
def test_verify_identity_needs_a_locator_and_a_secret(
    repo: LoanRepository, kwargs: dict[str, str]
) -> None:
    assert repo.verify_identity(**kwargs) == VerificationResult(ok=False, needs_more=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"application_id": "LN1", "phone_last4": "0001"},
        {"phone": "2380000000", "id_last6": "123456"},
        {"application_id": "LN20261123001", "phone_last4": "01"},
        {"application_id": "LN20261123001", "id_last6": "12345Y"},
    ],
)
def test_verify_identity_malformed_input(repo: LoanRepository, kwargs: dict[str, str]) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        repo.verify_identity(**kwargs)
    assert "1380" not in repr(info.value)  # secrets are not echoed into logs


def test_from_env_default_and_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOAN_DB_URL", raising=False)
    default = LoanRepository.from_env()
    assert default.url == DEFAULT_URL == "sqlite:///var/loans.sqlite"
    assert (tmp_path / "var").is_dir()
    default.dispose()
    url = f"sqlite:///{tmp_path}/a/b/c.sqlite"
    monkeypatch.setenv("LOAN_DB_URL", url)
    custom = LoanRepository.from_env()
    assert custom.url == url
    custom.create_schema()
    assert (tmp_path / "a" / "b" / "c.sqlite").is_file()
    custom.dispose()


def test_errors_become_store_unavailable(tmp_path: Path) -> None:
    empty = LoanRepository(f"sqlite:///{tmp_path}/empty.sqlite")
    with pytest.raises(StoreUnavailable, match="系统繁忙"):
        empty.list_products()
    empty.create_schema()
    assert empty.list_products() == []
    with pytest.raises(NotFound, match="LPR"):
        empty.current_lpr()
    empty.dispose()
    with pytest.raises(StoreUnavailable):
        LoanRepository("nosuchdialect://x")


def test_money_column_refuses_sub_fen_values() -> None:
    with pytest.raises(ValueError, match="precision"):
        Money().process_bind_param(D("0.001"), None)
    assert Money().process_bind_param(D("12.30"), None) == 1230
    assert Money().process_result_value(1230, None) == D("12.30")


def test_seed_cli_twice_then_reset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/cli/loans.sqlite"
    assert main(["--url", url]) == 0
    assert main(["--url", url]) == 0
    assert main(["--url", url, "--reset"]) == 0
    assert "borrowers=20" in capsys.readouterr().out
    check = LoanRepository(url)
    assert row_counts(check)["applications"] == 16
    check.dispose()
