//! The command line: `serve`, `check-config`, `segments build`.

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
    },
    /// Validate a config directory and summarise it.
    CheckConfig {
        #[arg(long, default_value = "bidder-config")]
        config: PathBuf,
    },
    /// Per campaign and day: bids, wins, impressions, clicks, conversions,
    /// spend, CTR, eCPM, eCPC, win rate — from the billing log.
    Report {
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Only this UTC day (YYYY-MM-DD).
        #[arg(long)]
        date: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
    },
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
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
        } => serve(ServeOptions {
            config_dir: config,
            listen,
            admin_listen,
            data_dir,
            segments,
            clock: Arc::new(SystemClock),
            watch: true,
            allow_dev_secrets,
        }),
        Command::CheckConfig { config } => return check_config(config),
        Command::Admin {
            command: AdminCommand::Token { name, role, advertiser },
        } => mint_token(&name, role, advertiser.as_deref()),
        Command::Report { data_dir, date, format } => report(&data_dir, date.as_deref(), format),
        Command::Segments {
            command:
                SegmentsCommand::Build {
                    inputs,
                    output,
                    max_bad_fraction,
                },
        } => build_segments(&inputs, &output, max_bad_fraction),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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

fn report(data_dir: &std::path::Path, date: Option<&str>, format: ReportFormat) -> anyhow::Result<()> {
    if let Some(date) = date {
        date.parse::<jiff::civil::Date>()
            .with_context(|| format!("--date {date:?} is not YYYY-MM-DD"))?;
    }
    let ledger = data_dir.join("ledger");
    anyhow::ensure!(ledger.is_dir(), "no billing log in {}", ledger.display());
    let rows = ledger::report::build(&ledger, date)?;
    match format {
        ReportFormat::Table => print!("{}", ledger::report::table(&rows)),
        ReportFormat::Csv => print!("{}", ledger::report::csv(&rows)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
    }
    Ok(())
}

fn build_segments(inputs: &[PathBuf], output: &std::path::Path, max_bad_fraction: f64) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let report = builder::build(inputs, output, max_bad_fraction)?;
    builder::print_report(&report, &mut std::io::stdout())?;
    println!("in {:.2} s → {}", started.elapsed().as_secs_f64(), output.display());
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
