//! Stage 4, price: what to bid, given the campaign's value and the floor.

use crate::money::Micros;
use crate::openrtb::AuctionType;

/// Deals with `at=3` are fixed-price: the bid is the deal floor.
const FIXED_PRICE: AuctionType = AuctionType(3);

/// The bid for an impression worth `value` (CPM, base currency) against
/// `floor`: `None` when the value does not reach the floor. First-price
/// auctions are shaded by `shading_ppm` but never below the floor;
/// second-price auctions bid the value.
pub fn bid_price(value: Micros, floor: Micros, auction: AuctionType, shading_ppm: u32) -> Option<Micros> {
    if value.0 <= 0 || value < floor {
        return None;
    }
    let price = match auction {
        AuctionType::FIRST_PRICE => value.mul_div_floor(shading_ppm as i64, 1_000_000).max(floor),
        FIXED_PRICE => floor,
        _ => value,
    };
    (price.0 > 0).then_some(price)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHADE: u32 = 850_000;

    #[test]
    fn second_price_bids_value_first_price_shades() {
        let (value, floor) = (Micros(2_000_000), Micros(500_000));
        assert_eq!(bid_price(value, floor, AuctionType::SECOND_PRICE, SHADE), Some(value));
        assert_eq!(
            bid_price(value, floor, AuctionType::FIRST_PRICE, SHADE),
            Some(Micros(1_700_000))
        );
        assert_eq!(bid_price(value, floor, AuctionType(500), SHADE), Some(value));
    }

    #[test]
    fn never_below_floor_nor_above_value() {
        let value = Micros(2_000_000);
        assert_eq!(
            bid_price(value, Micros(1_900_000), AuctionType::FIRST_PRICE, SHADE),
            Some(Micros(1_900_000))
        );
        assert_eq!(
            bid_price(value, Micros(2_000_001), AuctionType::SECOND_PRICE, SHADE),
            None
        );
        assert_eq!(
            bid_price(value, Micros(1_200_000), FIXED_PRICE, SHADE),
            Some(Micros(1_200_000))
        );
        assert_eq!(bid_price(Micros(0), Micros(0), AuctionType::SECOND_PRICE, SHADE), None);
    }
}
