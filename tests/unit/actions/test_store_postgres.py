"""The same store code against a real PostgreSQL, in a throw-away database.

Uses $LOANBOT_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test) as the
admin connection, creates loanbot_test_<random>, seeds it, checks, and drops it.
Skips only when that server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from actions.store import APPLICATION_STATUSES, LoanRepository, VerificationResult
from actions.store.seed import seed

ADMIN_URL = os.environ.get(
    "LOANBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="module")
def pg_repo() -> Iterator[LoanRepository]:
    admin = create_engine(ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    name = f"loanbot_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL unreachable at {make_url(ADMIN_URL)!r}: {exc.orig}")
    repo = LoanRepository(make_url(ADMIN_URL).set(database=name).render_as_string(False))
    try:
        yield repo
    finally:
        repo.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_seed_query_and_verify_on_postgres(pg_repo: LoanRepository) -> None:
    assert pg_repo.engine.dialect.name == "postgresql"
    first = seed(pg_repo)
    second = seed(pg_repo)  # idempotent on a server that enforces foreign keys too
    assert first == second

    statuses = {
        a.status
        for i in range(1, 21)
        for a in pg_repo.applications_for_borrower(f"B{i:04d}")
    }
    assert statuses == set(APPLICATION_STATUSES)

    app = pg_repo.get_application("LN20261121001")
    assert app is not None
    assert app.missing_documents == ("店面租赁合同", "近6个月银行流水")
    assert app.amount == Decimal("500000.00")
    assert pg_repo.product_annual_rate("mortgage")[1] == Decimal("0.038")

    loans = pg_repo.loans_for_borrower("B0001")
    assert loans and loans[0].outstanding == loans[0].schedule().rows[7].remaining

    assert pg_repo.verify_identity(application_id="LN20261123001", phone_last4="0001") == (
        VerificationResult(
            ok=True, borrower_id="B0001", application_ids=("LN20261123001", "LN20261121002")
        )
    )
    assert pg_repo.verify_identity(phone="13800000001", id_last6="999999") == (
        VerificationResult(ok=False)
    )
