"""Trading fees: per-instrument maker/taker rates in basis points with a minimum per fill,
a retail tier, charged on each fill's settlement cash into the venue's fee account.

A fill's fee is ``max(ceil(cash * bps / 10_000), minimum)``: a rate on the settlement
amount (FIX MiscFeeBasis "percentage" priced as CommType 13=3 "absolute" on the report,
tag 12 Commission), rounded up to the cash token's minor unit, in the venue's favour, the
usual rule for charges (MiFID II Delegated Regulation (EU) 2017/565 art. 50 lets the
disclosed cost be the one actually charged; Xetra's price list rounds every transaction
fee up to the cent). A fill smaller than the instrument's minimum order size pays the
minimum pro rata (``ceil(minimum * lots / min_order_lots)``), so one lot cannot cost a
whole minimum and what a buy must reserve stays bounded by its quantity (see
``FeeSchedule.reserve``). A seller's fee comes out of its proceeds and never exceeds them.

Every amount is an int of the cash token's minor units; rates are ints of 1/100 bp
(``RATE_SCALE`` per unit), parsed exactly from decimal strings at the edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["FeeRates", "FeeSchedule", "FeeError", "RATE_SCALE", "parse_fees", "VENUE_BROKER",
           "open_fee_accounts",
           "ROUNDING_ALLOWANCE_PER_LOT"]

#: A rate in hundredths of a basis point: 1 bp = 100, 100 % = 1_000_000.
RATE_SCALE = 1_000_000
_BP = 100
#: Largest rate a schedule may set (10 %): a fee far beyond that is a typo.
_MAX_RATE = 1000 * _BP
#: Minor units per lot a buy reserves beyond the rates for rounding: on each fill the
#: rate's ceiling and the pro-rata minimum's ceiling can each cost one unit, and the
#: reservation of the leaves (also rounded up) can shrink by one less each (4 per fill,
#: every fill at least one lot).
ROUNDING_ALLOWANCE_PER_LOT = 4


class FeeError(ValueError):
    """A fee schedule in the instruments file is malformed."""


@dataclass(frozen=True)
class FeeRates:
    """One tier's rates: ``maker`` and ``taker`` in 1/100 bp, ``minimum`` in minor units."""
    maker: int = 0
    taker: int = 0
    minimum: int = 0

    @property
    def zero(self) -> bool:
        return not (self.maker or self.taker or self.minimum)


