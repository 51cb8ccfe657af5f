//! The seed list: one user id per line (anything after a comma is ignored,
//! so a `user_id,...` CSV works too; blank lines, `#` comments and a first
//! line `user_id` are skipped; `.gz` is read through). Ids are kept as
//! their 64-bit keys (as the snapshot keys them), which is what lets a
//! streaming pass ask "is this user a seed?" in one lookup.
//!
//! The holdout: exactly `round(fraction × listed ids)` seeds are hidden,
//! chosen by a keyed hash of the id (so the same `--random-seed` hides the
//! same users). Hidden seeds are left out of training and treated as any
//! other user of the population: the question is whether the expansion
//! finds them again.

use std::collections::HashMap;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use super::mix;
use crate::audience::{input, user_key};

/// What a seed user is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Learnt from, and never part of the expansion.
    Train,
    /// Held out: a user like any other, whose presence in the expansion
    /// measures recall.
    Hidden,
}

#[derive(Clone, Copy)]
struct Seed {
    role: Role,
    found: bool,
}

/// The seed users, by key.
pub struct Seeds {
    seeds: HashMap<u64, Seed, foldhash::fast::RandomState>,
    path: PathBuf,
}

/// Salt of the holdout's hash, apart from the sample's and the tie-break's.
const HOLDOUT_SALT: u64 = 0x486f_6c64_6f75_7421;

/// The user id a seed-list line names, if any.
fn seed_id(line: &str, number: usize) -> Option<&str> {
    let id = line.split(',').next().unwrap_or_default().trim();
    let header = number == 1 && id.eq_ignore_ascii_case("user_id");
    (!id.is_empty() && !id.starts_with('#') && !header).then_some(id)
}

impl Seeds {
    /// Reads the seed list and hides `holdout` of it.
    pub fn read(path: &Path, holdout: Option<f64>, random_seed: u64) -> io::Result<Seeds> {
        let mut seeds: HashMap<u64, Seed, _> = HashMap::default();
        each_id(path, |id| {
            seeds.insert(
                user_key(id),
                Seed {
                    role: Role::Train,
                    found: false,
                },
            );
            true
        })?;
        if let Some(fraction) = holdout {
            let hidden = (fraction * seeds.len() as f64).round() as usize;
            let mut order: Vec<u64> = seeds.keys().copied().collect();
            order.sort_unstable_by_key(|&key| (mix(key ^ mix(random_seed ^ HOLDOUT_SALT)), key));
            for key in &order[..hidden.min(order.len())] {
                if let Some(seed) = seeds.get_mut(key) {
                    seed.role = Role::Hidden;
                }
            }
        }
        Ok(Seeds {
            seeds,
            path: path.to_path_buf(),
        })
    }

    /// Distinct ids listed.
    pub fn listed(&self) -> u64 {
        self.seeds.len() as u64
    }

    /// The role of a user who is a seed.
    pub fn role(&self, key: u64) -> Option<Role> {
        self.seeds.get(&key).map(|seed| seed.role)
    }

    /// Marks a seed user as found in the population; its role.
    pub fn find(&mut self, key: u64) -> Option<Role> {
        let seed = self.seeds.get_mut(&key)?;
        seed.found = true;
        Some(seed.role)
    }

    /// Seed users found in the population: (training, hidden).
    pub fn found(&self) -> (u64, u64) {
        let count = |role| self.seeds.values().filter(|s| s.found && s.role == role).count() as u64;
        (count(Role::Train), count(Role::Hidden))
    }

    /// The first `limit` listed ids not found, in the list's order (the
    /// list is read again: ids are not kept).
    pub fn missing_examples(&self, limit: usize) -> io::Result<Vec<String>> {
        let mut missing = Vec::new();
        each_id(&self.path, |id| {
            if self.seeds.get(&user_key(id)).is_some_and(|seed| !seed.found) && !missing.iter().any(|m| m == id) {
                missing.push(id.to_string());
            }
            missing.len() < limit
        })?;
        Ok(missing)
    }
}

/// Calls `each` with every id of the list until it returns false.
fn each_id(path: &Path, mut each: impl FnMut(&str) -> bool) -> io::Result<()> {
    let mut reader = input::open(path)?;
    let mut buffer = Vec::new();
    let mut number = 0;
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer)? == 0 {
            return Ok(());
        }
        number += 1;
        let line = String::from_utf8_lossy(&buffer);
        if let Some(id) = seed_id(&line, number)
            && !each(id)
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeds read from `text` (and the directory the list is in, which
    /// must outlive them).
    fn seeds(text: &str, holdout: Option<f64>, random_seed: u64) -> (Seeds, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.txt");
        std::fs::write(&path, text).unwrap();
        (Seeds::read(&path, holdout, random_seed).unwrap(), dir)
    }

    #[test]
    fn ids_are_read_once_each_and_the_holdout_is_exact_and_repeatable() {
        let text: String = std::iter::once("user_id\n# crm export\n\n".to_string())
            .chain((0..1000).map(|i| format!("u{i},extra\n")))
            .chain(std::iter::once("u7\n".to_string()))
            .collect();
        let (a, _dir) = seeds(&text, Some(0.2), 7);
        assert_eq!(a.listed(), 1000);
        let hidden = |s: &Seeds| -> Vec<u64> {
            let mut keys: Vec<u64> = (0..1000)
                .map(|i| user_key(&format!("u{i}")))
                .filter(|&k| s.role(k) == Some(Role::Hidden))
                .collect();
            keys.sort_unstable();
            keys
        };
        assert_eq!(hidden(&a).len(), 200);
        assert_eq!(hidden(&a), hidden(&seeds(&text, Some(0.2), 7).0));
        assert_ne!(hidden(&a), hidden(&seeds(&text, Some(0.2), 8).0));
        assert_eq!(a.role(user_key("user_id")), None);
    }

    #[test]
    fn missing_ids_are_named_in_list_order() {
        let (mut s, _dir) = seeds("a\nb\nc\nd\nb\n", None, 1);
        assert_eq!(s.find(user_key("c")), Some(Role::Train));
        assert_eq!(s.find(user_key("z")), None);
        assert_eq!(s.found(), (1, 0));
        assert_eq!(s.missing_examples(2).unwrap(), ["a", "b"]);
        assert_eq!(s.missing_examples(10).unwrap(), ["a", "b", "d"]);
    }
}
