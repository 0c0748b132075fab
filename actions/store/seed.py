"""Deterministic demo data for the loan store: products, borrowers, applications, loans.

All people and numbers are fictitious (phones 138000000xx are not real subscribers).
Dates are relative to SEED_TODAY so every run produces identical rows; loan balances
and next instalments come from the same calculator the bot quotes with.

    python -m actions.store.seed [--url URL] [--reset]

Running it twice leaves the same rows (rows are merged by primary key); ``--reset``
drops and recreates the tables first.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from actions.errors import LoanbotError
from actions.finance.rates import lpr_rate
from actions.finance.schedule import build_schedule
from actions.store.models import (
    APPLICATION_STATUSES,
    Application,
    ApplicationEvent,
    Borrower,
    Loan,
    LprQuote,
    Product,
)
from actions.store.repository import DEFAULT_URL, ENV_VAR, LoanRepository

#: "Today" for the demo data; fixed so the seed is reproducible.
SEED_TODAY = dt.date(2026, 11, 23)

D = Decimal

LPR_QUOTES = (
    # (effective date, 1-year LPR, over-5-year LPR) - published PBOC fixings.
    (dt.date(2024, 10, 21), D("0.031"), D("0.036")),
    (dt.date(2025, 5, 20), D("0.030"), D("0.035")),
)

PRODUCTS: tuple[dict[str, object], ...] = (
    {
        "code": "credit",
        "name": "信用贷",
        "description": "无需抵押担保的个人消费信用贷款，最快当天到账，随借随还。",
        "rate_type": "fixed",
        "apr": D("0.108"),
        "lpr_tenor": None,
        "lpr_spread_bp": None,
        "min_amount": D("1000"),
        "max_amount": D("200000"),
        "terms": [3, 6, 12, 24, 36],
        "methods": ["equal_installment", "equal_principal"],
        "early_fee_rate": D("0.01"),
        "early_fee_min": D("50"),
        "early_fee_waived_after_months": 12,
        "requirements": [
            "年满22周岁且不超过55周岁的中国大陆居民",
            "有稳定工作和收入来源，当前工作单位工作满6个月",
            "个人征信良好，近2年内无连续3期或累计6期以上逾期",
        ],
        "documents": ["本人有效二代身份证", "本人实名认证的手机号", "本人名下的借记卡"],
        "grace_days": 3,
        "penalty_rate_multiplier": D("1.5"),
        "credit_report_after_days": 30,
    },
    {
        "code": "provident_fund",
        "name": "公积金贷",
        "description": "面向连续缴存住房公积金的上班族，按公积金缴存基数核定额度，利率更低。",
        "rate_type": "fixed",
        "apr": D("0.072"),
        "lpr_tenor": None,
        "lpr_spread_bp": None,
        "min_amount": D("5000"),
        "max_amount": D("300000"),
        "terms": [12, 24, 36, 60],
        "methods": ["equal_installment", "equal_principal"],
        "early_fee_rate": D("0"),
        "early_fee_min": D("0"),
        "early_fee_waived_after_months": None,
        "requirements": [
            "年满22周岁且不超过55周岁",
            "在同一单位连续足额缴存住房公积金满12个月",
            "月缴存基数不低于3000元",
            "个人征信良好，当前无逾期",
        ],
        "documents": ["本人有效二代身份证", "授权查询住房公积金缴存信息", "本人名下的借记卡"],
        "grace_days": 3,
        "penalty_rate_multiplier": D("1.5"),
        "credit_report_after_days": 30,
    },
    {
        "code": "business",
        "name": "经营贷",
        "description": "面向个体工商户和小微企业主的经营周转贷款，利率按1年期LPR加点。",
        "rate_type": "lpr",
        "apr": None,
        "lpr_tenor": "1y",
        "lpr_spread_bp": 50,
        "min_amount": D("10000"),
        "max_amount": D("3000000"),
        "terms": [6, 12, 24, 36],
        "methods": ["interest_only", "equal_installment", "bullet"],
        "early_fee_rate": D("0.02"),
        "early_fee_min": D("200"),
        "early_fee_waived_after_months": 24,
        "requirements": [
            "年满22周岁且不超过60周岁",
            "营业执照注册满1年，且本人为法定代表人或占股不低于20%的股东",
            "企业和个人征信良好，无涉诉或被执行记录",
            "贷款只能用于生产经营，不得流入股市、楼市",
        ],
        "documents": [
            "本人有效二代身份证",
            "营业执照",
            "近6个月银行流水",
            "店面租赁合同或经营场所证明",
            "近一年纳税证明",
        ],
        "grace_days": 1,
        "penalty_rate_multiplier": D("1.5"),
        "credit_report_after_days": 30,
    },
    {
        "code": "mortgage",
        "name": "抵押贷",
        "description": "以本人或配偶名下住房作抵押的大额贷款，利率按5年期以上LPR加点。",
        "rate_type": "lpr",
        "apr": None,
        "lpr_tenor": "5y",
        "lpr_spread_bp": 30,
        "min_amount": D("100000"),
        "max_amount": D("10000000"),
        "terms": [12, 36, 60, 120, 240, 360],
        "methods": ["equal_installment", "equal_principal", "interest_only"],
        "early_fee_rate": D("0.01"),
        "early_fee_min": D("500"),
        "early_fee_waived_after_months": 36,
        "requirements": [
            "年满22周岁，且贷款到期时年龄不超过70周岁",
            "抵押房产产权清晰，已取得不动产权证，未被查封",
            "房产评估价值的70%可覆盖申请金额",
            "个人征信良好，有稳定还款来源",
        ],
        "documents": [
            "本人及配偶有效二代身份证",
            "户口本和婚姻证明",
            "不动产权证",
            "近6个月银行流水或收入证明",
        ],
        "grace_days": 3,
        "penalty_rate_multiplier": D("1.5"),
        "credit_report_after_days": 30,
    },
)

# (id, name, id_last6, credit_limit)
BORROWERS: tuple[tuple[str, str, str, Decimal], ...] = (
    ("B0001", "张伟", "123456", D("100000")),
    ("B0002", "王芳", "20121X", D("80000")),
    ("B0003", "李娜", "301522", D("150000")),
    ("B0004", "刘洋", "052318", D("50000")),
    ("B0005", "陈静", "184426", D("200000")),
    ("B0006", "杨磊", "27103X", D("60000")),
    ("B0007", "赵敏", "090021", D("120000")),
    ("B0008", "黄勇", "115538", D("30000")),
    ("B0009", "周婷", "223344", D("90000")),
    ("B0010", "吴强", "031517", D("100000")),
    ("B0011", "徐丽", "260045", D("70000")),
    ("B0012", "孙杰", "19881X", D("40000")),
    ("B0013", "朱琳", "072216", D("160000")),
    ("B0014", "胡军", "140929", D("50000")),
    ("B0015", "郭燕", "281103", D("110000")),
    ("B0016", "何斌", "063355", D("80000")),
    ("B0017", "高翔", "210818", D("200000")),
    ("B0018", "林晓", "170724", D("60000")),
    ("B0019", "罗丹", "300611", D("90000")),
    ("B0020", "梁超", "08150X", D("130000")),
)


def phone_of(borrower_id: str) -> str:
    """B0007 -> 13800000007: reserved-looking numbers, never a real person's."""
    return f"138000000{int(borrower_id[1:]):02d}"


