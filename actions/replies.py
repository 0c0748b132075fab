"""Chinese reply builders: pure functions from store records and schedules to text.

Kept apart from the Rasa actions so the wording is tested directly and every reply can be run
through the guardrails without a tracker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from actions.finance.early_repayment import EarlyRepaymentQuote
from actions.finance.formatting import format_percent, format_yuan
from actions.finance.money import CALC_CONTEXT, to_fen
from actions.finance.rates import daily_rate
from actions.finance.schedule import Schedule
from actions.store.dto import (
    LPR_TENOR_LABELS,
    ApplicationEventInfo,
    ApplicationInfo,
    BorrowerInfo,
    LoanInfo,
    LprInfo,
    ProductInfo,
)

ROUNDING_NOTE = "每期利息按剩余本金×月利率（年化÷12）计算，四舍五入到分，尾差计入最后一期。"

METHOD_EXPLANATIONS: dict[str, str] = {
    "equal_installment": "等额本息：每月还款额相同，每月利息=剩余本金×月利率（年化利率÷12），"
    "前期利息占比较高，后期本金占比较高。",
    "equal_principal": "等额本金：每月归还相同的本金，利息=剩余本金×月利率，"
    "月供逐月递减，总利息比等额本息少，但前期月供较高。",
    "interest_only": "先息后本：每月只还利息（本金×月利率），最后一期归还全部本金和当期利息。",
    "bullet": "到期一次还本付息：利息=本金×月利率×期数，到期时一次性归还本金和利息。",
}


def amount_text(amount: Decimal | int | float) -> str:
    """50000 -> '5万元', 15000 -> '1.5万元', 12345 -> '12,345元' (how borrowers say it)."""
    value = Decimal(str(amount))
    if value >= 10000 and (value / 10000) == (value / 10000).quantize(Decimal("0.01")):
        wan = (value / 10000).normalize()
        return f"{wan:f}万元"
    if value == value.to_integral_value():
        return f"{int(value):,}元"
    return format_yuan(value)


def date_text(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def daily_rate_text(annual_rate: Decimal) -> str:
    """'日利率0.02%（按年化利率÷360计算，每借1万元每天利息约2.00元）'."""
    daily = daily_rate(annual_rate)
    percent = CALC_CONTEXT.multiply(daily, Decimal(100))
    shown = percent.quantize(Decimal("0.0001"))
    approx = "" if shown == percent else "约"
    per_10k = to_fen(CALC_CONTEXT.multiply(daily, Decimal(10000)))
    return (
        f"日利率{approx}{shown.normalize():f}%（按年化利率÷360计算，"
        f"每借1万元每天利息约{per_10k:.2f}元）"
    )


def rate_text(product: ProductInfo, lpr: LprInfo | None) -> str:
    """APR (named product), daily rate with day-count, LPR + 加点 for floating products."""
    rate = product.annual_rate(lpr)
    if product.rate_type == "lpr" and lpr is not None and product.lpr_tenor:
        spread = product.lpr_spread_bp or 0
        base = lpr.for_tenor(product.lpr_tenor)
        sign = "+" if spread >= 0 else "-"
        spread_rate = Decimal(abs(spread)) / Decimal(10000)
        head = (
            f"【{product.name}】为LPR浮动利率：年化利率 = {LPR_TENOR_LABELS[product.lpr_tenor]}"
            f"LPR {format_percent(base)}（{date_text(lpr.effective_date)}公布）{sign} 加点"
            f"{format_percent(spread_rate)}（{abs(spread)}个基点）= "
            f"{format_percent(rate)}（单利）。"
            "LPR每月20日公布，合同利率在约定的重定价日按最新LPR调整，加点数值不变。"
        )
    else:
        head = f"【{product.name}】年化利率{format_percent(rate)}（单利，固定利率）。"
    return f"{head}\n{daily_rate_text(rate)}。"


def methods_text(product: ProductInfo) -> str:
    lines = [f"{product.name}支持的还款方式及利息计算："]
    lines += [f"· {METHOD_EXPLANATIONS[m]}" for m in product.methods]
    return "\n".join(lines)


def total_interest_text(schedule: Schedule, assumed_method: bool) -> str:
    note = "（您未指定还款方式，默认按此估算）" if assumed_method else ""
    return (
        f"按{schedule.method_label}{note}，借{amount_text(schedule.principal)}分"
        f"{schedule.term_months}期，总利息{format_yuan(schedule.total_interest)}，"
        f"总还款{format_yuan(schedule.total_payment)}。"
    )


def _row_text(row: Any) -> str:
    return (
        f"第{row.period}期：还款{format_yuan(row.payment)}（本金{format_yuan(row.principal)}，"
        f"利息{format_yuan(row.interest)}），剩余本金{format_yuan(row.remaining)}"
    )


def payment_summary(schedule: Schedule) -> str:
    """The headline payment, worded for the method (first payment for 等额本金)."""
    method = schedule.method
    if method == "equal_installment":
        return f"每月还款{format_yuan(schedule.first_payment)}"
    if method == "equal_principal":
        return (
            f"首月还款{format_yuan(schedule.first_payment)}，之后逐月递减，"
            f"末期还款{format_yuan(schedule.last_payment)}"
        )
    if method == "interest_only":
        if schedule.term_months == 1:
            return f"到期还本付息{format_yuan(schedule.last_payment)}"
        return (
            f"前{schedule.term_months - 1}期每月还利息{format_yuan(schedule.first_payment)}，"
            f"最后一期还本付息{format_yuan(schedule.last_payment)}"
        )
    return f"到期一次还本付息{format_yuan(schedule.last_payment)}"


def schedule_text(
    product: ProductInfo, schedule: Schedule, assumed_method: bool, preview_rows: int = 3
) -> str:
    """Summary, first rows and the last row, with the rounding rule stated."""
    assumed = (
        f"（您未指定还款方式，默认按{schedule.method_label}计算，可回复“换成等额本金”等调整）"
        if assumed_method
        else ""
    )
    lines = [
        f"【{product.name}】借款{amount_text(schedule.principal)}，分{schedule.term_months}期，"
        f"{schedule.method_label}{assumed}，年化利率{format_percent(schedule.annual_rate)}：",
        f"{payment_summary(schedule)}；总利息{format_yuan(schedule.total_interest)}，"
        f"总还款{format_yuan(schedule.total_payment)}。",
    ]
    rows = schedule.rows
    if len(rows) <= preview_rows + 1:
        lines += [_row_text(r) for r in rows]
    else:
        lines += [_row_text(r) for r in rows[:preview_rows]]
        lines.append("……")
        lines.append(_row_text(rows[-1]))
    lines.append(ROUNDING_NOTE + "完整还款计划见下表。")
    return "\n".join(lines)


def schedule_payload(product: ProductInfo, schedule: Schedule) -> dict[str, Any]:
    """The custom {"schedule": ...} message; labels are converted to the script by the caller."""
    data = schedule.as_dict()
    data["product"] = product.code
    data["product_name"] = product.name
    data["rounding"] = ROUNDING_NOTE
    return {"schedule": data}


def comparison_text(product: ProductInfo, schedules: Sequence[Schedule]) -> str:
    first = schedules[0]
    lines = [
        f"【{product.name}】借款{amount_text(first.principal)}、{first.term_months}期、"
        f"年化利率{format_percent(first.annual_rate)}，各还款方式对比："
    ]
    for s in schedules:
        lines.append(
            f"· {s.method_label}：{payment_summary(s)}；总利息{format_yuan(s.total_interest)}"
        )
    if len(schedules) > 1:
        cheapest = min(schedules, key=lambda s: s.total_interest)
        dearest = max(schedules, key=lambda s: s.total_interest)
        diff = dearest.total_interest - cheapest.total_interest
        lines.append(
            f"总利息最少的是{cheapest.method_label}，比{dearest.method_label}少"
            f"{format_yuan(diff)}；但前期月供高低不同，请结合自己每月的还款能力选择。"
        )
    lines.append(ROUNDING_NOTE)
    return "\n".join(lines)


def early_repayment_text(
    product: ProductInfo, schedule: Schedule, quote: EarlyRepaymentQuote, assumed_period: bool
) -> str:
    rule = product.fee_rule
    if rule.rate == 0 and rule.minimum == 0:
        rule_text = "该产品提前还款不收手续费"
    else:
        rule_text = f"该产品提前还款手续费为剩余本金的{format_percent(rule.rate)}"
        if rule.minimum:
            rule_text += f"（最低{format_yuan(rule.minimum)}）"
        if rule.waived_after_months is not None:
            rule_text += f"，还满{rule.waived_after_months}期后免收"
    assumed = (
        "（您未说明已还期数，这里按已还一半期数估算，可告诉我具体期数）" if assumed_period else ""
    )
    lines = [
        f"【{product.name}】借款{amount_text(schedule.principal)}、{schedule.term_months}期、"
        f"{schedule.method_label}，还满{quote.after_period}期后一次性提前结清{assumed}：",
        f"需还剩余本金{format_yuan(quote.outstanding_principal)}"
        + (f"、已产生利息{format_yuan(quote.accrued_interest)}" if quote.accrued_interest else "")
        + f"，手续费{format_yuan(quote.fee)}，合计{format_yuan(quote.payoff_amount)}。",
        f"可少付利息{format_yuan(quote.interest_saved)}，扣除手续费后净节省"
        f"{format_yuan(quote.net_saving)}。",
        f"{rule_text}。",
    ]
    if not quote.worthwhile:
        lines.append("按此测算，提前还款节省的利息不足以抵扣手续费。")
    return "\n".join(lines)


HOW_TO_REPAY = (
    "还款方式：每期还款日当天系统会从您绑定的银行卡自动扣款，请在还款日前一天存足款项；"
    "也可以在App“我的借款-还款”中主动还款或提前还款。"
    "还款日为放款日在每月的对应日，具体以借款合同和App显示为准。"
)


def next_due_text(loans: Sequence[LoanInfo]) -> str:
    """The verified borrower's own next instalments."""
    active = [loan for loan in loans if loan.next_due_date is not None]
    if not active:
        return "您当前没有待还的借款。"
    lines = []
    for loan in active:
        assert loan.next_due_date is not None
        amount = format_yuan(loan.next_due_amount) if loan.next_due_amount is not None else "—"
        lines.append(
            f"您的{loan.product_name}（借款{amount_text(loan.principal)}，已还{loan.periods_paid}/"
            f"{loan.term_months}期）下一期还款日为{date_text(loan.next_due_date)}，"
            f"应还{amount}，剩余本金{format_yuan(loan.outstanding)}。"
        )
    return "\n".join(lines)


