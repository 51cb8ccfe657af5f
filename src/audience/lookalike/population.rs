//! One streaming pass over the population inputs: every valid line's user
//! id, key and segments (as vocabulary nodes, sorted, once each), with bad
//! lines counted and the first ones kept, and progress on stderr. Memory:
//! one line buffer and the vocabulary.

use std::path::PathBuf;

use super::LookalikeError;
use super::features::{Node, Vocabulary};
use crate::audience::builder::{BAD_LINES_KEPT, BadLine};
use crate::audience::input::{self, Line, Lines, Progress};
use crate::audience::user_key;

/// Lines rejected by a pass.
#[derive(Debug, Default)]
pub struct BadLines {
    /// How many lines were rejected.
    pub count: u64,
    /// The first [`BAD_LINES_KEPT`] of them.
    pub first: Vec<BadLine>,
}

impl BadLines {
    fn push(&mut self, file: &str, line: usize, reason: String) {
        self.count += 1;
        if self.first.len() < BAD_LINES_KEPT {
            self.first.push(BadLine {
                file: file.to_string(),
                line,
                reason,
            });
        }
    }
}

/// What a pass read: lines (blank, comment and header lines included).
pub struct Pass {
    /// Lines read.
    pub lines: u64,
    /// Lines rejected.
    pub bad: BadLines,
}

/// One user line, as a pass hands it on.
pub struct UserLine<'a> {
    /// The user id as read (trimmed).
    pub id: &'a str,
    /// Its key (as the snapshot keys users).
    pub key: u64,
    /// Its segments, sorted, each once.
    pub given: &'a [Node],
}

/// Reads every input once, calling `each` for every valid user line.
pub fn pass(
    inputs: &[PathBuf],
    vocabulary: &mut Vocabulary,
    label: &'static str,
    mut each: impl FnMut(&Vocabulary, UserLine),
) -> Result<Pass, LookalikeError> {
    let mut progress = Progress::new(label);
    let mut pass = Pass {
        lines: 0,
        bad: BadLines::default(),
    };
    let mut given: Vec<Node> = Vec::with_capacity(64);
    for path in inputs {
        let name = path.display().to_string();
        let read_err = |source| LookalikeError::Read {
            path: name.clone(),
            source,
        };
        let mut lines = Lines::open(path).map_err(read_err)?;
        let format = lines.format();
        loop {
            let (number, text) = match lines.next_line().map_err(read_err)? {
                None => break,
                Some((number, Line::Text(text))) => (number, text),
                Some((number, Line::NotUtf8)) => {
                    pass.bad.push(&name, number, "not UTF-8".into());
                    continue;
                }
            };
            let parsed = input::parse_line(text, format).and_then(|entry| {
                let Some(entry) = entry else { return Ok(None) };
                given.clear();
                for segment in entry.segments() {
                    given.push(vocabulary.node(segment)?);
                }
                Ok(Some(entry.user))
            });
            match parsed {
                Ok(None) => {}
                Ok(Some(user)) => {
                    given.sort_unstable();
                    given.dedup();
                    let key = user_key(&user);
                    each(
                        vocabulary,
                        UserLine {
                            id: &user,
                            key,
                            given: &given,
                        },
                    );
                }
                Err(reason) => pass.bad.push(&name, number, reason),
            }
            if number % 65_536 == 0 && progress.due() {
                progress.say(format_args!("{name}: {number} lines, {}", lines.position()));
            }
        }
        pass.lines += lines.number() as u64;
    }
    Ok(pass)
}
