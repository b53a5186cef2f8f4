"""Custody ledger: token and cash balances, order reservations, delivery-versus-payment.

Integers only (floats raise ``TypeError``): tokens in lots, cash in the cash token's minor
units. Every balance is keyed by ``(account, asset)``; the cash leg is the asset ``CASH``
(a stablecoin) and a token's asset is its symbol, so more cash assets can exist later.

An order reserves what it could need (cash for a buy, tokens for a sell) under its order
id (the *ref*); ``available = balance - reserved``. A trade moves both legs in one step,
taking from those reservations, or moves nothing at all. Invariants kept by every
operation: ``0 <= reserved <= balance`` per (account, asset), each ref holds a positive
amount of one (account, asset), and trading conserves the total of every asset.

A refused operation raises a ``LedgerError`` subclass and changes nothing.

File format for ``load`` (TOML; unknown keys are refused so a typo cannot load nothing)::

    [[account]]
    id = 1001                       # positive integer
    broker = "alpha"
    eligibility = "retail"          # or "institutional"
    country = "DE"                  # ISO 3166-1 alpha-2 or alpha-3 (optional)
    cash = 5000000000               # minor units of CASH (optional, default 0)
    whitelist = ["TB3M", "GOLD"]    # symbols this account may trade (optional)
    tokens = { TB3M = 200000 }      # lots per symbol (optional)
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from os import PathLike
from typing import NamedTuple

__all__ = ["Ledger", "Account", "LedgerError", "InsufficientCash", "InsufficientTokens",
           "UnknownAccount", "UnknownReservation", "CASH", "ELIGIBILITIES", "Delivery"]

#: The asset key of the cash leg (a stablecoin); token balances are keyed by symbol.
CASH = "CASH"
ELIGIBILITIES = ("retail", "institutional")
_ACCOUNT_KEYS = {"id", "broker", "eligibility", "country", "cash", "whitelist", "tokens"}


class LedgerError(Exception):
    """A ledger operation refused; nothing was changed."""


class UnknownAccount(LedgerError):
    """The account was never opened."""


class UnknownReservation(LedgerError):
    """A settlement named a ref that holds nothing, or holds another account's/asset's."""


class InsufficientCash(LedgerError):
    """The account's available (or reserved, for a settlement) cash does not cover it."""

    def __init__(self, account: int, needed: int, available: int, asset: str = CASH):
        super().__init__(
            f"account {account} needs {needed} {asset} units, has {available} available")
        self.account, self.asset = account, asset
        self.needed, self.available = needed, available


class InsufficientTokens(LedgerError):
    """The account's available (or reserved, for a settlement) lots do not cover it."""

    def __init__(self, account: int, symbol: str, needed: int, available: int):
        super().__init__(f"account {account} needs {needed} lots of {symbol}, "
                         f"has {available} available")
        self.account, self.symbol = account, symbol
        self.needed, self.available = needed, available


class Delivery(NamedTuple):
    """One allotment's issue (``Ledger.mint``): ``lots`` to ``account``, paid with
    ``cash`` out of its reservation ``ref``."""
    account: int
    lots: int
    ref: int
    cash: int


@dataclass
class Account:
    account_id: int
    broker: str
    eligibility: str
    country: str = ""           # ISO 3166-1 alpha-2 or alpha-3 ("": not given)


def _int(value, what: str) -> int:
    # bool is an int subclass and float would silently round money: both are refused.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int (lots or cash minor units), got {value!r}")
    return value


def _amount(value, what: str) -> int:
    if _int(value, what) < 0:
        raise LedgerError(f"{what} must not be negative, got {value}")
    return value


def _asset(value, what: str = "asset") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {value!r}")
    if not value:
        raise LedgerError(f"{what} must not be empty")
    return value


