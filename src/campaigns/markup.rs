//! Creative markup: the HTML or VAST a creative serves, and its
//! template — compiled once per config into JSON-escaped text with two slots
//! for the tracking URLs, so that a bid's `adm` is a few copies, not an
//! escape of kilobytes of markup per request.
//!
//! Banner markup is HTML: an image creative is wrapped in a link and
//! followed by the impression pixel; inline HTML may place `{{CLICK_URL}}`
//! and `{{IMPRESSION_URL}}` itself, otherwise it is wrapped the same way.
//! Video and audio markup use the two macros (inside CDATA for VAST).
//! URLs in HTML are attribute-escaped (`&` → `&amp;`). Native markup
//! depends on each request's assets: [`super::native`] writes it.

use super::model::{Creative, Markup};
use crate::openrtb::MediaType;
use crate::openrtb::json_plain;

/// Macro that inline markup may carry where the signed click URL goes.
pub const CLICK_MACRO: &str = "{{CLICK_URL}}";
/// Macro that inline markup may carry where the signed impression-pixel URL goes.
pub const IMPRESSION_MACRO: &str = "{{IMPRESSION_URL}}";

/// Escapes a URL for an HTML attribute value.
fn attr(url: &str) -> String {
    let mut out = String::with_capacity(url.len() + 64);
    push_attr(&mut out, url);
    out
}

/// Appends `url` escaped for an HTML attribute value, in one pass (a
/// SIMD search for the three bytes that need it: signed URLs have an `&`
/// every ~15 bytes and nothing else to escape).
pub fn push_attr(out: &mut String, url: &str) {
    let mut start = 0;
    for at in memchr::memchr3_iter(b'&', b'"', b'<', url.as_bytes()) {
        let entity = match url.as_bytes()[at] {
            b'&' => "&amp;",
            b'"' => "&quot;",
            _ => "&lt;",
        };
        out.push_str(&url[start..at]);
        out.push_str(entity);
        start = at + 1;
    }
    out.push_str(&url[start..]);
}

fn pixel(impression_url: &str) -> String {
    format!(
        r#"<img src="{}" width="1" height="1" alt="" style="position:absolute;left:-10000px;border:0">"#,
        attr(impression_url)
    )
}

