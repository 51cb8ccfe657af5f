//! The native request inside `imp.native.request` (Native Ads 1.0–1.2):
//! only what the bidder reads.
//!
//! Exchanges send it as a JSON string (the spec's way) or as the object
//! itself, with or without the pre-1.1 `{"native": {…}}` wrapper; all four
//! are read, once, while the bid request is decoded, and only for
//! impressions that offer native. Read: `ver`, `assets` (`id`, `required`,
//! and one of `title{len}`, `img{type, w, h, wmin, hmin, mimes}`,
//! `data{type, len}`, `video`), and whether `eventtrackers` offers an
//! impression tracker by image. Everything else (`context`, `plcmttype`,
//! `privacy`, `aurlsupport`, …) and unknown fields are skipped.
//!
//! A native request that cannot be read — not JSON, not an object, no
//! `assets` or more than [`MAX_ASSETS`], a required asset without an `id`
//! or two assets with the same `id` (answers could not be matched to
//! them), a field of the wrong type —
//! leaves the impression
//! without one ([`super::Native::request`] is `None`): it gets no native
//! bid, and the rest of the bid request is answered as usual.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::text::{Flag, Text};

/// Image asset types (Native 1.2 §7.5, AdCOM image asset types).
pub mod image_type {
    /// An icon: app icon, brand logo (1.2 merged 1.1's logo, 2, into it).
    pub const ICON: i32 = 1;
    /// A logo (Native 1.0/1.1; answered with an icon).
    pub const LOGO: i32 = 2;
    /// The main image, a large preview.
    pub const MAIN: i32 = 3;
    /// Names a config may use for them.
    pub const NAMES: [(&str, i32); 2] = [("icon", ICON), ("main", MAIN)];
}

/// Data asset types (Native 1.2 §7.4, AdCOM data asset types).
pub mod data_type {
    /// "Sponsored by": the brand name.
    pub const SPONSORED: i32 = 1;
    /// Descriptive text.
    pub const DESC: i32 = 2;
    /// A call-to-action text (e.g. "Install").
    pub const CTATEXT: i32 = 12;
    /// Names a config may use for them, in the spec's order (`salesprice`
    /// is the spec's own spelling of `saleprice`).
    pub const NAMES: [(&str, i32); 13] = [
        ("sponsored", SPONSORED),
        ("desc", DESC),
        ("rating", 3),
        ("likes", 4),
        ("downloads", 5),
        ("price", 6),
        ("saleprice", 7),
        ("salesprice", 7),
        ("phone", 8),
        ("address", 9),
        ("desc2", 10),
        ("displayurl", 11),
        ("ctatext", CTATEXT),
    ];
}

/// The native spec version a request speaks, which its answer speaks too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NativeVersion {
    /// 1.0.
    V1_0,
    /// 1.1.
    V1_1,
    /// 1.2 (the default, and what a later version is answered in).
    #[default]
    V1_2,
}

impl NativeVersion {
    /// Reads `ver` (`"1.1"`, `1.1`, `"1.1.0"`…); anything else is 1.2.
    fn parse(ver: &str) -> NativeVersion {
        let ver = ver.trim().trim_matches('"');
        if ver.starts_with("1.0") || ver == "1" {
            NativeVersion::V1_0
        } else if ver.starts_with("1.1") {
            NativeVersion::V1_1
        } else {
            NativeVersion::V1_2
        }
    }

    /// As written in a native response's `ver`.
    pub fn as_str(self) -> &'static str {
        match self {
            NativeVersion::V1_0 => "1.0",
            NativeVersion::V1_1 => "1.1",
            NativeVersion::V1_2 => "1.2",
        }
    }
}

/// A native request, read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NativeRequest {
    /// The spec version it speaks (its `ver`, else `imp.native.ver`).
    pub version: NativeVersion,
    /// It came wrapped in `{"native": {…}}` (Native 1.0): so is its answer.
    pub wrapped: bool,
    /// The assets, each with an id; at least one.
    pub assets: Vec<AssetRequest>,
    /// `eventtrackers` offers impression tracking (event 1) by image
    /// (method 1): the answer carries its impression tracker there.
    pub impression_event_tracker: bool,
}

