//! Native creatives: the assets an advertiser configured (a title, images,
//! data texts), whether they fill a native request, and the native
//! response written for one.
//!
//! A creative fills an asset when it has one of its kind within the
//! asset's constraints: a title no longer than `len` characters; an image
//! of the asked type (an icon answers 1.1's logo), its width and height
//! at least `wmin`/`hmin` where given (positive), else exactly `w`/`h`
//! where given, its MIME type among `mimes`; a data text of the asked type
//! no longer than `len`. Video assets are never filled (a native creative
//! has no video). A creative fits a native request when it fills every
//! required asset and at least one asset in all; optional assets are filled
//! when it can.
//!
//! The response is written directly as JSON text (no `Value` tree): the
//! creative's texts and URLs are escaped once, when the config is
//! compiled, and each bid only concatenates them with its asset ids and
//! signed tracking URLs. It speaks the request's version, wrapped in
//! `{"native": …}` only when the request was (Native 1.0); the impression
//! tracker goes into `eventtrackers` (event 1, method 1) when the request
//! offers that, else into `imptrackers`.

use std::fmt::Write;

use serde_json::value::RawValue;

use crate::openrtb::native::{AssetKind, AssetRequest, ImageRequest, NativeRequest, image_type};

/// A text of a native creative (title, data value, image URL), with its
/// JSON string literal and its length in characters computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeText {
    text: String,
    json: String,
    chars: usize,
}

impl NativeText {
    /// Wraps a configured text.
    pub fn new(text: String) -> NativeText {
        let json = serde_json::to_string(&text).unwrap_or_else(|_| "\"\"".into());
        let chars = text.chars().count();
        NativeText { text, json, chars }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its length in characters (what a `len` limits).
    pub fn chars(&self) -> usize {
        self.chars
    }
}

/// One image of a native creative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeImage {
    /// Image asset type: 1 icon, 3 main, or an exchange's own (500+).
    pub kind: i32,
    /// Where the image is (https).
    pub url: NativeText,
    /// Width, pixels.
    pub w: i64,
    /// Height, pixels.
    pub h: i64,
    /// MIME type (configured, or known from the URL's extension).
    pub mime: Option<String>,
}

/// One data text of a native creative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeData {
    /// Data asset type: 1 sponsored, 2 desc, 12 ctatext, …
    pub kind: i32,
    /// The text shown.
    pub value: NativeText,
}

/// What a native creative shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NativeAd {
    /// The title (headline).
    pub title: Option<NativeText>,
    /// Images, tried in order for each image asset.
    pub images: Vec<NativeImage>,
    /// Data texts, tried in order for each data asset.
    pub data: Vec<NativeData>,
}

