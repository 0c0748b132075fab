"""Varied borrower conversations for the load generator (pure, seeded, no I/O).

Real traffic does not repeat itself, so neither may the benchmark: amounts, terms, methods,
products, phrasings, identities, Simplified/Traditional script and typos are drawn at random
for every message. A cache that only helps repeated benchmark text would show no gain here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from bot.text import to_script

Kind = Literal["rate", "repayment", "progress", "chitchat", "handoff"]

# Share of conversations by kind (a consumer-loan service desk: mostly calculations and rates).
MIX: tuple[tuple[Kind, float], ...] = (
    ("rate", 0.22),
    ("repayment", 0.30),
    ("progress", 0.18),
    ("chitchat", 0.20),
    ("handoff", 0.10),
)

PRODUCTS = ("信用贷", "公积金贷", "经营贷", "房抵贷", "消费贷", "公积金贷款", "抵押贷")
METHODS = ("等额本息", "等额本金", "先息后本", "到期还本付息", "按月付息到期还本")
CN_DIGITS = "零一二三四五六七八九"

# Seeded applications of actions/store/seed.py: (application id, phone, id_last6).
IDENTITIES: tuple[tuple[str, str, str], ...] = (
    ("LN20261123001", "13800000001", "123456"),
    ("LN20261123002", "13800000002", "20121X"),
    ("LN20261122001", "13800000003", "301522"),
    ("LN20261122002", "13800000004", "052318"),
    ("LN20261121001", "13800000005", "184426"),
    ("LN20261120001", "13800000006", "27103X"),
    ("LN20261119001", "13800000007", "090021"),
    ("LN20261118001", "13800000008", "115538"),
    ("LN20261117001", "13800000009", "223344"),
    ("LN20261116001", "13800000010", "031517"),
)

# Common slips of Chinese IMEs: homophones and near-homophones.
HOMOPHONES = {
    "利率": ("利律", "利滤"), "还款": ("换款", "还宽"), "多少": ("多小", "都少"),
    "贷款": ("带款", "代款"), "申请": ("申亲", "伸请"), "审核": ("审和", "审合"),
    "进度": ("近度", "进渡"), "每月": ("每越", "美月"), "利息": ("利西", "力息"),
    "请问": ("情问", "请文"), "你好": ("尼好", "你号"), "谢谢": ("谢写", "xiexie"),
}
FILLERS = ("", "", "", "请问", "你好，", "麻烦问下", "那个", "hi ", "在吗，")
TAILS = ("", "", "", "？", "?", "。", "啊", "呀", "呢？", "～", " 🙏", "！！")


def chinese_number(n: int) -> str:
    """Small integers in Chinese numerals (1..99), as borrowers type them."""
    if n < 10:
        return CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else CN_DIGITS[tens]
    return head + "十" + (CN_DIGITS[ones] if ones else "")


def amount_text(rng: random.Random) -> str:
    """An amount in one of the ways people write it: 5万, 五万, 50000元, 5w, 1.5万, 50k."""
    wan = rng.choice((1, 2, 3, 5, 8, 10, 12, 15, 20, 30, 50, 80, 100, 150, 200))
    style = rng.randrange(7)
    if style == 0:
        return f"{wan}万"
    if style == 1 and wan < 100:
        return chinese_number(wan) + "万"
    if style == 2:
        return f"{wan * 10000}元"
    if style == 3:
        return f"{wan}w"
    if style == 4:
        return f"{wan + 0.5:g}万"
    if style == 5 and wan < 100:
        return f"{wan * 10}k"
    return f"{wan * 10000}"


def term_text(rng: random.Random) -> str:
    months = rng.choice((3, 6, 12, 18, 24, 36, 48, 60))
    style = rng.randrange(5)
    if style == 0:
        return f"{months}期"
    if style == 1:
        return f"{months}个月"
    if style == 2 and months % 12 == 0:
        return f"{months // 12}年"
    if style == 3 and months % 12 == 0:
        return chinese_number(months // 12) + "年"
    return chinese_number(months) + "期" if months < 100 else f"{months}期"


def typo(text: str, rng: random.Random) -> str:
    """One slip: a homophone, a doubled or dropped character, or stray spaces."""
    keys = [k for k in HOMOPHONES if k in text]
    roll = rng.random()
    if keys and roll < 0.5:
        key = rng.choice(keys)
        return text.replace(key, rng.choice(HOMOPHONES[key]), 1)
    hanzi = [i for i, ch in enumerate(text) if "\u4e00" <= ch <= "\u9fff"]
    if not hanzi:
        return text
    i = rng.choice(hanzi)
    if roll < 0.75:
        return text[: i + 1] + text[i] + text[i + 1:]
    if roll < 0.9 and len(hanzi) > 4:
        return text[:i] + text[i + 1:]
    return text[:i] + " " + text[i:]


@dataclass
class Style:
    """How one borrower writes: script and how sloppy (chosen once per conversation)."""

    traditional: bool
    typo_rate: float

    def render(self, text: str, rng: random.Random) -> str:
        out = text
        if rng.random() < self.typo_rate:
            out = typo(out, rng)
        if self.traditional:
            out = to_script(out, "traditional")
        return out


@dataclass
class Conversation:
    """One borrower's scripted turns. `handoff_turn` is the index that goes to a human."""

    kind: Kind
    turns: list[str]
    handoff_turn: int | None = None
    tags: list[str] = field(default_factory=list)


