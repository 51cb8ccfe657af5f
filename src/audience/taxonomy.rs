//! Segment paths: up to four levels, `/`-separated, lower case.
//!
//! A campaign that targets `interest/finance` matches a user in
//! `interest/finance/investment/funds`: matching is done on [`SegmentKey`]s,
//! and a user's key set includes the keys of all ancestors of their segments.

use std::fmt;

/// The deepest hierarchy supported.
pub const MAX_DEPTH: usize = 4;

/// A stable 64-bit key for a normalised segment path (xxh3 of its text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentKey(pub u64);

/// A validated, normalised segment path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentPath(String);

/// Why a segment path is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// Nothing but whitespace.
    #[error("empty segment path")]
    Empty,
    /// Two slashes in a row, or a slash at either end.
    #[error("segment path {0:?} has an empty level")]
    EmptyLevel(String),
    /// More than [`MAX_DEPTH`] levels.
    #[error("segment path {0:?} is deeper than {MAX_DEPTH} levels")]
    TooDeep(String),
    /// A character outside lower-case letters, digits and `_ . : - +`.
    #[error("segment path {0:?} contains a character outside [a-z0-9_.:-]")]
    BadCharacter(String),
}

impl SegmentPath {
    /// Normalises (trim, lower case) and validates a path.
    pub fn parse(text: &str) -> Result<SegmentPath, PathError> {
        let text = text.trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        let levels = text.split('/');
        let mut depth = 0;
        for level in levels {
            depth += 1;
            if level.is_empty() {
                return Err(PathError::EmptyLevel(text));
            }
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '+');
            if !level.chars().all(allowed) {
                return Err(PathError::BadCharacter(text));
            }
        }
        if depth > MAX_DEPTH {
            return Err(PathError::TooDeep(text));
        }
        Ok(SegmentPath(text))
    }

    /// The normalised path text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's stable key (xxh3 of its text).
    pub fn key(&self) -> SegmentKey {
        SegmentKey(xxhash_rust::xxh3::xxh3_64(self.0.as_bytes()))
    }

    /// The parent path (`a/b/c` → `a/b`), `None` at the top level.
    pub fn parent(&self) -> Option<SegmentPath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| SegmentPath(parent.to_string()))
    }
}

impl fmt::Display for SegmentPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_validates() {
        assert_eq!(
            SegmentPath::parse(" Interest/Finance ").unwrap().as_str(),
            "interest/finance"
        );
        assert_eq!(SegmentPath::parse(""), Err(PathError::Empty));
        assert!(matches!(SegmentPath::parse("a//b"), Err(PathError::EmptyLevel(_))));
        assert!(matches!(SegmentPath::parse("a/b/c/d/e"), Err(PathError::TooDeep(_))));
        assert!(matches!(SegmentPath::parse("a b"), Err(PathError::BadCharacter(_))));
    }

    #[test]
    fn parents_walk_up_the_hierarchy() {
        let path = SegmentPath::parse("interest/finance/investment/funds").unwrap();
        let parent = path.parent().unwrap();
        assert_eq!(parent.as_str(), "interest/finance/investment");
        assert_eq!(SegmentPath::parse("interest").unwrap().parent(), None);
        assert_ne!(path.key(), parent.key());
    }
}
