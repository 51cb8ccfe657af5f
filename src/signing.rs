//! Signed tracking URLs.
//!
//! Format: `{base}/t/{event}?{payload}&sig={tag}` and, for the win and
//! billing notices, `…&sig={tag}&price=${AUCTION_PRICE}`; for the loss
//! notice, `…&sig={tag}&reason=${AUCTION_LOSS}&mtw=${AUCTION_MIN_TO_WIN}`.
//! The payload is a query string of the bid's facts ([`BidToken`]).
//!
//! A bid's URLs are signed in pairs, HMAC-SHA256 over the payload, a NUL
//! and the pair's label: `pair:click+imp` (the two URLs in the markup, which a
//! page sees), `pair:win+bill` (the notices only the exchange is sent),
//! `pair:loss`;
//! each 256-bit output is cut into the two URLs' 128-bit tags, base64url.
//! The payload is hashed once for all of them (its HMAC state is shared),
//! then finalised once per pair: two HMAC finalisations per bid where a tag
//! per URL took four. The halves of one output are independent, and no
//! output tells anything of another's: a page script holding the markup
//! cannot forge the notices. Everything but the macros' values is signed,
//! so any edit of the event, a field or the tag fails verification
//! (compared in constant time). The previous key is still accepted during
//! a rotation.
//!
//! URLs signed before the pairs (`…&s={signature}`, HMAC-SHA256 over
//! `{payload}\0{event}`, one per URL) still verify until they expire
//! (their notice window, `e`); the old parameter name also clashed with the
//! shading slice's `s`. The user key (`u`) is masked the same way in both.
//!
//! Where the ad was to show ([`Place`]: domain, country, device type)
//! travels as short optional fields (`d`, `g`, `y`) after the bid's facts,
//! signed with them, so that reports can group by them and nobody can
//! re-label an event; URLs signed before they were carried parse with an
//! unknown place. The experiment arm a bid was made in (`a`,
//! `{experiment}/{arm}`) is signed the same way, and carried on into the
//! click id, so that every event and conversion is reported under the arm
//! it was made in, whatever the weights become later; URLs and click ids
//! signed before it was carried have none.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::money::Micros;

type HmacSha256 = Hmac<Sha256>;

/// Signature length in bytes (before base64): 128 bits.
const SIGNATURE_BYTES: usize = 16;
/// The labels of the signed pairs of URLs, by [`Event::slot`] / 2 (the loss
/// notice alone in the third). `pair:` keeps every message apart from the
/// legacy ones (`{payload}\0{event}`): no tag is valid under both schemes.
const PAIRS: [&[u8]; 3] = [b"\0pair:click+imp", b"\0pair:win+bill", b"\0pair:loss"];
/// One impression, in the thousandths of `imp.qty` that tokens carry.
pub const QTY_ONE: i64 = 1000;
/// The largest multiplier a token may carry, thousandths (one million).
pub const MAX_QTY_MILLI: i64 = 1_000_000_000;

/// The price macro exchanges replace with the clearing price.
pub const AUCTION_PRICE_MACRO: &str = "${AUCTION_PRICE}";
/// The macro exchanges replace with the loss reason code (OpenRTB 2.6,
/// list 5.25).
pub const AUCTION_LOSS_MACRO: &str = "${AUCTION_LOSS}";
/// The macro some exchanges replace with the price that would have won.
pub const AUCTION_MIN_TO_WIN_MACRO: &str = "${AUCTION_MIN_TO_WIN}";

/// A tracking event, one URL each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Win notice (`nurl`).
    Win,
    /// Billing notice (`burl`).
    Bill,
    /// Impression pixel in the markup.
    Impression,
    /// Click-through link in the markup.
    Click,
    /// Loss notice (`lurl`), for exchanges that send them.
    Loss,
}

impl Event {
    /// The number of tag slots: two per signed pair ([`PAIRS`]).
    const SLOTS: usize = 6;

    /// The event's slot: its pair (`slot / 2`) and its half of the pair's
    /// output (`slot % 2`).
    fn slot(self) -> usize {
        match self {
            Event::Click => 0,
            Event::Impression => 1,
            Event::Win => 2,
            Event::Bill => 3,
            Event::Loss => 4,
        }
    }

    /// The event's path segment: `/t/{path}`.
    pub fn path(self) -> &'static str {
        match self {
            Event::Win => "win",
            Event::Bill => "bill",
            Event::Impression => "imp",
            Event::Click => "click",
            Event::Loss => "loss",
        }
    }

    /// The event of a path segment; `None` for an unknown one.
    pub fn from_path(path: &str) -> Option<Event> {
        match path {
            "win" => Some(Event::Win),
            "bill" => Some(Event::Bill),
            "imp" => Some(Event::Impression),
            "click" => Some(Event::Click),
            "loss" => Some(Event::Loss),
            _ => None,
        }
    }

    /// The unsigned macro parameters after the signature, in order.
    fn macros(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Event::Win | Event::Bill => &[("price", AUCTION_PRICE_MACRO)],
            Event::Loss => &[("reason", AUCTION_LOSS_MACRO), ("mtw", AUCTION_MIN_TO_WIN_MACRO)],
            Event::Impression | Event::Click => &[],
        }
    }
}

/// Why a tracking URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrackingError {
    /// The path names no tracking event.
    #[error("unknown tracking event")]
    UnknownEvent,
    /// The query has no well-formed signature, or a field cannot be read.
    #[error("missing or malformed signature")]
    Malformed,
    /// The signature matches neither the current nor the previous key.
    #[error("signature does not match")]
    BadSignature,
    /// The signed payload lacks a field (the URL format changed or was forged).
    #[error("signed payload is missing field {0}")]
    MissingField(&'static str),
    /// An encrypted clearing price fails its integrity check: altered, or
    /// not the exchange's.
    #[error("encrypted price fails its integrity check")]
    BadPriceSignature,
}

/// The pricing a bid was made under, as signed into its URLs: a notice
/// is billed from it even when the campaign has changed or gone since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedPricing {
    /// Per impression: the clearing price.
    Cpm,
    /// Per click, at most this max CPC (base-currency micros) as it was
    /// when the bid was made.
    Cpc {
        /// The max CPC at bid time.
        max_cpc: Micros,
        /// The impression's value to the campaign before shading (CPM
        /// micros, response currency, `w`), when the bid was shaded below
        /// it: a click is then charged `max_cpc × clearing / value`
        /// (`pacing::cost::cpc_charge`). `None` for an unshaded bid and for
        /// URLs signed before it was carried (charged `max_cpc × clearing /
        /// bid`, as before).
        value: Option<Micros>,
    },
}

