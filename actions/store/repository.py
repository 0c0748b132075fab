"""Read access to the loan data store for the actions.

Every method opens and closes its own session and returns frozen DTOs, so an action
never holds a connection across an await. Queries are built with ``select()`` and bound
parameters only; the same code runs on SQLite and PostgreSQL.

Reference data (the product catalogue and the latest LPR fixing) is read on almost every
rate or repayment answer and changes a few times a year; it is kept for `reference_ttl`
seconds (LOANBOT_REFERENCE_TTL, default 60; 0 reads it every time), so a rate changed in the
database is quoted within a minute. Borrower data (applications, loans, identities) is never
cached.
"""

from __future__ import annotations

import hmac
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from actions.errors import InvalidIdentifier, NotFound, StoreUnavailable
from actions.finance.early_repayment import FeeRule
from actions.store.dto import (
    PRODUCT_LABELS,
    ApplicationEventInfo,
    ApplicationInfo,
    BorrowerInfo,
    LoanInfo,
    LprInfo,
    ProductInfo,
    VerificationResult,
)
from actions.store.models import (
    STATUS_LABELS,
    Application,
    ApplicationEvent,
    Base,
    Borrower,
    Loan,
    LprQuote,
    Product,
)

DEFAULT_URL = "sqlite:///var/loans.sqlite"
ENV_VAR = "LOAN_DB_URL"
DEFAULT_REFERENCE_TTL = 60.0

_APPLICATION_ID = re.compile(r"LN\d{11}")
_PHONE = re.compile(r"1[3-9]\d{9}")
_LAST4 = re.compile(r"\d{4}")
_ID_LAST6 = re.compile(r"\d{5}[\dX]")
# Compared against when no borrower matches, so a miss costs the same as a hit.
_DUMMY_PHONE = "10000000000"
_DUMMY_ID_LAST6 = "000000"


def normalise_application_id(value: object) -> str:
    """'ln20261123001 ' -> 'LN20261123001'; anything else raises InvalidIdentifier."""
    text = value.strip().upper() if isinstance(value, str) else ""
    if not _APPLICATION_ID.fullmatch(text):
        raise InvalidIdentifier(
            "申请编号格式不正确，应为LN加11位数字，例如LN20261123001",
            field="application_id",
            value=value,
            detail="application id must be 'LN' followed by 11 digits",
        )
    return text


def normalise_phone(value: object) -> str:
    """An 11-digit mainland mobile number; spaces, dashes and a +86 prefix are dropped."""
    text = re.sub(r"[\s\-]", "", value) if isinstance(value, str) else ""
    if text.startswith("+86"):
        text = text[3:]
    if not _PHONE.fullmatch(text):
        raise InvalidIdentifier(
            "手机号格式不正确，请输入11位手机号码",
            field="phone",
            value="<redacted>",
            detail="phone must be 11 digits starting with 1[3-9]",
        )
    return text


