//! The driver: closed loop (N connections back to back) or open loop (a
//! fixed rate, latency from the intended send time).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

use crate::traffic;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Bid endpoint, e.g. http://127.0.0.1:8080/openrtb2/bid. Repeat it
    /// for the nodes of a cluster: connections are spread over them
    /// round-robin.
    #[arg(long)]
    target: Vec<String>,
    /// With several targets and --notices: send each bid's notices, pixel
    /// and click to the next target, not the one that bid (as a load
    /// balancer would).
    #[arg(long)]
    notice_spread: bool,
    /// With --notices: fire the impression pixel (and the click) this many
    /// milliseconds after the bid, as a browser would, not at once.
    #[arg(long)]
    pixel_delay: Option<u64>,
    /// Open loop at this many requests per second.
    #[arg(long)]
    rate: Option<u64>,
    /// Keep-alive connections (closed loop: the concurrency; open loop: the
    /// pool requests are dispatched to). Default 32 / 256.
    #[arg(long)]
    connections: Option<usize>,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Directory of OpenRTB request templates.
    #[arg(long, default_value = "../shared/corpus/requests")]
    templates: PathBuf,
    /// Distinct users (Zipf-distributed, ids `{user_prefix}{n:04}`).
    #[arg(long, default_value_t = 500)]
    users: usize,
    #[arg(long, default_value = "sample-user-")]
    user_prefix: String,
    /// Play the exchange (closed loop): for every bid, call its win notice
    /// (`nurl`) and billing notice (`burl`) with a clearing price of 80 %
    /// of the bid, fire the impression pixel in its markup, and follow the
    /// click link for a fraction of impressions (`--click-rate`).
    #[arg(long)]
    notices: bool,
    /// Fraction of impressions clicked when playing the exchange.
    #[arg(long, default_value_t = 0.01)]
    click_rate: f64,
    /// Fraction of bids won when playing the exchange: a lost bid gets no
    /// notice at all (its budget reservation expires with its window).
    #[arg(long, default_value_t = 0.5)]
    win_rate: f64,
    /// Request templates: the corpus, synthetic requests (banner, video and
    /// native; site and app; one to three impressions; floors; sizes; geo),
    /// or half of each.
    #[arg(long, value_enum, default_value = "corpus")]
    traffic: traffic::Traffic,
    /// Measure this bare server first with the same settings and print the
    /// ratio (e.g. the `loadtest floor` at http://127.0.0.1:8090/).
    #[arg(long)]
    floor: Option<String>,
    /// Distinct pre-built request bodies cycled through.
    #[arg(long, default_value_t = 20_000)]
    bodies: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    bids: AtomicU64,
    no_bids: AtomicU64,
    errors: AtomicU64,
    notices: AtomicU64,
    notices_acknowledged: AtomicU64,
    /// Impressions (pixels acknowledged) per (user, campaign), for the
    /// frequency-cap overshoot.
    /// The node that made the bid is the third part of the key.
    impressions: std::sync::Mutex<std::collections::HashMap<(String, String, usize), u32>>,
}

impl Counters {
    fn impression(&self, user: &str, campaign: &str, bidder: usize) {
        let mut seen = self.impressions.lock().unwrap_or_else(|p| p.into_inner());
        *seen
            .entry((user.to_string(), campaign.to_string(), bidder))
            .or_default() += 1;
    }
}

/// True for a request marked `"test": 1` (its bids hold nothing: no
/// frequency cap applies to them).
fn is_test(body: &[u8]) -> bool {
    body.windows(8).any(|w| w == b"\"test\":1")
}

/// The `user.buyeruid` of a generated request body.
fn user_of(body: &[u8]) -> String {
    let marker = b"\"buyeruid\":\"";
    let Some(at) = body.windows(marker.len()).position(|w| w == marker) else {
        return String::new();
    };
    let rest = &body[at + marker.len()..];
    let end = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

struct Target {
    authority: String,
    path: String,
}

fn parse_target(url: &str) -> anyhow::Result<Target> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--target must be an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/openrtb2/bid"),
    };
    Ok(Target {
        authority: authority.to_string(),
        path: path.to_string(),
    })
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(target: &Target) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(&target.authority).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn bid_request(target: &Target, body: Bytes) -> hyper::Request<Full<Bytes>> {
    hyper::Request::post(&target.path)
        .header("host", &target.authority)
        .header("content-type", "application/json")
        .header("x-openrtb-version", "2.6")
        .body(Full::new(body))
        .expect("valid request")
}