/// What a bid's tracking URLs carry. Its text fields are `String`s as
/// read back from a URL, and borrowed (`BidToken<&str>`) where a bid
/// writes its payload: nothing is copied just to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidToken<S = String> {
    /// Bid id (`bid.id`): the key for deduplicating the bid's events.
    pub bid_id: S,
    /// The bid request's id.
    pub request_id: S,
    /// The impression's id.
    pub imp_id: S,
    /// Campaign id.
    pub campaign: S,
    /// Creative id.
    pub creative: S,
    /// Name of the exchange the bid went to.
    pub exchange: S,
    /// Bid price in the response currency (CPM micros).
    pub bid_price: Micros,
    /// The same bid in the base currency (CPM micros).
    pub bid_value: Micros,
    /// Response currency (ISO 4217), the currency of `bid_price` and the clearing price.
    pub currency: S,
    /// Unix seconds at bid time.
    pub issued_at: i64,
    /// The user's key (0 when unknown).
    pub user: u64,
    /// The bid came from a test request: its events are never billed.
    pub test: bool,
    /// Until when (Unix seconds, exclusive) the win or billing notice is
    /// charged; later it is late. URLs signed before it was carried get
    /// the issue time plus the default window.
    pub notice_until: i64,
    /// The pricing at bid time; `None` for URLs signed before it was
    /// carried (the campaign's current pricing applies).
    pub pricing: Option<SignedPricing>,
    /// Where the ad was to show (unknown for URLs signed before it was
    /// carried).
    pub place: Place,
    /// How many impressions one display counts for (`imp.qty`),
    /// thousandths: 1000 is one. Billing and the reservation scale with it.
    pub qty_milli: i64,
    /// The experiment arm of the bid, `{experiment}/{arm}`; `None` without
    /// an experiment (and for URLs signed before arms were carried).
    pub arm: Option<S>,
    /// A first-price bid's shading slice (exchange, placement, hour: see
    /// `pacing::shading`), for learning its win rate; `None` for other
    /// bids.
    pub shading_slice: Option<u16>,
}

/// Where a bid's ad was to show, as reports group it: compact codes signed
/// into the tracking URLs (`d`, `g`, `y`) and copied into ledger records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Place {
    /// Site domain, else app bundle or app domain, lowercase, at most
    /// [`MAX_DOMAIN_BYTES`]; empty when unknown.
    pub domain: String,
    /// `device.geo.country` as sent (ISO-3166-1 alpha-3 in OpenRTB),
    /// uppercase, two or three letters; empty when unknown or malformed.
    pub country: String,
    /// AdCOM device type (`device.devicetype`, 1–99); 0 when unknown.
    pub device: u8,
}

/// Longest domain carried: longer ones are cut (at a character boundary),
/// so that a hostile request cannot make the URLs long.
pub const MAX_DOMAIN_BYTES: usize = 64;

impl Place {
    /// The place's optional payload fields (`&d=…&g=…&y=…`), each only
    /// when known, written straight into `out` from the request's borrowed
    /// text (the bid path allocates nothing for them). `domain` is
    /// lowercased and cut to [`MAX_DOMAIN_BYTES`]; a country that is not
    /// two or three ASCII letters and a device type outside 1–99 are left
    /// out.
    pub fn write(out: &mut String, domain: &str, country: &str, device: Option<i32>) {
        if !domain.is_empty() {
            let mut end = domain.len().min(MAX_DOMAIN_BYTES);
            while !domain.is_char_boundary(end) {
                end -= 1;
            }
            out.push_str("&d=");
            for byte in domain[..end].bytes() {
                push_encoded(out, byte.to_ascii_lowercase());
            }
        }
        if (2..=3).contains(&country.len()) && country.bytes().all(|b| b.is_ascii_alphabetic()) {
            out.push_str("&g=");
            out.extend(country.bytes().map(|b| b.to_ascii_uppercase() as char));
        }
        if let Some(device @ 1..=99) = device {
            out.push_str("&y=");
            if device >= 10 {
                out.push((b'0' + (device / 10) as u8) as char);
            }
            out.push((b'0' + (device % 10) as u8) as char);
        }
    }

    /// The device type's name in reports: the AdCOM list (1 `mobile`
    /// (mobile or tablet), 2 `pc`, 3 `tv`, 4 `phone`, 5 `tablet`,
    /// 6 `connected_device`, 7 `set_top_box`, 8 `dooh`), another code as
    /// its number, empty when unknown.
    pub fn device_name(device: u8) -> std::borrow::Cow<'static, str> {
        const NAMES: [&str; 9] = [
            "",
            "mobile",
            "pc",
            "tv",
            "phone",
            "tablet",
            "connected_device",
            "set_top_box",
            "dooh",
        ];
        match NAMES.get(device as usize) {
            Some(name) => (*name).into(),
            None => device.to_string().into(),
        }
    }
}

/// Percent-encodes everything outside the URL-unreserved set: runs of
/// unreserved bytes (all of an id, most of the time) are copied whole.
pub fn encode_component(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let run = bytes[start..].iter().take_while(|&&b| unreserved(b)).count();
        if run > 0 {
            // An ASCII run starts and ends on character boundaries.
            out.push_str(&text[start..start + run]);
            start += run;
        }
        if let Some(&byte) = bytes.get(start) {
            push_escaped(out, byte);
            start += 1;
        }
    }
}

/// Whether `byte` is URL-unreserved (RFC 3986): never percent-encoded.
fn unreserved(byte: u8) -> bool {
    UNRESERVED[byte as usize]
}

/// [`unreserved`] by byte: one load per byte of an id.
static UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        byte += 1;
    }
    table
};

/// One byte, percent-encoded unless URL-unreserved.
fn push_encoded(out: &mut String, byte: u8) {
    if unreserved(byte) {
        out.push(byte as char);
    } else {
        push_escaped(out, byte);
    }
}

/// One byte as `%XX`.
fn push_escaped(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let escape = [b'%', HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize]];
    out.push_str(std::str::from_utf8(&escape).expect("ASCII"));
}