/// The markup of a creative with these tracking URLs.
pub fn markup(creative: &Creative, click_url: &str, impression_url: &str) -> String {
    match (&creative.markup, creative.media) {
        (Markup::Image { url }, _) => format!(
            r#"<a href="{}" target="_blank" rel="noopener"><img src="{}" width="{}" height="{}" alt="" style="border:0"></a>{}"#,
            attr(click_url),
            attr(url),
            creative.w.unwrap_or(0),
            creative.h.unwrap_or(0),
            pixel(impression_url)
        ),
        (Markup::Inline(html), MediaType::Banner) => {
            let mut out = if html.contains(CLICK_MACRO) {
                html.replace(CLICK_MACRO, &attr(click_url))
            } else {
                format!(
                    r#"<a href="{}" target="_blank" rel="noopener">{html}</a>"#,
                    attr(click_url)
                )
            };
            if out.contains(IMPRESSION_MACRO) {
                out = out.replace(IMPRESSION_MACRO, &attr(impression_url));
            } else {
                out.push_str(&pixel(impression_url));
            }
            out
        }
        (Markup::Inline(text), _) => text
            .replace(CLICK_MACRO, click_url)
            .replace(IMPRESSION_MACRO, impression_url),
        // Written per request from its assets (`NativeAd::response`).
        (Markup::Native(_), _) => String::new(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// Markup text, already escaped for the inside of a JSON string.
    Text(String),
    Click,
    Impression,
}

/// A creative's markup as a JSON string with slots for its URLs.
#[derive(Clone, Debug)]
pub struct Template {
    pieces: Vec<Piece>,
    /// URLs go into HTML attributes (escape `&`), not VAST or native text.
    html: bool,
    /// Bytes of the rendered JSON string, URLs excluded.
    len: usize,
}

/// Placeholders that cannot occur in markup text (control characters are
/// escaped to `\u0001`/`\u0002` in JSON, which is how they are found).
const CLICK_SLOT: &str = "\u{1}";
const IMPRESSION_SLOT: &str = "\u{2}";

impl Template {
    /// Compiles the creative's markup, with slots for the two tracking URLs.
    pub fn new(creative: &Creative) -> Template {
        let html = matches!(
            (&creative.markup, creative.media),
            (Markup::Image { .. }, _) | (Markup::Inline(_), MediaType::Banner)
        );
        // The markup with the slots where URLs go, as JSON string content.
        let with_slots = markup(creative, CLICK_SLOT, IMPRESSION_SLOT);
        let quoted = serde_json::to_string(&with_slots).unwrap_or_else(|_| "\"\"".into());
        let escaped = &quoted[1..quoted.len() - 1];
        let mut pieces = Vec::new();
        let mut rest = escaped;
        while !rest.is_empty() {
            let next = [("\\u0001", Piece::Click), ("\\u0002", Piece::Impression)]
                .into_iter()
                .filter_map(|(slot, piece)| rest.find(slot).map(|at| (at, slot.len(), piece)))
                .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, slot_len, piece)) => {
                    if at > 0 {
                        pieces.push(Piece::Text(rest[..at].to_string()));
                    }
                    pieces.push(piece);
                    rest = &rest[at + slot_len..];
                }
                None => {
                    pieces.push(Piece::Text(rest.to_string()));
                    rest = "";
                }
            }
        }
        let len = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(text) => text.len(),
                _ => 0,
            })
            .sum();
        Template { pieces, html, len }
    }

    /// The `adm` JSON string for these URLs: the same text as
    /// `serde_json::to_string(&markup(creative, click, impression))`.
    /// `urls_plain`: the caller knows both URLs need no JSON escaping (see
    /// [`json_plain`]); otherwise each is checked.
    pub fn render(&self, click_url: &str, impression_url: &str, urls_plain: bool) -> String {
        let mut out = String::with_capacity(self.len + 2 * (click_url.len() + impression_url.len()) + 2);
        out.push('"');
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Click => self.push_url(&mut out, click_url, urls_plain),
                Piece::Impression => self.push_url(&mut out, impression_url, urls_plain),
            }
        }
        out.push('"');
        // Valid JSON by construction: escaped text and escaped URLs in
        // quotes (not parsed again: the tests check it).
        out
    }

    /// Whether the URLs go into HTML attributes (escaped with
    /// [`push_attr`]).
    pub fn html(&self) -> bool {
        self.html
    }

    /// The `adm` JSON string for URLs already in the form the markup
    /// takes (escaped for an attribute where [`Template::html`]) and
    /// JSON-plain: copied as they are, the same text as [`Template::render`]
    /// writes for their unescaped forms.
    pub fn render_ready(&self, click_url: &str, impression_url: &str) -> String {
        let mut out = String::with_capacity(self.len + click_url.len() + impression_url.len() + 2);
        out.push('"');
        for piece in &self.pieces {
            out.push_str(match piece {
                Piece::Text(text) => text,
                Piece::Click => click_url,
                Piece::Impression => impression_url,
            });
        }
        out.push('"');
        out
    }

    fn push_url(&self, out: &mut String, url: &str, plain: bool) {
        // Signed tracking URLs never need JSON escaping (attribute escaping
        // only adds `&…;`); anything else is escaped the long way.
        if plain || json_plain(url) {
            if self.html {
                push_attr(out, url);
            } else {
                out.push_str(url);
            }
        } else {
            let url = if self.html { attr(url) } else { url.to_string() };
            let quoted = serde_json::to_string(&url).unwrap_or_default();
            out.push_str(&quoted[1..quoted.len().saturating_sub(1)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    #[test]
    fn json_plain_finds_what_json_escapes_anywhere_in_a_url() {
        let url = "http://127.0.0.1:8080/t/click?b=7290f516c04f3771&r=80ce30&i=1&c=globex&k=globex-300x250&s=Gm7nJ";
        assert!(json_plain(url));
        assert!(json_plain(""));
        for at in [0, 31, 32, 33, 63, 64, url.len() - 1] {
            for bad in ['"', '\\', '\n', '\u{1}'] {
                let mut text = url.to_string();
                text.insert(at, bad);
                assert!(!json_plain(&text), "{text:?}");
                assert_ne!(serde_json::to_string(&text).unwrap(), format!("\"{text}\""));
            }
        }
    }

    fn creative(markup: Markup, media: MediaType) -> Creative {
        Creative {
            id: "cr".into(),
            media,
            w: Some(300),
            h: Some(250),
            markup,
            landing_url: "https://x".into(),
            mime: None,
            duration: None,
            attr: vec![],
            paused: false,
            player: Default::default(),
            rewarded: None,
            weight: 1,
        }
    }

    #[test]
    fn banner_markup_has_link_and_pixel() {
        let html = markup(
            &creative(
                Markup::Image {
                    url: "https://cdn/a.png".into(),
                },
                MediaType::Banner,
            ),
            "http://t/click?a=1&b=2",
            "http://t/imp?a=1",
        );
        assert!(html.contains(r#"<a href="http://t/click?a=1&amp;b=2""#));
        assert!(html.contains(r#"<img src="http://t/imp?a=1""#));
        let inline = markup(
            &creative(Markup::Inline("<b>hi</b>".into()), MediaType::Banner),
            "C",
            "I",
        );
        assert!(inline.starts_with(r#"<a href="C""#) && inline.contains(r#"src="I""#));
        let vast = markup(
            &creative(
                Markup::Inline("<VAST><![CDATA[{{IMPRESSION_URL}}]]>{{CLICK_URL}}</VAST>".into()),
                MediaType::Video,
            ),
            "C&x",
            "I&y",
        );
        assert_eq!(vast, "<VAST><![CDATA[I&y]]>C&x</VAST>");
    }

    #[test]
    fn templates_render_exactly_what_escaping_the_markup_gives() {
        let creatives = [
            creative(
                Markup::Image {
                    url: "https://cdn/a \"b\".png".into(),
                },
                MediaType::Banner,
            ),
            creative(
                Markup::Inline("<div onclick=\"go('{{CLICK_URL}}')\">\\n\t{{IMPRESSION_URL}} é</div>".into()),
                MediaType::Banner,
            ),
            creative(Markup::Inline("<b>no macros</b>".into()), MediaType::Banner),
            creative(
                Markup::Inline("<VAST><![CDATA[{{IMPRESSION_URL}}]]><![CDATA[{{CLICK_URL}}]]></VAST>".into()),
                MediaType::Video,
            ),
            creative(
                Markup::Inline(
                    r#"{"native":{"link":{"url":"{{CLICK_URL}}"},"imptrackers":["{{IMPRESSION_URL}}"]}}"#.into(),
                ),
                MediaType::Native,
            ),
        ];
        let urls = [
            ("http://t/t/click?b=1&r=2&s=AbC-_", "http://t/t/imp?b=1&r=2&s=xyz"),
            ("http://h/\"odd\\url", "http://h/\u{7}bell"),
        ];
        for creative in &creatives {
            let template = Template::new(creative);
            for (click, impression) in urls {
                let expected = serde_json::to_string(&markup(creative, click, impression)).unwrap();
                let rendered = template.render(click, impression, false);
                assert!(serde_json::from_str::<&RawValue>(&rendered).is_ok(), "{rendered}");
                assert_eq!(rendered, expected);
            }
            // URLs already in the markup's form (attribute-escaped for
            // HTML), JSON-plain: the same text.
            let (click, impression) = urls[0];
            let ready = |url: &str| if template.html() { attr(url) } else { url.to_string() };
            assert_eq!(
                template.render_ready(&ready(click), &ready(impression)),
                template.render(click, impression, true)
            );
        }
    }
}
