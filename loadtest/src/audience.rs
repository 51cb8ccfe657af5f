//! A generator of realistic test audiences, so that the benchmarks and the
//! load test use the same user ids (`{prefix}{n:04}`, as the traffic
//! generator draws them).
//!
//! A four-level taxonomy of 18 / 124 / 256 / 313 tags (each tag under a tag
//! of the level above: `i03/i03-017/…`), Zipf-popular tags, about eight
//! segments per user (4 to 12), and an RFM tier (`rfm/gold`, `rfm/silver`,
//! `rfm/bronze`) for 30 % of users. Output: CSV for `bullseye segments build`.
//!
//! With `--personas K` ([`write_personas`]), every user is drawn from one of
//! K latent personas, so segments correlate as real interests do: a persona
//! has two or three home categories and about forty favourite tags (most
//! in its home categories' subtrees, Zipf-weighted), an affinity (the share
//! of its users' tags drawn from the favourites; the rest are the global
//! Zipf draws, noise), an activity range (how many tags its users hold), an
//! RFM mix and a conversion rate. Persona sizes are skewed (a few large
//! ones, a tail of small ones). The personas are written only to the
//! optional truth file (`user_id,persona,converted`): the audience itself
//! carries no marker, so a lookalike seed taken from the truth file (users
//! of one persona, or converters) must be found from the segments alone.
//! Without `--personas` the output is the historical one, byte for byte.

use std::io::{BufWriter, Write};
use std::path::Path;

use rand::{RngExt, SeedableRng};

use crate::traffic::Zipf;

const LEVELS: [usize; 4] = [18, 124, 256, 313];

/// Every tag path of the taxonomy, level by level.
pub fn taxonomy() -> Vec<String> {
    let mut levels: Vec<Vec<String>> = Vec::new();
    for (depth, &count) in LEVELS.iter().enumerate() {
        let tags = (0..count)
            .map(|i| match depth {
                0 => format!("i{i:02}"),
                _ => {
                    let parents = &levels[depth - 1];
                    format!("{}/t{depth}-{i:03}", parents[i % parents.len()])
                }
            })
            .collect();
        levels.push(tags);
    }
    levels.into_iter().flatten().collect()
}

/// Writes `users` lines of `{prefix}{n:04},seg|seg|...`.
pub fn write(output: &Path, users: u64, prefix: &str, seed: u64) -> std::io::Result<()> {
    let tags = taxonomy();
    let zipf = Zipf::new(tags.len(), 1.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(output)?);
    let mut chosen: Vec<usize> = Vec::with_capacity(16);
    for user in 0..users {
        chosen.clear();
        let count = rng.random_range(4..=12);
        while chosen.len() < count {
            let tag = zipf.sample(rng.random::<f64>());
            if !chosen.contains(&tag) {
                chosen.push(tag);
            }
        }
        write!(out, "{prefix}{user:04},")?;
        for (i, &tag) in chosen.iter().enumerate() {
            if i > 0 {
                out.write_all(b"|")?;
            }
            out.write_all(tags[tag].as_bytes())?;
        }
        match rng.random_range(0..10) {
            0 => out.write_all(b"|rfm/gold")?,
            1 => out.write_all(b"|rfm/silver")?,
            2 => out.write_all(b"|rfm/bronze")?,
            _ => {}
        }
        out.write_all(b"\n")?;
        if user > 0 && user % 10_000_000 == 0 {
            eprintln!("{user} users written");
        }
    }
    out.flush()
}

/// A latent persona: what its users' segments look like.
struct Persona {
    /// Favourite tags (indexes into the taxonomy), most favoured first.
    favourites: Vec<usize>,
    favourite: Zipf,
    /// Share of a user's tags drawn from the favourites.
    affinity: f64,
    /// Inclusive range of tags per user.
    tags: (usize, usize),
    /// Probabilities of `rfm/gold`, `rfm/silver`, `rfm/bronze`.
    rfm: [f64; 3],
    /// Probability that a user converted (tripled for `rfm/gold`).
    conversion: f64,
}

