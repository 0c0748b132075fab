"""Exceptions raised by the loan calculators and the loan data store.

Every error carries two texts because it has two audiences: ``str(exc)`` is a
short Chinese sentence an action may show to the borrower as it is, while
``repr(exc)`` is English with the offending field and value, for logs.
"""

from __future__ import annotations

from typing import Any


class LoanbotError(Exception):
    """Root of every error this package raises on purpose."""

    #: Chinese text used when a subclass is raised without its own message.
    default_message = "系统暂时无法处理您的请求，请稍后再试。"

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        value: Any = None,
        detail: str = "",
    ) -> None:
        self.message = message or self.default_message
        self.field = field
        self.value = value
        self.detail = detail
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        parts = []
        if self.field is not None:
            parts.append(f"field={self.field!r}")
            parts.append(f"value={self.value!r}")
        if self.detail:
            parts.append(f"detail={self.detail!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class InvalidLoanParameters(LoanbotError, ValueError):
    """Amount, term, rate or repayment method outside what a loan can have."""

    default_message = "借款参数不正确，请检查金额、期限和还款方式。"


class InvalidIdentifier(LoanbotError, ValueError):
    """An application number, phone number or ID fragment with the wrong format."""

    default_message = "您提供的信息格式不正确，请核对后重新输入。"


class NotFound(LoanbotError, LookupError):
    """Data the caller relies on (such as the current LPR) is missing from the store."""

    default_message = "暂时没有查到相关信息。"


class StoreUnavailable(LoanbotError):
    """The loan database could not be reached or answered with an error."""

    default_message = "系统繁忙，暂时无法查询，请稍后再试。"