/// One asset the publisher asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct AssetRequest {
    /// Its id, which the answer's asset carries.
    pub id: i64,
    /// The exchange takes no bid without it.
    pub required: bool,
    /// What it is.
    pub kind: AssetKind,
}

/// What an asset is, with its constraints.
#[derive(Clone, Debug, PartialEq)]
pub enum AssetKind {
    /// A title of at most `len` characters (`None` or ≤ 0: no limit given).
    Title {
        /// Maximum length, characters.
        len: Option<i64>,
    },
    /// An image.
    Image(ImageRequest),
    /// A data text of a type (sponsored by, description, …).
    Data {
        /// Its data asset type ([`data_type`]); `None` when not given.
        kind: Option<i32>,
        /// Maximum length, characters (`None` or ≤ 0: no limit given).
        len: Option<i64>,
    },
    /// A video asset (never filled: native creatives carry no video).
    Video,
    /// None of the above (a newer asset kind).
    Unknown,
}

/// An image asset's constraints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageRequest {
    /// Image asset type ([`image_type`]); `None` accepts any.
    pub kind: Option<i32>,
    /// Exact width, pixels, unless `wmin` is given.
    pub w: Option<i64>,
    /// Exact height, pixels, unless `hmin` is given.
    pub h: Option<i64>,
    /// Minimum width, pixels.
    pub wmin: Option<i64>,
    /// Minimum height, pixels.
    pub hmin: Option<i64>,
    /// Accepted MIME types; empty accepts any.
    pub mimes: Vec<String>,
}

/// The native request document as sent.
#[derive(Deserialize)]
struct Document<'a> {
    /// The pre-1.1 wrapper's content.
    #[serde(borrow)]
    native: Option<&'a RawValue>,
    /// A string, or a number from some exchanges.
    #[serde(borrow)]
    ver: Option<&'a RawValue>,
    #[serde(borrow)]
    assets: Option<Vec<WireAsset<'a>>>,
    #[serde(default)]
    eventtrackers: Option<Vec<WireTracker>>,
}

#[derive(Deserialize)]
struct WireAsset<'a> {
    id: Option<i64>,
    #[serde(default)]
    required: Flag,
    title: Option<WireTitle>,
    #[serde(borrow)]
    img: Option<WireImage<'a>>,
    data: Option<WireData>,
    video: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct WireTitle {
    len: Option<i64>,
}

#[derive(Deserialize)]
struct WireImage<'a> {
    #[serde(rename = "type")]
    kind: Option<i32>,
    w: Option<i64>,
    h: Option<i64>,
    wmin: Option<i64>,
    hmin: Option<i64>,
    #[serde(borrow, default)]
    mimes: Option<Vec<Text<'a>>>,
}

#[derive(Deserialize)]
struct WireData {
    #[serde(rename = "type")]
    kind: Option<i32>,
    len: Option<i64>,
}

#[derive(Deserialize)]
struct WireTracker {
    event: Option<i32>,
    #[serde(default)]
    methods: Option<Vec<i32>>,
}

/// Most assets a native request may ask for. Real ones ask for under
/// fifteen; each creative's fit walks them all, so a request with
/// thousands would cost every native campaign that much.
pub const MAX_ASSETS: usize = 64;

/// Event type 1: impression (Native 1.2 §7.6).
const EVENT_IMPRESSION: i32 = 1;
/// Event tracking method 1: image pixel (Native 1.2 §7.7).
const METHOD_IMAGE: i32 = 1;