@dataclass(frozen=True)
class FeeSchedule:
    """An instrument's fees: the institutional tier, the retail tier (the accounts'
    eligibility picks one) and the venue account the fees are paid into."""
    account: int
    institutional: FeeRates
    retail: FeeRates

    def rates(self, retail: bool) -> FeeRates:
        return self.retail if retail else self.institutional

    def fee(self, cash: int, lots: int, min_order_lots: int, maker: bool,
            retail: bool) -> int:
        """The fee of one fill of ``lots`` with settlement ``cash`` (minor units), O(1).

        >>> s = FeeSchedule(9000, FeeRates(10 * 100, 25 * 100, 500_000), FeeRates())
        >>> s.fee(496_750_000, 5000, 100, maker=False, retail=False)   # 25 bp, up
        1241875
        >>> s.fee(1_000_000, 100, 100, maker=True, retail=False)       # the minimum
        500000
        >>> s.fee(1_000_000, 10, 100, maker=True, retail=False)        # pro rata
        50000
        """
        r = self.retail if retail else self.institutional
        rate = r.maker if maker else r.taker
        by_rate = -(-max(cash, 0) * rate // RATE_SCALE)
        minimum = r.minimum
        if minimum and lots < min_order_lots:
            minimum = -(-minimum * lots // min_order_lots)
        return by_rate if by_rate > minimum else minimum

    def reserve(self, worst_cash: int, lots: int, min_order_lots: int, retail: bool) -> int:
        """What a buy of ``lots`` whose cash can be at most ``worst_cash`` must reserve for
        its fees, whichever side of each fill it is on: the higher rate on the worst cash,
        a minimum per minimum order size, and ``ROUNDING_ALLOWANCE_PER_LOT``. O(1)."""
        r = self.retail if retail else self.institutional
        if r.zero:
            return 0
        rate = r.maker if r.maker > r.taker else r.taker
        return (-(-worst_cash * rate // RATE_SCALE)
                + -(-r.minimum * lots // max(min_order_lots, 1))
                + ROUNDING_ALLOWANCE_PER_LOT * lots)


def _scaled(value, what: str, decimals: int, unit: str) -> int:
    """A non-negative decimal string with at most ``decimals`` places -> an int of
    10^-decimals units, exactly (``"2.5"`` bp at 2 places -> 250)."""
    if not isinstance(value, str):
        raise FeeError(f"{what}: {unit} as a decimal string, got {value!r}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise FeeError(f"{what}: not a decimal: {value!r}") from None
    scaled = d.scaleb(decimals) if d.is_finite() else d
    if not d.is_finite() or d < 0 or scaled != scaled.to_integral_value():
        raise FeeError(f"{what}: a non-negative {unit} with at most {decimals} decimals, "
                       f"got {value!r}")
    return int(scaled)


def _rate(value, what: str) -> int:
    """A rate in bp as a decimal string (``"2.5"``) -> 1/100 bp, capped at 1000 bp."""
    scaled = _scaled(value, what, 2, "number of bp")
    if scaled > _MAX_RATE:
        raise FeeError(f"{what}: {value} bp is above the 1000 bp cap")
    return scaled


def _minimum(value, what: str, cash_decimals: int) -> int:
    """A minimum fee in cash (``"0.50"``) -> minor units of the cash token."""
    return _scaled(value, what, cash_decimals, "cash amount")


_TIER_KEYS = {"maker_bps", "taker_bps", "minimum"}


def _tier(row: dict, prefix: str, cash_decimals: int, default: FeeRates) -> FeeRates:
    def get(key: str, parse, fallback: int) -> int:
        name = prefix + key
        return parse(row[name], name) if name in row else fallback
    return FeeRates(get("maker_bps", _rate, default.maker),
                    get("taker_bps", _rate, default.taker),
                    get("minimum", lambda v, w: _minimum(v, w, cash_decimals),
                        default.minimum))


def parse_fees(row, cash_decimals: int) -> FeeSchedule | None:
    """An instrument's ``fees`` table -> its schedule (None: no fees at all).

    Keys: ``account`` (the venue's fee account id), ``maker_bps``, ``taker_bps``,
    ``minimum`` (cash per fill), and the same with ``retail_`` for retail accounts (each
    defaulting to the institutional figure)."""
    if not isinstance(row, dict):
        raise FeeError(f"fees must be a table, got {row!r}")
    allowed = {"account"} | _TIER_KEYS | {"retail_" + k for k in _TIER_KEYS}
    extra = set(row) - allowed
    if extra:
        raise FeeError(f"fees: unknown key {sorted(extra)[0]!r}")
    institutional = _tier(row, "", cash_decimals, FeeRates())
    retail = _tier(row, "retail_", cash_decimals, institutional)
    if institutional.zero and retail.zero:
        return None
    account = row.get("account")
    if type(account) is not int or account <= 0:
        raise FeeError(f"fees: account must be a positive account id, got {account!r}")
    return FeeSchedule(account, institutional, retail)


#: The broker name that owns the venue's fee accounts (no broker may trade them).
VENUE_BROKER = "venue"


def open_fee_accounts(ledger, instruments) -> None:
    """Open each fee account the instruments' schedules name that the ledger lacks: an
    institutional account of the venue's own, so fees are balances the ledger's totals
    (and its conservation) count. A ledger with no fees is left as it was."""
    for inst in instruments:
        schedule = getattr(inst, "fees", None)
        if schedule is not None and schedule.account not in ledger.accounts:
            ledger.open_account(schedule.account, VENUE_BROKER, "institutional")