def amount_range_text(product: ProductInfo) -> str:
    return f"{amount_text(product.min_amount)}至{amount_text(product.max_amount)}"


def terms_text(product: ProductInfo) -> str:
    return "、".join(str(t) for t in product.terms) + "期"


def limit_text(product: ProductInfo) -> str:
    return (
        f"【{product.name}】单笔可借{amount_range_text(product)}，可选期限{terms_text(product)}。"
        "实际额度以审批结果为准，与您的信用情况、收入和负债等综合评估有关。"
    )


def own_limit_text(borrower: BorrowerInfo) -> str:
    return (
        f"您的授信额度为{format_yuan(borrower.credit_limit)}，已使用"
        f"{format_yuan(borrower.limit_used)}，当前可用额度{format_yuan(borrower.available_limit)}。"
    )


def eligibility_text(product: ProductInfo) -> str:
    lines = [f"【{product.name}】申请条件："]
    lines += [f"· {item}" for item in product.requirements]
    if product.documents:
        lines.append("需要准备的材料：" + "、".join(product.documents) + "。")
    lines.append("是否获批以审核结果为准。")
    return "\n".join(lines)


def overdue_text(product: ProductInfo, annual_rate: Decimal | None) -> str:
    lines = [f"【{product.name}】逾期规则："]
    if product.grace_days:
        lines.append(
            f"· 还款日后有{product.grace_days}天宽限期，宽限期内还款不计罚息、不算逾期。"
        )
    else:
        lines.append("· 没有宽限期，还款日未足额还款即为逾期。")
    penalty = f"{product.penalty_rate_multiplier.normalize():f}"
    line = f"· 逾期后按合同执行利率的{penalty}倍计收罚息，按逾期天数和逾期金额按日计算"
    if annual_rate is not None:
        penalty_daily = product.penalty_daily_rate(annual_rate) * 100
        line += f"（罚息日利率约{penalty_daily.quantize(Decimal('0.0001')).normalize():f}%）"
    lines.append(line + "。")
    lines.append(
        f"· 逾期超过{product.credit_report_after_days}天将按规定报送征信，影响个人信用记录。"
    )
    lines.append("如遇还款困难，可回复“转人工”联系客服沟通。")
    return "\n".join(lines)


