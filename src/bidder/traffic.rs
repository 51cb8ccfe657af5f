//! Traffic quality: crawlers, automation and data-centre addresses get no bid.

use std::net::IpAddr;

use crate::metrics::NoBidReason;
use crate::openrtb::BidRequest;
use crate::settings::{Settings, UserAgentKind};

/// The reason to refuse this request's traffic, if any.
pub fn screen(request: &BidRequest, settings: &Settings) -> Option<NoBidReason> {
    let device = request.device.as_ref()?;
    let screen = &settings.user_agent_screen;
    let brands = device
        .sua
        .iter()
        .flat_map(|sua| &sua.browsers)
        .filter_map(|b| b.brand.as_deref());
    let kind = device
        .ua
        .as_deref()
        .and_then(|ua| screen.classify(ua))
        .or_else(|| brands.filter_map(|b| screen.classify(b)).min());
    match kind {
        Some(UserAgentKind::Automation) => return Some(NoBidReason::NonHuman),
        Some(UserAgentKind::Crawler) => return Some(NoBidReason::Crawler),
        None => {}
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
    use crate::settings::{UserAgentKind, UserAgentScreen};

    #[test]
    fn classifies_user_agents_case_insensitively() {
        let screen = UserAgentScreen::new(&["headlesschrome"], &["bot".to_string(), "spider".to_string()]);
        assert_eq!(
            screen.classify("Mozilla/5.0 (compatible; Googlebot/2.1)"),
            Some(UserAgentKind::Crawler)
        );
        assert_eq!(
            screen.classify("Mozilla/5.0 HeadlessChrome/120"),
            Some(UserAgentKind::Automation)
        );
        assert_eq!(screen.classify("Mozilla/5.0 (X11; Linux) Firefox/120.0"), None);
    }
}
