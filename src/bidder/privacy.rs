//! Privacy signals: may this request's personal data be used?
//!
//! Personal data (the user's segments, age and gender) is off when:
//! `regs.coppa=1`; GDPR applies (`regs.gdpr` or `regs.ext.gdpr`) without a
//! TCF v2 consent string granting purposes 1, 3 and 4 (and our vendor id,
//! when configured); the US Privacy string opts out of sale; a GPP string
//! opts out (US national section decoded; other US state sections, whose
//! layouts differ, are treated as opted out); `device.lmt=1` or `dnt=1`;
//! a privacy signal of the wrong type that could not be read.
//! Contextual targeting is unaffected.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::openrtb::{BidRequest, RegsExt};

/// Why personal data may not be used (the first reason found).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restriction {
    /// `regs.coppa` is set.
    Coppa,
    /// GDPR applies and the TCF string does not grant the purposes (or our vendor).
    GdprNoConsent,
    /// The US Privacy string opts out of sale.
    UsPrivacyOptOut,
    /// A GPP string opts out (or has a US state section that is not decoded).
    GppOptOut,
    /// `device.lmt` or `device.dnt` is set.
    LimitAdTracking,
    /// A privacy signal had the wrong type and could not be read: the
    /// most restrictive reading ([`crate::openrtb::repair`]).
    Unreadable,
}

/// Reads bits from a byte string, most significant first.
struct Bits<'a> {
    bytes: &'a [u8],
}

impl Bits<'_> {
    fn get(&self, offset: usize, len: usize) -> Option<u64> {
        if offset + len > self.bytes.len() * 8 {
            return None;
        }
        let mut value = 0u64;
        for i in offset..offset + len {
            let bit = (self.bytes[i / 8] >> (7 - i % 8)) & 1;
            value = value << 1 | bit as u64;
        }
        Some(value)
    }
}

fn decode_b64(segment: &str) -> Option<Vec<u8>> {
    // Consent strings are base64url, sometimes padded.
    URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()
}

/// True when a TCF v2 string consents to purposes 1, 3 and 4 (store and
/// access, personalised profile, personalised ads) and, if `vendor` is
/// given, to that vendor.
pub fn tcf_allows_personalisation(consent: &str, vendor: Option<u16>) -> bool {
    let core = consent.split('.').next().unwrap_or("");
    let Some(bytes) = decode_b64(core) else {
        return false;
    };
    let bits = Bits { bytes: &bytes };
    if bits.get(0, 6) != Some(2) {
        return false;
    }
    const PURPOSES: usize = 152;
    let purpose = |n: usize| bits.get(PURPOSES + n - 1, 1) == Some(1);
    if !(purpose(1) && purpose(3) && purpose(4)) {
        return false;
    }
    let Some(vendor) = vendor else { return true };
    let vendor = vendor as u64;
    let (Some(max_vendor), Some(is_range)) = (bits.get(213, 16), bits.get(229, 1)) else {
        return false;
    };
    if vendor == 0 || vendor > max_vendor {
        return false;
    }
    if is_range == 0 {
        return bits.get(230 + vendor as usize - 1, 1) == Some(1);
    }
    let Some(entries) = bits.get(230, 12) else {
        return false;
    };
    let mut at = 242;
    for _ in 0..entries {
        let (Some(is_range), Some(start)) = (bits.get(at, 1), bits.get(at + 1, 16)) else {
            return false;
        };
        let end = if is_range == 1 {
            let Some(end) = bits.get(at + 17, 16) else {
                return false;
            };
            at += 33;
            end
        } else {
            at += 17;
            start
        };
        if (start..=end).contains(&vendor) {
            return true;
        }
    }
    false
}

/// A US Privacy string (`1YNN`) opts out when its third character is `Y`.
pub fn us_privacy_opts_out(usp: &str) -> bool {
    usp.as_bytes().get(2).is_some_and(|c| c.eq_ignore_ascii_case(&b'Y'))
}

/// Reads a GPP string with its section ids; true when a US section opts out.
pub fn gpp_opts_out(gpp: &str, section_ids: &[i32]) -> bool {
    let sections = gpp.split('~').skip(1);
    for (&id, section) in section_ids.iter().zip(sections) {
        let opted_out = match id {
            // uspv1: the US Privacy string itself.
            6 => us_privacy_opts_out(section),
            // usnat: SaleOptOut, SharingOptOut, TargetedAdvertisingOptOut
            // are 2-bit fields at bits 18, 20, 22; 1 means opted out.
            7 => {
                let core = section.split('.').next().unwrap_or("");
                match decode_b64(core) {
                    Some(bytes) => {
                        let bits = Bits { bytes: &bytes };
                        [18, 20, 22].iter().any(|&at| bits.get(at, 2).is_none_or(|v| v == 1))
                    }
                    None => true,
                }
            }
            // US state sections: layouts differ per state; be conservative.
            8..=22 => true,
            _ => false,
        };
        if opted_out {
            return true;
        }
    }
    false
}