/// What fills one asset.
#[derive(Clone, Copy, Debug)]
enum Fill<'c> {
    Title(&'c NativeText),
    Image(&'c NativeImage),
    Data(&'c NativeText),
}

/// A text within a `len` limit (none given when absent or not positive).
fn within(text: &NativeText, len: Option<i64>) -> bool {
    len.filter(|l| *l > 0).is_none_or(|l| text.chars() as i64 <= l)
}

/// One side of an image: at least `min` where given, else exactly `exact`
/// where given (Native 1.2 §4.4: `w` alone is an exact requirement).
fn side_fits(ours: i64, exact: Option<i64>, min: Option<i64>) -> bool {
    match (min.filter(|m| *m > 0), exact.filter(|e| *e > 0)) {
        (Some(min), _) => ours >= min,
        (None, Some(exact)) => ours == exact,
        (None, None) => true,
    }
}

/// `image/jpg` is what many exchanges write for `image/jpeg`.
fn same_mime(a: &str, b: &str) -> bool {
    canonical_mime(a).eq_ignore_ascii_case(canonical_mime(b))
}

fn canonical_mime(mime: &str) -> &str {
    let mime = mime.trim();
    if mime.eq_ignore_ascii_case("image/jpg") {
        "image/jpeg"
    } else {
        mime
    }
}

/// Icons answer logos: Native 1.2 merged 1.1's logo (2) into the icon (1).
fn same_image_type(ours: i32, asked: i32) -> bool {
    let class = |t: i32| if t == image_type::LOGO { image_type::ICON } else { t };
    class(ours) == class(asked)
}

fn image_fits(image: &NativeImage, asked: &ImageRequest) -> bool {
    asked.kind.is_none_or(|kind| same_image_type(image.kind, kind))
        && side_fits(image.w, asked.w, asked.wmin)
        && side_fits(image.h, asked.h, asked.hmin)
        && (asked.mimes.is_empty()
            || image
                .mime
                .as_deref()
                .is_some_and(|ours| asked.mimes.iter().any(|m| same_mime(ours, m))))
}

impl NativeAd {
    /// What of this creative fills `asset`, if anything.
    fn fill(&self, asset: &AssetRequest) -> Option<Fill<'_>> {
        match &asset.kind {
            AssetKind::Title { len } => self.title.as_ref().filter(|t| within(t, *len)).map(Fill::Title),
            AssetKind::Image(asked) => self.images.iter().find(|i| image_fits(i, asked)).map(Fill::Image),
            AssetKind::Data { kind: Some(kind), len } => self
                .data
                .iter()
                .find(|d| d.kind == *kind && within(&d.value, *len))
                .map(|d| Fill::Data(&d.value)),
            AssetKind::Data { kind: None, .. } | AssetKind::Video | AssetKind::Unknown => None,
        }
    }

    /// True when this creative fills every required asset of `request`,
    /// and at least one asset.
    pub fn fits(&self, request: &NativeRequest) -> bool {
        let mut filled_any = false;
        for asset in &request.assets {
            match self.fill(asset) {
                Some(_) => filled_any = true,
                None if asset.required => return false,
                None => {}
            }
        }
        filled_any
    }

    /// The bid's `adm`: the native response to `request` (which this
    /// creative [fits](Self::fits)) with these tracking URLs, as a JSON
    /// string.
    pub fn response(&self, request: &NativeRequest, click_url: &str, impression_url: &str) -> Box<RawValue> {
        let mut doc = String::with_capacity(256 + click_url.len() + impression_url.len());
        if request.wrapped {
            doc.push_str(r#"{"native":"#);
        }
        doc.push_str(r#"{"ver":""#);
        doc.push_str(request.version.as_str());
        doc.push_str(r#"","assets":["#);
        let mut first = true;
        for asset in &request.assets {
            let Some(fill) = self.fill(asset) else {
                continue;
            };
            if !first {
                doc.push(',');
            }
            first = false;
            self.push_asset(&mut doc, asset, fill);
        }
        doc.push_str(r#"],"link":{"url":"#);
        push_json_string(&mut doc, click_url);
        if request.impression_event_tracker {
            doc.push_str(r#"},"eventtrackers":[{"event":1,"method":1,"url":"#);
            push_json_string(&mut doc, impression_url);
            doc.push_str("}]}");
        } else {
            doc.push_str(r#"},"imptrackers":["#);
            push_json_string(&mut doc, impression_url);
            doc.push_str("]}");
        }
        if request.wrapped {
            doc.push('}');
        }
        let quoted = serde_json::to_string(&doc).unwrap_or_else(|_| "\"\"".into());
        // Valid by construction: a string serde_json has just quoted.
        RawValue::from_string(quoted).unwrap_or_else(|_| RawValue::from_string("\"\"".into()).expect("empty string"))
    }

    fn push_asset(&self, doc: &mut String, asset: &AssetRequest, fill: Fill<'_>) {
        let _ = write!(doc, r#"{{"id":{}"#, asset.id);
        if asset.required {
            doc.push_str(r#","required":1"#);
        }
        match fill {
            Fill::Title(title) => {
                doc.push_str(r#","title":{"text":"#);
                doc.push_str(&title.json);
            }
            Fill::Image(image) => {
                doc.push_str(r#","img":{"url":"#);
                doc.push_str(&image.url.json);
                let _ = write!(doc, r#","w":{},"h":{}"#, image.w, image.h);
            }
            Fill::Data(value) => {
                doc.push_str(r#","data":{"value":"#);
                doc.push_str(&value.json);
            }
        }
        doc.push_str("}}");
    }
}

/// Appends `text` as a JSON string literal. Signed tracking URLs need no
/// escaping; anything else is escaped by serde_json.
fn push_json_string(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// The MIME type of an image file, from its URL's extension, when common.
pub fn image_mime_of(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let extension = file.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::openrtb::native::data_type;

    fn image(kind: i32, url: &str, w: i64, h: i64) -> NativeImage {
        NativeImage {
            kind,
            url: NativeText::new(url.into()),
            w,
            h,
            mime: image_mime_of(url).map(String::from),
        }
    }

    fn data(kind: i32, value: &str) -> NativeData {
        NativeData {
            kind,
            value: NativeText::new(value.into()),
        }
    }

    /// A title of 21 characters, a 1200×627 JPEG main image and an 80×80
    /// PNG icon, a sponsor and a description.
    fn ad() -> NativeAd {
        NativeAd {
            title: Some(NativeText::new("The new \"Hooli\" phone".into())),
            images: vec![
                image(image_type::MAIN, "https://cdn.example/main.jpg", 1200, 627),
                image(image_type::ICON, "https://cdn.example/icon.png", 80, 80),
            ],
            data: vec![
                data(data_type::SPONSORED, "Hooli"),
                data(data_type::DESC, "All day battery. Brighter screen."),
            ],
        }
    }

    fn asset(id: i64, required: bool, kind: AssetKind) -> AssetRequest {
        AssetRequest { id, required, kind }
    }

    fn img(kind: Option<i32>, exact: (Option<i64>, Option<i64>), min: (Option<i64>, Option<i64>)) -> AssetKind {
        AssetKind::Image(ImageRequest {
            kind,
            w: exact.0,
            h: exact.1,
            wmin: min.0,
            hmin: min.1,
            mimes: vec![],
        })
    }

    fn request(assets: Vec<AssetRequest>) -> NativeRequest {
        NativeRequest {
            assets,
            ..NativeRequest::default()
        }
    }

    /// Whether the creative fills one required asset of this kind.
    fn fills(kind: AssetKind) -> bool {
        ad().fits(&request(vec![asset(1, true, kind)]))
    }

    #[test]
    fn titles_and_data_fit_within_their_length_in_characters() {
        assert!(fills(AssetKind::Title { len: Some(21) }));
        assert!(!fills(AssetKind::Title { len: Some(20) }));
        assert!(fills(AssetKind::Title { len: None }));
        assert!(fills(AssetKind::Data {
            kind: Some(data_type::SPONSORED),
            len: Some(5)
        }));
        assert!(!fills(AssetKind::Data {
            kind: Some(data_type::SPONSORED),
            len: Some(4)
        }));
        assert!(!fills(AssetKind::Data {
            kind: Some(data_type::CTATEXT),
            len: None
        }));
        assert!(!fills(AssetKind::Data { kind: None, len: None }));
        let accented = NativeAd {
            title: Some(NativeText::new("Café".into())),
            ..NativeAd::default()
        };
        assert!(accented.fits(&request(vec![asset(1, true, AssetKind::Title { len: Some(4) })])));
    }

    #[test]
    fn images_fit_by_type_exact_or_minimum_size_and_mime() {
        let main = Some(image_type::MAIN);
        assert!(fills(img(main, (Some(1200), Some(627)), (None, None))));
        assert!(!fills(img(main, (Some(1200), Some(628)), (None, None))));
        assert!(fills(img(main, (None, None), (Some(836), Some(627)))));
        assert!(!fills(img(main, (None, None), (Some(1201), Some(627)))));
        // A zero minimum is no minimum: the exact size holds.
        assert!(!fills(img(main, (Some(180), Some(120)), (Some(0), Some(0)))));
        assert!(fills(img(main, (None, None), (None, None))));
        // Icons answer icons and 1.1 logos; an untyped asset takes any image.
        assert!(fills(img(Some(image_type::ICON), (Some(80), Some(80)), (None, None))));
        assert!(fills(img(Some(image_type::LOGO), (Some(80), Some(80)), (None, None))));
        assert!(!fills(img(
            Some(image_type::ICON),
            (Some(1200), Some(627)),
            (None, None)
        )));
        assert!(fills(img(None, (Some(80), Some(80)), (None, None))));
        assert!(!fills(img(Some(501), (None, None), (None, None))));
        let mimes = |mimes: &[&str]| {
            AssetKind::Image(ImageRequest {
                kind: main,
                mimes: mimes.iter().map(|m| m.to_string()).collect(),
                ..ImageRequest::default()
            })
        };
        assert!(fills(mimes(&["image/png", "image/jpg"])));
        assert!(fills(mimes(&["IMAGE/JPEG"])));
        assert!(!fills(mimes(&["image/png", "image/gif"])));
    }

    #[test]
    fn every_required_asset_and_at_least_one_asset_must_be_filled() {
        let title = || AssetKind::Title { len: Some(90) };
        let video = AssetKind::Video;
        assert!(ad().fits(&request(vec![asset(1, true, title()), asset(2, false, video.clone())])));
        assert!(!ad().fits(&request(vec![asset(1, true, title()), asset(2, true, video.clone())])));
        assert!(!ad().fits(&request(vec![asset(2, false, video)])), "nothing filled");
        assert!(!ad().fits(&request(vec![asset(2, true, AssetKind::Unknown)])));
        assert!(!NativeAd::default().fits(&request(vec![asset(1, false, title())])));
    }

    #[test]
    fn the_response_answers_each_filled_asset_by_its_id() {
        let request = NativeRequest {
            assets: vec![
                asset(123, true, AssetKind::Title { len: Some(140) }),
                asset(128, false, img(Some(3), (None, None), (Some(836), Some(627)))),
                asset(124, true, img(Some(1), (None, None), (Some(50), Some(50)))),
                asset(
                    126,
                    true,
                    AssetKind::Data {
                        kind: Some(1),
                        len: Some(25),
                    },
                ),
                asset(
                    129,
                    false,
                    AssetKind::Data {
                        kind: Some(12),
                        len: None,
                    },
                ),
            ],
            ..NativeRequest::default()
        };
        let adm = ad().response(&request, "https://t/click?a=1&s=x", "https://t/imp?a=1&s=y");
        let markup: String = serde_json::from_str(adm.get()).unwrap();
        assert_eq!(
            markup,
            concat!(
                r#"{"ver":"1.2","assets":["#,
                r#"{"id":123,"required":1,"title":{"text":"The new \"Hooli\" phone"}},"#,
                r#"{"id":128,"img":{"url":"https://cdn.example/main.jpg","w":1200,"h":627}},"#,
                r#"{"id":124,"required":1,"img":{"url":"https://cdn.example/icon.png","w":80,"h":80}},"#,
                r#"{"id":126,"required":1,"data":{"value":"Hooli"}}],"#,
                r#""link":{"url":"https://t/click?a=1&s=x"},"imptrackers":["https://t/imp?a=1&s=y"]}"#
            )
        );
        serde_json::from_str::<Value>(&markup).expect("valid JSON");
    }

    #[test]
    fn the_response_follows_the_request_wrapper_version_and_trackers() {
        let request = NativeRequest {
            version: crate::openrtb::native::NativeVersion::V1_0,
            wrapped: true,
            impression_event_tracker: true,
            assets: vec![asset(1, true, AssetKind::Title { len: None })],
        };
        let adm = ad().response(&request, "C", "I\"odd");
        let markup: Value = serde_json::from_str(&serde_json::from_str::<String>(adm.get()).unwrap()).unwrap();
        assert_eq!(
            markup,
            serde_json::json!({"native": {
                "ver": "1.0",
                "assets": [{"id": 1, "required": 1, "title": {"text": "The new \"Hooli\" phone"}}],
                "link": {"url": "C"},
                "eventtrackers": [{"event": 1, "method": 1, "url": "I\"odd"}]
            }})
        );
    }

    #[test]
    fn image_mimes_come_from_common_extensions() {
        assert_eq!(image_mime_of("https://x/a.JPG?v=2"), Some("image/jpeg"));
        assert_eq!(image_mime_of("https://x/a.png#f"), Some("image/png"));
        assert_eq!(image_mime_of("https://cdn.example/a"), None);
        assert_eq!(image_mime_of("https://x/a.bmp"), None);
    }
}