/// A number's decimal digits (no `fmt` machinery: the payload has several
/// per bid).
fn push_int(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Undoes percent-encoding (`%2E` → `.`); `None` for a broken escape or
/// bytes that are not UTF-8.
pub fn decode_component(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl<S: AsRef<str>> BidToken<S> {
    /// The payload query string.
    pub fn payload(&self) -> String {
        let mut out = String::with_capacity(256);
        let fields: [(&str, &str); 7] = [
            ("b", self.bid_id.as_ref()),
            ("r", self.request_id.as_ref()),
            ("i", self.imp_id.as_ref()),
            ("c", self.campaign.as_ref()),
            ("k", self.creative.as_ref()),
            ("x", self.exchange.as_ref()),
            ("cur", self.currency.as_ref()),
        ];
        for (name, value) in fields {
            out.push_str(name);
            out.push('=');
            encode_component(&mut out, value);
            out.push('&');
        }
        for (name, value) in [
            ("p=", self.bid_price.0),
            ("&v=", self.bid_value.0),
            ("&t=", self.issued_at),
        ] {
            out.push_str(name);
            push_int(&mut out, value);
        }
        out.push_str("&u=");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let user: [u8; 16] = std::array::from_fn(|i| HEX[(self.user >> (60 - 4 * i) & 15) as usize]);
        out.push_str(std::str::from_utf8(&user).expect("hex is ASCII"));
        out.push_str(if self.test { "&test=1&e=" } else { "&test=0&e=" });
        push_int(&mut out, self.notice_until);
        match self.pricing {
            Some(SignedPricing::Cpm) => out.push_str("&m=cpm"),
            Some(SignedPricing::Cpc { max_cpc, value }) => {
                out.push_str("&m=cpc&q=");
                push_int(&mut out, max_cpc.0);
                if let Some(value) = value {
                    out.push_str("&w=");
                    push_int(&mut out, value.0);
                }
            }
            None => {}
        }
        if self.qty_milli != QTY_ONE {
            out.push_str("&n=");
            push_int(&mut out, self.qty_milli);
        }
        if let Some(arm) = &self.arm {
            out.push_str("&a=");
            encode_component(&mut out, arm.as_ref());
        }
        if let Some(slice) = self.shading_slice {
            out.push_str("&s=");
            push_int(&mut out, slice);
        }
        let place = &self.place;
        Place::write(&mut out, &place.domain, &place.country, Some(i32::from(place.device)));
        out
    }
}

impl BidToken {
    /// Reads a verified payload back.
    #[allow(
        clippy::too_many_lines,
        reason = "one arm per field of the URL format, read in one pass"
    )]
    pub fn parse(payload: &str) -> Result<BidToken, TrackingError> {
        let mut token = BidToken {
            bid_id: String::new(),
            request_id: String::new(),
            imp_id: String::new(),
            campaign: String::new(),
            creative: String::new(),
            exchange: String::new(),
            bid_price: Micros::ZERO,
            bid_value: Micros::ZERO,
            currency: String::new(),
            issued_at: 0,
            user: 0,
            test: false,
            notice_until: 0,
            pricing: None,
            place: Place::default(),
            qty_milli: QTY_ONE,
            arm: None,
            shading_slice: None,
        };
        let (mut notice_until, mut model, mut max_cpc, mut unshaded) = (None, None, None, None);
        let mut seen = 0u32;
        for pair in payload.split('&') {
            let (name, value) = pair.split_once('=').ok_or(TrackingError::Malformed)?;
            let text = || decode_component(value).ok_or(TrackingError::Malformed);
            let int = || value.parse::<i64>().map_err(|_| TrackingError::Malformed);
            let bit = match name {
                "b" => {
                    token.bid_id = text()?;
                    0
                }
                "r" => {
                    token.request_id = text()?;
                    1
                }
                "i" => {
                    token.imp_id = text()?;
                    2
                }
                "c" => {
                    token.campaign = text()?;
                    3
                }
                "k" => {
                    token.creative = text()?;
                    4
                }
                "x" => {
                    token.exchange = text()?;
                    5
                }
                "cur" => {
                    token.currency = text()?;
                    6
                }
                "p" => {
                    token.bid_price = Micros(int()?);
                    7
                }
                "v" => {
                    token.bid_value = Micros(int()?);
                    8
                }
                "t" => {
                    token.issued_at = int()?;
                    9
                }
                "u" => {
                    token.user = u64::from_str_radix(value, 16).map_err(|_| TrackingError::Malformed)?;
                    10
                }
                "test" => {
                    token.test = value == "1";
                    11
                }
                // Optional fields (URLs signed before them lack them).
                "e" => {
                    notice_until = Some(int()?);
                    continue;
                }
                "m" => {
                    model = Some(match value {
                        "cpm" => false,
                        "cpc" => true,
                        _ => return Err(TrackingError::Malformed),
                    });
                    continue;
                }
                "q" => {
                    max_cpc = Some(Micros(int()?));
                    continue;
                }
                "w" => {
                    unshaded = Some(Micros(int()?)).filter(|v| v.0 > 0);
                    if unshaded.is_none() {
                        return Err(TrackingError::Malformed);
                    }
                    continue;
                }
                "n" => {
                    token.qty_milli = int()?;
                    // A display may count for less than one impression
                    // (`imp.qty.multiplier` 0.5: 500) as well as more.
                    if !(1..=crate::signing::MAX_QTY_MILLI).contains(&token.qty_milli) {
                        return Err(TrackingError::Malformed);
                    }
                    continue;
                }
                "a" => {
                    token.arm = Some(text()?).filter(|arm| !arm.is_empty());
                    continue;
                }
                "s" => {
                    token.shading_slice = Some(value.parse().map_err(|_| TrackingError::Malformed)?);
                    continue;
                }
                // Only what `Place::write` writes: a URL reads back as signed.
                "d" => {
                    let domain = text()?;
                    if domain.is_empty()
                        || domain.len() > MAX_DOMAIN_BYTES
                        || domain.bytes().any(|b| b.is_ascii_uppercase())
                    {
                        return Err(TrackingError::Malformed);
                    }
                    token.place.domain = domain;
                    continue;
                }
                "g" => {
                    if !(2..=3).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_uppercase()) {
                        return Err(TrackingError::Malformed);
                    }
                    token.place.country = value.to_string();
                    continue;
                }
                "y" => {
                    token.place.device = match value.parse() {
                        Ok(device @ 1..=99) if !value.starts_with('0') => device,
                        _ => return Err(TrackingError::Malformed),
                    };
                    continue;
                }
                _ => return Err(TrackingError::Malformed),
            };
            seen |= 1 << bit;
        }
        const NAMES: [&str; 12] = ["b", "r", "i", "c", "k", "x", "cur", "p", "v", "t", "u", "test"];
        if let Some(missing) = (0..12).find(|bit| seen & (1 << bit) == 0) {
            return Err(TrackingError::MissingField(NAMES[missing]));
        }
        token.notice_until = notice_until.unwrap_or(token.issued_at.saturating_add(LEGACY_NOTICE_WINDOW_SECS));
        token.pricing = match (model, max_cpc) {
            // A value belongs to CPC pricing only.
            (None | Some(false), _) if unshaded.is_some() => return Err(TrackingError::Malformed),
            (None, _) => None,
            (Some(false), _) => Some(SignedPricing::Cpm),
            (Some(true), Some(max_cpc)) => Some(SignedPricing::Cpc {
                max_cpc,
                value: unshaded,
            }),
            (Some(true), None) => return Err(TrackingError::MissingField("q")),
        };
        Ok(token)
    }
}

/// The lowercase hex HMAC-SHA256 of `message` under `key` (as `openssl dgst
/// -sha256 -hmac KEY` prints it): how an advertiser signs a postback.
pub fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `signature` is the lowercase hex HMAC-SHA256 of `message`
/// under `key` (as `openssl dgst -sha256 -hmac KEY` prints it), compared in
/// constant time.
pub fn hmac_hex_matches(key: &[u8], message: &[u8], signature: &str) -> bool {
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return false;
    }
    let mut tag = [0u8; 32];
    for (i, byte) in tag.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&signature[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.verify_slice(&tag).is_ok()
}

