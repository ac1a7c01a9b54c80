//! Exact integer arithmetic of SEMANTICS.md: quote values and locks, in `u128`
//! intermediates, with overflow reported instead of wrapped.

use crate::types::{Amount, Price, Qty, Side};

/// `floor(price * qty / qty_unit)`, or `None` if it does not fit in a `u64`.
#[inline]
pub fn quote_value(price: Price, qty: Qty, qty_unit: u64) -> Option<Amount> {
    debug_assert!(qty_unit > 0);
    let value = u128::from(price) * u128::from(qty) / u128::from(qty_unit);
    u64::try_from(value).ok()
}

/// The amount an order locks when accepted: quote value for a buy, `qty` of base for a sell.
#[inline]
pub fn lock_amount(side: Side, price: Price, qty: Qty, qty_unit: u64) -> Option<Amount> {
    match side {
        Side::Buy => quote_value(price, qty, qty_unit),
        Side::Sell => Some(qty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_value_floors() {
        // 84907.12 USDT/BTC * 0.390483 BTC = 33154.78... USDT, floored to cents.
        assert_eq!(quote_value(8_490_712, 39_048_300, 100_000_000), Some(3_315_478));
        assert_eq!(quote_value(1, 1, 100_000_000), Some(0));
        assert_eq!(quote_value(u64::MAX, u64::MAX, 1), None);
        assert_eq!(quote_value(u64::MAX, 2, 2), Some(u64::MAX));
    }

    #[test]
    fn sell_locks_quantity() {
        assert_eq!(lock_amount(Side::Sell, u64::MAX, 7, 10), Some(7));
        assert_eq!(lock_amount(Side::Buy, 10, 7, 10), Some(7));
    }
}