# (application id, borrower, product, amount, term, method, final status,
#  missing documents, reject reason, days until expected completion or None)
APPLICATIONS: tuple[tuple[str, str, str, int, int, str, str, list[str], str | None, int | None],
                    ...] = (
    ("LN20261123001", "B0001", "credit", 50000, 12, "equal_installment", "submitted", [], None, 1),
    ("LN20261123002", "B0002", "provident_fund", 100000, 36, "equal_installment", "submitted",
     [], None, 2),
    ("LN20261122001", "B0003", "credit", 30000, 6, "equal_principal", "reviewing", [], None, 1),
    ("LN20261122002", "B0004", "business", 200000, 12, "interest_only", "reviewing", [], None,
     3),
    ("LN20261121001", "B0005", "business", 500000, 24, "equal_installment", "need_documents",
     ["店面租赁合同", "近6个月银行流水"], None, 5),
    ("LN20261120001", "B0006", "provident_fund", 80000, 24, "equal_principal", "need_documents",
     ["授权查询住房公积金缴存信息"], None, 4),
    ("LN20261119001", "B0007", "mortgage", 1500000, 120, "equal_installment",
     "collateral_appraisal", [], None, 7),
    ("LN20261118001", "B0008", "mortgage", 800000, 60, "equal_principal", "collateral_appraisal",
     [], None, 6),
    ("LN20261117001", "B0009", "credit", 20000, 12, "equal_installment", "approved", [], None, 1),
    ("LN20261116001", "B0010", "mortgage", 1000000, 240, "equal_installment", "approved", [],
     None, 3),
    ("LN20261110001", "B0011", "credit", 40000, 24, "equal_installment", "disbursed", [], None,
     None),
    ("LN20261105001", "B0012", "business", 300000, 12, "bullet", "disbursed", [], None, None),
    ("LN20261112001", "B0013", "credit", 150000, 36, "equal_installment", "rejected", [],
     "综合评分未达到本产品要求，建议保持良好信用记录3个月后再申请。", None),
    ("LN20261114001", "B0014", "business", 100000, 12, "interest_only", "rejected", [],
     "营业执照注册未满1年，暂不符合经营贷申请条件。", None),
    ("LN20261121002", "B0001", "business", 150000, 12, "interest_only", "need_documents",
     ["营业执照", "近一年纳税证明"], None, 5),
    ("LN20261115001", "B0015", "provident_fund", 120000, 60, "equal_installment", "reviewing",
     [], None, 2),
)

