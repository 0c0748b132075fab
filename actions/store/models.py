"""SQLAlchemy tables of the loan data store (portable between SQLite and PostgreSQL).

Money is stored as integer fen and rates as integer millionths (ppm), through the
``Money`` and ``Rate`` column types: both databases keep them exactly, so a Decimal
read back is the Decimal written, with no float round-trip on SQLite.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import declarative_base

Base: Any = declarative_base()

APPLICATION_STATUSES: tuple[str, ...] = (
    "submitted",
    "reviewing",
    "need_documents",
    "collateral_appraisal",
    "approved",
    "disbursed",
    "rejected",
)

#: Borrower-facing names of the application statuses.
STATUS_LABELS: dict[str, str] = {
    "submitted": "已提交",
    "reviewing": "审核中",
    "need_documents": "待补充材料",
    "collateral_appraisal": "抵押物评估中",
    "approved": "审批通过",
    "disbursed": "已放款",
    "rejected": "未通过",
}


class _ScaledInteger(TypeDecorator):
    """A Decimal stored as an integer number of 1/scale units; refuses finer values."""

    impl = BigInteger
    cache_ok = True
    scale = Decimal(1)

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value) * self.scale
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value!r} has more precision than 1/{self.scale}")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return self._shape(Decimal(int(value)) / self.scale)

    def _shape(self, value: Decimal) -> Decimal:
        return value


class Money(_ScaledInteger):
    """Yuan with two decimals, stored as fen."""

    cache_ok = True
    scale = Decimal(100)

    def _shape(self, value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.01"))


class Rate(_ScaledInteger):
    """A rate fraction (0.072 = 7.2%), stored in millionths so 0.0002/day is exact."""

    cache_ok = True
    scale = Decimal(1_000_000)

    def _shape(self, value: Decimal) -> Decimal:
        return value.normalize() if value else Decimal(0)


class Product(Base):
    __tablename__ = "products"

    code = Column(String(32), primary_key=True)
    name = Column(String(64), nullable=False)
    description = Column(Text, nullable=False, default="")
    rate_type = Column(String(8), nullable=False)  # "fixed" | "lpr"
    apr = Column(Rate)  # fixed-rate products
    lpr_tenor = Column(String(4))  # "1y" | "5y" for LPR-linked products
    lpr_spread_bp = Column(Integer)  # LPR-linked products, may be negative
    min_amount = Column(Money, nullable=False)
    max_amount = Column(Money, nullable=False)
    terms = Column(JSON, nullable=False)  # list[int] months offered
    methods = Column(JSON, nullable=False)  # list[str] method codes offered
    early_fee_rate = Column(Rate, nullable=False, default=Decimal(0))
    early_fee_min = Column(Money, nullable=False, default=Decimal(0))
    early_fee_waived_after_months = Column(Integer)
    requirements = Column(JSON, nullable=False)  # list[str] eligibility conditions
    documents = Column(JSON, nullable=False)  # list[str] documents to submit
    grace_days = Column(Integer, nullable=False)
    penalty_rate_multiplier = Column(Rate, nullable=False)  # overdue rate = rate x this
    credit_report_after_days = Column(Integer, nullable=False)


class Borrower(Base):
    __tablename__ = "borrowers"

    id = Column(String(16), primary_key=True)
    name = Column(String(32), nullable=False)
    phone = Column(String(11), nullable=False, unique=True)
    id_last6 = Column(String(6), nullable=False)
    credit_limit = Column(Money, nullable=False)
    limit_used = Column(Money, nullable=False)


class Application(Base):
    __tablename__ = "applications"

    id = Column(String(13), primary_key=True)  # LN + 11 digits
    borrower_id = Column(String(16), ForeignKey("borrowers.id"), nullable=False, index=True)
    product_code = Column(String(32), ForeignKey("products.code"), nullable=False)
    amount = Column(Money, nullable=False)
    term_months = Column(Integer, nullable=False)
    method = Column(String(32), nullable=False)
    status = Column(String(32), nullable=False)
    missing_documents = Column(JSON, nullable=False)  # list[str]
    submitted_at = Column(DateTime, nullable=False)
    updated_at = Column(DateTime, nullable=False)
    expected_completion = Column(Date)
    reject_reason = Column(Text)


class ApplicationEvent(Base):
    __tablename__ = "application_events"

    application_id = Column(String(13), ForeignKey("applications.id"), primary_key=True)
    seq = Column(Integer, primary_key=True)  # 1, 2, ... in time order
    status = Column(String(32), nullable=False)
    at = Column(DateTime, nullable=False)
    note = Column(Text, nullable=False, default="")


class Loan(Base):
    __tablename__ = "loans"

    id = Column(String(16), primary_key=True)
    borrower_id = Column(String(16), ForeignKey("borrowers.id"), nullable=False, index=True)
    product_code = Column(String(32), ForeignKey("products.code"), nullable=False)
    application_id = Column(String(13), ForeignKey("applications.id"))
    principal = Column(Money, nullable=False)
    outstanding = Column(Money, nullable=False)
    method = Column(String(32), nullable=False)
    annual_rate = Column(Rate, nullable=False)
    term_months = Column(Integer, nullable=False)
    periods_paid = Column(Integer, nullable=False)
    start_date = Column(Date, nullable=False)
    next_due_date = Column(Date)
    next_due_amount = Column(Money)
    overdue_days = Column(Integer, nullable=False, default=0)
    overdue_amount = Column(Money, nullable=False, default=Decimal(0))


class LprQuote(Base):
    """Loan Prime Rate fixings; the row with the latest date is the current LPR."""

    __tablename__ = "lpr_quotes"

    effective_date = Column(Date, primary_key=True)
    one_year = Column(Rate, nullable=False)
    five_year = Column(Rate, nullable=False)


__all__ = [
    "APPLICATION_STATUSES",
    "STATUS_LABELS",
    "Application",
    "ApplicationEvent",
    "Base",
    "Borrower",
    "Loan",
    "LprQuote",
    "Money",
    "Product",
    "Rate",
]
