//! The run: check the options, read the seed, learn, score, write, sum up.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use std::path::Path;
use std::time::Instant;

use super::features::Vocabulary;
use super::model::{self, Examples, Model};
use super::population::{Pass, UserLine, pass};
use super::sample::BottomK;
use super::seeds::{Role, Seeds};
use super::top::{Candidate, Top};
use super::{LookalikeError, Options, Size, Summary, mix, peak_memory_bytes};
use crate::audience::SegmentPath;
use crate::audience::input::Format;

/// Salts of the keyed hashes: the sample's rank and the tie-break.
const SAMPLE_SALT: u64 = 0x5361_6d70_6c65_2121;
const TIE_SALT: u64 = 0x5469_6521_5469_6521;

/// Missing seed ids named in the summary.
const MISSING_EXAMPLES: usize = 5;

/// What the learning pass gathered.
pub struct Learned {
    /// Valid user lines.
    pub population: u64,
    /// The lines read and rejected.
    pub pass: Pass,
    /// Training seed users found (at most `sample` of them), as segments.
    pub seed: BottomK,
    /// A uniform sample of the other users.
    pub others: BottomK,
}

/// Pass 1: finds the seed users and samples the others.
pub fn learn(options: &Options, seeds: &mut Seeds, vocabulary: &mut Vocabulary) -> Result<Learned, LookalikeError> {
    let salt = mix(options.random_seed ^ SAMPLE_SALT);
    let mut seed = BottomK::new(options.sample);
    let mut others = BottomK::new(options.sample);
    let mut population = 0;
    let pass = pass(
        &options.population,
        vocabulary,
        "segments lookalike: learning",
        |_, user: UserLine| {
            population += 1;
            let rank = mix(user.key ^ salt);
            match seeds.find(user.key) {
                Some(Role::Train) => seed.offer(rank, user.given),
                Some(Role::Hidden) | None => others.offer(rank, user.given),
            }
        },
    )?;
    Ok(Learned {
        population,
        pass,
        seed,
        others,
    })
}

/// What the scoring pass kept.
pub struct Scored {
    /// The best users, best first.
    pub best: Vec<Candidate>,
    /// Users who could be chosen (not training seeds).
    pub candidates: u64,
}

/// Pass 2: scores every user but the training seed, keeps the best `size`.
pub fn score(
    options: &Options,
    seeds: &Seeds,
    vocabulary: &mut Vocabulary,
    model: &Model,
    size: u64,
) -> Result<Scored, LookalikeError> {
    let csv = Format::of(&options.output) == Format::Csv;
    let salt = mix(options.random_seed ^ TIE_SALT);
    let mut top = Top::new(usize::try_from(size).unwrap_or(usize::MAX));
    let mut expander = super::features::Expander::default();
    let mut candidates = 0;
    pass(
        &options.population,
        vocabulary,
        "segments lookalike: scoring",
        |vocabulary, user: UserLine| {
            if seeds.role(user.key) == Some(Role::Train) || (csv && !csv_writable(user.id)) {
                return;
            }
            candidates += 1;
            let score = model.score(vocabulary, &mut expander, user.given);
            top.offer(score, mix(user.key ^ salt), user.key, user.id);
        },
    )?;
    Ok(Scored {
        best: top.into_best_first(),
        candidates,
    })
}

/// Whether an id can be written as the first field of a CSV line that
/// `segments build` reads back as the same id.
fn csv_writable(id: &str) -> bool {
    !id.starts_with('#') && !id.contains([',', '\n', '\r'])
}

/// The whole run.
pub fn run(options: &Options) -> Result<Summary, LookalikeError> {
    let started = Instant::now();
    let segment = check(options)?;
    let mut seeds =
        Seeds::read(&options.seed, options.holdout, options.random_seed).map_err(|source| LookalikeError::Read {
            path: options.seed.display().to_string(),
            source,
        })?;
    let mut vocabulary = Vocabulary::default();
    let learned = learn(options, &mut seeds, &mut vocabulary)?;
    check_bad_lines(&learned.pass, options.max_bad_fraction)?;
    let trained = (learned.seed.len() as u64, learned.others.len() as u64);
    let model = fit(learned.seed, learned.others, &vocabulary, &seeds, options.random_seed)?;
    let size = match options.size {
        Size::Users(users) => users,
        Size::Ratio(ratio) => (ratio * learned.population as f64).round() as u64,
    };
    let scored = score(options, &seeds, &mut vocabulary, &model, size)?;
    write(&options.output, segment.as_str(), &scored.best).map_err(|source| LookalikeError::Write {
        path: options.output.display().to_string(),
        source,
    })?;
    let mut summary = summarise(options, &seeds, learned.population, learned.pass, trained, &scored);
    summary.segment = segment.to_string();
    summary.top_segments = model.strongest(&vocabulary, 5).into_iter().map(|(s, _)| s).collect();
    summary.seconds = started.elapsed().as_secs_f64();
    summary.peak_memory_bytes = peak_memory_bytes();
    Ok(summary)
}

