//! Loss reason codes (OpenRTB 2.6, list 5.25): what `${AUCTION_LOSS}`
//! carries in a loss notice.

use std::borrow::Cow;

/// A loss reason code, open: a code outside the list (exchange-specific
/// codes are 500 and up) is kept as its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LossReason(pub u32);

impl LossReason {
    /// Reads the macro's value: a decimal code (at most 9 digits); `None`
    /// for anything else (absent, the macro left unexpanded, garbage).
    pub fn parse(text: &str) -> Option<LossReason> {
        if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(LossReason)
    }

    /// Snake-case name of a listed code, as metrics and reports label it;
    /// another code as its number.
    pub fn name(self) -> Cow<'static, str> {
        let name = match self.0 {
            0 => "bid_won",
            1 => "internal_error",
            2 => "impression_opportunity_expired",
            3 => "invalid_bid_response",
            4 => "invalid_deal_id",
            5 => "invalid_auction_id",
            6 => "invalid_advertiser_domain",
            7 => "missing_markup",
            8 => "missing_creative_id",
            9 => "missing_bid_price",
            10 => "missing_minimum_creative_approval_data",
            100 => "below_auction_floor",
            101 => "below_deal_floor",
            102 => "lost_to_higher_bid",
            103 => "lost_to_pmp_deal",
            104 => "buyer_seat_blocked",
            200 => "creative_filtered_general",
            201 => "creative_filtered_pending_processing",
            202 => "creative_filtered_disapproved",
            203 => "creative_filtered_size_not_allowed",
            204 => "creative_filtered_incorrect_format",
            205 => "creative_filtered_advertiser_exclusions",
            206 => "creative_filtered_app_store_id_exclusions",
            207 => "creative_filtered_not_secure",
            208 => "creative_filtered_language_exclusions",
            209 => "creative_filtered_category_exclusions",
            210 => "creative_filtered_creative_attribute_exclusions",
            211 => "creative_filtered_ad_type_exclusions",
            212 => "creative_filtered_animation_too_long",
            213 => "creative_filtered_not_allowed_in_deal",
            code => return Cow::Owned(code.to_string()),
        };
        Cow::Borrowed(name)
    }

    /// The name of an optional reason: `unknown` when the exchange sent
    /// none that could be read.
    pub fn name_of(reason: Option<LossReason>) -> Cow<'static, str> {
        reason.map_or(Cow::Borrowed("unknown"), LossReason::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_and_name_as_listed_and_others_as_numbers() {
        assert_eq!(LossReason::parse("102"), Some(LossReason(102)));
        assert_eq!(LossReason::parse("0"), Some(LossReason(0)));
        for bad in ["", "${AUCTION_LOSS}", "-1", "1.0", " 1", "1234567890"] {
            assert_eq!(LossReason::parse(bad), None, "{bad}");
        }
        assert_eq!(LossReason(102).name(), "lost_to_higher_bid");
        assert_eq!(LossReason(100).name(), "below_auction_floor");
        assert_eq!(LossReason(213).name(), "creative_filtered_not_allowed_in_deal");
        assert_eq!(LossReason(1042).name(), "1042");
        assert_eq!(LossReason(11).name(), "11");
        assert_eq!(LossReason::name_of(None), "unknown");
    }
}
