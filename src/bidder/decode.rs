//! Stage 1, decode: body bytes → a validated [`BidRequest`].
//!
//! The request borrows from the body. A known field of the wrong type does
//! not refuse the request: the body is repaired ([`crate::openrtb::repair`]:
//! coerced, given its restrictive reading, or dropped) and decoded again
//! from the repaired text, and every field treated is reported for the
//! metrics. Validation keeps to what makes a request unusable (not JSON, not
//! an object, no id, no impressions, an impression that is not an object,
//! has no id or no media, duplicate impression ids).

use crate::openrtb::BidRequest;
use crate::openrtb::repair::{self, Repair, Unrepairable};

/// A decoded request, and the fields the repair treated (empty for a
/// well-typed request).
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The request.
    pub request: BidRequest<'a>,
    /// Fields coerced, restricted or dropped to read it.
    pub repairs: Vec<Repair>,
}

/// Why a body is not a bid request; answered with 400 and this text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The body is not UTF-8.
    #[error("body is not valid UTF-8")]
    Utf8,
    /// The body is not JSON, or a field could not be repaired (serde's message).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The body is JSON but not an object.
    #[error("request is not a JSON object")]
    NotObject,
    /// The impression at this position (from 0) is not an object.
    #[error("impression {0} is not an object")]
    ImpNotObject(usize),
    /// `id` is absent or blank.
    #[error("missing request id")]
    MissingId,
    /// `imp` is absent or empty.
    #[error("request has no impressions")]
    NoImpressions,
    /// The impression at this position (from 0) has no id.
    #[error("impression {0} has no id")]
    ImpMissingId(usize),
    /// The impression with this id offers no media object.
    #[error("impression {0:?} has no banner, video, audio or native object")]
    ImpNoMedia(String),
    /// Two impressions share this id.
    #[error("duplicate impression id {0:?}")]
    DuplicateImpId(String),
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Deepest JSON nesting accepted. Real requests nest under ten levels;
/// serde_json limits what it decodes to 128 but skips unknown fields of any
/// depth, so the limit is checked once over the raw bytes.
pub const MAX_DEPTH: usize = 64;

/// True when no array or object nests deeper than `max` (strings skipped).
fn nesting_within(body: &[u8], max: usize) -> bool {
    // Nesting never goes deeper than the number of `[` and `{` in the
    // body: counting them is one vectorised pass, and for nearly every
    // request it settles the question without the byte-by-byte scan.
    let openers = body.iter().fold(0u32, |n, &b| n + u32::from((b == b'[') | (b == b'{')));
    if openers as usize <= max {
        return true;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Stage 1: parses and validates a request body, borrowing from it, or
/// from `repaired` when its fields had to be repaired.
pub fn decode<'a>(body: &'a [u8], repaired: &'a mut String) -> Result<Decoded<'a>, DecodeError> {
    let mut repairs = Vec::new();
    let request = decode_noting(body, repaired, &mut repairs)?;
    Ok(Decoded { request, repairs })
}

/// [`decode`] for the bid path: the request itself (no wrapper to move it
/// through), the fields repaired noted in `repairs`.
pub fn decode_noting<'a>(
    body: &'a [u8],
    repaired: &'a mut String,
    repairs: &mut Vec<Repair>,
) -> Result<BidRequest<'a>, DecodeError> {
    // from_str after one UTF-8 check is ~2× faster than from_slice.
    let text = std::str::from_utf8(body).map_err(|_| DecodeError::Utf8)?;
    if !nesting_within(body, MAX_DEPTH) {
        return Err(DecodeError::TooDeep);
    }
    let request = match serde_json::from_str::<BidRequest>(text) {
        Ok(request) => request,
        Err(_) => {
            let decoded = repair_and_decode(text, repaired)?;
            *repairs = decoded.repairs;
            decoded.request
        }
    };
    validate(&request)?;
    Ok(request)
}

/// The slow path, for a body the typed decoder refused: repaired, decoded
/// again, marked with the restrictive readings.
#[cold]
fn repair_and_decode<'a>(text: &str, repaired: &'a mut String) -> Result<Decoded<'a>, DecodeError> {
    let fixed = repair::repair(text).map_err(|e| match e {
        Unrepairable::NotJson(message) => DecodeError::Json(message),
        Unrepairable::NotObject => DecodeError::NotObject,
        Unrepairable::ImpNotObject(i) => DecodeError::ImpNotObject(i),
    })?;
    *repaired = fixed.json;
    let mut request: BidRequest = serde_json::from_str(repaired).map_err(|e| DecodeError::Json(e.to_string()))?;
    fixed.marks.apply(&mut request);
    Ok(Decoded {
        request,
        repairs: fixed.repairs,
    })
}

/// Up to this many impressions, duplicates are found by comparing pairs;
/// past it, through a hash set (linear: thousands of impressions cost
/// microseconds, not the 120 ms the quadratic check took at 6,800).
const FEW_IMPS: usize = 16;

