//! The bid response, as Bullseye writes it.
//!
//! [`BidResponse::write_json`] writes it in one pass into one buffer, in
//! exactly the bytes `serde_json` would (same fields, order and number
//! format; a test holds the two to each other on the corpus): the markup
//! arrives as a ready JSON string literal and the signed URLs need no
//! escaping, so the generic serializer's escaping scan over ~2 KB per bid,
//! and the re-validation of the markup as JSON, are skipped.

use serde::Serialize;

/// Markup type of a bid (`bid.mtype`, OpenRTB 2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    /// Banner (HTML or image) ad.
    Banner,
    /// Video ad (VAST).
    Video,
    /// Audio ad (VAST/DAAST).
    Audio,
    /// Native ad (native response JSON).
    Native,
}

impl MediaType {
    /// The `mtype` code: 1 banner, 2 video, 3 audio, 4 native.
    pub fn mtype(self) -> u8 {
        match self {
            MediaType::Banner => 1,
            MediaType::Video => 2,
            MediaType::Audio => 3,
            MediaType::Native => 4,
        }
    }

    /// Lower-case name, as in config and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Banner => "banner",
            MediaType::Video => "video",
            MediaType::Audio => "audio",
            MediaType::Native => "native",
        }
    }
}

/// The bid response: one seat bid per buyer seat.
#[derive(Debug, Serialize)]
pub struct BidResponse<'a> {
    /// The bid request's id.
    pub id: &'a str,
    /// Bids grouped by buyer seat.
    pub seatbid: Vec<SeatBid<'a>>,
    /// Response id, random per response.
    pub bidid: String,
    /// Currency of every price in the response (ISO 4217).
    pub cur: &'a str,
}

/// The bids of one buyer seat.
#[derive(Debug, Serialize)]
pub struct SeatBid<'a> {
    /// At most one bid per impression.
    pub bid: Vec<Bid<'a>>,
    /// Buyer seat id; `None` leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat: Option<&'a str>,
}

/// One bid on one impression.
#[derive(Debug, Serialize)]
pub struct Bid<'a> {
    /// Bid id, random and unguessable; also in the signed tracking URLs.
    pub id: String,
    /// Id of the impression bid on.
    pub impid: &'a str,
    /// CPM in the response currency.
    pub price: f64,
    /// Ad id (the creative id).
    pub adid: &'a str,
    /// Campaign id.
    pub cid: &'a str,
    /// Creative id.
    pub crid: &'a str,
    /// Advertiser domains, for the exchange's blocklists.
    pub adomain: &'a [String],
    /// IAB content categories of the creative; left out when empty.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub cat: &'a [String],
    /// Markup type: 1 banner, 2 video, 3 audio, 4 native ([`MediaType::mtype`]).
    pub mtype: u8,
    /// Creative width, pixels (banner and video only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<i64>,
    /// Creative height, pixels (banner and video only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h: Option<i64>,
    /// Deal id when the bid is for a private-marketplace deal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dealid: Option<&'a str>,
    /// Video/audio: the creative's duration, seconds (2.6; pods need it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dur: Option<i64>,
    /// Video/audio: the creative's VAST/DAAST protocol (2.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<i32>,
    /// The markup as a ready JSON string literal, quotes included
    /// ([`crate::campaigns::markup`]): valid JSON by construction.
    #[serde(serialize_with = "raw_json")]
    pub adm: String,
    /// Win notice URL, signed.
    pub nurl: String,
    /// Billing notice URL, signed; carries `${AUCTION_PRICE}`.
    pub burl: String,
    /// Loss notice URL, signed; carries `${AUCTION_LOSS}` and
    /// `${AUCTION_MIN_TO_WIN}`. Only for exchanges that send loss notices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lurl: Option<String>,
    /// The three URLs above are known to need no JSON escaping (checked
    /// once for all of a bid's signed URLs: [`json_plain`]); otherwise the
    /// writer checks each.
    #[serde(skip)]
    pub urls_plain: bool,
}

/// Serialises a ready JSON literal as it is (the reference serializer).
fn raw_json<S: serde::Serializer>(literal: &str, serializer: S) -> Result<S::Ok, S::Error> {
    let raw = serde_json::value::RawValue::from_string(literal.to_string()).map_err(serde::ser::Error::custom)?;
    raw.serialize(serializer)
}

