//! What a bid holds and what an event costs: the money formulas shared by
//! the bidder (reservations) and the tracker (settlement and charges), in
//! one place so that the two can never disagree.

use crate::money::Micros;

/// What one impression of a bid at `cpm` costs at most: CPM / 1000,
/// rounded up. A bid reserves this much of its campaign's daily budget, and
/// its billing notice releases the same amount.
pub fn impression_cost(cpm: Micros) -> Micros {
    cpm.mul_div_ceil(1, 1000)
}

/// What a bid holds for a display that counts as `qty_milli` thousandths
/// of an impression (`imp.qty`): CPM × qty / 1000, rounded up.
pub fn display_cost(cpm: Micros, qty_milli: i64) -> Micros {
    cpm.mul_div_ceil(qty_milli, 1_000_000)
}

/// A CPM campaign's charge for a billed impression: the clearing price (a
/// CPM in the response currency) brought back to base currency in
/// proportion to the bid (`bid_value` base, `bid_price` response
/// currency), per impression, rounded down.
pub fn cpm_charge(clearing: Micros, bid_value: Micros, bid_price: Micros) -> Micros {
    if bid_price.0 <= 0 {
        return Micros::ZERO;
    }
    // In 128 bits: `bid_price × 1000` alone can overflow 64.
    let charge = clearing.0 as i128 * bid_value.0 as i128 / (bid_price.0 as i128 * 1000);
    Micros(charge.clamp(0, i64::MAX as i128) as i64)
}

/// A CPM campaign's charge for a billed display that counts as
/// `qty_milli` thousandths of an impression: [`cpm_charge`] × qty, in one
/// rounding (down).
pub fn cpm_charge_qty(clearing: Micros, bid_value: Micros, bid_price: Micros, qty_milli: i64) -> Micros {
    if bid_price.0 <= 0 {
        return Micros::ZERO;
    }
    let charge = clearing.0 as i128 * bid_value.0 as i128 * qty_milli as i128 / (bid_price.0 as i128 * 1_000_000);
    Micros(charge.clamp(0, i64::MAX as i128) as i64)
}

/// A CPC campaign's charge for a billable click: `max_cpc × clearing / bid`
/// (never above the max CPC; the advertiser shares the auction discount).
pub fn cpc_charge(max_cpc: Micros, clearing: Micros, bid_price: Micros) -> Micros {
    if bid_price.0 <= 0 {
        return Micros::ZERO;
    }
    max_cpc.mul_div_floor(clearing.0.clamp(0, bid_price.0), bid_price.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas() {
        assert_eq!(impression_cost(Micros(2_000_001)), Micros(2_001), "rounded up");
        assert_eq!(
            cpm_charge(Micros(1_500_000), Micros(2_000_000), Micros(2_000_000)),
            Micros(1_500)
        );
        assert_eq!(
            cpm_charge(Micros(1_000_000), Micros(3_000_000), Micros(2_000_000)),
            Micros(1_500),
            "response currency brought back to base"
        );
        assert_eq!(
            cpc_charge(Micros(800_000), Micros(1_000_000), Micros(2_000_000)),
            Micros(400_000)
        );
        assert_eq!(
            cpc_charge(Micros(800_000), Micros(3_000_000), Micros(2_000_000)),
            Micros(800_000),
            "never above max CPC"
        );
    }

    /// Issue 17, item 7: `bid_price × 1000` overflowed in the charge.
    #[test]
    fn formulas_at_the_extremes() {
        let max = Micros(i64::MAX);
        assert_eq!(cpm_charge(max, max, max), Micros(i64::MAX / 1000));
        assert_eq!(cpm_charge(Micros(1), Micros(1), max), Micros::ZERO);
        assert_eq!(
            cpm_charge(max, Micros(1), Micros(0)),
            Micros::ZERO,
            "no division by zero"
        );
        assert_eq!(cpc_charge(max, max, max), max);
        assert_eq!(cpc_charge(max, Micros(1), Micros(0)), Micros::ZERO);
        assert_eq!(impression_cost(max), Micros(i64::MAX / 1000 + 1));
    }
}