/// Sends one request; returns the status code (0 on a transport error) and
/// the body of a 200.
async fn exchange(
    sender: &mut Option<Sender>,
    target: &Target,
    request: hyper::Request<Full<Bytes>>,
) -> (u16, Option<Bytes>) {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        *sender = connect(target).await.ok();
    }
    let Some(s) = sender.as_mut() else { return (0, None) };
    if s.ready().await.is_err() {
        *sender = None;
        return (0, None);
    }
    match s.send_request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.into_body().collect().await {
                Ok(body) if status == 200 => (status, Some(body.to_bytes())),
                Ok(_) => (status, None),
                Err(_) => (0, None),
            }
        }
        Err(_) => {
            *sender = None;
            (0, None)
        }
    }
}

async fn send(sender: &mut Option<Sender>, target: &Target, body: Bytes) -> (u16, Option<Bytes>) {
    exchange(sender, target, bid_request(target, body)).await
}

/// A tracking path (`/t/imp?…`, `/t/click?…`) in a bid's markup, HTML
/// entities undone.
fn tracking_path(adm: &str, marker: &str) -> Option<String> {
    let start = adm.find(marker)?;
    let rest = &adm[start..];
    let end = rest.find(['"', ']', '<', ' ', '\'']).unwrap_or(rest.len());
    Some(rest[..end].replace("&amp;", "&"))
}

/// Plays the exchange for a bid response (to `request`, answered by
/// `targets[bidder]`): each bid is won with probability `play.rates.win`;
/// for a won bid, the win notice and the billing notice with a clearing
/// price of 80 % of the bid, the impression pixel, and a click for
/// `play.rates.click` of them. Notices go to the bidding target, or with
/// `--notice-spread` to the next one; with `--pixel-delay` the pixel and
/// the click are queued to fire later. Returns (calls made, calls
/// acknowledged) now.
async fn notify(conn: &mut Notifier, response: &Bytes, request: &Bytes, play: &Play) -> (u64, u64) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(response) else {
        return (0, 0);
    };
    let (mut sent, mut acknowledged) = (0, 0);
    for bid in json["seatbid"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["bid"].as_array().into_iter().flatten())
    {
        let Some(price) = bid["price"].as_f64() else {
            continue;
        };
        if rand::random::<f64>() >= play.rates.win {
            continue;
        }
        let clearing = format!("{:.6}", price * 0.8);
        let notices: Vec<String> = ["nurl", "burl"]
            .iter()
            .filter_map(|field| bid[*field].as_str())
            .filter_map(|url| url.find("/t/").map(|i| url[i..].replace("${AUCTION_PRICE}", &clearing)))
            .collect();
        let adm = bid["adm"].as_str().unwrap_or_default();
        let mut shown: Vec<String> = tracking_path(adm, "/t/imp?").into_iter().collect();
        if rand::random::<f64>() < play.rates.click {
            shown.extend(tracking_path(adm, "/t/click?"));
        }
        let pixel = Pixel {
            due: Instant::now() + play.pixel_delay.unwrap_or_default(),
            target: conn.target,
            bidder: conn.bidder,
            paths: shown,
            user: if is_test(request) {
                String::new()
            } else {
                user_of(request)
            },
            campaign: bid["cid"].as_str().unwrap_or_default().to_string(),
        };
        for path in notices {
            let (status, _) = conn.get(&path).await;
            sent += 1;
            acknowledged += u64::from(matches!(status, 200 | 204 | 302));
        }
        match &play.delayed {
            Some(queue) => {
                let _ = queue.send(pixel);
            }
            None => {
                let (s, a) = conn.fire(pixel, &play.counters).await;
                sent += s;
                acknowledged += a;
            }
        }
    }
    (sent, acknowledged)
}

/// A bid's pixel and click, fired at `due` at target `target`, counted
/// for `user` and `campaign` (empty for a test request) and the bidding
/// target `bidder`.
struct Pixel {
    due: Instant,
    target: usize,
    bidder: usize,
    paths: Vec<String>,
    user: String,
    campaign: String,
}

/// One worker's notice connection: to one target, latencies recorded.
struct Notifier {
    targets: Arc<Vec<Target>>,
    target: usize,
    /// The target whose bids this notifier plays.
    bidder: usize,
    sender: Option<Sender>,
    latencies: Histogram<u64>,
}

