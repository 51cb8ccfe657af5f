//! Attribution: which campaign a conversion is credited to, and until when.
//!
//! Each campaign has a click window (`click_window`, default 7 days) and a
//! view window (`view_window`, default 1 day; `"0"` turns view-through
//! off). A click-level postback credits the clicked campaign if the click
//! is within its click window. A user-level postback that names no
//! campaign credits the advertiser's campaign that touched the user last:
//! its last click within that campaign's click window, else its last
//! impression within the view window (last touch; a click beats any view).
//!
//! The touches are kept here, independent of the notice window and of the
//! dedup claims: billable clicks by bid, and each (advertiser, user)'s last
//! click and last view. They are written to `DATA_DIR/attribution/`, one
//! file per UTC day (buffered, flushed each second, not fsynced: the
//! conversions themselves are billing-grade, the touches that credit them
//! are not, and a crash loses at most the last second of them), and
//! replayed at start for the longest window configured. Bounded: at
//! `max_touches` entries, touches past every window are swept and new ones
//! are counted and dropped until there is room.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;

pub use crate::campaigns::model::{AttributionWindows as Windows, parse_window};

/// Default most touches held.
pub const DEFAULT_MAX_TOUCHES: usize = 5_000_000;

/// A touch: which campaign, and when (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touch {
    /// The campaign's id.
    pub campaign: Arc<str>,
    /// When it happened.
    pub at: i64,
    /// The user's key (0 when unknown).
    pub user: u64,
}

/// An (advertiser, user)'s last click and last view.
#[derive(Clone, Debug, Default)]
struct Last {
    click: Option<Touch>,
    view: Option<Touch>,
}

/// The touches conversions are credited by (see the module header).
pub struct Touches {
    /// Billable clicks by bid id hash.
    clicks: papaya::HashMap<u64, Touch, foldhash::fast::RandomState>,
    /// By (advertiser hash, user key).
    last: papaya::HashMap<(u64, u64), Last, foldhash::fast::RandomState>,
    log: Option<std::sync::Mutex<DayLog>>,
    limit: usize,
    /// Touches dropped at the bound.
    pub dropped: AtomicU64,
}

