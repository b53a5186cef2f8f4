"""Compliance rules and retail limits, checked at order entry and on a replace before any
reservation is taken (``matching.risk`` calls ``check_order`` / ``check_replace``).

The rules are the instrument's terms (``matching.compliance_rules``), modelled on the
ERC-3643 (T-REX) compliance modules a permissioned token enforces on each transfer:
a buy is the transfer to the buyer, so a buy is checked against the maximum balance
(tokens held + open buy leaves + this order), the maximum number of holders, and the
country allow/deny list of the receiving investor; a sell against the lock-up. Retail
accounts are also held to a maximum order notional, a maximum position and a daily buy
limit (bought today + open buy leaves), the product-governance limits a venue admitting
retail investors sets (MiFID II art. 16(3), 24(2)).

Decisions (docs/fees-and-compliance.md): open buys of an account that holds nothing
count it as a holder, so resting buys of new investors can never fill past the cap;
an account without a country on file is refused by either country list; a replace that
increases neither its leaves nor its notional is never refused by these rules (amend
down stays allowed even over a limit lowered since). The trading day of the daily limit
is the engine's trade date (the UTC date of the input's journaled time, as lifecycle
inputs use), so replay counts the same day. Every figure is an int: lots, or cash minor
units of the clean consideration (price x quantity, x face / 100 for bills and bonds,
rounded up), never a float.
"""
from __future__ import annotations

from datetime import date
from fractions import Fraction

from matching.compliance_rules import ComplianceRules
from matching.constants import Side
from matching.errors import EngineReject as R
from matching.errors import Rejection

__all__ = ["Compliance", "compliance_of", "install", "DAY_NS"]

DAY_NS = 86_400 * 1_000_000_000
_EPOCH_ORDINAL = 719163          # date(1970, 1, 1).toordinal()
_BUY = int(Side.BUY)
_MAX_BALANCE, _MAX_HOLDERS = R.MAX_BALANCE.value, R.MAX_HOLDERS.value
_COUNTRY, _LOCKED_UP = R.COUNTRY_NOT_ALLOWED.value, R.LOCKED_UP.value
_NOTIONAL, _POSITION = R.MAX_ORDER_NOTIONAL.value, R.MAX_POSITION.value
_DAILY = R.DAILY_BUY_LIMIT.value


def _units(amount: int, places: int) -> str:
    """``amount`` units of ``10**-places`` as a decimal string (``1200.0000``)."""
    if places <= 0:
        return str(amount)
    digits = str(abs(amount)).rjust(places + 1, "0")
    return f"{'-' if amount < 0 else ''}{digits[:-places]}.{digits[-places:]}"


def _clean_per_tick_lot(inst) -> tuple[int, int]:
    """Cash minor units of one tick on one lot as an exact ratio: price x quantity, times
    face / 100 for bills and bonds (quoted per 100 of face, accrued interest excluded)."""
    scale = Fraction(10 ** inst.cash_decimals, 10 ** inst.token_decimals)
    per = Fraction(inst.tick_size) * scale
    if inst.face_value is not None:
        per = per * Fraction(inst.face_value) / 100
    return per.numerator, per.denominator