impl Notifier {
    /// GETs a tracking path on this notifier's target.
    async fn get(&mut self, path: &str) -> (u16, Option<Bytes>) {
        let target = &self.targets[self.target];
        let request = hyper::Request::get(path)
            .header("host", &target.authority)
            .body(Full::default())
            .expect("valid request");
        let start = Instant::now();
        let answer = exchange(&mut self.sender, target, request).await;
        let _ = self.latencies.record(start.elapsed().as_micros().max(1) as u64);
        answer
    }

    /// Fires a pixel (and click): (calls, acknowledged); an acknowledged
    /// pixel counts an impression of its user and campaign.
    async fn fire(&mut self, pixel: Pixel, counters: &Counters) -> (u64, u64) {
        let (mut sent, mut acknowledged) = (0, 0);
        for path in &pixel.paths {
            let (status, _) = self.get(path).await;
            sent += 1;
            let ok = matches!(status, 200 | 204 | 302);
            acknowledged += u64::from(ok);
            if ok && !pixel.user.is_empty() && path.starts_with("/t/imp?") {
                counters.impression(&pixel.user, &pixel.campaign, pixel.bidder);
            }
        }
        (sent, acknowledged)
    }
}

/// How the played exchange treats bids, and where delayed pixels go.
struct Play {
    rates: Rates,
    pixel_delay: Option<Duration>,
    delayed: Option<mpsc::UnboundedSender<Pixel>>,
    counters: Arc<Counters>,
}

/// Fires delayed pixels at their due time: `workers` tasks, each with a
/// connection per target; ends when the queue is closed and drained.
fn pixel_workers(
    targets: Arc<Vec<Target>>,
    queue: mpsc::UnboundedReceiver<Pixel>,
    counters: Arc<Counters>,
    workers: usize,
) -> Vec<tokio::task::JoinHandle<Histogram<u64>>> {
    let queue = Arc::new(Mutex::new(queue));
    (0..workers)
        .map(|_| {
            let (targets, queue, counters) = (targets.clone(), queue.clone(), counters.clone());
            tokio::spawn(async move {
                let mut conns: Vec<Notifier> = (0..targets.len())
                    .map(|target| Notifier {
                        targets: targets.clone(),
                        target,
                        bidder: target,
                        sender: None,
                        latencies: histogram(),
                    })
                    .collect();
                loop {
                    let next = queue.lock().await.recv().await;
                    let Some(pixel) = next else { break };
                    tokio::time::sleep_until(pixel.due.into()).await;
                    let target = pixel.target;
                    let (sent, acknowledged) = conns[target].fire(pixel, &counters).await;
                    counters.notices.fetch_add(sent, Ordering::Relaxed);
                    counters.notices_acknowledged.fetch_add(acknowledged, Ordering::Relaxed);
                }
                let mut all = histogram();
                for conn in conns {
                    let _ = all.add(conn.latencies);
                }
                all
            })
        })
        .collect()
}

/// How the played exchange treats bids.
#[derive(Clone, Copy, Debug)]
struct Rates {
    /// Fraction of bids won.
    win: f64,
    /// Fraction of impressions clicked.
    click: f64,
}

