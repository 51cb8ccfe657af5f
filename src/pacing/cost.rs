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

/// A CPM campaign's charge for a billed impression: the clearing price (a
/// CPM in the response currency) brought back to base currency in
/// proportion to the bid (`bid_value` base, `bid_price` response
/// currency), per impression, rounded down.
pub fn cpm_charge(clearing: Micros, bid_value: Micros, bid_price: Micros) -> Micros {
    clearing.mul_div_floor(bid_value.0, bid_price.0 * 1000)
}

/// A CPC campaign's charge for a billable click: `max_cpc × clearing / bid`
/// (never above the max CPC; the advertiser shares the auction discount).
pub fn cpc_charge(max_cpc: Micros, clearing: Micros, bid_price: Micros) -> Micros {
    max_cpc.mul_div_floor(clearing.0.min(bid_price.0), bid_price.0)
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
}