fn validate(request: &BidRequest) -> Result<(), DecodeError> {
    if request.id.as_deref().is_none_or(|id| id.trim().is_empty()) {
        return Err(DecodeError::MissingId);
    }
    if request.imp.is_empty() {
        return Err(DecodeError::NoImpressions);
    }
    for (i, imp) in request.imp.iter().enumerate() {
        let id = imp
            .id
            .as_deref()
            .filter(|id| !id.is_empty())
            .ok_or(DecodeError::ImpMissingId(i))?;
        if !imp.has_media() {
            return Err(DecodeError::ImpNoMedia(id.to_string()));
        }
        // A handful of impressions (the usual case): comparing with the
        // earlier ones is cheapest; many are checked through a set below.
        if i < FEW_IMPS && request.imp[..i].iter().any(|other| other.id.as_deref() == Some(id)) {
            return Err(DecodeError::DuplicateImpId(id.to_string()));
        }
    }
    if request.imp.len() > FEW_IMPS {
        let mut seen = std::collections::HashSet::with_capacity(request.imp.len());
        for imp in &request.imp {
            let id = imp.id.as_deref().unwrap_or_default();
            if !seen.insert(id) {
                return Err(DecodeError::DuplicateImpId(id.to_string()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17, item 15: the duplicate check was quadratic (6,800 imps:
    /// 120–150 ms on a serving thread). Past a handful it goes through a
    /// set, and still finds a duplicate anywhere.
    #[test]
    fn duplicate_impressions_are_found_among_thousands() {
        let imps: Vec<String> = (0..6_800)
            .map(|i| format!(r#"{{"id":"{}","banner":{{}}}}"#, if i == 6_799 { 17 } else { i }))
            .collect();
        let body = format!(r#"{{"id":"r","imp":[{}]}}"#, imps.join(","));
        assert_eq!(
            decode(body.as_bytes(), &mut String::new()).unwrap_err(),
            DecodeError::DuplicateImpId("17".into())
        );
        let unique = body.replace(r#""id":"17","banner":{}}]"#, r#""id":"x","banner":{}}]"#);
        assert!(decode(unique.as_bytes(), &mut String::new()).is_ok());
    }

    #[test]
    fn rejects_unusable_requests_with_reasons() {
        let err = |json: &str| decode(json.as_bytes(), &mut String::new()).unwrap_err();
        assert_eq!(err(r#"{"imp":[{"id":"1","banner":{}}]}"#), DecodeError::MissingId);
        assert_eq!(err(r#"{"id":"r","imp":[]}"#), DecodeError::NoImpressions);
        assert_eq!(err(r#"{"id":"r","imp":[{"banner":{}}]}"#), DecodeError::ImpMissingId(0));
        assert_eq!(
            err(r#"{"id":"r","imp":[{"id":"1"}]}"#),
            DecodeError::ImpNoMedia("1".into())
        );
        assert_eq!(
            err(r#"{"id":"r","imp":[{"id":"1","banner":{}},{"id":"1","video":{}}]}"#),
            DecodeError::DuplicateImpId("1".into())
        );
        assert_eq!(decode(b"\xff\xfe", &mut String::new()).unwrap_err(), DecodeError::Utf8);
        assert!(matches!(err("{"), DecodeError::Json(_)));
        assert_eq!(
            err(r#"{"id":{"x":1},"imp":[{"id":"1","banner":{}}]}"#),
            DecodeError::MissingId
        );
        assert_eq!(err("[]"), DecodeError::NotObject);
        assert_eq!(err(r#"{"id":"r","imp":["x"]}"#), DecodeError::ImpNotObject(0));
    }

    #[test]
    fn deep_nesting_is_refused_even_in_skipped_fields() {
        let deep = format!(
            r#"{{"id":"r","imp":[{{"id":"1","banner":{{}}}}],"ext":{}1{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(
            decode(deep.as_bytes(), &mut String::new()).unwrap_err(),
            DecodeError::TooDeep
        );
        assert!(nesting_within(br#"{"a":"[[[[[[[[","b":[[1]]}"#, 3));
        assert!(nesting_within(br#"{"a":"\"[[[[[[[["}"#, 1));
        assert!(!nesting_within(b"[[[[", 3));
        // Many openers, little depth: past the quick count, the scan.
        let wide = format!("[{}[]]", "[],".repeat(100));
        assert!(nesting_within(wide.as_bytes(), 2));
        assert!(!nesting_within(wide.as_bytes(), 1));
    }

    #[test]
    fn tolerates_new_enum_values_and_unknown_fields() {
        let json = r#"{"id":"r","imp":[{"id":"1","video":{"protocols":[11,12],"mimes":["video/mp4"]},"ext":{"x":1}}],
            "device":{"devicetype":9,"connectiontype":8,"lmt":"0","sua":{"browsers":[]}},"future":{"a":[1,2]},"at":500}"#;
        let mut repaired = String::new();
        let request = decode(json.as_bytes(), &mut repaired).unwrap().request;
        assert_eq!(request.device.unwrap().devicetype.unwrap().0, 9);
        assert_eq!(request.at.unwrap().0, 500);
    }
}
