//! Traffic quality: crawlers, automation and data-centre addresses get no bid.

use std::net::IpAddr;

use crate::config::Settings;
use crate::metrics::NoBidReason;
use crate::openrtb::BidRequest;

/// User-agent marks of browser automation (non-human traffic, code 4).
const AUTOMATION: &[&str] = &[
    "headlesschrome",
    "phantomjs",
    "selenium",
    "puppeteer",
    "playwright",
    "webdriver",
];

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// The reason to refuse this request's traffic, if any.
pub fn screen(request: &BidRequest, settings: &Settings) -> Option<NoBidReason> {
    let device = request.device.as_ref()?;
    if let Some(ua) = device.ua.as_deref() {
        if AUTOMATION.iter().any(|m| contains_ignore_case(ua, m)) {
            return Some(NoBidReason::NonHuman);
        }
        if settings
            .bot_user_agents
            .iter()
            .any(|m| contains_ignore_case(ua, m))
        {
            return Some(NoBidReason::Crawler);
        }
    }
    if !settings.datacenter_ranges.is_empty() {
        let ip = device
            .ip
            .as_deref()
            .or(device.ipv6.as_deref())
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        if ip.is_some_and(|ip| settings.datacenter_ranges.iter().any(|r| r.contains(ip))) {
            return Some(NoBidReason::DataCenter);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_substring() {
        assert!(contains_ignore_case(
            "Mozilla/5.0 (compatible; Googlebot/2.1)",
            "bot"
        ));
        assert!(contains_ignore_case(
            "x HeadlessChrome/120",
            "headlesschrome"
        ));
        assert!(!contains_ignore_case("Mozilla/5.0 Safari", "bot"));
    }
}
