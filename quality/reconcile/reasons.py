"""Why a receipt was not posted: a code for filters and a sentence finance can act on.

Each sentence says what the hub saw and what to do (accept the proposal, reassign the
receipt to a customer and items, or reject it), in Chinese first, then English.
"""
from __future__ import annotations

#: code → (what happened, what finance does)
REASONS: dict[str, tuple[str, str]] = {
    "unknown_payer": ("付款方未识别：没有客户用过此银行账号，名称也对不上 (payer unknown: no customer has this "
                      "bank account or name)", "reassign 指定客户"),
    "ambiguous_payer": ("付款方对应多个客户 (payer name or account fits several customers)", "reassign 指定客户"),
    "payer_conflict": ("付款账号与户名指向不同客户 (the account and the name point to different customers)",
                       "accept or reassign"),
    "reference_conflict": ("摘要中的单号属于另一客户 (the memo names a document of another customer than the payer)",
                           "accept if one pays for the other, else reassign"),
    "reference_ambiguous": ("摘要中的单号属于多个客户 (the memo names documents of several customers)", "reassign"),
    "reference_settled": ("摘要中的单据已结清，可能重复付款 (the documents in the memo are already settled: "
                          "a double payment?)", "accept as credit, or reassign"),
    "reference_amount_mismatch": ("金额与摘要中的单据对不上 (the amount fits no combination of the documents in "
                                  "the memo)", "accept the proposal or reassign items"),
    "ambiguous_amount": ("该客户有多笔同额未结单据 (several open items of this customer have this amount)",
                         "reassign to the right item"),
    "ambiguous_combination": ("多种单据组合都等于此金额 (several combinations of open items add up to this amount)",
                              "reassign to the right items"),
    "possible_partial": ("金额小于未结单据，可能是部分付款 (less than the open item: a partial payment?)",
                         "accept to post it as partial"),
    "possible_overpayment": ("金额大于全部未结单据，可能多付 (more than everything open: an over-payment?)",
                             "accept to keep the excess as credit"),
    "no_open_items": ("该客户没有未结单据，可能是预收款 (the customer has nothing open: a prepayment?)",
                      "accept to keep it as credit"),
    "outside_window": ("金额对得上的单据不在日期窗口内 (the only item with this amount is outside the date window)",
                       "accept if it is that item"),
    "amount_mismatch": ("金额与该客户的未结单据都对不上 (the amount fits no open item or combination of this "
                        "customer)", "reassign items, or accept as credit"),
    "too_many_items": ("该客户未结单据太多，无法证明组合唯一 (too many open items to prove a combination unique)",
                       "reassign items"),
    "needs_review": ("有匹配方案，但把握不足以自动入账 (a match the hub is not sure enough of to post)",
                     "accept the proposal or reassign"),
    "not_positive": ("金额为零或负数，不是收款（退款或冲正？）(a zero or negative amount is not a receipt: a refund or "
                     "a reversal?)", "reject it; enter a refund in U8 itself"),
    "possible_duplicate": ("与已录入 U8 的收款单可能重复 (looks like a 收款单 already entered in U8)",
                           "reject if it is the same money"),
    "rejected_by_finance": ("财务已驳回，等待重新指定 (rejected by finance; waits to be reassigned)", "reassign"),
    "decision_stale": ("财务确认的方案已不适用：单据已被其他收款核销 (the accepted proposal no longer fits: an item "
                       "was settled meanwhile)", "accept the new proposal or reassign"),
}


def text(code: str, detail: str = "") -> str:
    """The sentence for ``code``, with the specifics of this receipt and what to do."""
    what, do = REASONS.get(code, (code, "look at the receipt"))
    return f"{what}{'; ' + detail if detail else ''} → {do}"