# (loan id, borrower, product, application id, principal, term, method, start date,
#  instalments due but unpaid)
LOANS: tuple[tuple[str, str, str, str | None, int, int, str, dt.date, int], ...] = (
    ("JK202611100001", "B0011", "credit", "LN20261110001", 40000, 24, "equal_installment",
     dt.date(2026, 11, 11), 0),
    ("JK202611050001", "B0012", "business", "LN20261105001", 300000, 12, "bullet",
     dt.date(2026, 11, 6), 0),
    ("JK202603150001", "B0001", "credit", None, 30000, 12, "equal_installment",
     dt.date(2026, 3, 15), 0),
    ("JK202508200001", "B0003", "provident_fund", None, 150000, 36, "equal_principal",
     dt.date(2025, 8, 20), 0),
    ("JK202512010001", "B0004", "credit", None, 20000, 12, "equal_installment",
     dt.date(2025, 12, 1), 1),
    ("JK202606180001", "B0006", "credit", None, 15000, 6, "equal_principal",
     dt.date(2026, 6, 18), 0),
    ("JK202601100001", "B0008", "credit", None, 25000, 24, "equal_installment",
     dt.date(2026, 1, 10), 2),
    ("JK202504300001", "B0010", "business", None, 500000, 24, "interest_only",
     dt.date(2025, 4, 30), 0),
    ("JK202409150001", "B0016", "mortgage", None, 2000000, 120, "equal_installment",
     dt.date(2024, 9, 15), 0),
    ("JK202602280001", "B0017", "provident_fund", None, 200000, 60, "equal_installment",
     dt.date(2026, 2, 28), 0),
    ("JK202607210001", "B0018", "credit", None, 10000, 12, "equal_principal",
     dt.date(2026, 7, 21), 1),
    ("JK202510080001", "B0019", "business", None, 800000, 36, "equal_installment",
     dt.date(2025, 10, 8), 0),
    ("JK202605200001", "B0020", "credit", None, 60000, 36, "equal_installment",
     dt.date(2026, 5, 20), 3),
    ("JK202511110001", "B0005", "provident_fund", None, 90000, 24, "equal_principal",
     dt.date(2025, 11, 11), 0),
)

