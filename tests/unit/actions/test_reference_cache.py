"""Products and the LPR fixing are reused for reference_ttl seconds, borrower data never; the
SQLite file keeps its connections pooled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from sqlalchemy.pool import QueuePool

from actions.errors import NotFound
from actions.settings import load_settings
from actions.store import LoanRepository
from actions.store.models import Application, LprQuote, Product
from actions.store.seed import seed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo(tmp_path: Path, clock: Clock) -> Iterator[LoanRepository]:
    repository = LoanRepository(f"sqlite:///{tmp_path / 'loans.sqlite'}", reference_ttl=60,
                                clock=clock)
    seed(repository)
    yield repository
    repository.dispose()


def set_apr(repo: LoanRepository, code: str, apr: str) -> None:
    with repo.session() as s:
        s.execute(update(Product).where(Product.code == code).values(apr=Decimal(apr)))
        s.commit()


def test_a_changed_rate_is_quoted_once_the_ttl_has_passed(repo: LoanRepository,
                                                         clock: Clock) -> None:
    before = repo.get_product("credit")
    assert before is not None and before.apr is not None
    set_apr(repo, "credit", "0.1234")
    clock.now += 59
    assert repo.get_product("credit") == before
    assert [p.apr for p in repo.list_products() if p.code == "credit"] == [before.apr]
    clock.now += 2
    after = repo.get_product("credit")
    assert after is not None and after.apr == Decimal("0.1234")
    assert repo.get_product(" CREDIT ") == after
    assert repo.get_product("no_such_product") is None


def test_the_lpr_fixing_follows_the_same_rule(repo: LoanRepository, clock: Clock) -> None:
    first = repo.current_lpr()
    with repo.session() as s:
        s.add(LprQuote(effective_date=first.effective_date + dt.timedelta(days=30),
                       one_year=Decimal("0.0299"), five_year=Decimal("0.0349")))
        s.commit()
    assert repo.current_lpr() == first
    clock.now += 61
    assert repo.current_lpr().one_year == Decimal("0.0299")


def test_a_failed_read_is_not_kept(repo: LoanRepository, clock: Clock) -> None:
    with repo.session() as s:
        s.execute(delete(LprQuote))
        s.commit()
    repo.forget_reference_data()
    with pytest.raises(NotFound):
        repo.current_lpr()
    with repo.session() as s:
        s.add(LprQuote(effective_date=dt.date(2026, 11, 20), one_year=Decimal("0.0300"),
                       five_year=Decimal("0.0350")))
        s.commit()
    assert repo.current_lpr().one_year == Decimal("0.0300")  # at once, no TTL wait


def test_ttl_zero_reads_every_time(tmp_path: Path) -> None:
    repo = LoanRepository(f"sqlite:///{tmp_path / 'fresh.sqlite'}", reference_ttl=0)
    seed(repo)
    set_apr(repo, "credit", "0.0999")
    product = repo.get_product("credit")
    assert product is not None and product.apr == Decimal("0.0999")
    repo.dispose()


def test_borrower_data_is_never_kept(repo: LoanRepository) -> None:
    app_id = "LN20261123001"
    first = repo.get_application(app_id)
    assert first is not None
    with repo.session() as s:
        s.execute(update(Application).where(Application.id == app_id)
                  .values(status="approved"))
        s.commit()
    now = repo.get_application(app_id)
    assert now is not None and now.status == "approved" != first.status


def test_a_reseed_is_seen_at_once(repo: LoanRepository) -> None:
    assert repo.list_products()
    seed(repo, reset=True)  # drops and recreates: what was kept is forgotten
    set_apr(repo, "credit", "0.0888")
    product = repo.get_product("credit")
    assert product is not None and product.apr == Decimal("0.0888")


def test_sqlite_files_keep_pooled_connections(repo: LoanRepository) -> None:
    assert isinstance(repo.engine.pool, QueuePool)


def test_the_ttl_setting() -> None:
    assert load_settings({}).reference_ttl == 60
    assert load_settings({"LOANBOT_REFERENCE_TTL": "0"}).reference_ttl == 0
    assert load_settings({"LOANBOT_REFERENCE_TTL": "2.5"}).reference_ttl == 2.5
    for bad in ("-1", "soon", "nan", "inf"):
        with pytest.raises(ValueError, match="LOANBOT_REFERENCE_TTL"):
            load_settings({"LOANBOT_REFERENCE_TTL": bad})
