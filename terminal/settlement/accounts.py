"""The last layer: the employee personal account, a family member's bound account, then cash."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from terminal.domain import Bill, Person
from terminal.settlement.context import SettlementContext
from terminal.settlement.layers import account_layer, mutual_aid_layer
from terminal.settlement.money import ZERO, fen
from terminal.settlement.policy import PolicyBundle, Scheme
from terminal.settlement.run import Run


class AccountPay(NamedTuple):
    """How the personal share is paid."""

    acct_pay: Decimal  # both accounts, so that psn_part_amt = acct_pay + psn_cash_pay
    acct_mulaid_pay: Decimal  # how much of acct_pay was the family's
    psn_cash_pay: Decimal
    balc: Decimal  # the own account's balance after


def pay_accounts(
    run: Run,
    bill: Bill,
    person: Person,
    scheme: Scheme,
    policy: PolicyBundle,
    context: SettlementContext,
    psn_part_amt: Decimal,
    fulamt: Decimal,
    overlmt: Decimal,
) -> AccountPay:
    """The own account pays what it may, a family member's account (个人账户共济) next, cash the rest."""
    account = scheme.personal_account
    payable = psn_part_amt
    if account is not None and not account.pays_fully_selfpaid:
        payable = max(ZERO, psn_part_amt - fulamt - overlmt)
    own_pay = account_layer(payable, person.acct_balc, bill.acct_used_flag and account is not None)
    acct_mulaid_pay = _mutual_aid(bill, policy, context, psn_part_amt, fulamt + overlmt, own_pay)
    acct_pay = own_pay + acct_mulaid_pay if acct_mulaid_pay else own_pay
    psn_cash_pay = psn_part_amt - acct_pay
    balc = person.acct_balc - own_pay
    family = ""
    if acct_mulaid_pay:
        left = context.benefits.mulaid_balc - acct_mulaid_pay
        family = (
            f"家庭共济账户支付 {acct_mulaid_pay} "
            f"(共济余额 {fen(context.benefits.mulaid_balc)} → {fen(left)}), "
        )
    if account is not None:
        run.note(
            "account",
            f"个人负担 {psn_part_amt}: 个人账户支付 {own_pay} "
            f"(余额 {fen(person.acct_balc)} → {fen(balc)}), {family}"
            f"现金 {psn_cash_pay}" + ("" if bill.acct_used_flag else " (患者选择不使用个人账户)"),
        )
    else:
        run.note("account", f"个人负担 {psn_part_amt}: {family}现金 {psn_cash_pay}")
    return AccountPay(acct_pay, acct_mulaid_pay, psn_cash_pay, balc)


def _mutual_aid(
    bill: Bill,
    policy: PolicyBundle,
    context: SettlementContext,
    psn_part_amt: Decimal,
    outside_catalogue: Decimal,
    own_paid: Decimal,
) -> Decimal:
    """What a family member's bound account pays of the personal share after the own account."""
    rule = policy.account_mutual_aid
    balance = context.benefits.mulaid_balc
    if rule is None or balance <= 0 or bill.med_type not in rule.med_types:
        return ZERO
    payable = psn_part_amt if rule.pays_fully_selfpaid else max(ZERO, psn_part_amt - outside_catalogue)
    return mutual_aid_layer(payable, own_paid, balance, bill.acct_used_flag)