class Compliance:
    """The rules of every instrument that has some, against the engine's ledger (read
    through ``risk``: a restored ledger replaces it) and live orders.

    ``bought``: (account, symbol) -> (trade day, clean notional bought that day), kept
    only for retail accounts of instruments with a daily buy limit, and ``overrides``
    (the operator's rule tables): engine state (snapshot, state hash)."""

    def __init__(self, instruments: dict, risk, orders: dict):
        self.instruments = instruments
        self.rules: dict[str, ComplianceRules] = {
            s: i.compliance for s, i in instruments.items() if i.compliance is not None}
        self.risk = risk
        self.orders = orders
        self.per_tick_lot = {s: _clean_per_tick_lot(i) for s, i in instruments.items()}
        self.daily = frozenset(s for s, r in self.rules.items()
                               if r.retail_daily_buy_limit is not None)
        self.bought: dict[tuple[int, str], tuple[int, int]] = {}
        # symbol -> account -> ids of its buy orders that passed these checks: a cache of
        # ``orders`` (not state), each id checked against it when read (an id may name an
        # order rejected later, or done: it is dropped then).
        self.buys: dict[str, dict[int, set[int]]] = {}
        # Rules the operator set since the founding (``set_compliance``), as the tables
        # given (sorted keys): engine state, replacing the instrument's terms.
        self.overrides: dict[str, dict] = {}

    def set_rules(self, symbol: str, rules: ComplianceRules, table: dict) -> None:
        """The operator's ``set_compliance``: ``rules`` (parsed from ``table``) replace
        ``symbol``'s; all off (an empty table) removes them."""
        if rules == ComplianceRules():
            self.rules.pop(symbol, None)
        else:
            self.rules[symbol] = rules
        self.overrides[symbol] = dict(sorted(table.items()))
        self.daily = frozenset(s for s, r in self.rules.items()
                               if r.retail_daily_buy_limit is not None)
        self.reindex(symbol)

    def reindex(self, symbol: str | None = None) -> None:
        """Rebuild the buy index of ``symbol`` (None: every instrument with rules) from
        the live orders: after a restore, or rules set on orders already resting."""
        symbols = set(self.rules) if symbol is None else {symbol}
        for s in symbols:
            self.buys[s] = {}
        for o in self.orders.values():
            if o.side == _BUY and o.symbol in symbols:
                self.buys[o.symbol].setdefault(o.account, set()).add(o.order_id)

    def _open_buys(self, symbol: str, account: int, replacing: int, valued: bool
                   ) -> tuple[int, int]:
        """The lots and (if ``valued``) clean notional of ``account``'s live buys of
        ``symbol``, without order ``replacing``; O(its buy orders)."""
        ids = self.buys.get(symbol, {}).get(account)
        lots = value = 0
        if not ids:
            return lots, value
        orders = self.orders
        stale = []
        for oid in ids:
            o = orders.get(oid)
            if o is None or o.account != account or o.symbol != symbol or o.side != _BUY:
                stale.append(oid)
            elif oid != replacing:
                lots += o.leaves
                if valued:
                    value += self.notional(symbol, o.price, o.leaves)
        ids.difference_update(stale)
        return lots, value

    def _buyers(self, symbol: str) -> set[int]:
        """Accounts with a live buy of ``symbol``, O(accounts with buys)."""
        out = set()
        orders = self.orders
        for account, ids in self.buys.get(symbol, {}).items():
            stale = []
            for oid in ids:
                o = orders.get(oid)
                if o is None or o.account != account or o.symbol != symbol or o.side != _BUY:
                    stale.append(oid)
                else:
                    out.add(account)
                    break
            ids.difference_update(stale)
        return out

    # ------------------------------------------------------------------ checks
    def check_order(self, account: int, symbol: str, side: int, price: int, lots: int,
                    now: int, order_id: int) -> None:
        """A new order ``order_id`` of ``lots`` at ``price`` ticks (a market buy: the band
        top); raises the first rule it breaks. O(the account's buy orders), and for a new
        holder under a holder cap O(accounts with buys + the ledger's balances)."""
        rules = self.rules.get(symbol)
        if rules is None:
            return
        if side != _BUY:
            self._lockup(rules, symbol, now)
            return
        self._buy(rules, account, symbol, price, lots, lots, now, 0)
        self.buys.setdefault(symbol, {}).setdefault(account, set()).add(order_id)

    def check_replace(self, o, price: int, total: int, new_leaves: int, now: int) -> None:
        """A replace of live order ``o`` to ``total`` lots (``new_leaves`` open) at
        ``price``: the rules run only if it increases the leaves or the notional."""
        rules = self.rules.get(o.symbol)
        if rules is None:
            return
        if o.side != _BUY:
            if new_leaves > o.leaves:
                self._lockup(rules, o.symbol, now)
            return
        if new_leaves <= o.leaves and price * total <= o.price * o.qty \
                and price * new_leaves <= o.price * o.leaves:
            return
        self._buy(rules, o.account, o.symbol, price, new_leaves, total, now, o.order_id)

    def _lockup(self, rules: ComplianceRules, symbol: str, now: int) -> None:
        until = rules.lockup_until
        if until is None:
            return
        today = date.fromordinal(now // DAY_NS + _EPOCH_ORDINAL)
        if today < until:
            raise Rejection(_LOCKED_UP, f"{symbol} is locked up until {until.isoformat()}: "
                            f"no sell on {today.isoformat()}")

    def _buy(self, rules: ComplianceRules, account: int, symbol: str, price: int,
             leaves: int, total: int, now: int, replacing: int) -> None:
        """Every buy rule for an order with ``leaves`` open of ``total`` at ``price``;
        ``replacing``: the order id a replace changes (its old leaves do not count)."""
        ledger = self.risk.ledger
        inst = self.instruments[symbol]
        places = inst.token_decimals
        if rules.countries_allow or rules.countries_deny:
            acct = ledger.accounts.get(account)
            country = acct.country if acct is not None else ""
            if not country:
                raise Rejection(_COUNTRY, f"account {account} has no country on file: "
                                f"{symbol} restricts buyers by country")
            if rules.countries_allow and country not in rules.countries_allow:
                raise Rejection(_COUNTRY, f"{country} is not among the countries allowed "
                                f"to buy {symbol} ({', '.join(rules.countries_allow)})")
            if country in rules.countries_deny:
                raise Rejection(_COUNTRY, f"{country} is denied for {symbol}")
        held = ledger.balance(account, symbol)
        retail = rules.retail and ledger.eligibility_of(account) == "retail"
        open_lots, open_value = self._open_buys(
            symbol, account, replacing, retail and rules.retail_daily_buy_limit is not None)
        after = held + open_lots + leaves
        if rules.max_balance is not None and after > rules.max_balance:
            raise Rejection(_MAX_BALANCE, f"{_units(after, places)} would exceed "
                            f"{_units(rules.max_balance, places)} for {symbol} (account "
                            f"{account}: held {_units(held, places)}, open buys "
                            f"{_units(open_lots, places)}, this order {_units(leaves, places)})")
        cap = rules.max_holders
        if cap is not None and held == 0 and not open_lots and not replacing:
            holders = self._buyers(symbol) | set(ledger.holders(symbol))
            if len(holders) >= cap:
                raise Rejection(_MAX_HOLDERS, f"{len(holders) + 1} holders would exceed "
                                f"{cap} for {symbol} (holding or buying: {len(holders)})")
        if not retail:
            return
        cash = inst.cash_decimals
        limit = rules.retail_max_order_notional
        if limit is not None:
            value = self.notional(symbol, price, total)
            if value > limit:
                raise Rejection(_NOTIONAL, f"{_units(value, cash)} would exceed "
                                f"{_units(limit, cash)} {inst.cash_token} for {symbol} "
                                f"(retail order notional)")
        limit = rules.retail_max_position
        if limit is not None and after > limit:
            raise Rejection(_POSITION, f"{_units(after, places)} would exceed "
                            f"{_units(limit, places)} for {symbol} (retail position of "
                            f"account {account}: held {_units(held, places)}, open buys "
                            f"{_units(open_lots, places)}, this order {_units(leaves, places)})")
        limit = rules.retail_daily_buy_limit
        if limit is not None:
            bought = self.bought_today(account, symbol, now)
            this = self.notional(symbol, price, leaves)
            day = bought + open_value + this
            if day > limit:
                raise Rejection(_DAILY, f"{_units(day, cash)} would exceed "
                                f"{_units(limit, cash)} {inst.cash_token} for {symbol} "
                                f"today (bought {_units(bought, cash)}, open buys "
                                f"{_units(open_value, cash)}, this order {_units(this, cash)})")

    # ------------------------------------------------------------------ figures, fills
    def notional(self, symbol: str, ticks: int, lots: int) -> int:
        """Clean consideration of ``lots`` at ``ticks`` in cash minor units, rounded up."""
        num, den = self.per_tick_lot[symbol]
        return -(-(ticks * lots * num) // den)

    def bought_today(self, account: int, symbol: str, now: int) -> int:
        """Clean notional ``account`` bought of ``symbol`` on the trade date of ``now``."""
        entry = self.bought.get((account, symbol))
        return entry[1] if entry is not None and entry[0] == now // DAY_NS else 0

    def on_fill(self, buyer: int, symbol: str, price: int, lots: int, now: int) -> None:
        """A fill bought ``lots`` at ``price``: counted towards the buyer's day if the
        instrument has a daily buy limit and the buyer is retail (``Executions._fill``)."""
        if symbol not in self.daily or self.risk.ledger.eligibility_of(buyer) != "retail":
            return
        key = (buyer, symbol)
        day = now // DAY_NS
        entry = self.bought.get(key)
        before = entry[1] if entry is not None and entry[0] == day else 0
        self.bought[key] = (day, before + self.notional(symbol, price, lots))

    # ------------------------------------------------------------------ state
    def snapshot(self) -> dict:
        """The state (snapshots, the state hash): ``bought`` as sorted rows ``[account,
        symbol, day, notional]`` and the operator's rule tables; empty: none of either."""
        doc: dict = {}
        if self.bought:
            doc["bought"] = [[a, s, d, v] for (a, s), (d, v) in sorted(self.bought.items())]
        if self.overrides:
            doc["rules"] = dict(sorted(self.overrides.items()))
        return doc

    def restore(self, doc, parse) -> None:
        """Back to ``doc`` (``snapshot``); ``parse(symbol, table)``: a table's rules."""
        doc = doc or {}
        self.bought = {(a, s): (d, v) for a, s, d, v in doc.get("bought", ())}
        for symbol, table in doc.get("rules", {}).items():
            self.set_rules(symbol, parse(symbol, table), table)
        self.reindex()


def compliance_of(instruments: dict, risk, orders: dict) -> Compliance | None:
    """The venue's compliance checks, or None when no instrument has rules (no cost)."""
    if not any(i.compliance is not None for i in instruments.values()):
        return None
    return Compliance(instruments, risk, orders)


def install(engine) -> Compliance:
    """``engine``'s checks, made if it had none (the first ``set_compliance``), wired into
    pre-trade risk and, once an instrument has a daily buy limit, into the fills."""
    compliance = engine.risk.compliance
    if compliance is None:
        compliance = engine.risk.compliance = Compliance(engine.instruments, engine.risk,
                                                         engine.orders)
        compliance.reindex()
    return compliance


def wire_fills(engine) -> None:
    """Tell the fills to the checks exactly while some instrument has a daily buy limit."""
    compliance = engine.risk.compliance
    engine.executions.compliance = compliance if compliance is not None \
        and compliance.daily else None