impl NativeRequest {
    /// Reads `imp.native.request` from its raw JSON (a string holding the
    /// document, or the document), with `imp.native.ver` for a document
    /// that gives no version; `None` when it cannot be read.
    pub fn read(raw: &RawValue, outer_ver: Option<&str>) -> Option<NativeRequest> {
        let text = raw.get().trim_start();
        let unescaped: String;
        let json = if text.starts_with('"') {
            unescaped = serde_json::from_str(text).ok()?;
            unescaped.as_str()
        } else {
            text
        };
        let mut document: Document = serde_json::from_str(json).ok()?;
        let mut wrapped = false;
        if document.assets.is_none()
            && let Some(inner) = document.native
        {
            document = serde_json::from_str(inner.get()).ok()?;
            wrapped = true;
        }
        let wires = document.assets.filter(|a| a.len() <= MAX_ASSETS)?;
        let mut assets = Vec::with_capacity(wires.len());
        for wire in wires {
            match wire.id {
                Some(id) if assets.iter().any(|a: &AssetRequest| a.id == id) => return None,
                Some(id) => assets.push(AssetRequest {
                    id,
                    required: wire.required.0,
                    kind: AssetKind::of(wire),
                }),
                None if wire.required.0 => return None,
                None => {}
            }
        }
        if assets.is_empty() {
            return None;
        }
        let version = document
            .ver
            .map(RawValue::get)
            .or(outer_ver)
            .map_or(NativeVersion::V1_2, NativeVersion::parse);
        let impression_event_tracker = document.eventtrackers.into_iter().flatten().any(|t| {
            t.event == Some(EVENT_IMPRESSION) && t.methods.as_deref().unwrap_or_default().contains(&METHOD_IMAGE)
        });
        Some(NativeRequest {
            version,
            wrapped,
            assets,
            impression_event_tracker,
        })
    }
}

