//! A generator of realistic test audiences, so that the benchmarks and the
//! load test use the same user ids (`{prefix}{n:04}`, as the traffic
//! generator draws them).
//!
//! A four-level taxonomy of 18 / 124 / 256 / 313 tags (each tag under a tag
//! of the level above: `i03/i03-017/…`), Zipf-popular tags, about eight
//! segments per user (4 to 12), and an RFM tier (`rfm/gold`, `rfm/silver`,
//! `rfm/bronze`) for 30 % of users. Output: CSV for `bullseye segments build`.

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
}