/// The notice window of URLs signed before windows were carried (the
/// default window, seconds).
pub const LEGACY_NOTICE_WINDOW_SECS: i64 = 15 * 60;

/// A click as its signed click id carries it (conversion postbacks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Click {
    /// Campaign id.
    pub campaign: String,
    /// Creative id.
    pub creative: String,
    /// Bid id.
    pub bid: String,
    /// Name of the exchange the bid went to (empty for older ids).
    pub exchange: String,
    /// Where the ad showed (unknown for older ids).
    pub place: Place,
    /// The experiment arm of the bid (`{experiment}/{arm}`); `None`
    /// without one, and for older ids.
    pub arm: Option<String>,
}

/// Signs and verifies tracking URLs with the current (and previous) key.
#[derive(Clone)]
pub struct Signer {
    current: Keys,
    previous: Option<Keys>,
}

/// What one signing key signs with: HMAC-SHA256 keyed with it.
#[derive(Clone)]
struct Keys {
    hmac: HmacSha256,
}

impl Keys {
    fn new(key: &[u8]) -> Keys {
        Keys {
            hmac: HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    /// The tags of `payload` for the events' pairs (the others left
    /// zero): the payload hashed once, each pair's HMAC finalised once.
    fn tags(&self, payload: &str, events: &[Event]) -> [[u8; SIGNATURE_BYTES]; Event::SLOTS] {
        let mut prefix = self.hmac.clone();
        prefix.update(payload.as_bytes());
        let mut tags = [[0u8; SIGNATURE_BYTES]; Event::SLOTS];
        for (pair, label) in PAIRS.iter().enumerate() {
            if !events.iter().any(|event| event.slot() / 2 == pair) {
                continue;
            }
            let mut mac = prefix.clone();
            mac.update(label);
            let output = mac.finalize().into_bytes();
            tags[2 * pair].copy_from_slice(&output[..SIGNATURE_BYTES]);
            tags[2 * pair + 1].copy_from_slice(&output[SIGNATURE_BYTES..]);
        }
        tags
    }

    /// Whether `tag` is `event`'s tag of `payload`, in constant time.
    fn signs(&self, event: Event, payload: &str, tag: &[u8]) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.tags(payload, &[event])[event.slot()][..], tag).into()
    }

    /// The legacy check: HMAC-SHA256 over `{payload}\0{event}`.
    fn signed_legacy(&self, event: Event, payload: &str, tag: &[u8]) -> bool {
        let mut mac = self.hmac.clone();
        mac.update(payload.as_bytes());
        mac.update(b"\0");
        mac.update(event.path().as_bytes());
        mac.verify_truncated_left(tag).is_ok()
    }

    /// The 64-bit mask of a bid's user key: HMAC-SHA256 over
    /// `user\0{bid}`.
    fn mask(&self, bid_id: &str) -> u64 {
        let mut mac = self.hmac.clone();
        mac.update(b"user\0");
        mac.update(bid_id.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut mask = [0u8; 8];
        mask.copy_from_slice(&tag[..8]);
        u64::from_le_bytes(mask)
    }
}

/// Which signature a URL carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// `&sig=`: half of its pair's HMAC.
    Pairs,
    /// `&s=`: HMAC-SHA256 per URL, signed before the pairs.
    Legacy,
}

/// A URL tag: 128 bits in base64url.
#[derive(Clone, Copy)]
pub struct Tag([u8; 22]);

impl Tag {
    /// The tag as it goes in the URL.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base64 is ASCII")
    }
}

/// A verified tracking request: the event, the bid's token, and the
/// values the exchange substituted for the macros (raw text, unsigned,
/// validated by the caller).
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// Which URL was called.
    pub event: Event,
    /// The bid's facts, as signed.
    pub token: BidToken,
    /// Raw value of the `price` parameter (win and billing notices only); `None` when absent.
    pub price: Option<String>,
    /// Raw value of the `reason` parameter (loss notices only).
    pub loss_reason: Option<String>,
    /// Raw value of the `mtw` parameter, the minimum bid to win (loss
    /// notices only).
    pub min_to_win: Option<String>,
}

impl Signer {
    /// A signer with the `key` to sign and verify with, and the `previous` key still accepted during a rotation.
    pub fn new(key: &[u8], previous: Option<&[u8]>) -> Signer {
        Signer {
            current: Keys::new(key),
            previous: previous.map(Keys::new),
        }
    }