/// The first reason this request's personal data may not be used.
pub fn restriction(request: &BidRequest, gdpr_vendor: Option<u16>) -> Option<Restriction> {
    let no_ext = RegsExt::default();
    let regs = request.regs.as_ref();
    let regs_ext = regs.and_then(|r| r.ext.as_ref()).unwrap_or(&no_ext);
    if regs.is_some_and(|r| r.coppa.0) {
        return Some(Restriction::Coppa);
    }
    if request.unreadable.privacy {
        return Some(Restriction::Unreadable);
    }
    if let Some(device) = &request.device
        && (device.lmt.0 || device.dnt.0)
    {
        return Some(Restriction::LimitAdTracking);
    }
    let gdpr_applies = regs.and_then(|r| r.gdpr).or(regs_ext.gdpr).is_some_and(|f| f.0);
    if gdpr_applies {
        let user = request.user.as_ref();
        let consent = user.and_then(|u| {
            u.consent
                .as_deref()
                .or(u.ext.as_ref().and_then(|ext| ext.consent.as_deref()))
        });
        if !consent.is_some_and(|c| tcf_allows_personalisation(c, gdpr_vendor)) {
            return Some(Restriction::GdprNoConsent);
        }
    }
    let usp = regs
        .and_then(|r| r.us_privacy.as_deref())
        .or(regs_ext.us_privacy.as_deref());
    if usp.is_some_and(us_privacy_opts_out) {
        return Some(Restriction::UsPrivacyOptOut);
    }
    let gpp = regs.and_then(|r| r.gpp.as_deref()).or(regs_ext.gpp.as_deref());
    let gpp_sid = regs
        .and_then(|r| r.gpp_sid.as_deref())
        .or(regs_ext.gpp_sid.as_deref())
        .unwrap_or(&[]);
    if gpp.is_some_and(|g| gpp_opts_out(g, gpp_sid)) {
        return Some(Restriction::GppOptOut);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a TCF v2 core string with the given purposes and a bitfield of
    /// vendors.
    fn tcf(purposes: &[usize], vendors: &[u16], max_vendor: u16) -> String {
        let mut bits = vec![0u8; 230 + max_vendor as usize];
        let mut put = |offset: usize, len: usize, value: u64| {
            for i in 0..len {
                bits[offset + i] = ((value >> (len - 1 - i)) & 1) as u8;
            }
        };
        put(0, 6, 2);
        for &p in purposes {
            put(152 + p - 1, 1, 1);
        }
        put(213, 16, max_vendor as u64);
        put(229, 1, 0);
        for &v in vendors {
            put(230 + v as usize - 1, 1, 1);
        }
        let bytes: Vec<u8> = bits
            .chunks(8)
            .map(|c| c.iter().enumerate().fold(0u8, |b, (i, &bit)| b | bit << (7 - i)))
            .collect();
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn tcf_purposes_and_vendor() {
        assert!(tcf_allows_personalisation(&tcf(&[1, 3, 4], &[], 10), None));
        assert!(!tcf_allows_personalisation(&tcf(&[1, 3], &[], 10), None));
        assert!(tcf_allows_personalisation(&tcf(&[1, 2, 3, 4], &[7], 10), Some(7)));
        assert!(!tcf_allows_personalisation(&tcf(&[1, 2, 3, 4], &[6], 10), Some(7)));
        assert!(!tcf_allows_personalisation("not base64 !", None));
        assert!(!tcf_allows_personalisation("", None));
    }

    #[test]
    fn us_privacy_and_gpp() {
        assert!(us_privacy_opts_out("1YYN"));
        assert!(!us_privacy_opts_out("1YNN"));
        assert!(!us_privacy_opts_out("1---"));
        assert!(!us_privacy_opts_out("1"));
        assert!(!gpp_opts_out("header~1YNN", &[6]));
        assert!(gpp_opts_out("header~1YYN", &[6]));
        assert!(gpp_opts_out("header~xyz", &[8]));
        assert!(!gpp_opts_out("header~anything", &[2]));
    }

    #[test]
    fn request_level_signals() {
        let parse = |json: &str| -> Option<Restriction> {
            let request: BidRequest = serde_json::from_str(json).unwrap();
            restriction(&request, None)
        };
        assert_eq!(parse(r#"{"regs":{"coppa":1}}"#), Some(Restriction::Coppa));
        assert_eq!(
            parse(r#"{"regs":{"ext":{"gdpr":1}}}"#),
            Some(Restriction::GdprNoConsent)
        );
        assert_eq!(
            parse(r#"{"regs":{"gdpr":1},"user":{"consent":""}}"#),
            Some(Restriction::GdprNoConsent)
        );
        let consented = format!(
            r#"{{"regs":{{"gdpr":1}},"user":{{"ext":{{"consent":"{}"}}}}}}"#,
            tcf(&[1, 3, 4], &[], 1)
        );
        assert_eq!(parse(&consented), None);
        assert_eq!(
            parse(r#"{"regs":{"ext":{"us_privacy":"1YYY"}}}"#),
            Some(Restriction::UsPrivacyOptOut)
        );
        assert_eq!(parse(r#"{"device":{"lmt":1}}"#), Some(Restriction::LimitAdTracking));
        assert_eq!(parse(r#"{"regs":{"ext":{"gdpr":0}}}"#), None);
        assert_eq!(parse(r#"{}"#), None);
    }
}
