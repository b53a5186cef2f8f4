# cython: language_level=3
"""Augmenting declarations: matching/ledger.py compiled as a C extension (setup.py).

The .py stays the source of truth and runs uncompiled; this file only gives the Ledger
C-level attributes and the engine C-level calls into its hot methods.
"""

cdef class Ledger:
    cdef public dict accounts
    cdef public dict balances
    cdef public dict held
    cdef public dict reservations
    cdef public set whitelisted
    cdef public dict frozen
    cdef public set blocked

    cpdef broker_of(self, account_id)
    cpdef eligibility_of(self, account_id)
    cpdef bint may_trade(self, account_id, symbol)
    cpdef hold(self, account_id, asset, amount, ref, bint is_cash)
    cpdef release(self, ref, amount=*)
    cdef _take(self, ref, amount)
    cpdef settle(self, buyer, seller, symbol, lots, cash_amount, buyer_ref, seller_ref,
                 fee_buyer, fee_seller, fee_account, cash_asset)