/// Counts a bid request's answer. A 200 without `seatbid` (an exchange
/// configured for `nbr` answers) is a no-bid, like a 204.
fn record(counters: &Counters, status: u16, body: Option<&Bytes>) {
    counters.sent.fetch_add(1, Ordering::Relaxed);
    let has_bids = || body.is_some_and(|b| b.windows(9).any(|w| w == b"\"seatbid\""));
    let counter = match status {
        200 if has_bids() => &counters.bids,
        200 | 204 => &counters.no_bids,
        _ => &counters.errors,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

struct Measurement {
    counters: Arc<Counters>,
    latencies: Histogram<u64>,
    notice_latencies: Histogram<u64>,
    elapsed: f64,
}

/// One run against one target with the given settings.
async fn measure(args: &RunArgs, targets: Vec<Target>, bodies: Arc<Vec<Bytes>>, notices: bool) -> Measurement {
    let targets = Arc::new(targets);
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let duration = Duration::from_secs(args.duration);
    let started = Instant::now();
    let progress = tokio::spawn(progress(counters.clone(), stop.clone(), started));
    let (latencies, notice_latencies) = match args.rate {
        Some(rate) => {
            let connections = args.connections.unwrap_or(256);
            (
                // On the runtime's worker, where the connections' tasks run
                // (`block_on`'s future runs on the calling thread: pacing
                // there would put two busy threads on the generator's core).
                tokio::spawn(open_loop(
                    targets,
                    bodies,
                    counters.clone(),
                    rate,
                    connections,
                    duration,
                ))
                .await
                .expect("the open loop does not panic"),
                histogram(),
            )
        }
        None => {
            let connections = args.connections.unwrap_or(32);
            let play = notices.then_some(Rates {
                win: args.win_rate,
                click: args.click_rate,
            });
            let play = play.map(|rates| (rates, args));
            closed_loop(targets, bodies, counters.clone(), connections, duration, play).await
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = progress.await;
    Measurement {
        counters,
        latencies,
        notice_latencies,
        elapsed,
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.target.is_empty() {
        anyhow::bail!("--target is required");
    }
    let targets = args
        .target
        .iter()
        .map(|url| parse_target(url))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let templates = traffic::templates(&args.templates)?;
    let bodies = Arc::new(traffic::bodies(
        &templates,
        args.traffic,
        args.bodies.max(1),
        args.users,
        &args.user_prefix,
        args.seed,
    ));
    // The yardstick first, with the same settings, in the same run.
    let floor = match &args.floor {
        Some(url) => {
            eprintln!("measuring the floor at {url}");
            let m = measure(&args, vec![parse_target(url)?], bodies.clone(), false).await;
            let rps = m.counters.sent.load(Ordering::Relaxed) as f64 / m.elapsed;
            println!(
                "floor: {rps:.0} req/s; latency ms p50 {:.3} p99 {:.3} p99.9 {:.3}",
                m.latencies.value_at_quantile(0.5) as f64 / 1000.0,
                m.latencies.value_at_quantile(0.99) as f64 / 1000.0,
                m.latencies.value_at_quantile(0.999) as f64 / 1000.0
            );
            Some(rps)
        }
        None => None,
    };
    let m = measure(&args, targets, bodies, args.notices).await;
    report(&args, &m.counters, &m.latencies, &m.notice_latencies, m.elapsed, floor);
    Ok(())
}

/// Closed loop: connection `w` bids at target `w % targets`.
async fn closed_loop(
    targets: Arc<Vec<Target>>,
    bodies: Arc<Vec<Bytes>>,
    counters: Arc<Counters>,
    connections: usize,
    duration: Duration,
    // Play the exchange, with these rates.
    play: Option<(Rates, &RunArgs)>,
) -> (Histogram<u64>, Histogram<u64>) {
    let deadline = Instant::now() + duration;
    let next = Arc::new(AtomicU64::new(0));
    let pixel_delay = play.and_then(|(_, args)| args.pixel_delay).map(Duration::from_millis);
    let (queue, pixels) = match pixel_delay {
        Some(_) => {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), pixel_workers(targets.clone(), rx, counters.clone(), 64))
        }
        None => (None, Vec::new()),
    };
    let spread = play.is_some_and(|(_, args)| args.notice_spread);
    let play = play.map(|(rates, _)| {
        Arc::new(Play {
            rates,
            pixel_delay,
            delayed: queue,
            counters: counters.clone(),
        })
    });
    let workers: Vec<_> = (0..connections)
        .map(|w| {
            let (targets, bodies, counters, next, play) = (
                targets.clone(),
                bodies.clone(),
                counters.clone(),
                next.clone(),
                play.clone(),
            );
            tokio::spawn(async move {
                let bid_target = w % targets.len();
                let notice_target = if spread { (w + 1) % targets.len() } else { bid_target };
                let mut latencies = histogram();
                let mut sender = None;
                let mut notifier = Notifier {
                    targets: targets.clone(),
                    target: notice_target,
                    bidder: bid_target,
                    sender: None,
                    latencies: histogram(),
                };
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize % bodies.len();
                    let start = Instant::now();
                    let target = &targets[bid_target];
                    let (status, body) = send(&mut sender, target, bodies[i].clone()).await;
                    let _ = latencies.record(start.elapsed().as_micros().max(1) as u64);
                    record(&counters, status, body.as_ref());
                    if let (Some(play), Some(body)) = (&play, body) {
                        let (sent, acknowledged) = notify(&mut notifier, &body, &bodies[i], play).await;
                        counters.notices.fetch_add(sent, Ordering::Relaxed);
                        counters.notices_acknowledged.fetch_add(acknowledged, Ordering::Relaxed);
                    }
                }
                (latencies, notifier.latencies)
            })
        })
        .collect();
    drop(play);
    let (mut all, mut all_notices) = (histogram(), histogram());
    for worker in workers {
        if let Ok((latencies, notice_latencies)) = worker.await {
            let _ = all.add(latencies);
            let _ = all_notices.add(notice_latencies);
        }
    }
    // The delayed pixels still queued fire at their time.
    for pixels in pixels {
        if let Ok(latencies) = pixels.await {
            let _ = all_notices.add(latencies);
        }
    }
    (all, all_notices)
}

/// Open loop: request `n` is due at `start + n / rate`, sent on an idle
/// connection at that time (or as soon as one is free), and its latency
/// counted from when it was due, so the generator's and the server's
/// queueing both count.
///
/// Everything runs on the generator's one thread: the pacing task waits
/// on the runtime's timer until a millisecond before a request is due,
/// then yields until it is (each yield polls the sockets), and hands the
/// request to a task of its own. An earlier version paced from an OS
/// thread through a channel shared by the connections: every request
/// then cost a cross-thread wake-up and a lock hand-off, the generator
/// spent ~32 µs of its core per request, and at 22,000 requests a second
/// its own queueing gave the floor a p99 of 7–29 ms.
async fn open_loop(
    targets: Arc<Vec<Target>>,
    bodies: Arc<Vec<Bytes>>,
    counters: Arc<Counters>,
    rate: u64,
    connections: usize,
    duration: Duration,
) -> Histogram<u64> {
    // Every connection is open before the clock starts.
    let mut idle = Vec::with_capacity(connections);
    for c in 0..connections {
        let target = c % targets.len();
        idle.push((target, connect(&targets[target]).await.ok()));
    }
    let idle = Arc::new(std::sync::Mutex::new(idle));
    let free = Arc::new(tokio::sync::Semaphore::new(connections));
    let latencies = Arc::new(std::sync::Mutex::new(histogram()));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let start = Instant::now();
    for issued in 0..total {
        let due = start + interval.mul_f64(issued as f64);
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            if due - now > Duration::from_millis(2) {
                tokio::time::sleep_until((due - Duration::from_millis(1)).into()).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        let Ok(permit) = free.clone().acquire_owned().await else {
            break;
        };
        let Some((target, mut sender)) = idle.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
            break;
        };
        let (targets, body, counters, idle, latencies) = (
            targets.clone(),
            bodies[issued as usize % bodies.len()].clone(),
            counters.clone(),
            idle.clone(),
            latencies.clone(),
        );
        tokio::spawn(async move {
            let (status, body) = send(&mut sender, &targets[target], body).await;
            let micros = due.elapsed().as_micros().max(1) as u64;
            let _ = latencies.lock().unwrap_or_else(|e| e.into_inner()).record(micros);
            record(&counters, status, body.as_ref());
            idle.lock().unwrap_or_else(|e| e.into_inner()).push((target, sender));
            drop(permit);
        });
    }
    // The requests still in flight.
    let _ = free.acquire_many(connections as u32).await;
    latencies.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

async fn progress(counters: Arc<Counters>, stop: Arc<AtomicBool>, started: Instant) {
    let mut last = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sent = counters.sent.load(Ordering::Relaxed);
        eprintln!(
            "[{:>4.0}s] {:>8} req/s  bids {}  no-bids {}  errors {}",
            started.elapsed().as_secs_f64(),
            sent - last,
            counters.bids.load(Ordering::Relaxed),
            counters.no_bids.load(Ordering::Relaxed),
            counters.errors.load(Ordering::Relaxed)
        );
        last = sent;
    }
}

/// Impressions per (user, campaign) in the run: against a frequency cap of
/// one per user (per hour, for a run shorter than an hour that stays in
/// one clock hour), `extra` is the overshoot.
struct Shown {
    pairs: usize,
    most: u32,
    over_one: usize,
    extra: u64,
    /// The most impressions of one pair from the bids of one node.
    most_per_node: u32,
}

impl Shown {
    fn of(counters: &Counters) -> Shown {
        let seen = counters.impressions.lock().unwrap_or_else(|p| p.into_inner());
        let mut pairs: std::collections::HashMap<(&str, &str), u32> = std::collections::HashMap::new();
        for ((user, campaign, _), n) in seen.iter() {
            *pairs.entry((user, campaign)).or_default() += n;
        }
        Shown {
            pairs: pairs.len(),
            most: pairs.values().copied().max().unwrap_or(0),
            over_one: pairs.values().filter(|&&n| n > 1).count(),
            extra: pairs.values().map(|&n| u64::from(n.saturating_sub(1))).sum(),
            most_per_node: seen.values().copied().max().unwrap_or(0),
        }
    }
}

fn report(
    args: &RunArgs,
    counters: &Counters,
    histogram: &Histogram<u64>,
    notice_histogram: &Histogram<u64>,
    elapsed: f64,
    floor_rps: Option<f64>,
) {
    let notices = counters.notices.load(Ordering::Relaxed);
    let acknowledged = counters.notices_acknowledged.load(Ordering::Relaxed);
    let notice_ms = |q: f64| notice_histogram.value_at_quantile(q) as f64 / 1000.0;
    if notices > 0 {
        println!(
            "notices: {notices} sent, {acknowledged} acknowledged = {:.0}/s; latency ms p50 {:.3} p99 {:.3} p99.9 {:.3}",
            acknowledged as f64 / elapsed,
            notice_ms(0.5),
            notice_ms(0.99),
            notice_ms(0.999)
        );
    }
    let shown = Shown::of(counters);
    if shown.pairs > 0 {
        println!(
            "impressions per user and campaign (real bids): {} pairs, most {} (from one node's bids: {}), {} pairs over one, {} impressions past the first",
            shown.pairs, shown.most, shown.most_per_node, shown.over_one, shown.extra
        );
    }
    let sent = counters.sent.load(Ordering::Relaxed);
    let bids = counters.bids.load(Ordering::Relaxed);
    let errors = counters.errors.load(Ordering::Relaxed);
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let rps = sent as f64 / elapsed;
    let bid_rate = if sent == 0 { 0.0 } else { bids as f64 / sent as f64 };
    let mode = match args.rate {
        Some(rate) => format!("open loop at {rate} req/s"),
        None => format!("closed loop, {} connections", args.connections.unwrap_or(32)),
    };
    println!(
        "{mode}: {sent} requests in {elapsed:.1} s = {rps:.0} req/s; bid rate {:.1}%; errors {errors}",
        bid_rate * 100.0
    );
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0
    );
    if let Some(floor) = floor_rps {
        println!("ratio to the floor: {:.2} ({rps:.0} / {floor:.0} req/s)", rps / floor);
    }
    if args.json {
        let summary = serde_json::json!({
            "rps": rps,
            "requests": sent,
            "p50_ms": ms(0.5),
            "p90_ms": ms(0.9),
            "p99_ms": ms(0.99),
            "p999_ms": ms(0.999),
            "max_ms": histogram.max() as f64 / 1000.0,
            "errors": errors,
            "bid_rate": bid_rate,
            "notices": notices,
            "notices_acknowledged": acknowledged,
            "notices_per_s": acknowledged as f64 / elapsed,
            "notice_p50_ms": notice_ms(0.5),
            "notice_p99_ms": notice_ms(0.99),
            "floor_rps": floor_rps,
            "user_campaign_pairs": shown.pairs,
            "impressions_most_per_pair": shown.most,
            "impressions_most_per_pair_and_node": shown.most_per_node,
            "pairs_over_one": shown.over_one,
            "impressions_past_first": shown.extra,
            "ratio": floor_rps.map(|f| rps / f),
        });
        println!("{summary}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The open loop sends every request it is asked for, at its rate, and
    /// counts each one's latency once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_open_loop_sends_each_request_once_at_its_rate() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        tokio::spawn(crate::floor::serve_on(listener, None));
        let targets = Arc::new(vec![Target {
            authority,
            path: "/openrtb2/bid".into(),
        }]);
        let bodies = Arc::new(vec![Bytes::from_static(b"{}")]);
        let counters = Arc::new(Counters::default());
        let started = Instant::now();
        let latencies = tokio::spawn(open_loop(
            targets,
            bodies,
            counters.clone(),
            2_000,
            16,
            Duration::from_millis(500),
        ))
        .await
        .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(latencies.len(), 1_000);
        assert_eq!(counters.sent.load(Ordering::Relaxed), 1_000);
        assert_eq!(counters.no_bids.load(Ordering::Relaxed), 1_000, "the floor answers 204");
        assert_eq!(counters.errors.load(Ordering::Relaxed), 0);
        assert!(
            elapsed >= Duration::from_millis(499),
            "paced, not sent at once: {elapsed:?}"
        );
    }
}
