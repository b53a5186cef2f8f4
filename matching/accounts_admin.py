"""The operator's account inputs and the transfer agent's controls, applied by the engine
(``matching.messages.AccountInput``).

Operator (the venue and its custodian): ``open_account`` (account, broker, eligibility,
country), ``close_account`` (only when empty), ``whitelist`` / ``unwhitelist`` (account,
symbol: the KYC permission of an ERC-3643 token), ``deposit`` / ``withdraw`` (account,
asset, amount: the cash token's mint and burn, or tokens in and out of custody; a
withdrawal takes only what is free, never a reservation or a frozen amount),
``set_compliance`` (symbol, compliance: an instrument's rules, ``matching.compliance_admin``).

Transfer agent, as ERC-3643 / T-REX defines its agent role (``Token.sol``:
``setAddressFrozen``, ``freezePartialTokens``, ``unfreezePartialTokens``,
``forcedTransfer``, ``recoveryAddress``, ``pause``): ``freeze`` (account, optionally one
symbol: its resting orders are cancelled with text FROZEN and it takes no new ones; with
an amount, that many tokens of the symbol are frozen instead and sells may reserve only
balance - reserved - frozen), ``unfreeze`` (the same, lifted), ``forced_transfer``
(account -> to_account, symbol, amount: the recipient must be whitelisted; taken from the
free balance first and then the frozen amount, as T-REX ``forcedTransfer`` unfreezes only
the shortfall; never from a reservation), ``recover`` (every balance, frozen amount,
freeze and permission of a lost account to an open one, whose resting orders are
cancelled first with text RECOVERED; the lost account is closed), ``pause`` /
``unpause`` of an instrument: the session's ``halt`` / ``resume`` (orders rest, nothing
trades, new orders MARKET_NOT_OPEN), so the operator's ``resume`` lifts a pause too.

``check`` runs every rule before anything is journaled (a refusal raises ``Rejection``
with its ``EngineReject`` code, nothing changes); ``apply`` then cannot fail, live or on
replay. Amounts are decimal strings in the asset's units (``"5000.25"`` USDC, ``"1.5"``
TB3M), converted exactly; a finer amount than the asset's smallest unit is refused.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from matching.compliance_admin import (
    COMPLIANCE_ACTION,
    apply_set_compliance,
    check_set_compliance,
)
from matching.errors import EngineCancel, EngineReject, Rejection
from matching.ledger import CASH, ELIGIBILITIES
from matching.messages import (
    ACCOUNT_ACTIONS,
    AGENT_ACTIONS,
    AccountBalances,
    AccountInput,
    Admin,
    AssetBalance,
    Balances,
)
from matching.transfers import TRANSFER_ACTIONS, ShardTransfers

__all__ = ["AccountsAdmin", "ACCOUNT_ACTIONS", "AGENT_ACTIONS"]

_FROZEN = EngineCancel.FROZEN.value
_RECOVERED = EngineCancel.RECOVERED.value
_BROKER = re.compile(r"[A-Za-z0-9_.-]{1,64}")       # == feeds.topics.NAME_PATTERN
# ISO 3166-1 alpha-2 or alpha-3 code, upper case (the format: the list is not checked).
_COUNTRY = re.compile(r"[A-Z]{2,3}")
_AMOUNT = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,18})?")
_INT63 = 2**63


def _no(code: EngineReject, text: str) -> Rejection:
    return Rejection(code.value, text)


class AccountsAdmin:
    """Checks and applies ``AccountInput``s against one engine's ledger, books, session."""

    def __init__(self, engine) -> None:
        self.engine = engine
        insts = list(engine.instruments.values())
        self.cash_places = insts[0].cash_decimals if insts else 6
        self.cash_names = {CASH, *(i.cash_token for i in insts)}
        # Cash moved between shards, by transfer id (matching.transfers).
        self.transfers = ShardTransfers()

    # ------------------------------------------------------------------ checks
    def check(self, m: AccountInput) -> None:
        """Every rule of ``m`` against the state now; a ``Rejection`` says which broke."""
        action = m.action
        if action in TRANSFER_ACTIONS:
            self._check_shard_transfer(m)
            return
        if action not in ACCOUNT_ACTIONS and action not in AGENT_ACTIONS:
            raise _no(EngineReject.INVALID_FIELD, f"unknown account action {action!r}")
        ledger = self.engine.ledger
        if action == "open_account":
            self._check_open(m)
            return
        if action == COMPLIANCE_ACTION:
            check_set_compliance(self.engine, m)
            return
        if action in ("pause", "unpause"):
            self._symbol(m.symbol)
            self.engine.session.check("halt" if action == "pause" else "resume", m.symbol)
            return
        self._account(m.account)
        if action == "close_account":
            if not ledger.is_empty(m.account):
                raise _no(EngineReject.ACCOUNT_NOT_EMPTY,
                          f"account {m.account} still holds, reserves or has frozen "
                          "something: withdraw it first")
        elif action in ("whitelist", "unwhitelist"):
            self._symbol(m.symbol)
        elif action in ("deposit", "withdraw"):
            asset, amount = self._asset_amount(m.asset, m.amount)
            if action == "withdraw":
                self._not_blocked(m.account, "" if asset == CASH else asset)
                self._covers(m.account, asset, amount, ledger.free(m.account, asset),
                             "free")
        elif action in ("freeze", "unfreeze"):
            self._check_freeze(m)
        elif action == "forced_transfer":
            self._check_transfer(m)
        else:                               # recover
            self._account(m.to_account)
            if m.to_account == m.account:
                raise _no(EngineReject.INVALID_FIELD, "recover needs another account")

    def _check_open(self, m: AccountInput) -> None:
        if not 0 < m.account < _INT63:
            raise _no(EngineReject.INVALID_FIELD, f"account id must be a positive 63-bit "
                      f"number, got {m.account}")
        if m.account in self.engine.ledger.accounts:
            raise _no(EngineReject.DUPLICATE_ACCOUNT, f"account {m.account} is open already")
        if not _BROKER.fullmatch(m.broker):
            raise _no(EngineReject.INVALID_FIELD, "broker must be 1-64 of A-Z a-z 0-9 _ . -")
        if m.eligibility not in ELIGIBILITIES:
            raise _no(EngineReject.INVALID_FIELD,
                      f"eligibility must be one of {', '.join(ELIGIBILITIES)}")
        if not _COUNTRY.fullmatch(m.country):
            raise _no(EngineReject.INVALID_FIELD, "country must be an ISO 3166-1 alpha-2 or "
                      f"alpha-3 code like DE or DEU, got {m.country!r}")

    def _check_freeze(self, m: AccountInput) -> None:
        ledger = self.engine.ledger
        if m.symbol:
            self._symbol(m.symbol)
        if m.amount:
            if not m.symbol:
                raise _no(EngineReject.INVALID_FIELD, "a partial freeze names its token")
            _, lots = self._asset_amount(m.symbol, m.amount)
            if m.action == "freeze":
                self._covers(m.account, m.symbol, lots, ledger.free(m.account, m.symbol),
                             "free")
            elif lots > ledger.frozen_of(m.account, m.symbol):
                raise _no(EngineReject.NOT_FROZEN, f"account {m.account} has "
                          f"{self._units(m.symbol, ledger.frozen_of(m.account, m.symbol))}"
                          f" {m.symbol} frozen, not {m.amount}")
        elif m.action == "unfreeze" and (m.account, m.symbol) not in ledger.blocked:
            raise _no(EngineReject.NOT_FROZEN, f"account {m.account} is not frozen"
                      f"{f' for {m.symbol}' if m.symbol else ''}")

    def _check_transfer(self, m: AccountInput) -> None:
        ledger = self.engine.ledger
        self._account(m.to_account)
        if m.to_account == m.account:
            raise _no(EngineReject.INVALID_FIELD, "a forced transfer needs another account")
        self._symbol(m.symbol)
        _, lots = self._asset_amount(m.symbol, m.amount)
        if not ledger.may_trade(m.to_account, m.symbol):
            raise _no(EngineReject.NOT_WHITELISTED, f"account {m.to_account} is not "
                      f"whitelisted for {m.symbol}: it may not receive it")
        movable = ledger.balance(m.account, m.symbol) - ledger.reserved(m.account, m.symbol)
        self._covers(m.account, m.symbol, lots, movable, "unreserved")

    def _check_shard_transfer(self, m: AccountInput) -> None:
        self._account(m.account)
        asset, units = self._asset_amount(m.asset or CASH, m.amount)
        if asset != CASH:
            raise _no(EngineReject.INVALID_TRANSFER, "only cash moves between shards")
        if m.action == "transfer_out":
            self._not_blocked(m.account, "")
        self.transfers.check(m, units, self.engine.ledger.free(m.account, CASH))

    def cash_amount(self, units: int) -> str:
        """``units`` of cash as the wire's decimal string (``"5000.250000"``)."""
        return self._units(CASH, units)

    def _account(self, account: int) -> None:
        if account not in self.engine.ledger.accounts:
            raise _no(EngineReject.UNKNOWN_ACCOUNT, f"no open account {account}")

    def _symbol(self, symbol: str) -> None:
        if symbol not in self.engine.instruments:
            raise _no(EngineReject.UNKNOWN_SYMBOL, f"unknown instrument {symbol!r}")

    def _not_blocked(self, account: int, symbol: str) -> None:
        blocked = self.engine.ledger.blocked
        if (account, "") in blocked:
            raise _no(EngineReject.ACCOUNT_FROZEN, f"account {account} is frozen")
        if symbol and (account, symbol) in blocked:
            raise _no(EngineReject.ACCOUNT_FROZEN, f"account {account} is frozen for {symbol}")

    def _covers(self, account: int, asset: str, need: int, have: int, what: str) -> None:
        if need > have:
            code = EngineReject.INSUFFICIENT_FUNDS if asset == CASH \
                else EngineReject.INSUFFICIENT_TOKENS
            unit = self._unit(asset)
            raise _no(code, f"account {account} needs {self._units(asset, need)} {unit}, "
                      f"has {self._units(asset, have)} {unit} {what}")

    def _asset_amount(self, asset: str, amount: str) -> tuple[str, int]:
        """``(ledger asset, integer units)`` of a wire amount: positive, exact."""
        if asset in self.cash_names:
            key, places = CASH, self.cash_places
        elif asset in self.engine.instruments:
            key, places = asset, self.engine.instruments[asset].token_decimals
        else:
            raise _no(EngineReject.UNKNOWN_SYMBOL, f"no asset {asset!r}: the cash token "
                      f"({'/'.join(sorted(self.cash_names))}) or a listed symbol")
        if not _AMOUNT.fullmatch(amount):
            raise _no(EngineReject.INVALID_AMOUNT, f"amount must be a plain positive decimal "
                      f"like 1000.50, got {amount!r}")
        try:
            scaled = Decimal(amount).scaleb(places)
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            raise _no(EngineReject.INVALID_AMOUNT, f"amount {amount!r}") from None
        if scaled != scaled.to_integral_value():
            raise _no(EngineReject.INVALID_AMOUNT, f"amount {amount} is finer than "
                      f"{asset}'s smallest unit (10^-{places})")
        units = int(scaled)
        if units <= 0:
            raise _no(EngineReject.INVALID_AMOUNT, f"amount must be positive, got {amount}")
        if units >= _INT63:
            raise _no(EngineReject.INVALID_AMOUNT, f"amount {amount} is beyond 63 bits")
        return key, units

    def _unit(self, asset: str) -> str:
        if asset != CASH:
            return asset
        insts = list(self.engine.instruments.values())
        return insts[0].cash_token if insts else CASH

    def _units(self, asset: str, units: int) -> str:
        places = self.cash_places if asset == CASH \
            else self.engine.instruments[asset].token_decimals
        if places <= 0:
            return str(units)
        digits = str(abs(units)).rjust(places + 1, "0")
        return f"{'-' if units < 0 else ''}{digits[:-places]}.{digits[-places:]}"

    # ------------------------------------------------------------------ apply
    def apply(self, m: AccountInput) -> None:
        """Do a checked input (the engine's ``_apply``)."""
        engine = self.engine
        ledger = engine.ledger
        action = m.action
        if action in TRANSFER_ACTIONS:
            self.transfers.apply(m, self._asset_amount(m.asset or CASH, m.amount)[1], ledger)
        elif action == "open_account":
            ledger.open_account(m.account, m.broker, m.eligibility, m.country)
        elif action == COMPLIANCE_ACTION:
            apply_set_compliance(engine, m)
        elif action == "close_account":
            ledger.close_account(m.account)
        elif action == "whitelist":
            ledger.whitelist(m.account, m.symbol)
        elif action == "unwhitelist":
            ledger.unwhitelist(m.account, m.symbol)
        elif action in ("deposit", "withdraw"):
            asset, units = self._asset_amount(m.asset, m.amount)
            (ledger.deposit if action == "deposit" else ledger.withdraw)(m.account, asset,
                                                                         units)
        elif action in ("freeze", "unfreeze"):
            self._apply_freeze(m)
        elif action == "forced_transfer":
            _, lots = self._asset_amount(m.symbol, m.amount)
            ledger.forced_transfer(m.account, m.to_account, m.symbol, lots)
        elif action == "recover":
            self._cancel_orders(m.account, "", _RECOVERED)
            ledger.recover(m.account, m.to_account)
        elif action in ("pause", "unpause"):
            # The session action itself, so a pause does all a halt does (and an unpause
            # all a resume does: the uncross of a call, matching/auction.py).
            engine._admin(Admin("halt" if action == "pause" else "resume", m.symbol,
                                m.reason or f"{action}d by the transfer agent"))
        else:  # pragma: no cover - check() refused it
            raise ValueError(f"unknown account action {action!r}")

    def _apply_freeze(self, m: AccountInput) -> None:
        ledger = self.engine.ledger
        if m.amount:
            _, lots = self._asset_amount(m.symbol, m.amount)
            (ledger.freeze if m.action == "freeze" else ledger.unfreeze)(m.account, m.symbol,
                                                                         lots)
        elif m.action == "freeze":
            ledger.block(m.account, m.symbol)
            self._cancel_orders(m.account, m.symbol, _FROZEN)
        else:
            ledger.unblock(m.account, m.symbol)

    def _cancel_orders(self, account: int, symbol: str, text: str) -> None:
        """Cancel every live order of ``account`` (on ``symbol``; "" every one), by id:
        its broker gets a canceled report saying ``text``."""
        engine = self.engine
        for oid in sorted(o.order_id for o in engine.orders.values()
                          if o.account == account and (not symbol or o.symbol == symbol)):
            o = engine.orders.get(oid)
            if o is None:
                continue
            book = engine.books[o.symbol]
            book.cancel(oid)
            engine.executions.handle(o.symbol, book.take_event_rows(), text)

    # ------------------------------------------------------------------ queries
    def balances(self, broker: str, request_id: str, account: int | None) -> Balances:
        """``broker``'s accounts (or the one it names, if its own) as of the engine's seq:
        every asset's balance, reservation, frozen amount and what is available."""
        engine = self.engine
        ledger = engine.ledger
        if account is not None and ledger.broker_of(account) != broker:
            return Balances(request_id, engine.seq, [], f"{EngineReject.UNKNOWN_ACCOUNT.value}"
                            f": account {account} does not belong to {broker}")
        mine = [account] if account is not None else sorted(
            a for a, acct in ledger.accounts.items() if acct.broker == broker)
        wanted = set(mine)
        assets: dict[int, set[str]] = {a: set() for a in mine}
        for table in (ledger.balances, ledger.held, ledger.frozen):
            for a, asset in table:
                if a in wanted:
                    assets[a].add(asset)
        out = []
        for a in mine:
            rows = [AssetBalance(self._unit(asset),
                                 *(self._units(asset, v) for v in (
                                     ledger.balance(a, asset), ledger.reserved(a, asset),
                                     ledger.frozen_of(a, asset), ledger.free(a, asset))))
                    for asset in sorted(assets[a])]
            frozen = sorted("*" if s == "" else s for acct, s in ledger.blocked if acct == a)
            out.append(AccountBalances(a, rows, frozen))
        return Balances(request_id, engine.seq, out)
