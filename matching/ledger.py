"""Custody ledger: token and cash balances, order reservations, delivery-versus-payment.

Integers only: tokens in lots, cash in the cash token's minor units. An order reserves
what it could need (cash for a buy, tokens for a sell) under its order id; a trade moves
both legs in one step, taking from those reservations, or moves nothing at all.

File format for ``load`` (TOML)::

    [[account]]
    id = 1001
    broker = "alpha"
    eligibility = "retail"          # or "institutional"
    cash = 5000000000               # minor units
    whitelist = ["TB3M", "GOLD"]
    tokens = { TB3M = 200000 }      # lots
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from os import PathLike

__all__ = ["Ledger", "LedgerError", "InsufficientCash", "InsufficientTokens", "UnknownAccount",
           "CASH"]

#: The asset key of the cash leg (a stablecoin); token balances are keyed by symbol.
CASH = "CASH"
ELIGIBILITIES = ("retail", "institutional")


class LedgerError(Exception):
    """A ledger operation refused; nothing was changed."""


class UnknownAccount(LedgerError):
    pass


class InsufficientCash(LedgerError):
    def __init__(self, account: int, needed: int, available: int):
        super().__init__(f"account {account} needs {needed} cash units, has {available} available")
        self.account, self.needed, self.available = account, needed, available


class InsufficientTokens(LedgerError):
    def __init__(self, account: int, symbol: str, needed: int, available: int):
        super().__init__(f"account {account} needs {needed} lots of {symbol}, "
                         f"has {available} available")
        self.account, self.symbol = account, symbol
        self.needed, self.available = needed, available


@dataclass
class Account:
    account_id: int
    broker: str
    eligibility: str


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int (lots or cash minor units), got {value!r}")
    return value


class Ledger:
    """Balances per (account, asset) and reservations per order reference."""

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}
        self.balances: dict[tuple[int, str], int] = {}
        self.held: dict[tuple[int, str], int] = {}          # sum of reservations
        self.reservations: dict[int, tuple[int, str, int]] = {}   # ref -> account, asset, amount
        self.whitelisted: set[tuple[int, str]] = set()

    # ------------------------------------------------------------------ accounts
    def open_account(self, account_id: int, broker: str, eligibility: str = "retail") -> None:
        _int(account_id, "account id")
        if account_id <= 0:
            raise LedgerError(f"account id must be positive, got {account_id}")
        if account_id in self.accounts:
            raise LedgerError(f"account {account_id} already exists")
        if eligibility not in ELIGIBILITIES:
            raise LedgerError(f"eligibility must be one of {ELIGIBILITIES}, got {eligibility!r}")
        self.accounts[account_id] = Account(account_id, broker, eligibility)

    def _account(self, account_id: int) -> Account:
        acct = self.accounts.get(account_id)
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
        self.whitelisted.add((account_id, symbol))

    def may_trade(self, account_id: int, symbol: str) -> bool:
        return (account_id, symbol) in self.whitelisted

    # ------------------------------------------------------------------ balances
    def deposit(self, account_id: int, asset: str, amount: int) -> None:
        """Credit cash (asset CASH) or tokens (asset = symbol) from outside the venue."""
        self._account(account_id)
        if _int(amount, "amount") < 0:
            raise LedgerError(f"deposit must not be negative, got {amount}")
        key = (account_id, asset)
        self.balances[key] = self.balances.get(key, 0) + amount

    def balance(self, account_id: int, asset: str) -> int:
        return self.balances.get((account_id, asset), 0)

    def reserved(self, account_id: int, asset: str) -> int:
        return self.held.get((account_id, asset), 0)

    def available(self, account_id: int, asset: str) -> int:
        return self.balance(account_id, asset) - self.reserved(account_id, asset)

    def total(self, asset: str) -> int:
        """Sum of one asset over every account: trading must conserve it."""
        return sum(v for (_, a), v in self.balances.items() if a == asset)

    def holders(self, symbol: str) -> dict[int, int]:
        return {acct: v for (acct, a), v in self.balances.items() if a == symbol and v}

    # ------------------------------------------------------------------ reservations
    def reserve_cash(self, account_id: int, amount: int, ref: int) -> None:
        self._reserve(account_id, CASH, amount, ref)

    def reserve_tokens(self, account_id: int, symbol: str, lots: int, ref: int) -> None:
        self._reserve(account_id, symbol, lots, ref)

    def _reserve(self, account_id: int, asset: str, amount: int, ref: int) -> None:
        self._account(account_id)
        if _int(amount, "amount") < 0:
            raise LedgerError(f"reservation must not be negative, got {amount}")
        prior = self.reservations.get(ref)
        if prior is not None and prior[:2] != (account_id, asset):
            raise LedgerError(f"reference {ref} already holds {prior[1]} of account {prior[0]}")
        free = self.available(account_id, asset)
        if amount > free:
            if asset == CASH:
                raise InsufficientCash(account_id, amount, free)
            raise InsufficientTokens(account_id, asset, amount, free)
        key = (account_id, asset)
        self.held[key] = self.held.get(key, 0) + amount
        self.reservations[ref] = (account_id, asset, (prior[2] if prior else 0) + amount)

    def reservation(self, ref: int) -> int:
        r = self.reservations.get(ref)
        return r[2] if r else 0

    def release(self, ref: int, amount: int | None = None) -> int:
        """Give back ``amount`` (all if None) of a reservation; returns what was released."""
        r = self.reservations.get(ref)
        if r is None:
            return 0
        account_id, asset, held = r
        amount = held if amount is None else _int(amount, "amount")
        if not 0 <= amount <= held:
            raise LedgerError(f"cannot release {amount} of reference {ref} holding {held}")
        self._take(ref, amount)
        return amount

    def _take(self, ref: int, amount: int) -> None:
        account_id, asset, held = self.reservations[ref]
        key = (account_id, asset)
        self.held[key] -= amount
        if held == amount:
            del self.reservations[ref]
        else:
            self.reservations[ref] = (account_id, asset, held - amount)

    # ------------------------------------------------------------------ settlement
    def settle_trade(self, buyer: int, seller: int, symbol: str, lots: int, cash: int,
                     buyer_ref: int, seller_ref: int, fee_buyer: int = 0, fee_seller: int = 0,
                     fee_account: int | None = None) -> None:
        """Delivery versus payment: tokens seller -> buyer and cash buyer -> seller at once.

        The buyer pays ``cash + fee_buyer`` out of its reservation ``buyer_ref``; the seller
        delivers ``lots`` out of ``seller_ref`` and receives ``cash - fee_seller``. Every
        check comes first; if one fails nothing moves.
        """
        for v, what in ((lots, "lots"), (cash, "cash"), (fee_buyer, "fee"), (fee_seller, "fee")):
            if _int(v, what) < 0:
                raise LedgerError(f"{what} must not be negative, got {v}")
        pay = cash + fee_buyer
        if (fee_buyer or fee_seller) and fee_account not in self.accounts:
            raise UnknownAccount(f"fees need a fee account, got {fee_account}")
        if fee_seller > cash:
            raise LedgerError(f"seller fee {fee_seller} exceeds the cash leg {cash}")
        b_res, s_res = self.reservations.get(buyer_ref), self.reservations.get(seller_ref)
        if b_res is None or b_res[:2] != (buyer, CASH) or b_res[2] < pay:
            raise InsufficientCash(buyer, pay, b_res[2] if b_res and b_res[:2] == (buyer, CASH) else 0)
        if s_res is None or s_res[:2] != (seller, symbol) or s_res[2] < lots:
            raise InsufficientTokens(seller, symbol, lots,
                                     s_res[2] if s_res and s_res[:2] == (seller, symbol) else 0)
        # Both legs checked: move them together.
        self._take(buyer_ref, pay)
        self._take(seller_ref, lots)
        self.balances[(buyer, CASH)] -= pay
        self.balances[(seller, symbol)] -= lots
        self.balances[(buyer, symbol)] = self.balance(buyer, symbol) + lots
        self.balances[(seller, CASH)] = self.balance(seller, CASH) + cash - fee_seller
        if fee_buyer or fee_seller:
            key = (fee_account, CASH)
            self.balances[key] = self.balances.get(key, 0) + fee_buyer + fee_seller

    # ------------------------------------------------------------------ persistence
    def load(self, path: str | PathLike) -> None:
        """Open the accounts of a TOML file (format in the module docstring)."""
        with open(path, "rb") as f:
            data = tomllib.load(f)
        for i, row in enumerate(data.get("account", [])):
            try:
                acct = row["id"]
                self.open_account(acct, row["broker"], row.get("eligibility", "retail"))
                self.deposit(acct, CASH, row.get("cash", 0))
                for symbol, lots in row.get("tokens", {}).items():
                    self.deposit(acct, symbol, lots)
                for symbol in row.get("whitelist", []):
                    self.whitelist(acct, symbol)
            except (KeyError, TypeError, LedgerError) as exc:
                raise LedgerError(f"{path}: account entry {i}: {exc}") from exc

    def snapshot(self) -> dict:
        return {
            "accounts": [[a.account_id, a.broker, a.eligibility] for a in self.accounts.values()],
            "balances": [[k[0], k[1], v] for k, v in sorted(self.balances.items())],
            "reservations": [[ref, *r] for ref, r in sorted(self.reservations.items())],
            "whitelist": sorted([list(w) for w in self.whitelisted]),
        }

    @classmethod
    def restore(cls, snap: dict) -> "Ledger":
        led = cls()
        for acct, broker, elig in snap["accounts"]:
            led.accounts[acct] = Account(acct, broker, elig)
        for acct, asset, v in snap["balances"]:
            led.balances[(acct, asset)] = v
        for ref, acct, asset, amount in snap["reservations"]:
            led.reservations[ref] = (acct, asset, amount)
            led.held[(acct, asset)] = led.held.get((acct, asset), 0) + amount
        led.whitelisted = {(a, s) for a, s in snap["whitelist"]}
        return led

    def state_digest(self) -> str:
        return hashlib.sha256(repr(self.snapshot()).encode()).hexdigest()
