//! The command line: `serve`, `check-config`, `report`, `segments build`,
//! `segments lookalike`, `forecast`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use bullseye::audience::{Snapshot, builder};
use bullseye::campaigns::Status;
use bullseye::clock::SystemClock;
use bullseye::config;
use bullseye::ledger;
use bullseye::server::{self, ServeOptions, StartError};

#[derive(Parser)]
#[command(name = "bullseye", version, about = "A real-time bidding DSP bidder")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve bid requests, tracking and metrics.
    Serve {
        /// Config directory.
        #[arg(long, default_value = "bidder-config")]
        config: PathBuf,
        /// Address of the exchange listener: bids, tracking, user sync, health.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Address of the admin listener: admin API, console, metrics,
        /// health. Keep it private (loopback, or behind a TLS proxy).
        #[arg(long, default_value = "127.0.0.1:8081")]
        admin_listen: SocketAddr,
        /// Where the bidder keeps its data (billing log, audit log).
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Audience snapshot file, overriding the config's.
        #[arg(long)]
        segments: Option<PathBuf>,
        /// Start with the bundled development secrets on a non-loopback
        /// address (refused otherwise: anyone could forge tracking URLs or
        /// use the admin API).
        #[arg(long)]
        allow_dev_secrets: bool,
        /// Join a cluster through this Redis (`redis://host:6379/0`):
        /// budgets, frequency, billing dedup, campaign and audience
        /// changes are shared with the other nodes. Without it (or
        /// `[cluster] redis_url`), the node runs alone.
        #[arg(long = "redis", env = "BULLSEYE_REDIS_URL")]
        redis_url: Option<String>,
        /// This node's stable id in a cluster (default: host name and
        /// exchange port).
        #[arg(long)]
        node_id: Option<String>,
    },
    /// Validate a config directory and summarise it.
    CheckConfig {
        #[arg(long, default_value = "bidder-config")]
        config: PathBuf,
    },
    /// Per campaign and day (or hour, exchange, creative, domain, country,
    /// device): bids, wins, impressions, clicks, conversions, conversion
    /// value, spend, CTR, eCPM, eCPC, CPA, ROAS, win rate — from the
    /// billing logs of one or more data directories (merged, each event
    /// once).
    Report(ReportArgs),
    /// Audience snapshots.
    Segments {
        #[command(subcommand)]
        command: SegmentsCommand,
    },
    /// Admin API access.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// What a campaign would buy at a bid and a daily budget: the sampled
    /// bid requests (`[sampling]`) replayed against it, per day, with a bid
    /// landscape.
    Forecast(ForecastArgs),
    /// The learned click and conversion models.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