class Ledger:
    """Balances per (account, asset) and reservations per order reference."""

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}
        self.balances: dict[tuple[int, str], int] = {}
        self.held: dict[tuple[int, str], int] = {}               # sum of reservations
        self.reservations: dict[int, tuple[int, str, int]] = {}  # ref -> account, asset, amount
        self.whitelisted: set[tuple[int, str]] = set()
        # The transfer agent's controls (ERC-3643 freezePartialTokens / setAddressFrozen):
        # lots frozen per (account, asset), kept with reserved + frozen <= balance; and
        # (account, symbol) pairs frozen whole, symbol "" for the whole account.
        self.frozen: dict[tuple[int, str], int] = {}
        self.blocked: set[tuple[int, str]] = set()

    # ------------------------------------------------------------------ accounts
    def open_account(self, account_id: int, broker: str, eligibility: str = "retail",
                     country: str = "") -> None:
        """Open an empty account owned by ``broker``."""
        if _int(account_id, "account id") <= 0:
            raise LedgerError(f"account id must be positive, got {account_id}")
        if account_id in self.accounts:
            raise LedgerError(f"account {account_id} already exists")
        if not isinstance(broker, str) or not broker:
            raise LedgerError(f"broker must be a non-empty str, got {broker!r}")
        if eligibility not in ELIGIBILITIES:
            raise LedgerError(f"eligibility must be one of {ELIGIBILITIES}, got {eligibility!r}")
        self.accounts[account_id] = Account(account_id, broker, eligibility, country)

    def is_empty(self, account_id: int) -> bool:
        """No balance, reservation or freeze of any asset: the account may close."""
        return not any(k[0] == account_id for k, v in self.balances.items() if v) \
            and not any(k[0] == account_id for k in self.held) \
            and not any(k[0] == account_id for k in self.frozen) \
            and not any(k[0] == account_id for k in self.blocked)

    def close_account(self, account_id: int) -> None:
        """Close an empty account (its KYC permissions go with it)."""
        self._account(account_id)
        if not self.is_empty(account_id):
            raise LedgerError(f"account {account_id} is not empty")
        del self.accounts[account_id]
        self.whitelisted = {w for w in self.whitelisted if w[0] != account_id}

    def _account(self, account_id: int) -> Account:
        acct = self.accounts.get(_int(account_id, "account id"))
        if acct is None:
            raise UnknownAccount(f"unknown account {account_id}")
        return acct

    def broker_of(self, account_id: int) -> str | None:
        acct = self.accounts.get(account_id)
        return acct.broker if acct else None

    def eligibility_of(self, account_id: int) -> str | None:
        acct = self.accounts.get(account_id)
        return acct.eligibility if acct else None

    def whitelist(self, account_id: int, symbol: str) -> None:
        """KYC done for this instrument: the permissioned-token (ERC-3643-style) rule."""
        self._account(account_id)
        self.whitelisted.add((account_id, _asset(symbol, "symbol")))

    def unwhitelist(self, account_id: int, symbol: str) -> None:
        """Withdraw the permission (existing balances stay; new orders are the engine's call)."""
        self.whitelisted.discard((account_id, symbol))

    def may_trade(self, account_id: int, symbol: str) -> bool:
        return (account_id, symbol) in self.whitelisted

    # ------------------------------------------------------------------ balances
    def deposit(self, account_id: int, asset: str, amount: int) -> None:
        """Credit cash (asset CASH) or tokens (asset = symbol) from outside the venue."""
        self._account(account_id)
        _asset(asset)
        _amount(amount, "deposit")
        key = (account_id, asset)
        self.balances[key] = self.balances.get(key, 0) + amount

    def withdraw(self, account_id: int, asset: str, amount: int) -> None:
        """Debit cash or tokens to outside the venue, out of what is free: never a
        reservation, never a frozen amount (InsufficientCash / InsufficientTokens)."""
        self._account(account_id)
        _asset(asset)
        _amount(amount, "withdrawal")
        free = self.free(account_id, asset)
        if amount > free:
            if asset == CASH:
                raise InsufficientCash(account_id, amount, free, asset)
            raise InsufficientTokens(account_id, asset, amount, free)
        self._debit((account_id, asset), amount)

    def _debit(self, key: tuple[int, str], amount: int) -> None:
        left = self.balances.get(key, 0) - amount
        if left:
            self.balances[key] = left
        else:
            self.balances.pop(key, None)

    def free(self, account_id: int, asset: str) -> int:
        """What an order may reserve or a withdrawal take: balance - reserved - frozen."""
        key = (account_id, asset)
        return self.balances.get(key, 0) - self.held.get(key, 0) - self.frozen.get(key, 0)

    def frozen_of(self, account_id: int, asset: str) -> int:
        return self.frozen.get((account_id, asset), 0)

    # ------------------------------------------------------------------ transfer agent
    def freeze(self, account_id: int, asset: str, amount: int) -> None:
        """Freeze ``amount`` more of what is free (ERC-3643 ``freezePartialTokens``)."""
        self._account(account_id)
        _amount(amount, "freeze")
        free = self.free(account_id, asset)
        if amount > free:
            raise InsufficientTokens(account_id, asset, amount, free)
        if amount:
            key = (account_id, asset)
            self.frozen[key] = self.frozen.get(key, 0) + amount

    def unfreeze(self, account_id: int, asset: str, amount: int) -> None:
        """Release ``amount`` of the frozen amount (ERC-3643 ``unfreezePartialTokens``)."""
        self._account(account_id)
        _amount(amount, "unfreeze")
        key = (account_id, asset)
        held = self.frozen.get(key, 0)
        if amount > held:
            raise LedgerError(f"account {account_id} has {held} of {asset} frozen, "
                              f"cannot unfreeze {amount}")
        if held == amount:
            self.frozen.pop(key, None)
        elif amount:
            self.frozen[key] = held - amount

    def block(self, account_id: int, symbol: str = "") -> None:
        """Freeze the account whole (``symbol`` "") or its dealings in one token."""
        self._account(account_id)
        self.blocked.add((account_id, symbol))

    def unblock(self, account_id: int, symbol: str = "") -> None:
        self.blocked.discard((account_id, symbol))

    def is_blocked(self, account_id: int, symbol: str) -> bool:
        """Frozen whole, or for ``symbol``: it may place no order on it."""
        blocked = self.blocked
        return bool(blocked) and ((account_id, "") in blocked or (account_id, symbol) in blocked)

    def forced_transfer(self, source: int, target: int, asset: str, amount: int) -> None:
        """Move ``amount`` of ``asset`` from ``source`` to ``target`` on the agent's word:
        out of the free balance first, then out of the frozen amount, never out of a
        reservation (ERC-3643 ``forcedTransfer``: it unfreezes the shortfall)."""
        self._account(source)
        self._account(target)
        _amount(amount, "transfer")
        key = (source, asset)
        movable = self.balances.get(key, 0) - self.held.get(key, 0)
        if amount > movable:
            if asset == CASH:
                raise InsufficientCash(source, amount, movable, asset)
            raise InsufficientTokens(source, asset, amount, movable)
        shortfall = amount - self.free(source, asset)
        if shortfall > 0:
            self.unfreeze(source, asset, shortfall)
        self._debit(key, amount)
        to = (target, asset)
        self.balances[to] = self.balances.get(to, 0) + amount

    def recover(self, lost: int, new: int) -> None:
        """Move everything of ``lost`` (no reservation left) to ``new`` with its frozen
        amounts, freezes and KYC permissions, then close ``lost`` (ERC-3643
        ``recoveryAddress``)."""
        self._account(lost)
        self._account(new)
        if lost == new:
            raise LedgerError("an account cannot be recovered into itself")
        if any(k[0] == lost for k in self.held):
            raise LedgerError(f"account {lost} still has reservations")
        for table in (self.balances, self.frozen):
            for (acct, asset) in sorted(k for k in table if k[0] == lost):
                v = table.pop((acct, asset))
                table[(new, asset)] = table.get((new, asset), 0) + v
        for acct, symbol in sorted(k for k in self.blocked if k[0] == lost):
            self.blocked.discard((acct, symbol))
            self.blocked.add((new, symbol))
        for _, symbol in sorted(k for k in self.whitelisted if k[0] == lost):
            self.whitelisted.add((new, symbol))
        self.close_account(lost)

    def balance(self, account_id: int, asset: str) -> int:
        return self.balances.get((account_id, asset), 0)

    def reserved(self, account_id: int, asset: str) -> int:
        return self.held.get((account_id, asset), 0)

    def available(self, account_id: int, asset: str) -> int:
        return self.balance(account_id, asset) - self.reserved(account_id, asset)

    def total(self, asset: str) -> int:
        """Sum of one asset over every account: trading must conserve it."""
        return sum(v for (_, a), v in self.balances.items() if a == asset)

    def totals(self) -> dict[str, int]:
        """Sum of every asset over every account, by asset name."""
        out: dict[str, int] = {}
        for (_, a), v in self.balances.items():
            out[a] = out.get(a, 0) + v
        return dict(sorted(out.items()))

    def holders(self, symbol: str) -> dict[int, int]:
        """Accounts holding a non-zero balance of ``symbol``, by account id."""
        return {acct: v for (acct, a), v in sorted(self.balances.items()) if a == symbol and v}

    # ------------------------------------------------------------------ reservations
    def reserve_cash(self, account_id: int, amount: int, ref: int, *, asset: str = CASH) -> None:
        """Hold ``amount`` cash for order ``ref``; ``InsufficientCash`` if not available."""
        self.hold(account_id, asset, amount, ref, True)

    def reserve_tokens(self, account_id: int, symbol: str, lots: int, ref: int) -> None:
        """Hold ``lots`` of ``symbol`` for order ``ref``; ``InsufficientTokens`` if short."""
        self.hold(account_id, _asset(symbol, "symbol"), lots, ref, False)

    def hold(self, account_id: int, asset: str, amount: int, ref: int, is_cash: bool) -> None:
        """Reserve ``amount`` of ``asset`` for ``ref``: reserve_cash / reserve_tokens with
        every argument positional (the engine's per-order C call); ``is_cash`` picks which
        error a shortfall raises."""
        # The checks of _account/_asset/_amount/_int, inlined for the exact types (the
        # engine's case); anything else goes through the helpers, which raise as before.
        if type(account_id) is not int:
            _int(account_id, "account id")
        if account_id not in self.accounts:
            raise UnknownAccount(f"unknown account {account_id}")
        if type(asset) is not str or not asset:
            _asset(asset)
        if type(amount) is not int or amount < 0:
            _amount(amount, "reservation")
        if type(ref) is not int:
            _int(ref, "reference")
        reservations = self.reservations
        prior = reservations.get(ref)
        if prior is not None and (prior[0] != account_id or prior[1] != asset):
            raise LedgerError(f"reference {ref} already holds {prior[1]} of account {prior[0]}")
        key = (account_id, asset)
        held = self.held.get(key, 0)
        free = self.balances.get(key, 0) - held
        if self.frozen:
            free -= self.frozen.get(key, 0)
        if amount > free:
            if is_cash:
                raise InsufficientCash(account_id, amount, free, asset)
            raise InsufficientTokens(account_id, asset, amount, free)
        if amount == 0:
            return              # a ref only exists while it holds something
        self.held[key] = held + amount
        reservations[ref] = (account_id, asset, (prior[2] if prior is not None else 0) + amount)

    def reservation(self, ref: int) -> int:
        """What ``ref`` still holds (0 if nothing)."""
        r = self.reservations.get(ref)
        return r[2] if r else 0

    def release(self, ref: int, amount: int | None = None) -> int:
        """Give back ``amount`` (all if None) of a reservation; returns what was released."""
        if type(ref) is not int:
            _int(ref, "reference")
        r = self.reservations.get(ref)
        held = r[2] if r is not None else 0
        if amount is None:
            amount = held
        elif type(amount) is not int:
            _int(amount, "amount")
        if not 0 <= amount <= held:
            raise LedgerError(f"cannot release {amount} of reference {ref} holding {held}")
        if amount:
            self._take(ref, amount)
        return amount

    def _take(self, ref: int, amount: int) -> None:
        account_id, asset, held = self.reservations[ref]
        key = (account_id, asset)
        total = self.held[key]
        if total == amount:
            del self.held[key]
        else:
            self.held[key] = total - amount
        if held == amount:
            del self.reservations[ref]
        else:
            self.reservations[ref] = (account_id, asset, held - amount)

    # ------------------------------------------------------------------ settlement
    def settle_trade(self, buyer: int, seller: int, symbol: str, lots: int, cash_amount: int,
                     buyer_ref: int, seller_ref: int, fee_buyer: int = 0, fee_seller: int = 0,
                     fee_account: int | None = None, *, cash_asset: str = CASH) -> None:
        """Delivery versus payment: tokens seller -> buyer and cash buyer -> seller at once.

        The buyer pays ``cash_amount + fee_buyer`` out of its reservation ``buyer_ref`` (so a
        buy order must reserve its fees too); the seller delivers ``lots`` out of
        ``seller_ref`` and receives ``cash_amount - fee_seller``; ``fee_account`` receives
        both fees. What the refs still hold afterwards stays reserved. Every check comes
        first; if one fails nothing moves.
        """
        self.settle(buyer, seller, symbol, lots, cash_amount, buyer_ref, seller_ref,
                    fee_buyer, fee_seller, fee_account, cash_asset)

    def settle(self, buyer: int, seller: int, symbol: str, lots: int, cash_amount: int,
                buyer_ref: int, seller_ref: int, fee_buyer: int, fee_seller: int,
                fee_account: int | None, cash_asset: str) -> None:
        """settle_trade with every argument positional (the engine's per-fill C call)."""
        # The helpers' checks, skipped only for the exact types they accept (inlined: this
        # runs once per fill); any other value goes through them and raises as before.
        if type(buyer) is not int:
            _int(buyer, "buyer")
        if type(seller) is not int:
            _int(seller, "seller")
        if type(symbol) is not str or not symbol:
            _asset(symbol, "symbol")
        if type(cash_asset) is not str or not cash_asset:
            _asset(cash_asset, "cash asset")
        if type(buyer_ref) is not int:
            _int(buyer_ref, "buyer reference")
        if type(seller_ref) is not int:
            _int(seller_ref, "seller reference")
        if type(lots) is not int:
            _int(lots, "lots")
        if lots <= 0:
            raise LedgerError(f"lots must be positive, got {lots}")
        if type(cash_amount) is not int or cash_amount < 0:
            _amount(cash_amount, "cash amount")
        if type(fee_buyer) is not int or fee_buyer < 0:
            _amount(fee_buyer, "buyer fee")
        if type(fee_seller) is not int or fee_seller < 0:
            _amount(fee_seller, "seller fee")
        if symbol == cash_asset:
            raise LedgerError(f"the token leg and the cash leg are both {symbol}")
        if buyer_ref == seller_ref:
            raise LedgerError(f"buyer and seller share the reference {buyer_ref}")
        fees = fee_buyer + fee_seller
        if fees and (fee_account is None or fee_account not in self.accounts):
            raise UnknownAccount(f"fees need an open fee account, got {fee_account}")
        if fee_seller > cash_amount:
            raise LedgerError(f"seller fee {fee_seller} exceeds the cash leg {cash_amount}")
        pay = cash_amount + fee_buyer
        b_res, s_res = self.reservations.get(buyer_ref), self.reservations.get(seller_ref)
        if b_res is None or b_res[0] != buyer or b_res[1] != cash_asset:
            raise UnknownReservation(f"reference {buyer_ref} holds no {cash_asset} of buyer "
                                     f"{buyer}: {b_res}")
        if s_res is None or s_res[0] != seller or s_res[1] != symbol:
            raise UnknownReservation(f"reference {seller_ref} holds no {symbol} of seller "
                                     f"{seller}: {s_res}")
        if b_res[2] < pay:
            raise InsufficientCash(buyer, pay, b_res[2], cash_asset)
        if s_res[2] < lots:
            raise InsufficientTokens(seller, symbol, lots, s_res[2])
        # Both legs checked. Reserved <= balance holds per key, so no balance can go
        # negative below; the updates read the current value, so buyer == seller or a
        # fee account that is also a party come out right.
        self._take(buyer_ref, pay)
        self._take(seller_ref, lots)
        bal = self.balances
        bal[(buyer, cash_asset)] -= pay
        bal[(seller, symbol)] -= lots
        bal[(buyer, symbol)] = bal.get((buyer, symbol), 0) + lots
        bal[(seller, cash_asset)] = bal.get((seller, cash_asset), 0) + cash_amount - fee_seller
        if fees and fee_account is not None:   # (None with fees was refused above)
            key = (fee_account, cash_asset)
            bal[key] = bal.get(key, 0) + fees

    # ------------------------------------------------------------------ persistence
    def load(self, path: str | PathLike) -> None:
        """Open the accounts of a TOML file (format in the module docstring); all or none."""
        with open(path, "rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as exc:
                raise LedgerError(f"{path}: {exc}") from exc
        extra = set(data) - {"account"}
        if extra:
            raise LedgerError(f"{path}: unknown top-level keys {sorted(extra)}")
        staged = Ledger()          # built apart, merged only once every entry is valid
        for i, row in enumerate(data.get("account", [])):
            try:
                unknown = set(row) - _ACCOUNT_KEYS
                if unknown:
                    raise LedgerError(f"unknown keys {sorted(unknown)}")
                acct = row["id"]
                if _int(acct, "account id") in self.accounts:
                    raise LedgerError(f"account {acct} already exists")
                country = row.get("country", "")
                if not isinstance(country, str) or (country and not (
                        len(country) in (2, 3) and country.isascii() and country.isalpha()
                        and country.isupper())):
                    raise LedgerError(f"country must be an ISO 3166-1 alpha-2 or alpha-3 "
                                      f"code like DE or DEU, got {country!r}")
                staged.open_account(acct, row["broker"], row.get("eligibility", "retail"),
                                    country)
                staged.deposit(acct, CASH, row.get("cash", 0))
                tokens, wl = row.get("tokens", {}), row.get("whitelist", [])
                if not isinstance(tokens, dict) or not isinstance(wl, list):
                    raise LedgerError("tokens must be a table and whitelist a list")
                for symbol, lots in tokens.items():
                    staged.deposit(acct, symbol, lots)
                for symbol in wl:
                    staged.whitelist(acct, symbol)
            except (KeyError, TypeError, LedgerError) as exc:
                raise LedgerError(f"{path}: account entry {i}: {exc!r}") from exc
        self.accounts.update(staged.accounts)
        self.balances.update(staged.balances)
        self.whitelisted |= staged.whitelisted

    # ------------------------------------------------------------------ corporate actions
    def supply(self, symbol: str) -> int:
        """Lots of ``symbol`` in existence (every account's balance): what redemption
        burns to 0. Kept in ``balances``, so the state digest covers it."""
        return self.total(symbol)

    def mint(self, symbol: str, issuer: int, asset: str, deliveries: list[Delivery]) -> None:
        """The issue of a primary-market allotment in one step: each delivery's ``lots`` of
        ``symbol`` created in its account against ``cash`` of ``asset`` taken out of its
        reservation ``ref`` (what the ref holds beyond that stays reserved) to ``issuer``.
        Every check first; all of it or nothing. Supply grows by the lots minted only."""
        _asset(symbol, "symbol")
        _asset(asset)
        self._account(issuer)
        if symbol == asset:
            raise LedgerError(f"the token and the cash leg are both {symbol}")
        refs = set()
        for d in deliveries:
            self._account(d.account)
            if _int(d.lots, "lots minted") <= 0:
                raise LedgerError(f"lots minted must be positive, got {d.lots}")
            _amount(d.cash, "cash paid")
            res = self.reservations.get(_int(d.ref, "reference"))
            if d.ref in refs or res is None or res[0] != d.account or res[1] != asset:
                raise UnknownReservation(f"reference {d.ref} holds no {asset} of {d.account}")
            if res[2] < d.cash:
                raise InsufficientCash(d.account, d.cash, res[2], asset)
            refs.add(d.ref)
        bal = self.balances
        for d in deliveries:
            if d.cash:
                self._take(d.ref, d.cash)
                self._debit((d.account, asset), d.cash)
                bal[(issuer, asset)] = bal.get((issuer, asset), 0) + d.cash
            key = (d.account, symbol)
            bal[key] = bal.get(key, 0) + d.lots

    def distribute(self, payer: int, asset: str, payments: dict[int, int]) -> None:
        """Pay ``payments`` (account -> amount of ``asset``) out of ``payer``'s available
        balance in one step (a coupon): every check first, then all of it or nothing.
        InsufficientCash if the payer cannot cover what goes to the others."""
        self._check_payments(payer, asset, payments)
        self._move_payments(payer, asset, payments)

    def redeem(self, symbol: str, payer: int, asset: str, burns: dict[int, int],
               payments: dict[int, int]) -> None:
        """Burn ``burns`` (account -> lots of ``symbol``, none reserved) and pay
        ``payments`` out of ``payer`` in one step (a redemption): all or nothing."""
        _asset(symbol, "symbol")
        for account, lots in burns.items():
            self._account(account)
            _amount(lots, "lots burned")
            free = self.available(account, symbol)
            if lots > free:
                raise InsufficientTokens(account, symbol, lots, free)
        self._check_payments(payer, asset, payments)
        for account, lots in burns.items():
            key = (account, symbol)
            left = self.balances.get(key, 0) - lots
            if left:
                self.balances[key] = left
            else:
                self.balances.pop(key, None)
        self._move_payments(payer, asset, payments)

    def _check_payments(self, payer: int, asset: str, payments: dict[int, int]) -> None:
        self._account(payer)
        _asset(asset)
        need = 0
        for account, amount in payments.items():
            self._account(account)
            _amount(amount, "payment")
            if account != payer:
                need += amount
        free = self.available(payer, asset)
        if need > free:
            raise InsufficientCash(payer, need, free, asset)

    def _move_payments(self, payer: int, asset: str, payments: dict[int, int]) -> None:
        balances = self.balances
        for account, amount in payments.items():
            if account == payer or not amount:
                continue                    # paying oneself moves nothing
            balances[(payer, asset)] -= amount
            key = (account, asset)
            balances[key] = balances.get(key, 0) + amount

    def snapshot(self) -> dict:
        """The whole state as plain lists (msgpack/JSON-ready), in a canonical order."""
        # A country, a frozen amount or a freeze appear only when there is one, so a
        # ledger without them has the snapshot (and digest) it always had.
        snap = {
            "accounts": [[a.account_id, a.broker, a.eligibility, *([a.country] if a.country
                                                                    else [])]
                         for _, a in sorted(self.accounts.items())],
            "balances": [[k[0], k[1], v] for k, v in sorted(self.balances.items()) if v],
            "reservations": [[ref, *r] for ref, r in sorted(self.reservations.items())],
            "whitelist": sorted([list(w) for w in self.whitelisted]),
        }
        if self.frozen:
            snap["frozen"] = [[k[0], k[1], v] for k, v in sorted(self.frozen.items())]
        if self.blocked:
            snap["blocked"] = sorted([list(b) for b in self.blocked])
        return snap

    @classmethod
    def restore(cls, snap: dict) -> Ledger:
        """A new ledger from ``snapshot()``'s output, checked: a bad snapshot raises LedgerError."""
        led = cls()
        try:
            for acct, broker, elig, *country in snap["accounts"]:
                led.open_account(acct, broker, elig, *country)
            for acct, asset, v in snap["balances"]:
                led.deposit(acct, asset, v)
            for ref, acct, asset, amount in snap["reservations"]:
                _amount(amount, "reservation")
                if _int(ref, "reference") in led.reservations:
                    raise LedgerError(f"reservation {ref} appears twice")
                led._account(acct)
                if amount == 0:
                    continue        # older ledgers kept empty refs; they hold nothing
                led.reservations[ref] = (acct, asset, amount)
                led.held[(acct, asset)] = led.held.get((acct, asset), 0) + amount
            for acct, symbol in snap["whitelist"]:
                led.whitelist(acct, symbol)
            for acct, asset, v in snap.get("frozen", []):
                led._account(acct)
                led.frozen[(acct, _asset(asset))] = _amount(v, "frozen")
            for acct, symbol in snap.get("blocked", []):
                led.block(acct, symbol)
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(f"malformed ledger snapshot: {exc!r}") from exc
        for key, held in led.held.items():
            if held > led.balance(*key):
                raise LedgerError(f"snapshot reserves {held} of {key} holding {led.balance(*key)}")
        for key in led.frozen:
            if led.free(*key) < 0:
                raise LedgerError(f"snapshot freezes and reserves more of {key} than it holds")
        return led

    def state_digest(self) -> str:
        """sha256 of the canonical snapshot: equal states give equal digests."""
        doc = json.dumps(self.snapshot(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()
