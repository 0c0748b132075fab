"""三不原则: no approval promises, no push to borrow more, no full personal numbers."""

from __future__ import annotations

import pytest

from actions.guardrails import (
    ENCOURAGE_OVERBORROWING,
    PERSONAL_DATA,
    PROMISE_APPROVAL,
    check_reply,
    is_safe,
    mask_number,
)
from actions.store.seed import APPLICATIONS, EVENT_NOTES, PRODUCTS


def rules(text: str) -> list[str]:
    return [v.rule for v in check_reply(text)]


@pytest.mark.parametrize(
    "text",
    [
        "放心，我们的信用贷包过！",
        "您的资质很好，一定能批。",
        "保证下款，当天到账。",
        "百分百通过，不看资质。",
        "您这种情况肯定能贷到。",
        "100%下款",
        "绝对可以通过审批",
        "黑户也能贷",
        "不用担心，包过。",  # comforting words are not a negation
        "不管征信如何都包过",
        # Traditional Chinese and full-width forms
        "我們的產品包過，保證下款",
        "您的資質很好，一定能批",
        "百分百通過",
        "１００％下款",
    ],
)
def test_approval_promises_are_caught(text: str) -> None:
    assert PROMISE_APPROVAL in rules(text)


@pytest.mark.parametrize(
    "text",
    [
        "既然额度有20万，不如多借点。",
        "建议您借满额度，利息更划算。",
        "额度用满更方便周转。",
        "把额度都用完吧",
        "建议您直接申请最高额度",
        "再多借几万也没问题",
        "建議您借滿額度",  # Traditional
        "多借點吧",
    ],
)
def test_pushing_to_borrow_more_is_caught(text: str) -> None:
    assert ENCOURAGE_OVERBORROWING in rules(text)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("您的手机号是13800000001。", "138****0001"),
        ("联系人电话：138 0000 0002", "138****0002"),
        ("请拨打+86-138-0000-0003", "138****0003"),
        ("身份证号11010119900307123X已登记", "110***********123X"),
        ("身份證號碼110101199003071234", "110***********1234"),  # Traditional
        ("收款卡号6222 0212 3456 7890 123", "622************0123"),
        ("卡号6217000010012345678", "621************5678"),
        ("手机１３８０００００００４", "138****0004"),  # full-width digits
    ],
)
def test_full_personal_numbers_are_caught_and_masked(text: str, masked: str) -> None:
    found = [v for v in check_reply(text) if v.rule == PERSONAL_DATA]
    assert [v.matched for v in found] == [masked]


@pytest.mark.parametrize(
    "text",
    [
        "审批结果以系统审核为准，我们不承诺包过。",
        "審批結果以審核為準，我們不保證下款。",  # Traditional disclaimer
        "很抱歉，我们无法保证一定能批，审核会综合评估您的资质。",
        "凡是声称“包过”“百分百下款”的都是诈骗，请提高警惕。",
        "请一定通过官方渠道申请，不要相信中介。",
        "不建议您借满额度，请按实际需要借款。",
        "请理性借贷，切勿多借。",
        "额度用完后，按时还款即可恢复可用额度。",
        "您的手机号138****0001已验证通过。",
        "您的申请LN20261123001正在审核中，预计2026-11-24完成。",
        "借款100000元，12期，每月还款8,661.90元，总利息3,942.75元。",
        "客服热线400-820-8820，工作时间9:00-21:00。",
        "您最多可借5万元，具体以审批结果为准。",
        "我们承诺审批通过后当天放款。",
        "可以把额度用于装修、旅游等消费。",
        "",
    ],
)
def test_honest_replies_pass(text: str) -> None:
    assert check_reply(text) == []
    assert is_safe(text)


def test_several_violations_are_all_reported_in_order() -> None:
    found = check_reply("包过！建议您借满额度，有问题打13800000009")
    assert [v.rule for v in found] == [PROMISE_APPROVAL, ENCOURAGE_OVERBORROWING, PERSONAL_DATA]
    assert all(v.reason.isascii() for v in found)
    assert all(v.start < v.end for v in found)
    assert "13800000009" not in repr(found)  # violations never store the full number


def test_seed_texts_shown_to_borrowers_are_clean() -> None:
    texts: list[str] = list(EVENT_NOTES.values())
    for product in PRODUCTS:
        for key in ("name", "description"):
            texts.append(str(product[key]))
        texts.extend(str(x) for x in product["requirements"])  # type: ignore[attr-defined]
        texts.extend(str(x) for x in product["documents"])  # type: ignore[attr-defined]
    texts.extend(a[8] for a in APPLICATIONS if a[8])
    for text in texts:
        assert check_reply(text) == [], text


def test_mask_number_and_type_check() -> None:
    assert mask_number("13800000001") == "138****0001"
    with pytest.raises(TypeError):
        check_reply(None)  # type: ignore[arg-type]