    /// The tag of `payload` for `event`, base64url.
    pub fn signature(&self, event: Event, payload: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.current.tags(payload, &[event])[event.slot()])
    }

    /// The full URL of `event` for a bid whose payload is `payload`.
    pub fn url(&self, base: &str, event: Event, payload: &str) -> String {
        Self::assemble(base, event, payload, &self.signature(event, payload))
    }

    /// The URLs of several events for one payload: the payload hashed once.
    pub fn urls<const N: usize>(&self, base: &str, events: [Event; N], payload: &str) -> [String; N] {
        let tags = self.tags(events, payload);
        std::array::from_fn(|i| Self::assemble(base, events[i], payload, tags[i].as_str()))
    }

    /// The tags of several events for one payload: the payload hashed once.
    pub fn tags<const N: usize>(&self, events: [Event; N], payload: &str) -> [Tag; N] {
        let tags = self.current.tags(payload, &events);
        events.map(|event| {
            let mut tag = Tag([0; 22]);
            URL_SAFE_NO_PAD
                .encode_slice(tags[event.slot()], &mut tag.0)
                .expect("16 bytes are 22 base64 characters");
            tag
        })
    }

    /// The URL of `event` from its parts: `{base}/t/{event}?{payload}&sig={tag}`
    /// and the event's macros.
    pub fn assemble(base: &str, event: Event, payload: &str, tag: &str) -> String {
        Self::assemble_with(base, event, payload, tag, "&")
    }

    /// The same URL escaped for an HTML attribute, from the escaped base and
    /// payload (`campaigns::markup::push_attr`: `&` is `&amp;`),
    /// so that a bid escapes its shared payload once, not once per URL.
    pub fn assemble_attr(base_attr: &str, event: Event, payload_attr: &str, tag: &str) -> String {
        Self::assemble_with(base_attr, event, payload_attr, tag, "&amp;")
    }

    fn assemble_with(base: &str, event: Event, payload: &str, tag: &str, amp: &str) -> String {
        let mut url = String::with_capacity(base.len() + payload.len() + 64);
        url.push_str(base);
        url.push_str("/t/");
        url.push_str(event.path());
        url.push('?');
        url.push_str(payload);
        url.push_str(amp);
        url.push_str("sig=");
        url.push_str(tag);
        for (name, value) in event.macros() {
            url.push_str(amp);
            url.push_str(name);
            url.push('=');
            url.push_str(value);
        }
        url
    }

    /// A signed click id for conversion postbacks:
    /// `{campaign}~{creative}~{bid}~{exchange}~{domain}~{country}~{device}~{signature}`
    /// (components percent-encoded; the device type empty when unknown), so
    /// that a conversion is reported under its click's exchange and place;
    /// a bid made in an experiment arm has the arm after the device
    /// (`…~{device}~{arm}~{signature}`).
    pub fn click_id(&self, click: &Click) -> String {
        let mut id = String::with_capacity(128);
        let device = match click.place.device {
            0 => String::new(),
            device => device.to_string(),
        };
        let place = &click.place;
        for part in [
            &click.campaign,
            &click.creative,
            &click.bid,
            &click.exchange,
            &place.domain,
            &place.country,
            &device,
        ]
        .into_iter()
        .chain(click.arm.as_ref())
        {
            // `~` separates the parts, so it is escaped inside them.
            let mut encoded = String::with_capacity(part.len());
            encode_component(&mut encoded, part);
            id.push_str(&encoded.replace('~', "%7E"));
            id.push('~');
        }
        let mut mac = self.current.hmac.clone();
        mac.update(b"conv?");
        mac.update(id.as_bytes());
        let tag = mac.finalize().into_bytes();
        id.push_str(&URL_SAFE_NO_PAD.encode(&tag[..SIGNATURE_BYTES]));
        id
    }

    /// The user key as a bid's URLs carry it (`u=`): XORed with a mask
    /// keyed by the signing key and the bid id (HMAC-SHA256 over
    /// `user\0{bid}`, 64 bits), so the same user looks different in every
    /// bid and a page script cannot follow them across bids or sites. The
    /// key rotates with the signing key; verification unmasks with
    /// whichever key verified the URL. 0 (no user) stays 0.
    pub fn mask_user(&self, user: u64, bid_id: &str) -> u64 {
        Self::masked(&self.current, user, bid_id)
    }

    fn masked(keys: &Keys, user: u64, bid_id: &str) -> u64 {
        match user {
            0 => 0,
            user => user ^ keys.mask(bid_id),
        }
    }

    /// Checks a click id and reads it back; ids signed before the exchange
    /// and place were carried (`{campaign}~{creative}~{bid}~{signature}`)
    /// read with them unknown.
    pub fn verify_click_id(&self, id: &str) -> Option<Click> {
        let at = id.rfind('~')?;
        let (signed, signature) = (&id[..=at], &id[at + 1..]);
        let mut tag = [0u8; SIGNATURE_BYTES + 2];
        let len = URL_SAFE_NO_PAD.decode_slice(signature, &mut tag).ok()?;
        if len != SIGNATURE_BYTES || URL_SAFE_NO_PAD.encode(&tag[..len]) != signature {
            return None;
        }
        let check = |keys: &Keys| {
            let mut mac = keys.hmac.clone();
            mac.update(b"conv?");
            mac.update(signed.as_bytes());
            mac.verify_truncated_left(&tag[..SIGNATURE_BYTES]).is_ok()
        };
        if !(check(&self.current) || self.previous.as_ref().is_some_and(check)) {
            return None;
        }
        let parts: Vec<String> = signed
            .strip_suffix('~')?
            .split('~')
            .map(decode_component)
            .collect::<Option<_>>()?;
        let mut parts = parts.into_iter();
        let mut next = || parts.next().unwrap_or_default();
        let (campaign, creative, bid) = (next(), next(), next());
        let (exchange, domain, country, device) = (next(), next(), next(), next());
        let arm = match signed.matches('~').count() {
            3 | 7 => None,
            8 => Some(next()),
            _ => return None,
        };
        let device = match device.as_str() {
            "" => 0,
            digits => digits.parse().ok()?,
        };
        Some(Click {
            campaign,
            creative,
            bid,
            exchange,
            place: Place {
                domain,
                country,
                device,
            },
            arm,
        })
    }

    /// Verifies `/t/{event_path}?{query}`: a tag (`&sig=`) or, for URLs
    /// signed before the tags, a legacy HMAC (`&s=`).
    pub fn verify(&self, event_path: &str, query: &str) -> Result<Verified, TrackingError> {
        let event = Event::from_path(event_path).ok_or(TrackingError::UnknownEvent)?;
        let (scheme, payload, rest) = match (query.rfind("&sig="), query.rfind("&s=")) {
            (Some(at), _) => (Scheme::Pairs, &query[..at], &query[at + 5..]),
            (None, Some(at)) => (Scheme::Legacy, &query[..at], &query[at + 3..]),
            (None, None) => return Err(TrackingError::Malformed),
        };
        let (signature, macros) = rest.split_once('&').unwrap_or((rest, ""));
        let [price, loss_reason, min_to_win] = Self::macro_values(event, macros)?;
        let mut tag = [0u8; SIGNATURE_BYTES + 2];
        let len = URL_SAFE_NO_PAD
            .decode_slice(signature, &mut tag)
            .map_err(|_| TrackingError::Malformed)?;
        // Canonical encoding only: a signature with other trailing bits
        // decodes to the same bytes but is a different URL.
        if len != SIGNATURE_BYTES || URL_SAFE_NO_PAD.encode(&tag[..len]) != signature {
            return Err(TrackingError::Malformed);
        }
        let tag = &tag[..SIGNATURE_BYTES];
        let signs = |keys: &Keys| match scheme {
            Scheme::Pairs => keys.signs(event, payload, tag),
            Scheme::Legacy => keys.signed_legacy(event, payload, tag),
        };
        let keys = if signs(&self.current) {
            &self.current
        } else {
            self.previous
                .as_ref()
                .filter(|previous| signs(previous))
                .ok_or(TrackingError::BadSignature)?
        };
        let mut token = BidToken::parse(payload)?;
        token.user = Self::masked(keys, token.user, &token.bid_id);
        Ok(Verified {
            event,
            token,
            price,
            loss_reason,
            min_to_win,
        })
    }

    /// The unsigned macro values after the signature (`price`; `reason`,
    /// `mtw`), each at most once, in any order; a parameter the event does
    /// not carry is malformed.
    fn macro_values(event: Event, macros: &str) -> Result<[Option<String>; 3], TrackingError> {
        let mut values: [Option<String>; 3] = Default::default();
        if macros.is_empty() {
            return Ok(values);
        }
        let carried = event.macros();
        for pair in macros.split('&') {
            let (name, value) = pair.split_once('=').ok_or(TrackingError::Malformed)?;
            let slot = match name {
                "price" => 0,
                "reason" => 1,
                "mtw" => 2,
                _ => return Err(TrackingError::Malformed),
            };
            if !carried.iter().any(|(carried, _)| *carried == name) || values[slot].is_some() {
                return Err(TrackingError::Malformed);
            }
            values[slot] = Some(value.to_string());
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> BidToken {
        BidToken {
            bid_id: "b1".into(),
            request_id: "req/1 ü".into(),
            imp_id: "1".into(),
            campaign: "acme".into(),
            creative: "cr1".into(),
            exchange: "default".into(),
            bid_price: Micros(2_500_000),
            bid_value: Micros(2_500_000),
            currency: "USD".into(),
            issued_at: 1_700_000_000,
            user: 42,
            test: false,
            notice_until: 1_700_000_900,
            pricing: Some(SignedPricing::Cpc {
                max_cpc: Micros(800_000),
                value: None,
            }),
            qty_milli: QTY_ONE,
            place: Place {
                domain: "news.example".into(),
                country: "FRA".into(),
                device: 4,
            },
            arm: None,
            shading_slice: None,
        }
    }

    /// The arm is signed, reads back, and URLs and click ids signed before
    /// it was carried still verify, without one.
    #[test]
    fn the_experiment_arm_is_signed_and_older_urls_have_none() {
        let signer = Signer::new(b"a-test-key-of-some-length", None);
        let with_arm = BidToken {
            arm: Some("spring-test/b".into()),
            ..token()
        };
        let url = signer.url("http://h", Event::Impression, &with_arm.payload());
        assert!(url.contains("&a=spring-test%2Fb&"), "{url}");
        let (event, query) = split(&url);
        assert_eq!(
            signer.verify(event, query).unwrap().token.arm.as_deref(),
            Some("spring-test/b")
        );
        let relabelled = query.replace("spring-test%2Fb", "spring-test%2Fa");
        assert_eq!(signer.verify(event, &relabelled), Err(TrackingError::BadSignature));
        let older = signer.url("http://h", Event::Impression, &token().payload());
        let (event, query) = split(&older);
        assert_eq!(signer.verify(event, query).unwrap().token.arm, None);
        // Click ids: with the arm, and without (as before arms).
        let click = Click {
            campaign: "acme".into(),
            creative: "cr".into(),
            bid: "b1".into(),
            exchange: "default".into(),
            place: token().place,
            arm: Some("spring-test/b".into()),
        };
        let id = signer.click_id(&click);
        assert_eq!(signer.verify_click_id(&id), Some(click.clone()));
        assert_eq!(signer.verify_click_id(&id.replace("test%2Fb", "test%2Fa")), None);
        let plain = Click { arm: None, ..click };
        assert_eq!(signer.verify_click_id(&signer.click_id(&plain)), Some(plain));
    }

    /// A shaded CPC bid carries its unshaded value (`w`), signed; a URL
    /// without it (older, or an unshaded bid) reads as `None`, and a value
    /// on CPM pricing, or one that is not positive, is refused.
    #[test]
    fn a_shaded_cpc_bid_carries_its_value() {
        let t = BidToken {
            pricing: Some(SignedPricing::Cpc {
                max_cpc: Micros(800_000),
                value: Some(Micros(4_000_000)),
            }),
            ..token()
        };
        let payload = t.payload();
        assert!(payload.contains("&m=cpc&q=800000&w=4000000&"), "{payload}");
        assert_eq!(BidToken::parse(&payload), Ok(t.clone()));
        let signer = Signer::new(b"a-test-key-of-some-length", None);
        let url = signer.url("http://h", Event::Click, &payload);
        let (event, query) = split(&url);
        assert_eq!(
            signer.verify(event, &query.replace("w=4000000", "w=8000000")),
            Err(TrackingError::BadSignature)
        );
        let without = payload.replace("&w=4000000", "");
        assert_eq!(
            BidToken::parse(&without).unwrap().pricing,
            Some(SignedPricing::Cpc {
                max_cpc: Micros(800_000),
                value: None
            })
        );
        for bad in [
            payload.replace("m=cpc&q=800000", "m=cpm"),
            payload.replace("w=4000000", "w=0"),
            payload.replace("w=4000000", "w=x"),
        ] {
            assert_eq!(BidToken::parse(&bad), Err(TrackingError::Malformed), "{bad}");
        }
    }

    #[test]
    fn pricing_and_window_round_trip_and_older_urls_still_parse() {
        let t = token();
        assert_eq!(BidToken::parse(&t.payload()), Ok(t.clone()));
        let cpm = BidToken {
            pricing: Some(SignedPricing::Cpm),
            ..t.clone()
        };
        assert_eq!(BidToken::parse(&cpm.payload()), Ok(cpm));
        // A URL signed before the window and pricing were carried.
        let legacy = t.payload().split("&e=").next().unwrap().to_string();
        let parsed = BidToken::parse(&legacy).unwrap();
        assert_eq!(parsed.notice_until, t.issued_at + LEGACY_NOTICE_WINDOW_SECS);
        assert_eq!(parsed.pricing, None);
        assert_eq!(
            BidToken::parse(&format!("{legacy}&m=cpc")),
            Err(TrackingError::MissingField("q"))
        );
        assert_eq!(
            BidToken::parse(&format!("{legacy}&m=cpx")),
            Err(TrackingError::Malformed)
        );
    }

    fn split(url: &str) -> (&str, &str) {
        let rest = url.split_once("/t/").unwrap().1;
        rest.split_once('?').unwrap()
    }

    #[test]
    fn signed_urls_verify_and_round_trip() {
        let signer = Signer::new(b"a-test-key-of-some-length", None);
        let url = signer.url("http://h", Event::Bill, &token().payload());
        assert!(url.ends_with("&price=${AUCTION_PRICE}"));
        let url = url.replace(AUCTION_PRICE_MACRO, "1.25");
        let (event, query) = split(&url);
        let verified = signer.verify(event, query).unwrap();
        // `u` as signed is the masked key: verification unmasks it.
        let unmasked = BidToken {
            user: signer.mask_user(token().user, &token().bid_id),
            ..token()
        };
        assert_eq!(verified.token, unmasked);
        assert_eq!(verified.price.as_deref(), Some("1.25"));
    }

    /// The loss notice carries its two macros outside the signature: the
    /// exchange fills them in, and the URL still verifies.
    #[test]
    fn loss_urls_carry_their_macros_unsigned() {
        let signer = Signer::new(b"a-test-key-of-some-length", None);
        let url = signer.url("http://h", Event::Loss, &token().payload());
        assert!(
            url.ends_with("&reason=${AUCTION_LOSS}&mtw=${AUCTION_MIN_TO_WIN}"),
            "{url}"
        );
        let filled = url
            .replace(AUCTION_LOSS_MACRO, "102")
            .replace(AUCTION_MIN_TO_WIN_MACRO, "1.75");
        let (event, query) = split(&filled);
        let verified = signer.verify(event, query).unwrap();
        assert_eq!(verified.event, Event::Loss);
        assert_eq!(verified.loss_reason.as_deref(), Some("102"));
        assert_eq!(verified.min_to_win.as_deref(), Some("1.75"));
        assert_eq!(verified.price, None);
        // In another order, or without the optional one: still verified.
        let at = filled.find("&reason=").unwrap();
        let reordered = format!("{}&mtw=2&reason=1", &filled[..at]);
        let (event, query) = split(&reordered);
        assert_eq!(signer.verify(event, query).unwrap().loss_reason.as_deref(), Some("1"));
        let (event, query) = split(&filled[..at]);
        assert_eq!(signer.verify(event, query).unwrap().loss_reason, None);
        // A parameter the event does not carry, or one given twice: refused.
        for tail in ["&price=1", "&reason=1&reason=2", "&other=1"] {
            let url = format!("{}{tail}", &filled[..at]);
            let (event, query) = split(&url);
            assert_eq!(signer.verify(event, query), Err(TrackingError::Malformed), "{tail}");
        }
        // The win notice takes no loss macros.
        let win = signer.url("http://h", Event::Win, &token().payload()) + "&reason=1";
        let (event, query) = split(&win);
        assert_eq!(signer.verify(event, query), Err(TrackingError::Malformed));
        // The event is signed: a loss URL is no win notice.
        let (_, query) = split(&filled);
        assert_eq!(signer.verify("win", query), Err(TrackingError::Malformed));
        let bare = &filled[..at];
        let (_, query) = split(bare);
        assert_eq!(signer.verify("win", query), Err(TrackingError::BadSignature));
    }

    /// Issue 17, item 13: `u=` was an unsalted hash of the user id, the
    /// same in every bid: a stable identifier for any page script.
    #[test]
    fn the_user_key_differs_in_every_bid_and_comes_back_on_verification() {
        let signer = Signer::new(b"a-test-key-of-some-length-0123456789", None);
        let user = 0x0123_4567_89ab_cdef;
        let (a, b) = (signer.mask_user(user, "bid-a"), signer.mask_user(user, "bid-b"));
        assert_ne!(a, user);
        assert_ne!(a, b, "two bids, two different values");
        assert_eq!(signer.mask_user(0, "bid-a"), 0, "no user stays no user");
        for (bid, masked) in [("bid-a", a), ("bid-b", b)] {
            let token = BidToken {
                bid_id: bid.into(),
                user: masked,
                ..token()
            };
            let url = signer.url("http://h", Event::Impression, &token.payload());
            let (event, query) = split(&url);
            assert_eq!(signer.verify(event, query).unwrap().token.user, user);
        }
        // After a rotation, URLs signed with the previous key unmask with it.
        let rotated = Signer::new(
            b"another-key-of-some-length-0123456789",
            Some(b"a-test-key-of-some-length-0123456789"),
        );
        let token = BidToken {
            bid_id: "bid-a".into(),
            user: a,
            ..token()
        };
        let url = signer.url("http://h", Event::Impression, &token.payload());
        let (event, query) = split(&url);
        assert_eq!(rotated.verify(event, query).unwrap().token.user, user);
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let signer = Signer::new(b"a-test-key-of-some-length", None);
        let url = signer.url("http://h", Event::Click, &token().payload());
        let (event, query) = split(&url);
        let original = format!("{event}?{query}");
        for i in 0..original.len() {
            for replacement in [b'a', b'0', b'_', b'%', b'&'] {
                let mut bytes = original.clone().into_bytes();
                if bytes[i] == replacement {
                    continue;
                }
                bytes[i] = replacement;
                let Ok(changed) = String::from_utf8(bytes) else {
                    continue;
                };
                let Some((e, q)) = changed.split_once('?') else {
                    continue;
                };
                assert!(signer.verify(e, q).is_err(), "accepted {changed}");
            }
        }
    }

    /// Runs of unreserved bytes are copied whole: the same text as
    /// escaping byte by byte, on ASCII, multi-byte characters and edges.
    #[test]
    fn components_encode_as_byte_by_byte() {
        for byte in 0..=255u8 {
            let expected = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
            assert_eq!(unreserved(byte), expected, "{byte}");
        }
        for text in [
            "",
            "abc",
            "a b",
            " ",
            "req/1 ü",
            "üü",
            "x~y.z-_",
            "%&=?#",
            "日本語-id",
            "a\u{0}b",
        ] {
            let mut expected = String::new();
            text.bytes().for_each(|byte| push_encoded(&mut expected, byte));
            let mut encoded = String::new();
            encode_component(&mut encoded, text);
            assert_eq!(encoded, expected, "{text:?}");
            assert_eq!(decode_component(&encoded).as_deref(), Some(text));
        }
    }

    /// A URL signed the old way (HMAC-SHA256 per URL, `&s=`), as a bid
    /// made before the pairs carried it.
    fn legacy_url(key: &[u8], event: Event, token: &BidToken) -> String {
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(b"user\0");
        mac.update(token.bid_id.as_bytes());
        let mask = u64::from_le_bytes(mac.finalize().into_bytes()[..8].try_into().unwrap());
        let payload = BidToken {
            user: token.user ^ mask,
            ..token.clone()
        }
        .payload();
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(payload.as_bytes());
        mac.update(b"\0");
        mac.update(event.path().as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..SIGNATURE_BYTES]);
        format!("http://h/t/{}?{payload}&s={tag}", event.path())
    }

    /// URLs signed before the pairs still verify (with either key of a
    /// rotation), their user unmasked, and refuse any edit; a legacy
    /// signature does not pass as a tag, nor a tag moved to another event's
    /// URL.
    #[test]
    fn urls_signed_the_old_way_still_verify_until_they_expire() {
        let signer = Signer::new(b"new-key-0123456789", Some(b"old-key-0123456789"));
        for (key, expected) in [
            (&b"new-key-0123456789"[..], Event::Click),
            (b"old-key-0123456789", Event::Click),
            (b"new-key-0123456789", Event::Loss),
        ] {
            let url = legacy_url(key, expected, &token());
            let (event, query) = split(&url);
            let verified = signer.verify(event, query).unwrap();
            assert_eq!((verified.event, verified.token), (expected, token()));
            assert_eq!(
                signer.verify(event, &query.replace("p=2500000", "p=2500001")),
                Err(TrackingError::BadSignature)
            );
            assert_eq!(signer.verify("imp", query), Err(TrackingError::BadSignature));
            let as_tag = query.replace("&s=", "&sig=");
            assert_eq!(signer.verify(event, &as_tag), Err(TrackingError::BadSignature));
        }
        // Tags of this scheme do not pass as legacy signatures either (no
        // message of one is a message of the other), nor for another event.
        for event in [Event::Click, Event::Impression, Event::Win, Event::Bill, Event::Loss] {
            let url = signer.url("http://h", event, &token().payload());
            let (path, query) = split(&url);
            assert!(signer.verify(path, query).is_ok());
            // Another event with the same macros: its tag is another.
            let (other, refusal) = match event {
                Event::Click => ("imp", TrackingError::BadSignature),
                Event::Impression => ("click", TrackingError::BadSignature),
                Event::Win => ("bill", TrackingError::BadSignature),
                Event::Bill => ("win", TrackingError::BadSignature),
                Event::Loss => ("win", TrackingError::Malformed),
            };
            assert_eq!(signer.verify(other, query), Err(refusal), "{event:?}");
            let as_legacy = query.replace("&sig=", "&s=");
            assert_eq!(
                signer.verify(path, &as_legacy),
                Err(TrackingError::BadSignature),
                "{event:?}"
            );
        }
    }

    /// A URL assembled from the attribute-escaped base and payload is the
    /// attribute-escaped URL.
    #[test]
    fn attribute_urls_assemble_from_escaped_parts() {
        let signer = Signer::new(b"a-test-key-of-some-length", None);
        let (base, payload) = ("http://h/x?y=1&z", token().payload());
        // What `campaigns::markup::push_attr` does to these (no `"` or `<`).
        let escape = |text: &str| text.replace('&', "&amp;");
        for event in [Event::Click, Event::Impression, Event::Win, Event::Loss] {
            let [tag] = signer.tags([event], &payload);
            let url = Signer::assemble(base, event, &payload, tag.as_str());
            assert_eq!(url, signer.url(base, event, &payload));
            assert_eq!(
                Signer::assemble_attr(&escape(base), event, &escape(&payload), tag.as_str()),
                escape(&url)
            );
        }
    }

    /// The scheme pinned by a known answer: the tags are the halves of
    /// each pair's HMAC-SHA256 over `{payload}\0{pair}`; a change to the
    /// labels, the slots or the encoding would orphan every URL out.
    #[test]
    fn the_tags_are_halves_of_each_pairs_hmac() {
        let key = b"a-test-key-of-some-length";
        let signer = Signer::new(key, None);
        let payload = "b=1&c=acme";
        let pair = |label: &str| {
            let mut mac = HmacSha256::new_from_slice(key).unwrap();
            mac.update(format!("{payload}\0{label}").as_bytes());
            mac.finalize().into_bytes()
        };
        let (markup, notices, loss) = (pair("pair:click+imp"), pair("pair:win+bill"), pair("pair:loss"));
        let expected = [
            &markup[..16],
            &markup[16..],
            &notices[..16],
            &notices[16..],
            &loss[..16],
        ];
        let events = [Event::Click, Event::Impression, Event::Win, Event::Bill, Event::Loss];
        let urls = signer.urls("http://h", events, payload);
        for ((event, url), tag) in events.iter().zip(&urls).zip(expected) {
            let tag = URL_SAFE_NO_PAD.encode(tag);
            assert_eq!(signer.signature(*event, payload), tag);
            assert!(
                url.starts_with(&format!("http://h/t/{}?b=1&c=acme&sig={tag}", event.path())),
                "{url}"
            );
        }
        // `printf 'b=1&c=acme\0pair:click+imp' | openssl dgst -sha256 -hmac a-test-key-of-some-length -binary`, its first 16 bytes.
        assert_eq!(signer.signature(Event::Click, payload), "PqOIpOpOFot8fvs_CR32_g");
    }

    #[test]
    fn previous_key_still_verifies_during_rotation() {
        let old = Signer::new(b"old-key-0123456789", None);
        let url = old.url("http://h", Event::Impression, &token().payload());
        let (event, query) = split(&url);
        let rotated = Signer::new(b"new-key-0123456789", Some(b"old-key-0123456789"));
        assert!(rotated.verify(event, query).is_ok());
        let forgotten = Signer::new(b"new-key-0123456789", None);
        assert_eq!(forgotten.verify(event, query), Err(TrackingError::BadSignature));
    }

    #[test]
    fn click_ids_verify_and_resist_edits() {
        let signer = Signer::new(b"a-test-key-of-some-length", None);
        let click = Click {
            campaign: "acme".into(),
            creative: "cr 1".into(),
            bid: "b42".into(),
            exchange: "ex~1".into(),
            place: token().place,
            arm: None,
        };
        let id = signer.click_id(&click);
        assert_eq!(signer.verify_click_id(&id), Some(click));
        assert_eq!(signer.verify_click_id(&id.replace("acme", "acmf")), None);
        assert_eq!(signer.verify_click_id(&id.replace("b42", "b43")), None);
        assert_eq!(signer.verify_click_id(&id.replace("FRA", "USA")), None);
        assert_eq!(signer.verify_click_id("nonsense"), None);
        // An id signed before the exchange and place were carried.
        let mut mac = signer.current.hmac.clone();
        mac.update(b"conv?acme~cr%201~b42~");
        let tag = URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..SIGNATURE_BYTES]);
        let old = signer.verify_click_id(&format!("acme~cr%201~b42~{tag}")).unwrap();
        assert_eq!((old.bid.as_str(), old.exchange.as_str()), ("b42", ""));
        assert_eq!(old.place, Place::default());
    }

    #[test]
    fn the_place_is_signed_compact_and_normalised() {
        let mut out = String::new();
        Place::write(&mut out, "News.Example", "fra", Some(4));
        assert_eq!(out, "&d=news.example&g=FRA&y=4");
        out.clear();
        Place::write(&mut out, "", "France", Some(0));
        assert_eq!(out, "", "unknown or malformed parts are left out");
        out.clear();
        let long = "é".repeat(40);
        Place::write(&mut out, &long, "", Some(12));
        let parsed = BidToken::parse(&format!("{}{out}", token().payload().split("&d=").next().unwrap())).unwrap();
        assert_eq!(parsed.place.domain, "é".repeat(32), "cut at a character boundary");
        assert_eq!(parsed.place.device, 12);
        // The place is signed: changing it breaks the signature.
        let signer = Signer::new(b"a-test-key-of-some-length", None);
        let url = signer.url("http://h", Event::Impression, &token().payload());
        let (event, query) = split(&url);
        assert_eq!(signer.verify(event, query).unwrap().token.place, token().place);
        let relabelled = query.replace("g=FRA", "g=USA");
        assert_eq!(signer.verify(event, &relabelled), Err(TrackingError::BadSignature));
        for bad in ["d=News.example", "g=fr", "g=FRAN", "y=0", "y=100", "y=04"] {
            let payload = format!("{}&{bad}", token().payload().split("&d=").next().unwrap());
            assert_eq!(BidToken::parse(&payload), Err(TrackingError::Malformed), "{bad}");
        }
    }

    #[test]
    fn events_cannot_be_swapped() {
        let signer = Signer::new(b"a-test-key-of-some-length", None);
        let url = signer.url("http://h", Event::Impression, &token().payload());
        let (_, query) = split(&url);
        assert_eq!(signer.verify("click", query), Err(TrackingError::BadSignature));
    }
}