def own_overdue_text(loans: Sequence[LoanInfo]) -> str:
    overdue = [loan for loan in loans if loan.is_overdue]
    if not overdue:
        return "经查询，您名下的借款目前没有逾期。"
    return "\n".join(
        f"您的{loan.product_name}（{loan.id}）已逾期{loan.overdue_days}天，"
        f"逾期金额{format_yuan(loan.overdue_amount)}，请尽快还款以减少罚息和对征信的影响。"
        for loan in overdue
    )


def progress_text(
    application: ApplicationInfo, events: Sequence[ApplicationEventInfo]
) -> str:
    """Status label, timeline, missing documents and expected completion of one application."""
    lines = [
        f"申请编号{application.id}（{application.product_name}，{amount_text(application.amount)}，"
        f"{application.term_months}期）当前状态：{application.status_label}。"
    ]
    if events:
        lines.append("办理进度：")
        lines += [
            f"· {e.at:%Y-%m-%d %H:%M} {e.status_label}" + (f"（{e.note}）" if e.note else "")
            for e in events
        ]
    if application.missing_documents:
        lines.append(
            "还需补充材料：" + "、".join(application.missing_documents) + "，请在App中上传。"
        )
    if application.status == "rejected":
        reason = f"原因：{application.reject_reason}。" if application.reject_reason else ""
        lines.append(f"很遗憾，该申请未通过审核。{reason}")
    elif application.expected_completion and application.status not in ("disbursed",):
        lines.append(f"预计{date_text(application.expected_completion)}前完成。")
    return "\n".join(lines)