impl AssetKind {
    /// The first of title, img, data and video the asset carries.
    fn of(wire: WireAsset) -> AssetKind {
        if let Some(title) = wire.title {
            return AssetKind::Title { len: title.len };
        }
        if let Some(img) = wire.img {
            return AssetKind::Image(ImageRequest {
                kind: img.kind,
                w: img.w,
                h: img.h,
                wmin: img.wmin,
                hmin: img.hmin,
                mimes: img.mimes.into_iter().flatten().map(|m| m.to_string()).collect(),
            });
        }
        if let Some(data) = wire.data {
            return AssetKind::Data {
                kind: data.kind,
                len: data.len,
            };
        }
        if wire.video.is_some() {
            return AssetKind::Video;
        }
        AssetKind::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(native_request: &str) -> Option<NativeRequest> {
        let raw: Box<RawValue> = serde_json::from_str(native_request).unwrap();
        NativeRequest::read(&raw, None)
    }

    const ASSETS: &str = r#"[{"id":1,"required":1,"title":{"len":90}},{"id":2,"img":{"type":3,"wmin":600,"hmin":300,"mimes":["image/png"]}},{"id":3,"required":"1","data":{"type":2,"len":140}},{"id":4,"video":{"mimes":["video/mp4"]}},{"id":5,"future":{}}]"#;

    fn expected(version: NativeVersion, wrapped: bool, impression_event_tracker: bool) -> NativeRequest {
        NativeRequest {
            version,
            wrapped,
            impression_event_tracker,
            assets: vec![
                AssetRequest {
                    id: 1,
                    required: true,
                    kind: AssetKind::Title { len: Some(90) },
                },
                AssetRequest {
                    id: 2,
                    required: false,
                    kind: AssetKind::Image(ImageRequest {
                        kind: Some(3),
                        wmin: Some(600),
                        hmin: Some(300),
                        mimes: vec!["image/png".into()],
                        ..ImageRequest::default()
                    }),
                },
                AssetRequest {
                    id: 3,
                    required: true,
                    kind: AssetKind::Data {
                        kind: Some(2),
                        len: Some(140),
                    },
                },
                AssetRequest {
                    id: 4,
                    required: false,
                    kind: AssetKind::Video,
                },
                AssetRequest {
                    id: 5,
                    required: false,
                    kind: AssetKind::Unknown,
                },
            ],
        }
    }

    #[test]
    fn string_object_and_wrapped_forms_read_alike() {
        let document = format!(r#"{{"ver":"1.2","assets":{ASSETS},"eventtrackers":[{{"event":1,"methods":[1,2]}}]}}"#);
        let as_string = serde_json::to_string(&document).unwrap();
        assert_eq!(read(&as_string), Some(expected(NativeVersion::V1_2, false, true)));
        assert_eq!(read(&document), Some(expected(NativeVersion::V1_2, false, true)));
        let wrapped = format!(r#"{{"native":{{"ver":"1.0","assets":{ASSETS}}}}}"#);
        assert_eq!(read(&wrapped), Some(expected(NativeVersion::V1_0, true, false)));
        let wrapped_string = serde_json::to_string(&wrapped).unwrap();
        assert_eq!(read(&wrapped_string), Some(expected(NativeVersion::V1_0, true, false)));
    }

    #[test]
    fn the_version_comes_from_the_document_then_the_impression() {
        let raw: Box<RawValue> = serde_json::from_str(&format!(r#"{{"assets":{ASSETS}}}"#)).unwrap();
        let version = |outer| NativeRequest::read(&raw, outer).unwrap().version;
        assert_eq!(version(None), NativeVersion::V1_2);
        assert_eq!(version(Some("1.1")), NativeVersion::V1_1);
        let numeric = read(&format!(r#"{{"ver":1.1,"assets":{ASSETS}}}"#)).unwrap();
        assert_eq!(numeric.version, NativeVersion::V1_1);
        let newer = read(&format!(r#"{{"ver":"1.3","assets":{ASSETS}}}"#)).unwrap();
        assert_eq!(newer.version, NativeVersion::V1_2);
    }

    #[test]
    fn only_an_image_impression_tracker_counts() {
        let with = |trackers: &str| {
            read(&format!(r#"{{"assets":{ASSETS},"eventtrackers":{trackers}}}"#))
                .unwrap()
                .impression_event_tracker
        };
        assert!(with(r#"[{"event":2,"methods":[1]},{"event":1,"methods":[1]}]"#));
        assert!(!with(r#"[{"event":1,"methods":[2]}]"#), "javascript only");
        assert!(!with(r#"[{"event":2,"methods":[1]}]"#), "viewability only");
        assert!(!with("[]"));
    }

    #[test]
    fn unreadable_requests_are_none() {
        for bad in [
            r#""""#,
            r#""{json string}""#,
            r#""{native: \"request\"}""#,
            r#""\"assets\":[{\"id\":0,\"title\":{\"len\":140}}]""#,
            "null",
            "[]",
            "7",
            r#"{"ver":"1.2"}"#,
            r#"{"assets":[]}"#,
            r#"{"assets":"title"}"#,
            r#"{"assets":[{"id":1,"required":1,"title":{"len":"ninety"}}]}"#,
            r#"{"native":{"ver":"1.0"}}"#,
            r#"{"assets":[{"id":1,"title":{"len":25}},{"id":1,"data":{"type":1}}]}"#,
        ] {
            assert_eq!(read(bad), None, "{bad}");
        }
        let many = |n: usize| {
            let assets: Vec<String> = (0..n).map(|id| format!(r#"{{"id":{id},"title":{{}}}}"#)).collect();
            format!(r#"{{"assets":[{}]}}"#, assets.join(","))
        };
        assert_eq!(read(&many(MAX_ASSETS)).map(|r| r.assets.len()), Some(MAX_ASSETS));
        assert_eq!(read(&many(MAX_ASSETS + 1)), None);
    }

    #[test]
    fn assets_without_an_id_are_skipped_unless_required() {
        let optional = read(r#"{"assets":[{"title":{"len":25}},{"id":2,"title":{"len":90}}]}"#).unwrap();
        assert_eq!(optional.assets.len(), 1);
        assert_eq!(optional.assets[0].id, 2);
        assert_eq!(read(r#"{"assets":[{"title":{"len":25}}]}"#), None, "nothing to answer");
        assert_eq!(
            read(r#"{"assets":[{"required":1,"title":{"len":25}},{"id":2,"title":{"len":90}}]}"#),
            None
        );
    }
}
