"""Loan data store: SQLAlchemy tables, a repository returning frozen DTOs, demo seed."""

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
from actions.store.models import APPLICATION_STATUSES, STATUS_LABELS
from actions.store.repository import (
    DEFAULT_URL,
    ENV_VAR,
    LoanRepository,
    mask_phone,
    normalise_application_id,
    normalise_id_last6,
    normalise_phone,
    normalise_phone_last4,
)

__all__ = [
    "APPLICATION_STATUSES",
    "DEFAULT_URL",
    "ENV_VAR",
    "PRODUCT_LABELS",
    "STATUS_LABELS",
    "ApplicationEventInfo",
    "ApplicationInfo",
    "BorrowerInfo",
    "LoanInfo",
    "LoanRepository",
    "LprInfo",
    "ProductInfo",
    "VerificationResult",
    "mask_phone",
    "normalise_application_id",
    "normalise_id_last6",
    "normalise_phone",
    "normalise_phone_last4",
]