EVENT_NOTES = {
    "submitted": "申请已提交，等待系统初审。",
    "reviewing": "资料齐全，已进入人工审核。",
    "need_documents": "审核需要补充材料，请在APP“我的申请”中上传。",
    "collateral_appraisal": "已预约评估机构上门评估抵押房产。",
    "approved": "审批通过，待签署借款合同后放款。",
    "disbursed": "借款已发放至您绑定的银行卡，请注意查收。",
    "rejected": "很抱歉，本次申请未通过审核。",
}


@dataclass(frozen=True)
class SeedSummary:
    products: int
    borrowers: int
    applications: int
    events: int
    loans: int
    lpr_quotes: int


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day ``months`` later, clamped to month end (Jan 31 + 1 -> Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _status_path(final: str, product: str) -> list[str]:
    """Statuses an application passed through to reach ``final``."""
    paths = {
        "submitted": ["submitted"],
        "reviewing": ["submitted", "reviewing"],
        "need_documents": ["submitted", "reviewing", "need_documents"],
        "collateral_appraisal": ["submitted", "reviewing", "collateral_appraisal"],
        "approved": ["submitted", "reviewing", "approved"],
        "disbursed": ["submitted", "reviewing", "approved", "disbursed"],
        "rejected": ["submitted", "reviewing", "rejected"],
    }
    path = list(paths[final])
    if product == "mortgage" and final in ("approved", "disbursed"):
        path.insert(2, "collateral_appraisal")
    return path


def _product_rows() -> list[Product]:
    return [Product(**spec) for spec in PRODUCTS]


def _rate_of(code: str) -> Decimal:
    """Annual rate of a seeded product at the latest seeded LPR."""
    spec = next(p for p in PRODUCTS if p["code"] == code)
    apr, tenor, spread = spec["apr"], spec["lpr_tenor"], spec["lpr_spread_bp"]
    if isinstance(apr, Decimal):
        return apr
    if not isinstance(spread, int) or tenor not in ("1y", "5y"):
        raise ValueError(f"product {code} has neither an APR nor an LPR tenor and spread")
    _, one_year, five_year = max(LPR_QUOTES)
    return lpr_rate(one_year if tenor == "1y" else five_year, spread)


def _application_rows() -> tuple[list[Application], list[ApplicationEvent]]:
    apps, events = [], []
    for app_id, borrower, product, amount, term, method, status, missing, reason, eta in (
        APPLICATIONS
    ):
        submitted = dt.datetime.strptime(app_id[2:10], "%Y%m%d") + dt.timedelta(
            hours=9, minutes=int(app_id[-3:]) * 7
        )
        path = _status_path(status, product)
        stamps = [submitted + dt.timedelta(hours=5 * i) for i in range(len(path))]
        for seq, (step, at) in enumerate(zip(path, stamps, strict=True), start=1):
            note = EVENT_NOTES[step]
            if step == "need_documents":
                note = f"需补充：{'、'.join(missing)}。请在APP“我的申请”中上传。"
            if step == "rejected" and reason:
                note = reason
            events.append(
                ApplicationEvent(application_id=app_id, seq=seq, status=step, at=at, note=note)
            )
        apps.append(
            Application(
                id=app_id,
                borrower_id=borrower,
                product_code=product,
                amount=Decimal(amount),
                term_months=term,
                method=method,
                status=status,
                missing_documents=list(missing),
                submitted_at=submitted,
                updated_at=stamps[-1],
                expected_completion=SEED_TODAY + dt.timedelta(days=eta) if eta else None,
                reject_reason=reason,
            )
        )
    return apps, events


def _loan_rows() -> list[Loan]:
    loans = []
    for loan_id, borrower, product, app_id, principal, term, method, start, missed in LOANS:
        rate = _rate_of(product)
        schedule = build_schedule(principal, rate, term, method)
        due = [row for row in schedule.rows if add_months(start, row.period) <= SEED_TODAY]
        if missed > len(due):
            raise ValueError(f"{loan_id}: {missed} missed instalments but only {len(due)} due")
        paid = due[: len(due) - missed]
        overdue_rows = due[len(paid):]
        unpaid = schedule.rows[len(paid):]
        if not unpaid:
            raise ValueError(f"{loan_id} would already be repaid on {SEED_TODAY}")
        first_unpaid_due = add_months(start, unpaid[0].period)
        loans.append(
            Loan(
                id=loan_id,
                borrower_id=borrower,
                product_code=product,
                application_id=app_id,
                principal=schedule.principal,
                outstanding=paid[-1].remaining if paid else schedule.principal,
                method=method,
                annual_rate=rate,
                term_months=term,
                periods_paid=paid[-1].period if paid else 0,
                start_date=start,
                next_due_date=first_unpaid_due,
                next_due_amount=unpaid[0].payment,
                overdue_days=(SEED_TODAY - first_unpaid_due).days if overdue_rows else 0,
                overdue_amount=sum((r.payment for r in overdue_rows), Decimal("0.00")),
            )
        )
    return loans


def _borrower_rows(loans: Sequence[Loan]) -> list[Borrower]:
    """Borrowers; limit_used is the outstanding principal of their unsecured loans."""
    rows = []
    for borrower_id, name, id_last6, limit in BORROWERS:
        used = sum(
            (
                loan.outstanding
                for loan in loans
                if loan.borrower_id == borrower_id
                and loan.product_code in ("credit", "provident_fund")
            ),
            Decimal("0.00"),
        )
        rows.append(
            Borrower(
                id=borrower_id,
                name=name,
                phone=phone_of(borrower_id),
                id_last6=id_last6,
                credit_limit=max(limit, used),
                limit_used=used,
            )
        )
    return rows


def seed(repository: LoanRepository, *, reset: bool = False) -> SeedSummary:
    """Create the schema and upsert the demo rows; safe to run repeatedly."""
    missing = set(APPLICATION_STATUSES) - {a[6] for a in APPLICATIONS}
    if missing:
        raise ValueError(f"seed lacks applications in status {sorted(missing)}")
    if reset:
        repository.drop_schema()
    repository.create_schema()
    loans = _loan_rows()
    apps, events = _application_rows()
    groups: list[Sequence[object]] = [
        [LprQuote(effective_date=d, one_year=a, five_year=b) for d, a, b in LPR_QUOTES],
        _product_rows(),
        _borrower_rows(loans),
        apps,
        events,
        loans,
    ]
    with repository.session() as session, session.begin():
        for group in groups:
            for row in group:
                session.merge(row)
    return SeedSummary(
        products=len(PRODUCTS),
        borrowers=len(BORROWERS),
        applications=len(apps),
        events=len(events),
        loans=len(loans),
        lpr_quotes=len(LPR_QUOTES),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actions.store.seed", description="Create and fill the loan data store."
    )
    parser.add_argument("--url", help=f"database URL (default: ${ENV_VAR} or {DEFAULT_URL})")
    parser.add_argument("--reset", action="store_true", help="drop and recreate all tables")
    args = parser.parse_args(argv)
    repository = LoanRepository(args.url) if args.url else LoanRepository.from_env()
    try:
        summary = seed(repository, reset=args.reset)
    except LoanbotError as exc:
        print(f"seed failed: {exc!r}", file=sys.stderr)
        return 1
    finally:
        repository.dispose()
    print(f"seeded {repository!r}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