def normalise_phone_last4(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not _LAST4.fullmatch(text):
        raise InvalidIdentifier(
            "请输入手机号后4位数字",
            field="phone_last4",
            value="<redacted>",
            detail="phone_last4 must be 4 digits",
        )
    return text


def normalise_id_last6(value: object) -> str:
    text = value.strip().upper() if isinstance(value, str) else ""
    if not _ID_LAST6.fullmatch(text):
        raise InvalidIdentifier(
            "请输入身份证号后6位（最后一位可能是X）",
            field="id_last6",
            value="<redacted>",
            detail="id_last6 must be 5 digits followed by a digit or X",
        )
    return text


def mask_phone(phone: str) -> str:
    """13800000001 -> 138****0001, the only form a reply may show."""
    return f"{phone[:3]}****{phone[-4:]}"


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class LoanRepository:
    """Queries the actions need, over any SQLAlchemy URL (sqlite:///..., postgresql://...)."""

    def __init__(self, url: str, *, reference_ttl: float = DEFAULT_REFERENCE_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(url, str) or not url.strip():
            raise InvalidIdentifier(
                "数据库地址未配置", field="url", value=url, detail="database URL is empty"
            )
        self.url = url
        self.reference_ttl = reference_ttl
        self._clock = clock
        self._reference: dict[str, tuple[float, Any]] = {}
        self._reference_lock = threading.Lock()
        try:
            _ensure_sqlite_dir(url)
            self.engine: Engine = create_engine(url, future=True, **_engine_options(url))
        except (SQLAlchemyError, ValueError) as exc:
            raise StoreUnavailable(
                field="url", value=make_url_safe(url), detail=f"cannot open database: {exc}"
            ) from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _enable_sqlite_foreign_keys)

    @classmethod
    def from_env(cls) -> LoanRepository:
        """Repository at $LOAN_DB_URL (default sqlite:///var/loans.sqlite, dir created)."""
        return cls(os.environ.get(ENV_VAR, "").strip() or DEFAULT_URL)

    def __repr__(self) -> str:
        return f"LoanRepository({make_url_safe(self.url)!r})"

    def dispose(self) -> None:
        """Close pooled connections (tests dropping a database need this)."""
        self.engine.dispose()
        self.forget_reference_data()

    def forget_reference_data(self) -> None:
        """Read products and LPR from the database at the next call."""
        with self._reference_lock:
            self._reference.clear()

    def _reference_data(self, key: str, load: Callable[[], Any]) -> Any:
        """`load()`'s result, reused for reference_ttl seconds (errors are not kept)."""
        now = self._clock()
        with self._reference_lock:
            kept = self._reference.get(key)
        if kept is not None and now - kept[0] < self.reference_ttl:
            return kept[1]
        value = load()
        if self.reference_ttl > 0:
            with self._reference_lock:
                self._reference[key] = (now, value)
        return value

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose database errors surface as StoreUnavailable."""
        try:
            with Session(self.engine, future=True) as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreUnavailable(detail=f"{type(exc).__name__}: {exc}") from exc

    def create_schema(self) -> None:
        """Create missing tables; existing tables and rows are left alone."""
        self.forget_reference_data()
        try:
            Base.metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(detail=f"create_schema failed: {exc}") from exc

    def drop_schema(self) -> None:
        """Drop every loan-store table (used by ``seed --reset`` and tests)."""
        self.forget_reference_data()
        try:
            Base.metadata.drop_all(self.engine)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(detail=f"drop_schema failed: {exc}") from exc

    # Products and market data

    def list_products(self) -> list[ProductInfo]:
        return list(self._catalogue())

    def get_product(self, code: str) -> ProductInfo | None:
        """The product, or None for an unknown code."""
        wanted = code.strip().lower() if isinstance(code, str) else code
        return next((p for p in self._catalogue() if p.code == wanted), None)

    def _catalogue(self) -> tuple[ProductInfo, ...]:
        def load() -> tuple[ProductInfo, ...]:
            with self.session() as s:
                rows = s.execute(select(Product).order_by(Product.code)).scalars().all()
                return tuple(_product(p) for p in rows)

        catalogue: tuple[ProductInfo, ...] = self._reference_data("products", load)
        return catalogue

    def current_lpr(self) -> LprInfo:
        """The latest LPR fixing; NotFound if the store has none."""
        def load() -> LprInfo:
            with self.session() as s:
                row = s.execute(
                    select(LprQuote).order_by(LprQuote.effective_date.desc()).limit(1)
                ).scalar_one_or_none()
                if row is None:
                    raise NotFound(
                        "暂未获取到最新的LPR报价，请稍后再试",
                        detail="lpr_quotes table is empty",
                    )
                return LprInfo(row.effective_date, row.one_year, row.five_year)

        lpr: LprInfo = self._reference_data("lpr", load)
        return lpr

    def product_annual_rate(self, code: str) -> tuple[ProductInfo, Decimal]:
        """The product and its current annual rate (fixed APR, or LPR + spread)."""
        product = self.get_product(code)
        if product is None:
            raise NotFound(
                "暂未找到该贷款产品", field="product", value=code, detail="unknown product code"
            )
        lpr = self.current_lpr() if product.rate_type == "lpr" else None
        return product, product.annual_rate(lpr)

    # Applications

    def get_application(self, application_id: str) -> ApplicationInfo | None:
        """The application, or None if no such id; malformed ids raise InvalidIdentifier."""
        app_id = normalise_application_id(application_id)
        with self.session() as s:
            row = s.get(Application, app_id)
            return _application(s, row) if row is not None else None

    def applications_for_phone(self, phone: str) -> list[ApplicationInfo]:
        """Applications of the borrower with this phone, newest first.

        Does not authenticate: call verify_identity before showing the result.
        """
        number = normalise_phone(phone)
        with self.session() as s:
            rows = s.execute(
                select(Application)
                .join(Borrower, Application.borrower_id == Borrower.id)
                .where(Borrower.phone == number)
                .order_by(Application.submitted_at.desc(), Application.id.desc())
            ).scalars().all()
            return [_application(s, r) for r in rows]

    def applications_for_borrower(self, borrower_id: str) -> list[ApplicationInfo]:
        """Applications of a borrower, newest first."""
        with self.session() as s:
            rows = s.execute(
                select(Application)
                .where(Application.borrower_id == borrower_id)
                .order_by(Application.submitted_at.desc(), Application.id.desc())
            ).scalars().all()
            return [_application(s, r) for r in rows]

    def timeline(self, application_id: str) -> list[ApplicationEventInfo]:
        """Status history of an application, oldest first (empty if unknown id)."""
        app_id = normalise_application_id(application_id)
        with self.session() as s:
            rows = s.execute(
                select(ApplicationEvent)
                .where(ApplicationEvent.application_id == app_id)
                .order_by(ApplicationEvent.at, ApplicationEvent.seq)
            ).scalars().all()
            return [
                ApplicationEventInfo(
                    application_id=r.application_id,
                    seq=r.seq,
                    status=r.status,
                    status_label=STATUS_LABELS[r.status],
                    at=r.at,
                    note=r.note,
                )
                for r in rows
            ]

    # Borrowers and loans

    def get_borrower(self, borrower_id: str) -> BorrowerInfo | None:
        with self.session() as s:
            row = s.get(Borrower, borrower_id)
            return _borrower(row) if row is not None else None

    def borrower_by_phone(self, phone: str) -> BorrowerInfo | None:
        """Does not authenticate: call verify_identity before showing the result."""
        number = normalise_phone(phone)
        with self.session() as s:
            row = s.execute(
                select(Borrower).where(Borrower.phone == number)
            ).scalar_one_or_none()
            return _borrower(row) if row is not None else None

    def loans_for_borrower(self, borrower_id: str) -> list[LoanInfo]:
        """The borrower's loans, overdue ones first, then by start date."""
        with self.session() as s:
            rows = s.execute(
                select(Loan)
                .where(Loan.borrower_id == borrower_id)
                .order_by(Loan.overdue_days.desc(), Loan.start_date, Loan.id)
            ).scalars().all()
            return [_loan(r) for r in rows]

    def verify_identity(
        self,
        *,
        application_id: str | None = None,
        phone: str | None = None,
        phone_last4: str | None = None,
        id_last6: str | None = None,
    ) -> VerificationResult:
        """Check that the caller is the borrower behind an application id or phone number.

        A locator (application id or phone) plus a secret is required: the ID-card last
        six, or - with an application id - the phone number or its last four digits
        (a phone's own last four digits prove nothing). Every supplied field must match.
        Comparisons are constant-time and run whether or not a borrower was found.
        """
        app_id = normalise_application_id(application_id) if application_id is not None else None
        number = normalise_phone(phone) if phone is not None else None
        last4 = normalise_phone_last4(phone_last4) if phone_last4 is not None else None
        id6 = normalise_id_last6(id_last6) if id_last6 is not None else None

        has_locator = app_id is not None or number is not None
        has_secret = id6 is not None or (
            app_id is not None and (last4 is not None or number is not None)
        )
        if not (has_locator and has_secret):
            return VerificationResult(ok=False, needs_more=True)

        with self.session() as s:
            by_app = by_phone = None
            if app_id is not None:
                app = s.get(Application, app_id)
                by_app = s.get(Borrower, app.borrower_id) if app is not None else None
            if number is not None:
                by_phone = s.execute(
                    select(Borrower).where(Borrower.phone == number)
                ).scalar_one_or_none()
            candidate = by_app if app_id is not None else by_phone
            ref_phone = candidate.phone if candidate is not None else _DUMMY_PHONE
            ref_id6 = candidate.id_last6 if candidate is not None else _DUMMY_ID_LAST6

            ok = candidate is not None
            if number is not None:
                ok &= _same(number, ref_phone)
            if last4 is not None:
                ok &= _same(last4, ref_phone[-4:])
            if id6 is not None:
                ok &= _same(id6, ref_id6)
            if not ok or candidate is None:
                return VerificationResult(ok=False)
            app_ids = s.execute(
                select(Application.id)
                .where(Application.borrower_id == candidate.id)
                .order_by(Application.submitted_at.desc(), Application.id.desc())
            ).scalars().all()
            return VerificationResult(
                ok=True, borrower_id=candidate.id, application_ids=tuple(app_ids)
            )


def make_url_safe(url: str) -> str:
    """The URL with any password hidden, for logs and reprs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as a placeholder
        return "<unparsable url>"


def _engine_options(url: str) -> dict[str, Any]:
    """Connections kept in a pool. For a SQLite file SQLAlchemy 1.4 would open a new one per
    session (NullPool), which cost half of every product lookup; the file is local, so there
    is nothing for a pre-ping to find."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return {"poolclass": QueuePool, "connect_args": {"check_same_thread": False}}
    return {"pool_pre_ping": True}


def _same(given: str, stored: str) -> bool:
    return hmac.compare_digest(given.encode(), stored.encode())


def _product(p: Product) -> ProductInfo:
    return ProductInfo(
        code=p.code,
        name=p.name,
        description=p.description,
        rate_type=p.rate_type,
        apr=p.apr,
        lpr_tenor=p.lpr_tenor,
        lpr_spread_bp=p.lpr_spread_bp,
        min_amount=p.min_amount,
        max_amount=p.max_amount,
        terms=tuple(int(t) for t in p.terms),
        methods=tuple(p.methods),
        fee_rule=FeeRule(
            rate=p.early_fee_rate,
            minimum=p.early_fee_min,
            waived_after_months=p.early_fee_waived_after_months,
        ),
        requirements=tuple(p.requirements),
        documents=tuple(p.documents),
        grace_days=p.grace_days,
        penalty_rate_multiplier=p.penalty_rate_multiplier,
        credit_report_after_days=p.credit_report_after_days,
    )


def _borrower(b: Borrower) -> BorrowerInfo:
    return BorrowerInfo(
        id=b.id,
        name=b.name,
        masked_phone=mask_phone(b.phone),
        credit_limit=b.credit_limit,
        limit_used=b.limit_used,
    )


def _application(s: Session, a: Application) -> ApplicationInfo:
    product = s.get(Product, a.product_code)
    return ApplicationInfo(
        id=a.id,
        borrower_id=a.borrower_id,
        product_code=a.product_code,
        product_name=product.name if product is not None else PRODUCT_LABELS[a.product_code],
        amount=a.amount,
        term_months=a.term_months,
        method=a.method,
        status=a.status,
        status_label=STATUS_LABELS[a.status],
        missing_documents=tuple(a.missing_documents or ()),
        submitted_at=a.submitted_at,
        updated_at=a.updated_at,
        expected_completion=a.expected_completion,
        reject_reason=a.reject_reason,
    )


def _loan(loan: Loan) -> LoanInfo:
    return LoanInfo(
        id=loan.id,
        borrower_id=loan.borrower_id,
        product_code=loan.product_code,
        product_name=PRODUCT_LABELS.get(loan.product_code, loan.product_code),
        application_id=loan.application_id,
        principal=loan.principal,
        outstanding=loan.outstanding,
        method=loan.method,
        annual_rate=loan.annual_rate,
        term_months=loan.term_months,
        periods_paid=loan.periods_paid,
        start_date=loan.start_date,
        next_due_date=loan.next_due_date,
        next_due_amount=loan.next_due_amount,
        overdue_days=loan.overdue_days,
        overdue_amount=loan.overdue_amount,
    )