/// The append-only day files.
struct DayLog {
    dir: PathBuf,
    day: i64,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

fn key(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

impl Touches {
    /// Touches held in memory only (tools, tests).
    pub fn in_memory(limit: usize) -> Touches {
        Touches {
            clicks: papaya::HashMap::builder().hasher(Default::default()).build(),
            last: papaya::HashMap::builder().hasher(Default::default()).build(),
            log: None,
            limit,
            dropped: AtomicU64::new(0),
        }
    }

    /// Touches logged in `data_dir/attribution`, replaying the day files
    /// within `horizon_secs` of `now` (older files are deleted).
    pub fn open(data_dir: &Path, limit: usize, now: Timestamp, horizon_secs: i64) -> std::io::Result<Touches> {
        let dir = data_dir.join("attribution");
        std::fs::create_dir_all(&dir)?;
        let mut touches = Touches::in_memory(limit);
        let oldest_day = (now.as_second() - horizon_secs).div_euclid(86_400);
        let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| day_of(&p).map(|d| (d, p)))
            .collect();
        files.sort();
        for (day, path) in files {
            if day < oldest_day {
                std::fs::remove_file(&path)?;
                continue;
            }
            // Not fsynced: a crash may leave a torn last line, skipped.
            let file = std::io::BufReader::new(std::fs::File::open(&path)?);
            for line in file.split(b'\n') {
                if let Ok(line) = String::from_utf8(line?) {
                    touches.replay(&line, now.as_second() - horizon_secs);
                }
            }
        }
        touches.log = Some(std::sync::Mutex::new(DayLog {
            dir,
            day: i64::MIN,
            out: None,
        }));
        Ok(touches)
    }

    fn replay(&self, line: &str, since: i64) {
        let mut fields = line.split('\t');
        let (Some(kind), Some(at), Some(advertiser), Some(user), Some(campaign)) = (
            fields.next(),
            fields.next().and_then(|f| f.parse::<i64>().ok()),
            fields.next().and_then(|f| f.parse::<u64>().ok()),
            fields.next().and_then(|f| f.parse::<u64>().ok()),
            fields.next(),
        ) else {
            return;
        };
        if at < since {
            return;
        }
        let touch = Touch {
            campaign: Arc::from(campaign),
            at,
            user,
        };
        match (kind, fields.next().and_then(|f| f.parse::<u64>().ok())) {
            ("c", Some(bid)) => self.note_click(bid, advertiser, user, touch),
            ("v", _) => self.note_view(advertiser, user, touch),
            _ => {}
        }
    }

    /// Whether there is room for one more touch.
    fn room(&self) -> bool {
        let room = self.clicks.len() + self.last.len() < self.limit;
        if !room {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        room
    }

    fn note_click(&self, bid: u64, advertiser: u64, user: u64, touch: Touch) {
        if !self.room() {
            return;
        }
        self.clicks.pin().insert(bid, touch.clone());
        if user != 0 {
            self.last.pin().update_or_insert_with(
                (advertiser, user),
                |last| Last {
                    click: Some(touch.clone()),
                    ..last.clone()
                },
                || Last {
                    click: Some(touch.clone()),
                    view: None,
                },
            );
        }
    }

    fn note_view(&self, advertiser: u64, user: u64, touch: Touch) {
        if user == 0 || !self.room() {
            return;
        }
        self.last.pin().update_or_insert_with(
            (advertiser, user),
            |last| Last {
                view: Some(touch.clone()),
                ..last.clone()
            },
            || Last {
                click: None,
                view: Some(touch.clone()),
            },
        );
    }

    /// A billable click of `bid` (tracking path).
    pub fn clicked(&self, bid: &str, advertiser: &str, user: u64, campaign: &str, at: Timestamp) {
        let (bid, advertiser) = (key(bid), key(advertiser));
        self.write(
            at,
            format_args!("c\t{}\t{advertiser}\t{user}\t{campaign}\t{bid}\n", at.as_second()),
        );
        let touch = Touch {
            campaign: Arc::from(campaign),
            at: at.as_second(),
            user,
        };
        self.note_click(bid, advertiser, user, touch);
    }

    /// An impression shown to `user` (tracking path; nothing for user 0).
    pub fn viewed(&self, advertiser: &str, user: u64, campaign: &str, at: Timestamp) {
        if user == 0 {
            return;
        }
        let advertiser = key(advertiser);
        self.write(
            at,
            format_args!("v\t{}\t{advertiser}\t{user}\t{campaign}\n", at.as_second()),
        );
        let touch = Touch {
            campaign: Arc::from(campaign),
            at: at.as_second(),
            user,
        };
        self.note_view(advertiser, user, touch);
    }

    fn write(&self, at: Timestamp, line: std::fmt::Arguments) {
        let Some(log) = &self.log else { return };
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        let day = at.as_second().div_euclid(86_400);
        if day != log.day || log.out.is_none() {
            if let Some(mut old) = log.out.take() {
                let _ = old.flush();
            }
            let path = log.dir.join(format!("touches-{day}.log"));
            log.out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map(std::io::BufWriter::new)
                .map_err(|e| tracing::warn!(error = %e, path = %path.display(), "attribution log not written"))
                .ok();
            log.day = day;
        }
        if let Some(out) = log.out.as_mut()
            && let Err(e) = out.write_fmt(line)
        {
            tracing::warn!(error = %e, "attribution log not written");
        }
    }

    /// Writes buffered touches out (each second, from the tick).
    pub fn flush(&self) {
        if let Some(log) = &self.log
            && let Some(out) = log.lock().unwrap_or_else(|p| p.into_inner()).out.as_mut()
        {
            let _ = out.flush();
        }
    }

    /// The click of `bid`, if it is held.
    pub fn click(&self, bid: &str) -> Option<Touch> {
        self.clicks.pin().get(&key(bid)).cloned()
    }

    /// The campaign `advertiser`'s conversion from `user` at `now` is
    /// credited to by last touch, given each campaign's windows (`None`
    /// for a campaign no longer known: its touches do not count).
    pub fn last_touch(
        &self,
        advertiser: &str,
        user: u64,
        now: Timestamp,
        windows: impl Fn(&str) -> Option<Windows>,
    ) -> Option<Touch> {
        let last = self.last.pin().get(&(key(advertiser), user)).cloned()?;
        let within = |touch: &Touch, secs: fn(Windows) -> i64| {
            windows(&touch.campaign).is_some_and(|w| now.as_second() - touch.at <= secs(w))
        };
        let click = last.click.filter(|t| within(t, |w| w.click_secs));
        click.or_else(|| last.view.filter(|t| within(t, |w| w.view_secs)))
    }

    /// Forgets touches older than `horizon_secs` (each minute).
    pub fn sweep(&self, now: Timestamp, horizon_secs: i64) {
        let since = now.as_second() - horizon_secs;
        self.clicks.pin().retain(|_, t| t.at >= since);
        self.last.pin().retain(|_, last| {
            last.click.as_ref().is_some_and(|t| t.at >= since) || last.view.as_ref().is_some_and(|t| t.at >= since)
        });
    }

    /// How many touches are held.
    pub fn len(&self) -> usize {
        self.clicks.len() + self.last.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The UTC day number of a `touches-{day}.log` file.
fn day_of(path: &Path) -> Option<i64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("touches-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_780_000_000 + secs).unwrap()
    }

    const DAY: i64 = 86_400;

    fn windows(id: &str) -> Option<Windows> {
        match id {
            "seven" => Some(Windows {
                click_secs: 7 * DAY,
                view_secs: DAY,
            }),
            "short" => Some(Windows {
                click_secs: 3600,
                view_secs: 0,
            }),
            _ => None,
        }
    }

    #[test]
    fn windows_are_read_in_days_hours_or_minutes() {
        assert_eq!(parse_window("7d"), Ok(7 * DAY));
        assert_eq!(parse_window("12h"), Ok(12 * 3600));
        assert_eq!(parse_window("30m"), Ok(1800));
        assert_eq!(parse_window("0"), Ok(0));
        assert_eq!(parse_window("91d"), Err("must be between 0 and 90 days".to_string()));
        assert!(parse_window("7").is_err());
        assert!(parse_window("-1d").is_err());
        assert!(parse_window("week").is_err());
        assert!(parse_window("7д").is_err(), "a multi-byte unit is refused, not a panic");
    }

    #[test]
    fn last_touch_prefers_a_click_in_its_window_to_a_later_view() {
        let touches = Touches::in_memory(100);
        touches.clicked("b1", "adv", 7, "seven", at(0));
        touches.viewed("adv", 7, "short", at(10));
        let credited = |now| {
            touches
                .last_touch("adv", 7, at(now), windows)
                .map(|t| t.campaign.to_string())
        };
        assert_eq!(credited(100), Some("seven".into()), "a click beats a later view");
        assert_eq!(credited(7 * DAY), Some("seven".into()), "the last second of the window");
        assert_eq!(
            credited(7 * DAY + 1),
            None,
            "past the click window; short has no view-through"
        );
        touches.viewed("adv", 7, "seven", at(7 * DAY + 100));
        assert_eq!(credited(8 * DAY), Some("seven".into()), "view-through within a day");
        assert_eq!(credited(8 * DAY + 101), None);
        assert_eq!(touches.last_touch("other", 7, at(100), windows), None, "per advertiser");
        assert_eq!(touches.click("b1").map(|t| t.at), Some(at(0).as_second()));
    }

    #[test]
    fn touches_survive_a_restart_and_old_days_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let touches = Touches::open(dir.path(), 100, at(0), 30 * DAY).unwrap();
        touches.clicked("old", "adv", 7, "seven", at(-40 * DAY));
        touches.clicked("b1", "adv", 7, "seven", at(0));
        touches.viewed("adv", 8, "seven", at(5));
        touches.flush();
        drop(touches);
        let touches = Touches::open(dir.path(), 100, at(60), 30 * DAY).unwrap();
        assert_eq!(touches.click("b1").map(|t| t.at), Some(at(0).as_second()));
        assert_eq!(touches.click("old"), None);
        let credited = touches
            .last_touch("adv", 8, at(60), windows)
            .map(|t| t.campaign.to_string());
        assert_eq!(credited, Some("seven".into()));
        let files = std::fs::read_dir(dir.path().join("attribution")).unwrap().count();
        assert_eq!(files, 1, "the day file past the horizon is deleted");
    }

    #[test]
    fn touches_are_bounded() {
        let touches = Touches::in_memory(3);
        for i in 0..5 {
            touches.clicked(&format!("b{i}"), "adv", 0, "seven", at(i));
        }
        assert_eq!(touches.len(), 3);
        assert_eq!(touches.dropped.load(Ordering::Relaxed), 2);
        touches.sweep(at(DAY), 3600);
        assert!(touches.is_empty());
    }
}