def _rate(rng: random.Random) -> list[str]:
    product = rng.choice(PRODUCTS)
    first = rng.choice((
        f"{product}利率多少", f"{product}的年化利率是多少", f"你们{product}利息怎么算",
        f"{product}日利率是多少", "现在贷款利率是多少", f"想了解一下{product}的利率",
        f"{product}一年利息多少", "利率高不高", f"{product}年化多少",
    ))
    turns = [rng.choice(FILLERS) + first + rng.choice(TAILS)]
    if rng.random() < 0.6:
        turns.append(rng.choice((
            f"如果借{amount_text(rng)}，{term_text(rng)}呢", f"借{amount_text(rng)}利息多少",
            f"那{rng.choice(PRODUCTS)}呢", f"{term_text(rng)}的话总利息多少",
        )))
    return turns


def _repayment(rng: random.Random) -> list[str]:
    amount, term, method = amount_text(rng), term_text(rng), rng.choice(METHODS)
    product = rng.choice(PRODUCTS + ("", "", ""))
    first = rng.choice((
        f"借{amount}分{term}{method}每月还多少", f"{product}{amount}{term}每个月要还多少钱",
        f"我想贷{amount}，{term}，{method}，月供多少", f"{amount}{term}{method}怎么还",
        f"帮我算一下{product}借{amount}分{term}还款计划", f"贷{amount}还{term}月供是多少",
        f"{method}借{amount}分{term}，利息一共多少",
    ))
    turns = [rng.choice(FILLERS) + first + rng.choice(TAILS)]
    for _ in range(rng.randrange(0, 3)):
        turns.append(rng.choice((
            f"那{term_text(rng)}呢", f"换成{rng.choice(METHODS)}呢", f"如果借{amount_text(rng)}呢",
            f"{term_text(rng)}", "提前还款要违约金吗",
            f"还了{rng.randrange(2, 10)}期后提前还清要多少",
            f"{rng.choice(METHODS)}和{rng.choice(METHODS)}哪个划算",
        )))
    return turns


def _progress(rng: random.Random) -> list[str]:
    app_id, phone, id6 = rng.choice(IDENTITIES)
    wrong = rng.random() < 0.15
    last4 = phone[-4:] if not wrong else f"{rng.randrange(10000):04d}"
    first = rng.choice((
        "我的贷款审核到哪了", "申请提交三天了怎么还没消息", "什么时候放款", "查一下我的申请进度",
        f"申请编号{app_id}进度怎么样", "审核通过了吗", "一直显示审批中是什么意思", "怎么还没到账啊",
    ))
    identity = rng.choice((
        f"申请编号{app_id}，手机尾号{last4}", f"{app_id} 尾号{last4}",
        f"编号是{app_id.lower()}，手机后四位{last4}", f"手机号{phone}，身份证后六位{id6}",
        f"{app_id}，身份证后六位{id6.lower()}",
    ))
    turns = [rng.choice(FILLERS) + first + rng.choice(TAILS), identity]
    if rng.random() < 0.4:
        turns.append(rng.choice(("还需要补什么资料", "大概还要多久", "好的谢谢", "下个月几号还款")))
    return turns


def _chitchat(rng: random.Random) -> list[str]:
    pool = (
        "你好", "您好", "在吗", "hello", "早上好", "你是机器人吗", "你是真人吗", "谢谢",
        "好的谢谢你", "明白了", "再见", "拜拜", "好的", "嗯嗯", "不用了", "你叫什么名字",
        "你们几点上班", "感谢帮忙",
    )
    return [rng.choice(FILLERS[:3]) + rng.choice(pool) + rng.choice(TAILS)
            for _ in range(rng.randrange(2, 4))]


def _handoff(rng: random.Random) -> list[str]:
    trigger = rng.choice((
        "转人工", "我要人工客服", "帮我转接真人", "你们催收天天打电话骚扰我家人，我要投诉",
        "我要投诉你们的服务", "我失业了这个月实在还不上了，能不能延期",
        "有人冒充你们客服让我转账，我是不是被骗了", "我想换绑一张还款银行卡",
        "能不能找个人工跟我说", "机器人听不懂，给我转人工",
    ))
    opener = rng.choice(("你好", "在吗", f"{rng.choice(PRODUCTS)}利率多少"))
    after = rng.choice((f"借{amount_text(rng)}分{term_text(rng)}每月还多少", "好的谢谢", "你好"))
    return [opener, trigger + rng.choice(TAILS), after]


BUILDERS: dict[Kind, Callable[[random.Random], list[str]]] = {
    "rate": _rate, "repayment": _repayment, "progress": _progress,
    "chitchat": _chitchat, "handoff": _handoff,
}


def conversation(rng: random.Random) -> Conversation:
    """One random conversation in a random borrower's style."""
    roll, acc = rng.random(), 0.0
    kind: Kind = MIX[-1][0]
    for name, share in MIX:
        acc += share
        if roll < acc:
            kind = name
            break
    style = Style(traditional=rng.random() < 0.2, typo_rate=rng.choice((0.0, 0.1, 0.3)))
    raw = BUILDERS[kind](rng)
    turns = [style.render(t, rng) for t in raw]
    tags = ["traditional"] if style.traditional else []
    return Conversation(kind, turns, handoff_turn=1 if kind == "handoff" else None, tags=tags)


def conversations(seed: int) -> Iterator[Conversation]:
    """An endless, reproducible stream (callers bound it by count or time)."""
    rng = random.Random(seed)
    while True:
        yield conversation(rng)