#[derive(clap::Args)]
struct ForecastArgs {
    /// A campaign file (`[[campaign]]` TOML; its first campaign), or the id
    /// of a campaign of the config directory.
    #[arg(long)]
    campaign: String,
    /// The bid to forecast (max CPM, or max CPC; for CPA and CPS campaigns
    /// their `max_cpm`), a decimal in the base currency.
    #[arg(long)]
    max_bid: Option<String>,
    /// The daily budget to forecast, a decimal in the base currency.
    #[arg(long)]
    daily_budget: Option<String>,
    /// The data directory whose `sample/`, ledger and loss log are read.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Config directory (settings, and the campaign by id).
    #[arg(long, default_value = "bidder-config")]
    config: PathBuf,
    /// One JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Trains on the feature log's earlier days and reports log loss and
    /// AUC on its last days, against each campaign's smoothed rate.
    Evaluate {
        /// The data directory whose `outcome/` feature log is read.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Days held out for the evaluation (the last ones).
        #[arg(long, default_value_t = 1)]
        holdout_days: i64,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Mint an admin API token: prints the token (give it to its holder,
    /// once) and the `[[admin.token]]` entry with its hash for bullseye.toml.
    Token {
        /// Who holds it (the audit log names changes after it).
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: TokenRole,
        /// The advertiser an `advertiser` token is bound to.
        #[arg(long)]
        advertiser: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TokenRole {
    Admin,
    Advertiser,
    Data,
    Viewer,
}

/// `bullseye report`'s flags (the admin API takes the same names as query
/// parameters: `ledger::report::ReportQuery::from_query_string`).
#[derive(clap::Args)]
struct ReportArgs {
    /// A data directory (repeat for several nodes' logs).
    #[arg(long, default_value = "data")]
    data_dir: Vec<PathBuf>,
    /// Only this day (YYYY-MM-DD, in the --tz zone).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    date: Option<String>,
    /// First day of a range (inclusive).
    #[arg(long)]
    from: Option<String>,
    /// Last day of a range (inclusive).
    #[arg(long)]
    to: Option<String>,
    /// Group rows by day, hour, exchange, creative, domain, country or
    /// device (per campaign and date), or by experiment arm (per campaign
    /// and arm over the dates asked for, with statistics).
    #[arg(long, default_value = "day")]
    by: String,
    /// Dates and hours in each campaign's time zone, or in UTC.
    #[arg(long, default_value = "campaign")]
    tz: String,
    /// Only these campaigns (repeat, or separate with commas).
    #[arg(long)]
    campaign: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: ReportFormat,
    /// With `--by arm`: a file of converting user ids (one per line), each
    /// placed in its experiment arm by the bidding hash, as the basis of the
    /// incremental lift over the holdout.
    #[arg(long)]
    converters: Option<PathBuf>,
    /// With `--by arm`: the config directory whose campaigns' experiments
    /// (arms, weights, control, holdout) the statistics use.
    #[arg(long, default_value = "bidder-config")]
    config: PathBuf,
    /// Report the loss log instead: loss notices per campaign, exchange
    /// and loss reason, with the mean minimum bid to win, over the UTC days
    /// asked for (`--by` and `--tz` do not apply).
    #[arg(long)]
    losses: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Subcommand)]
enum SegmentsCommand {
    /// Build a snapshot from CSV (`user_id,seg|seg`) or JSON Lines files.
    Build {
        /// One or more inputs; a user's segments are merged across them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(long)]
        output: PathBuf,
        /// Fail when more than this fraction of lines is bad.
        #[arg(long, default_value_t = 0.0)]
        max_bad_fraction: f64,
    },
    /// Expand a seed list into the users of a population most like it:
    /// writes `user_id,SEGMENT` CSV for `segments build` and prints a
    /// one-line JSON summary (with --holdout: recall and lift).
    Lookalike(LookalikeArgs),
}

/// `bullseye segments lookalike`'s flags.
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("how_many").required(true).args(["size", "ratio"]))]
struct LookalikeArgs {
    /// The population: CSV (`user_id,seg|seg`) or JSON Lines files, as for
    /// `segments build` (`.gz` read through).
    #[arg(long, required = true, num_args = 1..)]
    population: Vec<PathBuf>,
    /// The seed list: one user id per line.
    #[arg(long)]
    seed: PathBuf,
    /// How many users to write.
    #[arg(long)]
    size: Option<u64>,
    /// How many users to write, as a fraction of the population.
    #[arg(long)]
    ratio: Option<f64>,
    /// The segment to put them in (e.g. `lookalike/buyers`).
    #[arg(long)]
    segment: String,
    /// The output file (CSV; JSON Lines for `.jsonl`).
    #[arg(long)]
    output: PathBuf,
    /// Hide this fraction of the seed from training and report how many of
    /// the hidden users the expansion finds (recall) and its lift over
    /// random.
    #[arg(long)]
    holdout: Option<f64>,
    /// Seeds the holdout, the sample and the training (same seed, same
    /// output).
    #[arg(long, alias = "seed-random", default_value_t = 1)]
    random_seed: u64,
    /// Population users (and at most seed users) the model learns from.
    #[arg(long, default_value_t = bullseye::audience::lookalike::DEFAULT_SAMPLE)]
    sample: usize,
    /// Fail when more than this fraction of the population's lines is bad.
    #[arg(long, default_value_t = 0.0)]
    max_bad_fraction: f64,
}

/// Logs to standard error, `RUST_LOG` filtering (default `info`).
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    if !matches!(cli.command, Command::Serve { .. }) {
        // Commands that print (check-config, report, segments) end quietly
        // when their reader goes away (`| head`), like any Unix tool,
        // instead of panicking on a broken pipe. The server keeps Rust's
        // default (SIGPIPE ignored): a client closing its socket must not
        // stop it.
        // SAFETY: restoring a signal's default disposition has no
        // preconditions; no other thread is running yet.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Serve {
            config,
            listen,
            admin_listen,
            data_dir,
            segments,
            allow_dev_secrets,
            redis_url,
            node_id,
        } => serve(ServeOptions {
            config_dir: config,
            listen,
            admin_listen,
            data_dir,
            segments,
            clock: Arc::new(SystemClock),
            watch: true,
            allow_dev_secrets,
            redis_url,
            node_id,
            ledger_storage: None,
        }),
        Command::CheckConfig { config } => return check_config(config),
        Command::Admin {
            command: AdminCommand::Token { name, role, advertiser },
        } => mint_token(&name, role, advertiser.as_deref()),
        Command::Report(args) => report(&args),
        Command::Segments {
            command:
                SegmentsCommand::Build {
                    inputs,
                    output,
                    max_bad_fraction,
                },
        } => build_segments(&inputs, &output, max_bad_fraction),
        Command::Segments {
            command: SegmentsCommand::Lookalike(args),
        } => lookalike(args),
        Command::Model { command } => model(command),
        Command::Forecast(args) => forecast(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn forecast(args: &ForecastArgs) -> anyhow::Result<()> {
    let money = |text: &Option<String>, what: &str| {
        text.as_deref()
            .map(|t| {
                let amount = bullseye::money::Micros::parse_decimal(t).with_context(|| format!("--{what} {t:?}"))?;
                anyhow::ensure!(amount.0 > 0, "--{what} {t:?}: must be more than 0");
                Ok(amount)
            })
            .transpose()
    };
    let (settings, campaign) = forecast_campaign(&args.config, &args.campaign)?;
    let question = bullseye::forecast::Question {
        rates: bullseye::forecast::Rates::priors(&campaign),
        settings,
        campaign,
        max_bid: money(&args.max_bid, "max-bid")?,
        daily_budget: money(&args.daily_budget, "daily-budget")?,
    };
    let forecast = bullseye::forecast::forecast_in(&args.data_dir, &question)?;
    if args.json {
        println!("{}", serde_json::to_string(&forecast)?);
    } else {
        print!("{}", forecast_table(&forecast));
    }
    Ok(())
}

/// The settings of `config_dir` and the campaign: `campaign` names a file
/// (its first `[[campaign]]`) or the id of one of the directory's.
fn forecast_campaign(
    config_dir: &std::path::Path,
    campaign: &str,
) -> anyhow::Result<(bullseye::settings::Settings, bullseye::campaigns::Campaign)> {
    let problems = |e: config::ConfigErrors| {
        let lines: Vec<String> = e.0.iter().map(|p| p.to_string()).collect();
        anyhow::anyhow!("invalid config:\n{}", lines.join("\n"))
    };
    let path = std::path::Path::new(campaign);
    if path.is_file() {
        let settings_path = config_dir.join("bullseye.toml");
        let settings_text =
            std::fs::read_to_string(&settings_path).with_context(|| format!("reading {}", settings_path.display()))?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let name = PathBuf::from(path.file_name().unwrap_or_default());
        let mut config = config::from_texts(config_dir, &settings_text, &[(name, text)]).map_err(problems)?;
        anyhow::ensure!(!config.campaigns.is_empty(), "{} holds no [[campaign]]", path.display());
        let first = config.campaigns.swap_remove(0);
        return Ok((config.settings, first));
    }
    let mut config = config::load(config_dir).map_err(problems)?;
    let at = config
        .campaigns
        .iter()
        .position(|c| c.id == campaign)
        .with_context(|| format!("no campaign {campaign:?} in {} (nor such a file)", config_dir.display()))?;
    let found = config.campaigns.swap_remove(at);
    Ok((config.settings, found))
}

/// The forecast as text: the days, the total, the landscape.
fn forecast_table(f: &bullseye::forecast::Forecast) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let budget = f.daily_budget.as_deref().unwrap_or("none");
    let _ = writeln!(
        out,
        "{} ({}) at max bid {} {}, daily budget {budget}; {} sampled requests",
        f.campaign, f.pricing, f.max_bid, f.currency, f.sample.requests
    );
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>11} {:>9} {:>10} {:>12} {:>9} {:>11}",
        "date", "requests", "impressions", "bids", "wins", "spend", "clicks", "conversions"
    );
    for d in f.days.iter().chain(std::iter::once(&f.total)) {
        let _ = writeln!(
            out,
            "{:<10} {:>10} {:>11} {:>9} {:>10.2} {:>12} {:>9.2} {:>11.2}{}",
            d.date,
            d.requests,
            d.impressions,
            d.bids,
            d.wins,
            d.spend,
            d.clicks,
            d.conversions,
            if d.capped { "  (budget)" } else { "" }
        );
    }
    let _ = writeln!(out, "bid landscape");
    let _ = writeln!(
        out,
        "{:>6} {:>10} {:>9} {:>10} {:>12}",
        "factor", "max_bid", "bids", "wins", "spend"
    );
    for p in &f.landscape {
        let _ = writeln!(
            out,
            "{:>6.2} {:>10} {:>9} {:>10.2} {:>12}",
            p.factor, p.max_bid, p.bids, p.wins, p.spend
        );
    }
    out
}