impl BidResponse<'_> {
    /// The response as JSON, the bytes `serde_json::to_vec` would write.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        string(out, self.id);
        out.extend_from_slice(b",\"seatbid\":[");
        for (n, seat) in self.seatbid.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"bid\":[");
            for (n, bid) in seat.bid.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                bid.write_json(out);
            }
            out.push(b']');
            if let Some(seat) = seat.seat {
                out.extend_from_slice(b",\"seat\":");
                string(out, seat);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"bidid\":");
        string(out, &self.bidid);
        out.extend_from_slice(b",\"cur\":");
        string(out, self.cur);
        out.push(b'}');
    }
}

impl Bid<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        string(out, &self.id);
        out.extend_from_slice(b",\"impid\":");
        string(out, self.impid);
        out.extend_from_slice(b",\"price\":");
        value(out, &self.price);
        for (name, text) in [
            (&b",\"adid\":"[..], self.adid),
            (b",\"cid\":", self.cid),
            (b",\"crid\":", self.crid),
        ] {
            out.extend_from_slice(name);
            string(out, text);
        }
        out.extend_from_slice(b",\"adomain\":");
        strings(out, self.adomain);
        if !self.cat.is_empty() {
            out.extend_from_slice(b",\"cat\":");
            strings(out, self.cat);
        }
        out.extend_from_slice(b",\"mtype\":");
        value(out, &self.mtype);
        for (name, number) in [(&b",\"w\":"[..], self.w), (b",\"h\":", self.h)] {
            if let Some(number) = number {
                out.extend_from_slice(name);
                value(out, &number);
            }
        }
        if let Some(deal) = self.dealid {
            out.extend_from_slice(b",\"dealid\":");
            string(out, deal);
        }
        if let Some(dur) = self.dur {
            out.extend_from_slice(b",\"dur\":");
            value(out, &dur);
        }
        if let Some(protocol) = self.protocol {
            out.extend_from_slice(b",\"protocol\":");
            value(out, &protocol);
        }
        out.extend_from_slice(b",\"adm\":");
        out.extend_from_slice(self.adm.as_bytes());
        out.extend_from_slice(b",\"nurl\":");
        url(out, &self.nurl, self.urls_plain);
        out.extend_from_slice(b",\"burl\":");
        url(out, &self.burl, self.urls_plain);
        if let Some(lurl) = &self.lurl {
            out.extend_from_slice(b",\"lurl\":");
            url(out, lurl, self.urls_plain);
        }
        out.push(b'}');
    }
}

/// A JSON value as `serde_json` writes it (numbers, short strings).
fn value(out: &mut Vec<u8>, value: &impl Serialize) {
    // Writing plain values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// A JSON string: copied between quotes when it needs no escaping (ids,
/// domains, categories nearly always), else as `serde_json` escapes it.
fn string(out: &mut Vec<u8>, text: &str) {
    if json_plain(text) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        value(out, &text);
    }
}

fn strings(out: &mut Vec<u8>, texts: &[String]) {
    out.push(b'[');
    for (n, text) in texts.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        string(out, text);
    }
    out.push(b']');
}

/// A signed URL: percent-encoded, so it needs no JSON escaping (`plain`:
/// already known); anything else is escaped the long way.
fn url(out: &mut Vec<u8>, url: &str, plain: bool) {
    if plain || json_plain(url) {
        out.push(b'"');
        out.extend_from_slice(url.as_bytes());
        out.push(b'"');
    } else {
        string(out, url);
    }
}

/// Whether `text` can go into a JSON string as it is: no control
/// character, quote or backslash. Checked 32 bytes at a time with no
/// early exit inside a block, so that it is vectorised (a signed URL is
/// ~300 bytes, checked for every bid).
pub fn json_plain(text: &str) -> bool {
    fn escapes(block: &[u8]) -> bool {
        block
            .iter()
            .fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\'))
    }
    let mut blocks = text.as_bytes().chunks_exact(32);
    for block in &mut blocks {
        if escapes(block) {
            return false;
        }
    }
    !escapes(blocks.remainder())
}
