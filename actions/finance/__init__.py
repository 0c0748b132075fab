"""Pure loan calculators (no I/O): schedules, rates, early-repayment quotes."""

from actions.finance.early_repayment import EarlyRepaymentQuote, FeeRule, quote_early_repayment
from actions.finance.formatting import format_percent, format_yuan
from actions.finance.money import FEN, MAX_PRINCIPAL, MAX_TERM_MONTHS, MIN_PRINCIPAL, to_fen
from actions.finance.rates import daily_rate, lpr_rate, monthly_rate
from actions.finance.schedule import (
    METHOD_LABELS,
    METHODS,
    Schedule,
    ScheduleRow,
    build_schedule,
    compare_methods,
    parse_method,
)

__all__ = [
    "FEN",
    "MAX_PRINCIPAL",
    "MAX_TERM_MONTHS",
    "METHODS",
    "METHOD_LABELS",
    "MIN_PRINCIPAL",
    "EarlyRepaymentQuote",
    "FeeRule",
    "Schedule",
    "ScheduleRow",
    "build_schedule",
    "compare_methods",
    "daily_rate",
    "format_percent",
    "format_yuan",
    "lpr_rate",
    "monthly_rate",
    "parse_method",
    "quote_early_repayment",
    "to_fen",
]
