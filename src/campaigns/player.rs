//! What a video or audio creative needs of the player it plays in: its VAST
//! (or DAAST) version as an OpenRTB protocol, linear or not, the API
//! frameworks it requires, whether it may be skipped, and where and when it
//! may run (placement, start delay). Read from config, and from the
//! creative's own markup where config is silent (`<VAST version="4.1">`,
//! `<Wrapper>`, `<NonLinearAds>`): an advertiser's VAST is never rewritten,
//! so a creative is bid only into slots whose `protocols` allow its version.

use crate::openrtb::{Audio, Flag, Video};

/// Placements (bits) a creative may run in.
pub mod placement {
    /// In-stream: before, during or after content the viewer chose (2.6 `plcmt` 1; 2.5 `placement` 1).
    pub const INSTREAM: u8 = 1;
    /// Accompanying content, e.g. a floating player beside an article (`plcmt` 2).
    pub const ACCOMPANYING: u8 = 2;
    /// Interstitial: full screen between content (`plcmt` 3; 2.5 `placement` 5).
    pub const INTERSTITIAL: u8 = 4;
    /// No content: standalone or out-stream (`plcmt` 4; 2.5 `placement` 2, 3, 4).
    pub const STANDALONE: u8 = 8;
    /// The names in config (`placements = ["instream"]`).
    pub const NAMES: &[(&str, u8)] = &[
        ("instream", INSTREAM),
        ("accompanying", ACCOMPANYING),
        ("interstitial", INTERSTITIAL),
        ("standalone", STANDALONE),
    ];
}

/// Start delays (bits) a creative may run at.
pub mod start {
    /// Pre-roll (`startdelay` 0).
    pub const PRE: u8 = 1;
    /// Mid-roll (`startdelay` > 0 or −1).
    pub const MID: u8 = 2;
    /// Post-roll (`startdelay` −2).
    pub const POST: u8 = 4;
    /// The names in config (`start_delays = ["pre"]`).
    pub const NAMES: &[(&str, u8)] = &[("pre", PRE), ("mid", MID), ("post", POST)];
}

/// What a video or audio creative needs of its slot. The default asks
/// nothing (any slot fits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlayerFit {
    /// The creative's VAST/DAAST version as an AdCOM protocol code
    /// (`None`: unknown, and then no slot that lists `protocols` fits).
    pub protocol: Option<i32>,
    /// 1 linear, 2 non-linear.
    pub linearity: i32,
    /// API frameworks the creative needs (VPAID 2, OMID 7, SIMID 8, …); a
    /// slot must support all of them.
    pub api: Vec<i32>,
    /// `Some(true)`: only where the player lets the viewer skip it;
    /// `Some(false)`: never where it would be skippable; `None`: anywhere.
    pub skippable: Option<bool>,
    /// Placements allowed ([`placement`] bits); 0 allows any.
    pub placements: u8,
    /// Start delays allowed ([`start`] bits); 0 allows any.
    pub start_delays: u8,
}

/// The AdCOM protocol code of a VAST or DAAST version, inline or wrapper.
pub fn protocol_code(version: &str, daast: bool, wrapper: bool) -> Option<i32> {
    let version = version.trim();
    let inline = if daast {
        match version {
            "1" | "1.0" => 9,
            _ => return None,
        }
    } else {
        match version {
            "1" | "1.0" => 1,
            "2" | "2.0" => 2,
            "3" | "3.0" => 3,
            "4" | "4.0" => 7,
            "4.1" => 11,
            "4.2" => 13,
            _ => return None,
        }
    };
    Some(match (inline, wrapper) {
        (_, false) => inline,
        (1..=3, true) => inline + 3,
        (7 | 9 | 11 | 13, true) => inline + 1,
        _ => inline,
    })
}

