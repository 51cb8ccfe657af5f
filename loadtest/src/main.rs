//! `loadtest`: drives a running bidder with OpenRTB traffic and measures it.
//!
//! - `loadtest --target URL --connections N`: closed loop, N keep-alive
//!   connections sending back to back (maximum throughput).
//! - `loadtest --target URL --rate RPS`: open loop at a fixed rate; latency
//!   is measured from each request's *intended* send time, so a stalled
//!   server is charged for the requests it delayed (no coordinated omission).
//! - `--target` repeated (the nodes of a cluster): connections are spread
//!   over the targets round-robin; with `--notices --notice-spread` each
//!   bid's notices, pixel and click go to the next target, and with
//!   `--pixel-delay MS` the pixel (and click) fire that long after the bid.
//!   The summary counts impressions per user and campaign (real bids only):
//!   the overshoot of a frequency cap of one (`loadtest/cluster-frequency.sh`
//!   runs it on three nodes).
//! - `loadtest floor --listen ADDR`: a bare hyper server that reads the body
//!   and answers 204 — the yardstick the bidder is compared with. With
//!   `--answer-bytes N` it answers 200 with an N-byte JSON body instead: what
//!   a response's size costs on its own (never the yardstick).
//! - `loadtest audience --users N --output FILE [--personas K --truth FILE]`:
//!   a test audience (CSV) with the user ids the traffic uses; with latent
//!   personas, segments correlate as real interests do (for lookalike).
//!
//! Traffic is built up front from the corpus templates with Zipf-distributed
//! user ids, so generating it costs nothing during the run.

mod audience;
mod campaigns;
mod floor;
mod run;
mod simulate;
mod traffic;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "loadtest", about = "Load-test harness for Bullseye")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: run::RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// A bare HTTP server answering 204 after reading the body.
    Floor {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
        /// Answer 200 with a JSON body of this many bytes instead (to
        /// measure what a response's size costs; not the yardstick).
        #[arg(long)]
        answer_bytes: Option<usize>,
    },
    /// Write N generated campaigns (one TOML file) over the audience
    /// generator's taxonomy, for throughput runs at scale.
    Campaigns {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        output: std::path::PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The market simulator: what each bidding strategy buys per unit
    /// budget on a synthetic market, through the real bid path (see
    /// OUTCOMES.md).
    #[command(after_long_help = simulate::market::SHAPE)]
    Simulate(simulate::SimArgs),
    /// Write a test audience as CSV for `bullseye segments build`.
    Audience {
        #[arg(long)]
        users: u64,
        #[arg(long)]
        output: std::path::PathBuf,
        #[arg(long, default_value = "sample-user-")]
        prefix: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Draw each user from one of K latent personas (correlated
        /// segments); 0 keeps the historical, persona-free audience.
        #[arg(long, default_value_t = 0)]
        personas: usize,
        /// With --personas: also write `user_id,persona,converted` here.
        #[arg(long, requires = "personas")]
        truth: Option<std::path::PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Some(Command::Floor { listen, answer_bytes }) => runtime.block_on(floor::serve(listen, answer_bytes)),
        Some(Command::Audience {
            users,
            output,
            prefix,
            seed,
            personas,
            truth,
        }) => {
            match personas {
                0 => audience::write(&output, users, &prefix, seed)?,
                _ => audience::write_personas(&output, users, &prefix, seed, personas, truth.as_deref())?,
            }
            Ok(())
        }
        Some(Command::Campaigns { count, output, seed }) => Ok(campaigns::write(&output, count, seed)?),
        Some(Command::Simulate(args)) => simulate::run(args),
        None => runtime.block_on(run::run(cli.run)),
    }
}
