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

/// A CPC campaign's charge for a billable click: `max_cpc × clearing /
/// value`, where `value` is what the impression was worth to the campaign
/// before shading (response currency, as the clearing price), or the bid
/// when the bid was not shaded or its URL carries no value. The clearing
/// price counts at most the bid and the value at least the bid, so the
/// charge is never above the max CPC; rounded down.
///
/// Why the value and not the bid: at first price the clearing price is the
/// bid, so `max_cpc × clearing / bid` is the max CPC whatever the bid —
/// what shading saves would never reach the advertiser. Against the value
/// (`max_cpc × P(click)` per impression), a click costs what its impression
/// cost divided by its predicted click rate: in expectation the media cost,
/// when the prediction is calibrated.
pub fn cpc_charge(max_cpc: Micros, clearing: Micros, bid_price: Micros, value: Option<Micros>) -> Micros {
    if bid_price.0 <= 0 {
        return Micros::ZERO;
    }
    let value = value.map_or(bid_price, |v| v.max(bid_price));
    max_cpc.mul_div_floor(clearing.0.clamp(0, bid_price.0), value.0)
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
            cpc_charge(Micros(800_000), Micros(1_000_000), Micros(2_000_000), None),
            Micros(400_000)
        );
        assert_eq!(
            cpc_charge(Micros(800_000), Micros(3_000_000), Micros(2_000_000), None),
            Micros(800_000),
            "never above max CPC"
        );
        // Shaded at first price: 2.00 bid on a 5.00 value, cleared at the bid.
        assert_eq!(
            cpc_charge(
                Micros(1_000_000),
                Micros(2_000_000),
                Micros(2_000_000),
                Some(Micros(5_000_000))
            ),
            Micros(400_000),
            "max CPC × clearing / value"
        );
        assert_eq!(
            cpc_charge(
                Micros(1_000_000),
                Micros(3_000_000),
                Micros(2_000_000),
                Some(Micros(1_000_000))
            ),
            Micros(1_000_000),
            "a value below the bid counts as the bid: never above max CPC"
        );
        assert_eq!(
            cpc_charge(Micros(1_000_000), Micros(1), Micros(3), Some(Micros(7))),
            Micros(142_857),
            "rounded down"
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
        assert_eq!(cpc_charge(max, max, max, None), max);
        assert_eq!(cpc_charge(max, Micros(1), Micros(0), None), Micros::ZERO);
        assert_eq!(impression_cost(max), Micros(i64::MAX / 1000 + 1));
    }
}