/// What a creative's markup says of itself: its version (and whether it is
/// DAAST), whether it is a wrapper, and its linearity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sniffed {
    /// The `version` attribute of the root element.
    pub version: Option<String>,
    /// The root is `<DAAST>`.
    pub daast: bool,
    /// The ad is a `<Wrapper>` (it points to another VAST document).
    pub wrapper: bool,
    /// 2 when the ad carries only non-linear creatives, else 1.
    pub linearity: i32,
}

/// Reads the version, wrapper and linearity from VAST/DAAST markup.
pub fn sniff(markup: &str) -> Sniffed {
    let root = ["<VAST", "<DAAST"]
        .iter()
        .filter_map(|tag| markup.find(tag).map(|at| (at, *tag)))
        .min();
    let (version, daast) = match root {
        Some((at, tag)) => {
            let head = &markup[at..];
            let head = &head[..head.find('>').unwrap_or(head.len())];
            (attribute(head, "version"), tag == "<DAAST")
        }
        None => (None, false),
    };
    let linear = markup.contains("<Linear");
    let non_linear = markup.contains("<NonLinear");
    Sniffed {
        version,
        daast,
        wrapper: markup.contains("<Wrapper"),
        linearity: if non_linear && !linear { 2 } else { 1 },
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!("{name}="))? + name.len() + 1;
    let rest = &tag[at..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// The 2.6 placement of a video slot as a [`placement`] bit (`plcmt`,
/// else the 2.5 `placement`); 0 when the slot does not say.
pub fn slot_placement(video: &Video) -> u8 {
    match (video.plcmt, video.placement) {
        (Some(1), _) | (None, Some(1)) => placement::INSTREAM,
        (Some(2), _) => placement::ACCOMPANYING,
        (Some(3), _) | (None, Some(5)) => placement::INTERSTITIAL,
        (Some(4), _) | (None, Some(2..=4)) => placement::STANDALONE,
        _ => 0,
    }
}

/// A slot's start delay as a [`start`] bit; 0 when it does not say.
pub fn slot_start(startdelay: Option<i64>) -> u8 {
    match startdelay {
        Some(0) => start::PRE,
        Some(-1) => start::MID,
        Some(d) if d > 0 => start::MID,
        Some(-2) => start::POST,
        _ => 0,
    }
}

impl PlayerFit {
    fn protocol_fits(&self, protocols: &[crate::openrtb::Protocol]) -> bool {
        protocols.is_empty() || self.protocol.is_some_and(|p| protocols.iter().any(|x| x.0 == p))
    }

    fn api_fits(&self, api: &[crate::openrtb::ApiFramework]) -> bool {
        self.api.iter().all(|needed| api.iter().any(|a| a.0 == *needed))
    }

    fn start_fits(&self, startdelay: Option<i64>) -> bool {
        self.start_delays == 0 || self.start_delays & slot_start(startdelay) != 0
    }

    /// Does the creative (of `duration` seconds) fit this video slot?
    pub fn fits_video(&self, video: &Video, duration: Option<i64>) -> bool {
        if !self.protocol_fits(&video.protocols) || !self.api_fits(&video.api) || !self.start_fits(video.startdelay) {
            return false;
        }
        if video.linearity.is_some_and(|l| l != self.linearity) {
            return false;
        }
        if self.placements != 0 && self.placements & slot_placement(video) == 0 {
            return false;
        }
        match self.skippable {
            None => true,
            Some(wanted) => {
                // Only ads longer than `skipmin` are skippable.
                let long_enough = video.skipmin.is_none_or(|min| duration.is_none_or(|d| d > min));
                let skippable = video.skip == Some(Flag(true)) && long_enough;
                skippable == wanted
            }
        }
    }

    /// Does the creative fit this audio slot?
    pub fn fits_audio(&self, audio: &Audio) -> bool {
        self.protocol_fits(&audio.protocols) && self.api_fits(&audio.api) && self.start_fits(audio.startdelay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_adcom_protocols() {
        assert_eq!(protocol_code("2.0", false, false), Some(2));
        assert_eq!(protocol_code("3.0", false, true), Some(6));
        assert_eq!(protocol_code("4.0", false, false), Some(7));
        assert_eq!(protocol_code("4.0", false, true), Some(8));
        assert_eq!(protocol_code("4.1", false, false), Some(11));
        assert_eq!(protocol_code("4.2", false, true), Some(14));
        assert_eq!(protocol_code("1.0", true, false), Some(9));
        assert_eq!(protocol_code("1.0", true, true), Some(10));
        assert_eq!(protocol_code("5.0", false, false), None);
    }

    #[test]
    fn markup_tells_its_version_wrapper_and_linearity() {
        let inline = r#"<?xml version="1.0"?><VAST version="4.1"><Ad><InLine><Creatives><Creative><Linear/></Creative></Creatives></InLine></Ad></VAST>"#;
        assert_eq!(
            sniff(inline),
            Sniffed {
                version: Some("4.1".into()),
                daast: false,
                wrapper: false,
                linearity: 1
            }
        );
        let wrapper = "<VAST version='3.0'><Ad><Wrapper><Creatives><Creative><NonLinearAds/></Creative></Creatives></Wrapper></Ad></VAST>";
        assert_eq!(
            sniff(wrapper),
            Sniffed {
                version: Some("3.0".into()),
                daast: false,
                wrapper: true,
                linearity: 2
            }
        );
        assert!(sniff(r#"<DAAST version="1.0"></DAAST>"#).daast);
        assert_eq!(sniff("<html>").version, None);
    }

    fn video(json: &str) -> Video<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn slots_are_matched_on_every_rule() {
        let fit = PlayerFit {
            protocol: Some(11),
            linearity: 1,
            api: vec![7],
            skippable: Some(false),
            placements: placement::INSTREAM,
            start_delays: start::PRE,
        };
        let ok = r#"{"protocols":[2,3,7,11],"api":[7],"plcmt":1,"startdelay":0}"#;
        assert!(fit.fits_video(&video(ok), Some(15)));
        assert!(!fit.fits_video(
            &video(r#"{"protocols":[2,3],"api":[7],"plcmt":1,"startdelay":0}"#),
            Some(15)
        ));
        assert!(!fit.fits_video(&video(r#"{"api":[1,2],"plcmt":1,"startdelay":0}"#), Some(15)));
        assert!(!fit.fits_video(&video(r#"{"api":[7],"plcmt":4,"startdelay":0}"#), Some(15)));
        assert!(
            fit.fits_video(&video(r#"{"api":[7],"placement":1,"startdelay":0}"#), Some(15)),
            "2.5 placement"
        );
        assert!(!fit.fits_video(&video(r#"{"api":[7],"plcmt":1,"startdelay":-2}"#), Some(15)));
        assert!(
            !fit.fits_video(&video(r#"{"api":[7],"plcmt":1}"#), Some(15)),
            "start unknown"
        );
        assert!(!fit.fits_video(
            &video(r#"{"api":[7],"plcmt":1,"startdelay":0,"linearity":2}"#),
            Some(15)
        ));
        // Not skippable wanted: a skippable slot is refused unless the ad
        // is too short to be skipped there.
        assert!(!fit.fits_video(&video(r#"{"api":[7],"plcmt":1,"startdelay":0,"skip":1}"#), Some(15)));
        assert!(fit.fits_video(
            &video(r#"{"api":[7],"plcmt":1,"startdelay":0,"skip":1,"skipmin":15}"#),
            Some(15)
        ));
        let anywhere = PlayerFit {
            linearity: 1,
            ..PlayerFit::default()
        };
        assert!(anywhere.fits_video(&video("{}"), None));
        assert!(
            !anywhere.fits_video(&video(r#"{"protocols":[2]}"#), None),
            "an unknown version fits no slot that lists protocols"
        );
    }
}
