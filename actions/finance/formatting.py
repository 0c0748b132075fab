"""Borrower-facing formatting of amounts and rates (Chinese conventions)."""

from __future__ import annotations

from decimal import Decimal

from actions.finance.money import CALC_CONTEXT, to_fen


def format_yuan(amount: Decimal | int) -> str:
    """12345.6 -> '12,345.60元': always two decimals so fen are never hidden."""
    return f"{to_fen(Decimal(amount)):,.2f}元"


def format_percent(rate: Decimal) -> str:
    """0.072 -> '7.2%', 0.0002 -> '0.02%': no trailing zeros, no float noise."""
    percent = CALC_CONTEXT.multiply(Decimal(rate), Decimal(100)).normalize()
    text = f"{percent:f}"
    return f"{text}%"