fn model(command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::Evaluate {
            data_dir,
            holdout_days,
            json,
        } => evaluate_model(&data_dir, holdout_days, json),
    }
}

fn evaluate_model(data_dir: &std::path::Path, holdout_days: i64, json: bool) -> anyhow::Result<()> {
    let evaluation = bullseye::outcome::evaluate::evaluate(data_dir, holdout_days.max(1))
        .with_context(|| format!("reading the feature log in {}", data_dir.display()))?;
    if json {
        println!("{}", serde_json::to_string(&evaluation)?);
        return Ok(());
    }
    let days = |span: Option<(i64, i64)>| span.map_or("none".to_string(), |(a, b)| format!("days {a}..={b}"));
    println!(
        "trained on {} ({} examples), held out {}",
        days(evaluation.train_days),
        evaluation.trained,
        days(evaluation.test_days)
    );
    let auc = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{a:.4}"));
    println!(
        "{:<11} {:>11} {:>9} {:>14} {:>14} {:>9} {:>12}",
        "model", "impressions", "positive", "log loss", "campaign rate", "AUC", "campaign AUC"
    );
    for (name, f) in [("click", &evaluation.click), ("conversion", &evaluation.conversion)] {
        println!(
            "{name:<11} {:>11} {:>9} {:>14.6} {:>14.6} {:>9} {:>12}",
            f.impressions,
            f.positives,
            f.model_log_loss,
            f.campaign_log_loss,
            auc(f.model_auc),
            auc(f.campaign_auc)
        );
    }
    Ok(())
}

fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let running = match server::start(options).await {
            Ok(running) => running,
            Err(StartError::Config(errors)) => {
                anyhow::bail!("{errors}");
            }
            Err(e) => return Err(e.into()),
        };
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        running.shutdown().await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn check_config(dir: PathBuf) -> ExitCode {
    match config::load(&dir) {
        Ok(config) => {
            let count = |status| config.campaigns.iter().filter(|c| c.status == status).count();
            println!("{}: valid", dir.display());
            println!(
                "  campaigns: {} ({} active, {} paused, {} archived)",
                config.campaigns.len(),
                count(Status::Active),
                count(Status::Paused),
                count(Status::Archived)
            );
            println!("  advertisers: {}", config.settings.advertisers.len());
            println!("  admin tokens: {}", config.settings.admin_tokens.len());
            let names: Vec<&str> = config.settings.exchanges.iter().map(|e| e.name.as_str()).collect();
            println!("  exchanges: {}", names.join(", "));
            println!("  base currency: {}", config.settings.base_currency());
            match &config.settings.audience_snapshot {
                Some(path) => match Snapshot::open(path) {
                    Ok(s) => println!(
                        "  audience: {} ({} users, {} segments)",
                        path.display(),
                        s.user_count(),
                        s.segment_count()
                    ),
                    Err(e) => {
                        println!("{}: audience.snapshot: {e}", dir.join("bullseye.toml").display());
                        return ExitCode::FAILURE;
                    }
                },
                None => println!("  audience: none"),
            }
            if config.settings.signing_key_is_dev {
                println!("  warning: the URL-signing key is the development one");
            }
            if config.settings.admin_token_is_dev {
                println!("  warning: an admin token is the development one");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for problem in &errors.0 {
                println!("{problem}");
            }
            ExitCode::FAILURE
        }
    }
}

fn report(args: &ReportArgs) -> anyhow::Result<()> {
    use std::io::Write;
    if args.losses {
        return loss_report(args);
    }
    let flags = ledger::report::Flags {
        date: args.date.as_deref(),
        from: args.from.as_deref(),
        to: args.to.as_deref(),
        by: Some(&args.by),
        tz: Some(&args.tz),
        campaigns: args.campaign.iter().map(String::as_str).collect(),
    };
    let query = ledger::report::ReportQuery::from_flags(&flags)?;
    let rows = ledger::report::query(&args.data_dir, &query)?;
    if query.by == ledger::report::By::Arm {
        return arm_report(args, &rows);
    }
    if args.converters.is_some() {
        anyhow::bail!("--converters goes with --by arm");
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    match args.format {
        ReportFormat::Table => out.write_all(ledger::report::table(query.by, &rows).as_bytes())?,
        ReportFormat::Csv => out.write_all(ledger::report::csv(query.by, &rows).as_bytes())?,
        ReportFormat::Json => ledger::report::json(&rows, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// `bullseye report --by arm`: one row per campaign and arm, with the
/// statistics of the experiments configured in `--config` (without a
/// readable config, counts and intervals only).
fn arm_report(args: &ReportArgs, rows: &[ledger::report::Row]) -> anyhow::Result<()> {
    use ledger::experiment;
    use std::io::Write;
    let experiments = match bullseye::config::load(&args.config) {
        Ok(config) => experiment::experiments_of(&config.campaigns),
        Err(e) => {
            eprintln!(
                "warning: {} not read ({e}); arms without roles, lifts or p-values",
                args.config.display()
            );
            Default::default()
        }
    };
    let converters = match &args.converters {
        Some(path) => Some(
            experiment::Converters::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let rows = experiment::arm_rows(rows, &experiments, converters.as_ref());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        ReportFormat::Table => out.write_all(experiment::table(&rows).as_bytes())?,
        ReportFormat::Csv => out.write_all(experiment::csv(&rows).as_bytes())?,
        ReportFormat::Json => {
            serde_json::to_writer(&mut out, &rows)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `bullseye report --losses`: rows per campaign, exchange and reason from
/// the loss logs.
fn loss_report(args: &ReportArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let day = |flag: &str, text: &Option<String>| -> anyhow::Result<Option<jiff::civil::Date>> {
        text.as_deref()
            .map(|t| {
                t.parse()
                    .map_err(|_| anyhow::anyhow!("--{flag} {t:?} is not a date (YYYY-MM-DD)"))
            })
            .transpose()
    };
    let (from, to) = match day("date", &args.date)? {
        Some(date) => (Some(date), Some(date)),
        None => (day("from", &args.from)?, day("to", &args.to)?),
    };
    let campaigns: Vec<String> = args
        .campaign
        .iter()
        .flat_map(|c| c.split(','))
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let rows = ledger::losses::report(&args.data_dir, from, to, &campaigns)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        ReportFormat::Table => out.write_all(ledger::losses::table(&rows).as_bytes())?,
        ReportFormat::Csv => out.write_all(ledger::losses::csv(&rows).as_bytes())?,
        ReportFormat::Json => {
            serde_json::to_writer(&mut out, &rows)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn build_segments(inputs: &[PathBuf], output: &std::path::Path, max_bad_fraction: f64) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let report = builder::build(inputs, output, max_bad_fraction)?;
    builder::print_report(&report, &mut std::io::stdout())?;
    println!("in {:.2} s → {}", started.elapsed().as_secs_f64(), output.display());
    Ok(())
}

/// `segments lookalike`: progress, missing seeds and rejected lines on
/// stderr, the JSON summary as the last line on stdout.
fn lookalike(args: LookalikeArgs) -> anyhow::Result<()> {
    use bullseye::audience::lookalike::{self, Options, Size};
    let options = Options {
        population: args.population,
        seed: args.seed,
        size: match (args.size, args.ratio) {
            (Some(users), _) => Size::Users(users),
            (None, ratio) => Size::Ratio(ratio.unwrap_or_default()),
        },
        segment: args.segment,
        output: args.output,
        holdout: args.holdout,
        random_seed: args.random_seed,
        sample: args.sample,
        max_bad_fraction: args.max_bad_fraction,
    };
    let summary = lookalike::run(&options)?;
    for bad in &summary.bad_examples {
        eprintln!("rejected {bad}");
    }
    if summary.seed_missing > 0 {
        eprintln!(
            "{} of {} seed ids are not in the population (e.g. {})",
            summary.seed_missing,
            summary.seed_listed,
            summary.missing_examples.join(", ")
        );
    }
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// Prints a new random token and its `[[admin.token]]` entry.
fn mint_token(name: &str, role: TokenRole, advertiser: Option<&str>) -> anyhow::Result<()> {
    use base64::Engine;
    let role = match role {
        TokenRole::Admin => "admin",
        TokenRole::Advertiser => "advertiser",
        TokenRole::Data => "data",
        TokenRole::Viewer => "viewer",
    };
    anyhow::ensure!(
        (role == "advertiser") == advertiser.is_some(),
        "--advertiser is required for an advertiser token and refused for the other roles"
    );
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let hash = bullseye::settings::access::hex(&bullseye::settings::access::token_hash(&token));
    println!("token: {token}");
    println!("sha256: {hash}");
    println!();
    println!("# Add to bullseye.toml (the token itself is shown only now):");
    println!("[[admin.token]]");
    println!("name = {}", toml_string(name));
    println!("role = \"{role}\"");
    if let Some(advertiser) = advertiser {
        println!("advertiser = {}", toml_string(advertiser));
    }
    println!("sha256 = \"{hash}\"");
    Ok(())
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}