/// Level-1 categories, the first level of [`LEVELS`].
const CATEGORIES: usize = LEVELS[0];

impl Persona {
    fn draw(tags: &[String], rng: &mut impl RngExt) -> Persona {
        let homes: Vec<String> = (0..rng.random_range(2..=3))
            .map(|_| format!("i{:02}", rng.random_range(0..CATEGORIES)))
            .collect();
        let home: Vec<usize> = (0..tags.len())
            .filter(|&t| {
                homes
                    .iter()
                    .any(|h| tags[t] == *h || tags[t].starts_with(&format!("{h}/")))
            })
            .collect();
        let mut favourites: Vec<usize> = Vec::with_capacity(40);
        while favourites.len() < 40 {
            let tag = if rng.random_range(0..5) < 4 {
                home[rng.random_range(0..home.len())]
            } else {
                rng.random_range(0..tags.len())
            };
            if !favourites.contains(&tag) {
                favourites.push(tag);
            }
        }
        let value: f64 = rng.random();
        let low = rng.random_range(3..=6);
        Persona {
            favourite: Zipf::new(favourites.len(), 0.8),
            favourites,
            affinity: rng.random_range(0.45..0.75),
            tags: (low, low + rng.random_range(4..=8)),
            rfm: [0.02 + 0.15 * value, 0.05 + 0.10 * value, 0.15 - 0.05 * value],
            conversion: 0.002 + 0.04 * value * value,
        }
    }

    /// One user's tags (distinct) into `chosen`; whether they converted.
    fn user(&self, global: &Zipf, rng: &mut impl RngExt, chosen: &mut Vec<usize>) -> Option<usize> {
        chosen.clear();
        let count = rng.random_range(self.tags.0..=self.tags.1);
        while chosen.len() < count {
            let tag = if rng.random::<f64>() < self.affinity {
                self.favourites[self.favourite.sample(rng.random::<f64>())]
            } else {
                global.sample(rng.random::<f64>())
            };
            if !chosen.contains(&tag) {
                chosen.push(tag);
            }
        }
        let draw: f64 = rng.random();
        let [gold, silver, bronze] = self.rfm;
        if draw < gold {
            Some(0)
        } else if draw < gold + silver {
            Some(1)
        } else if draw < gold + silver + bronze {
            Some(2)
        } else {
            None
        }
    }
}

const TIERS: [&str; 3] = ["rfm/gold", "rfm/silver", "rfm/bronze"];