/// The summary's counts, and the holdout's recall and lift.
fn summarise(
    options: &Options,
    seeds: &Seeds,
    population: u64,
    pass: Pass,
    (trained_on, sample): (u64, u64),
    scored: &Scored,
) -> Summary {
    let (train, hidden) = seeds.found();
    let hidden_found = scored
        .best
        .iter()
        .filter(|c| seeds.role(c.key) == Some(Role::Hidden))
        .count() as u64;
    let size = scored.best.len() as u64;
    let recall = (options.holdout.is_some() && hidden > 0).then(|| hidden_found as f64 / hidden as f64);
    let random_recall = size as f64 / scored.candidates.max(1) as f64;
    Summary {
        population,
        bad_lines: pass.bad.count,
        seed_listed: seeds.listed(),
        seed_found: train + hidden,
        seed_missing: seeds.listed() - train - hidden,
        missing_examples: seeds.missing_examples(MISSING_EXAMPLES).unwrap_or_default(),
        trained_on,
        sample,
        size,
        segment: String::new(),
        candidates: scored.candidates,
        holdout: options.holdout,
        hidden: options.holdout.map(|_| hidden),
        hidden_found: options.holdout.map(|_| hidden_found),
        recall,
        lift: recall.filter(|_| size > 0).map(|r| r / random_recall),
        top_segments: Vec::new(),
        seconds: 0.0,
        peak_memory_bytes: None,
        bad_examples: pass.bad.first,
    }
}

/// Validates the options; the output segment's path.
fn check(options: &Options) -> Result<SegmentPath, LookalikeError> {
    let fail = |why: String| Err(LookalikeError::Option(why));
    if let Some(f) = options.holdout
        && !(f > 0.0 && f < 1.0)
    {
        return fail(format!("--holdout {f} is not a fraction between 0 and 1 (exclusive)"));
    }
    if let Size::Ratio(r) = options.size
        && !(r > 0.0 && r <= 1.0)
    {
        return fail(format!("--ratio {r} is not a fraction in (0, 1]"));
    }
    if !(0.0..=1.0).contains(&options.max_bad_fraction) {
        return fail(format!(
            "--max-bad-fraction {} is not in [0, 1]",
            options.max_bad_fraction
        ));
    }
    if options.sample == 0 {
        return fail("--sample must be at least 1".into());
    }
    check_files(options)?;
    SegmentPath::parse(&options.segment)
        .map_err(|e| LookalikeError::Option(format!("--segment {:?}: {e}", options.segment)))
}

/// Fails now, not after a pass over the population, when an input is
/// missing or the output's directory is.
fn check_files(options: &Options) -> Result<(), LookalikeError> {
    for path in &options.population {
        std::fs::metadata(path).map_err(|source| LookalikeError::Read {
            path: path.display().to_string(),
            source,
        })?;
    }
    let directory = match options.output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::metadata(directory).map_err(|source| LookalikeError::Write {
        path: options.output.display().to_string(),
        source,
    })?;
    Ok(())
}

fn check_bad_lines(pass: &Pass, max_bad_fraction: f64) -> Result<(), LookalikeError> {
    let allowed = (pass.lines as f64 * max_bad_fraction).floor() as u64;
    match pass.bad.first.first() {
        Some(first) if pass.bad.count > allowed => Err(LookalikeError::TooManyBadLines {
            bad: pass.bad.count,
            lines: pass.lines,
            allowed,
            first: first.clone(),
        }),
        _ => Ok(()),
    }
}

/// Trains the model, or says why there is nothing to learn from.
fn fit(
    seed: BottomK,
    others: BottomK,
    vocabulary: &Vocabulary,
    seeds: &Seeds,
    random_seed: u64,
) -> Result<Model, LookalikeError> {
    if seed.is_empty() {
        let (_, hidden) = seeds.found();
        let why = if hidden > 0 {
            "no seed user is left to learn from once the holdout is hidden; use a larger seed or a smaller --holdout"
                .to_string()
        } else {
            format!(
                "no seed id is in the population ({} listed): nothing to learn from",
                seeds.listed()
            )
        };
        return Err(LookalikeError::NothingToLearn(why));
    }
    if others.is_empty() {
        return Err(LookalikeError::NothingToLearn(
            "the population holds no user besides the seed: nothing to expand into".into(),
        ));
    }
    let positives = Examples::new(seed.into_users(), vocabulary);
    let negatives = Examples::new(others.into_users(), vocabulary);
    Ok(model::train(&positives, &negatives, vocabulary.len(), random_seed))
}

/// Writes the expansion (to a temporary file renamed into place).
fn write(output: &Path, segment: &str, best: &[Candidate]) -> io::Result<()> {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = output.with_file_name(name);
    let mut file = BufWriter::with_capacity(1 << 20, File::create(&temporary)?);
    let json = Format::of(output) == Format::JsonLines;
    if output.extension().is_some_and(|e| e == "gz") {
        let mut encoder = flate2::write::GzEncoder::new(&mut file, flate2::Compression::fast());
        write_lines(&mut encoder, segment, best, json)?;
        encoder.finish()?;
    } else {
        write_lines(&mut file, segment, best, json)?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&temporary, output)
}

fn write_lines(out: &mut impl Write, segment: &str, best: &[Candidate], json: bool) -> io::Result<()> {
    for candidate in best {
        if json {
            let line = serde_json::json!({"user_id": &*candidate.id, "segments": [segment]});
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{},{segment}", candidate.id)?;
        }
    }
    Ok(())
}