/// Writes `users` lines of `{prefix}{n:04},seg|seg|...` drawn from
/// `personas` latent personas (see the module header), and, if asked, the
/// truth: `{prefix}{n:04},persona,converted` (0 or 1) per user.
pub fn write_personas(
    output: &Path,
    users: u64,
    prefix: &str,
    seed: u64,
    personas: usize,
    truth: Option<&Path>,
) -> std::io::Result<()> {
    let tags = taxonomy();
    let global = Zipf::new(tags.len(), 1.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cast: Vec<Persona> = (0..personas.max(1)).map(|_| Persona::draw(&tags, &mut rng)).collect();
    let pick = Zipf::new(cast.len(), 0.6);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(output)?);
    let mut truth = truth
        .map(|path| std::fs::File::create(path).map(|f| BufWriter::with_capacity(1 << 20, f)))
        .transpose()?;
    let mut chosen: Vec<usize> = Vec::with_capacity(32);
    for user in 0..users {
        let number = pick.sample(rng.random::<f64>());
        let persona = &cast[number];
        let tier = persona.user(&global, &mut rng, &mut chosen);
        let boost = if tier == Some(0) { 3.0 } else { 1.0 };
        let converted = rng.random::<f64>() < persona.conversion * boost;
        write!(out, "{prefix}{user:04},")?;
        for (i, &tag) in chosen.iter().enumerate() {
            if i > 0 {
                out.write_all(b"|")?;
            }
            out.write_all(tags[tag].as_bytes())?;
        }
        if let Some(tier) = tier {
            write!(out, "|{}", TIERS[tier])?;
        }
        out.write_all(b"\n")?;
        if let Some(truth) = truth.as_mut() {
            writeln!(truth, "{prefix}{user:04},{number},{}", u8::from(converted))?;
        }
        if user > 0 && user % 10_000_000 == 0 {
            eprintln!("{user} users written");
        }
    }
    if let Some(mut truth) = truth {
        truth.flush()?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taxonomy_has_four_levels_of_the_seed_sizes() {
        let tags = taxonomy();
        assert_eq!(tags.len(), 18 + 124 + 256 + 313);
        let depth = |d: usize| tags.iter().filter(|t| t.split('/').count() == d).count();
        assert_eq!((depth(1), depth(2), depth(3), depth(4)), (18, 124, 256, 313));
    }

    /// Users of one persona share favourite tags far more than users of
    /// two different personas do; the truth file names every user once.
    #[test]
    fn personas_make_segments_correlate() {
        let dir = std::env::temp_dir().join(format!("personas-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (audience, truth) = (dir.join("a.csv"), dir.join("t.csv"));
        write_personas(&audience, 20_000, "u", 3, 12, Some(&truth)).unwrap();
        let lines = std::fs::read_to_string(&audience).unwrap();
        let truths = std::fs::read_to_string(&truth).unwrap();
        let mut by_persona: std::collections::HashMap<&str, Vec<std::collections::HashSet<&str>>> = Default::default();
        for (line, truth) in lines.lines().zip(truths.lines()) {
            let (user, segments) = line.split_once(',').unwrap();
            let fields: Vec<&str> = truth.split(',').collect();
            assert_eq!(fields[0], user);
            by_persona
                .entry(fields[1])
                .or_default()
                .push(segments.split('|').collect());
        }
        assert_eq!(truths.lines().count(), 20_000);
        assert!(by_persona.len() >= 10, "{}", by_persona.len());
        let overlap = |a: &[std::collections::HashSet<&str>], b: &[std::collections::HashSet<&str>]| {
            let pairs = a.len().min(b.len()).min(500);
            (0..pairs)
                .map(|i| a[i].intersection(&b[(i + 1) % b.len()]).count())
                .sum::<usize>() as f64
                / pairs as f64
        };
        let mut sizes: Vec<(&&str, &Vec<_>)> = by_persona.iter().collect();
        sizes.sort_by_key(|(_, users)| std::cmp::Reverse(users.len()));
        let (first, second) = (sizes[0].1, sizes[1].1);
        let within = overlap(first, first);
        let across = overlap(first, second);
        assert!(within > 2.0 * across, "within {within:.2}, across {across:.2}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Without personas the generator's output is what it always was (the
    /// benchmarks' figures and the sample audience depend on it).
    #[test]
    fn the_historical_audience_is_unchanged() {
        let path = std::env::temp_dir().join(format!("historical-{}.csv", std::process::id()));
        write(&path, 3, "sample-user-", 1).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            text,
            "sample-user-0000,i06/t1-024/t2-024|i01|i02|i11/t1-119|i04/t1-004|i00/t1-018/t2-018|\
             i07/t1-043/t2-043/t3-299|i00|i08/t1-008|i10|i04/t1-040/t2-040\n\
             sample-user-0001,i01|i07|i01/t1-001|i04|i05|i00/t1-000|i02|i12/t1-030|\
             i02/t1-110/t2-110/t3-110|i00|i03/t1-003|rfm/silver\n\
             sample-user-0002,i12|i06/t1-006/t2-006/t3-006|i00|i03/t1-021/t2-021|i04|rfm/gold\n"
        );
    }
}
