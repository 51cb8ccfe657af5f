//! Shared test helpers: a real bidder on an ephemeral port, spoken to over
//! HTTP, and throwaway config directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bullseye::clock::{Clock, ManualClock, SystemClock};
use bullseye::server::{self, Running, ServeOptions};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/corpus`, next to the repository.
pub fn corpus() -> PathBuf {
    repo_root().join("../shared/corpus")
}

pub fn corpus_files(sub: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join(sub))
        .unwrap_or_else(|e| panic!("corpus {sub}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

pub struct TestBidder {
    pub addr: std::net::SocketAddr,
    /// The admin listener: admin API, console, metrics.
    pub admin_addr: std::net::SocketAddr,
    pub running: Option<Running>,
    pub client: reqwest::Client,
    /// Keeps a temporary config/data directory alive.
    pub dirs: Vec<TempDir>,
}

impl TestBidder {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    /// An admin API request with the test admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.admin_url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// POSTs a bid request; returns the status and the JSON body, if any.
    pub async fn bid_at(&self, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Option<Value>) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("bid request sent");
        let status = response.status();
        let bytes = response.bytes().await.expect("body read");
        let json = if bytes.is_empty() {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        (status, json)
    }

    pub async fn bid(&self, body: impl Into<reqwest::Body>) -> (StatusCode, Option<Value>) {
        self.bid_at("/openrtb2/bid", body).await
    }

    pub async fn bid_json(&self, request: &Value) -> (StatusCode, Option<Value>) {
        self.bid(request.to_string()).await
    }

    pub async fn get(&self, path_or_url: &str) -> reqwest::Response {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            self.url(path_or_url)
        };
        self.client.get(url).send().await.expect("GET sent")
    }

    pub async fn metrics(&self) -> String {
        self.get(&self.admin_url("/metrics")).await.text().await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// A client that does not follow redirects (tracking tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts the real server on 127.0.0.1:0.
pub async fn spawn_bidder_with(config_dir: &Path, clock: Arc<dyn Clock>, watch: bool) -> TestBidder {
    let data = tempfile::tempdir().unwrap();
    let mut bidder = spawn_bidder_in(config_dir, data.path(), clock, watch).await;
    bidder.dirs.push(data);
    bidder
}

/// Starts the real server with a given data directory (restart tests).
pub async fn spawn_bidder_in(config_dir: &Path, data_dir: &Path, clock: Arc<dyn Clock>, watch: bool) -> TestBidder {
    spawn_bidder_on(config_dir, data_dir, clock, watch, None).await
}

/// [`spawn_bidder_in`] with its billing log over `storage` (a
/// `SimulatedDisk` to hold or fail syncs).
pub async fn spawn_bidder_on(
    config_dir: &Path,
    data_dir: &Path,
    clock: Arc<dyn Clock>,
    watch: bool,
    ledger_storage: Option<Arc<dyn bullseye::ledger::Storage>>,
) -> TestBidder {
    let options = ServeOptions {
        config_dir: config_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        segments: None,
        clock,
        watch,
        allow_dev_secrets: false,
        redis_url: None,
        node_id: None,
        ledger_storage,
    };
    let running = server::start(options)
        .await
        .unwrap_or_else(|e| panic!("bidder failed to start: {e}"));
    TestBidder {
        addr: running.addr,
        admin_addr: running.admin_addr,
        running: Some(running),
        client: client(),
        dirs: vec![],
    }
}

/// The bundled default config, system clock.
pub async fn spawn_default_bidder() -> TestBidder {
    spawn_bidder_with(&repo_root().join("bidder-config"), Arc::new(SystemClock), false).await
}

/// Test settings: one default exchange, a few FX rates, a test key.
pub const TEST_SETTINGS: &str = r#"
[bidding]
currency = "USD"
first_price_shading = "0.80"

[fx]
EUR = "1.10"

[audience]
snapshot = "audience.snapshot"

[[advertiser]]
id = "A"

[[advertiser]]
id = "Bank"

[[advertiser]]
id = "Deli"

[[advertiser]]
id = "Generic"

[[advertiser]]
id = "Insurer"

[[advertiser]]
id = "Late-Show"

[[advertiser]]
id = "Paused"

[[advertiser]]
id = "Premium"

[[advertiser]]
id = "Seasonal"

[[advertiser]]
id = "Segment"

[[advertiser]]
id = "Shoes"

[[advertiser]]
id = "Shop"

[[advertiser]]
id = "Small"

[[advertiser]]
id = "Sneakers"

[[advertiser]]
id = "Tokyo-Tea"

[[advertiser]]
id = "Travel"

[[advertiser]]
id = "X"

[[admin.token]]
name = "test-admin"
role = "admin"
sha256 = "a0e82b19c9ca9de79fbf54d62e3e09867ef0ec34d07ec82ee59044fb836a36c0"

[secrets]
signing_key = "test-signing-key-0123456789abcdefghijkl"

[traffic]
datacenter_ranges = ["198.51.100.0/24"]

[[exchange]]
name = "default"
seat = "testseat"
network_allowance_ms = 30
"#;

/// Writes a config directory: settings, one campaigns file, and an audience
/// built from CSV lines (`user,seg|seg`).
pub fn write_config(settings: &str, campaigns: &str, audience_csv: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bullseye.toml"), settings).unwrap();
    std::fs::create_dir(dir.path().join("campaigns")).unwrap();
    std::fs::write(dir.path().join("campaigns/test.toml"), campaigns).unwrap();
    write_snapshot(dir.path(), audience_csv);
    dir
}

/// Builds `audience.snapshot` in `dir` from CSV lines.
pub fn write_snapshot(dir: &Path, audience_csv: &str) {
    let csv = dir.join("audience-input.csv");
    std::fs::write(&csv, audience_csv).unwrap();
    bullseye::audience::builder::build(&[csv], &dir.join("audience.snapshot"), 0.0).unwrap();
}

/// Starts a bidder on a config written by [`write_config`], at a fixed time.
pub async fn spawn_test_bidder(campaigns: &str, audience_csv: &str, now: &str) -> (TestBidder, Arc<ManualClock>) {
    let dir = write_config(TEST_SETTINGS, campaigns, audience_csv);
    let clock = Arc::new(ManualClock::new(now.parse().unwrap()));
    let mut bidder = spawn_bidder_with(dir.path(), clock.clone(), false).await;
    bidder.dirs.push(dir);
    (bidder, clock)
}

/// A banner request for `user` (buyeruid) with extra top-level fields
/// merged in.
pub fn banner_request(user: &str, floor: f64, extra: Value) -> Value {
    let mut request = serde_json::json!({
        "id": "req-1",
        "at": 2,
        "tmax": 500,
        "imp": [{"id": "1", "bidfloor": floor, "banner": {"w": 300, "h": 250}}],
        "site": {"id": "s1", "domain": "news.example", "cat": ["IAB12"]},
        "device": {"ua": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ip": "203.0.113.7", "devicetype": 2},
        "user": {"buyeruid": user}
    });
    merge(&mut request, extra);
    request
}

/// Deep-merges `patch` into `target` (objects merge, other values replace).
pub fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

/// A sample's value in a Prometheus text exposition; fails if it is absent.
pub fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

/// The bid ids billed in a billing log's records; fails if any is billed
/// twice.
pub fn billed_once(records: &[bullseye::ledger::Record]) -> std::collections::HashSet<String> {
    let bills: Vec<&str> = records
        .iter()
        .filter(|r| r.event == bullseye::ledger::EventKind::Bill)
        .map(|r| r.bid.as_str())
        .collect();
    let unique: std::collections::HashSet<String> = bills.iter().map(|b| b.to_string()).collect();
    assert_eq!(unique.len(), bills.len(), "a bid billed twice");
    unique
}

/// The campaign id of the single bid in a response.
pub fn winner(response: &Option<Value>) -> Option<String> {
    response
        .as_ref()?
        .pointer("/seatbid/0/bid/0/cid")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// One open CPM campaign bidding 1.00 on 300×250 banners.
pub const GENERIC: &str = r#"
[[campaign]]
id = "generic"
advertiser = "Generic"
adomain = ["generic.example"]
pricing = "cpm"
max_bid = "1.00"
daily_budget = "100"
  [[campaign.creative]]
  id = "g1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.generic.example/a.png"
  landing_url = "https://generic.example/"
"#;

/// The generic campaign with a budget the test cannot spend, paced asap.
pub fn large_budget() -> String {
    GENERIC.replace(
        r#"daily_budget = "100""#,
        "daily_budget = \"1000000\"\npacing = \"asap\"",
    )
}

/// The first URL in a bid's markup containing `marker` (`/t/imp?`,
/// `/t/click?`), HTML entities undone.
pub fn url_in_adm(bid: &Value, marker: &str) -> String {
    let adm = bid["adm"].as_str().expect("bid has markup");
    let start = adm.find(marker).unwrap_or_else(|| panic!("no {marker} in {adm}"));
    let begin = adm[..start].rfind('"').unwrap() + 1;
    adm[begin..begin + adm[begin..].find('"').unwrap()].replace("&amp;", "&")
}

/// Starts the `bullseye` binary on port 0; returns the child and the address
/// it logged. The log keeps being drained so the server never blocks on it.
pub fn spawn_binary(config: &Path, data: &Path) -> (std::process::Child, String) {
    let (child, addr, _) = spawn_binary_logged(config, data, "info", |_| {});
    (child, addr)
}

/// Starts the `bullseye` binary; returns it, its address and everything it
/// logs (collected as it goes). `setup` adjusts the command (environment,
/// limits) before the spawn.
pub fn spawn_binary_logged(
    config: &Path,
    data: &Path,
    log_filter: &str,
    setup: impl FnOnce(&mut std::process::Command),
) -> (std::process::Child, String, Arc<std::sync::Mutex<String>>) {
    use std::io::BufRead;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bullseye"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", log_filter)
        .stderr(std::process::Stdio::piped());
    setup(&mut command);
    let mut child = command.spawn().unwrap();
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited early").unwrap();
        log.lock().unwrap().push_str(&line);
        log.lock().unwrap().push('\n');
        if let Some(at) = line.find("bullseye listening on ") {
            break line[at + 22..].split_whitespace().next().unwrap().to_string();
        }
    };
    let collected = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut log = collected.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    (child, addr, log)
}

/// A campaign of advertiser `Shop` (a 300×250 banner at 0.50), for tests
/// of what one advertiser may see of another's.
pub const SHOP: &str = r#"
[[campaign]]
id = "shop-spring"
advertiser = "Shop"
adomain = ["shop.example"]
pricing = "cpm"
max_bid = "0.50"
daily_budget = "100"
  [[campaign.creative]]
  id = "s1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.shop.example/a.png"
  landing_url = "https://shop.example/"
"#;

/// The token that [`admin_token_entry`] binds to advertiser `Shop` in the
/// tests that need one.
pub const SHOP_TOKEN: &str = "shop-token-0123456789abcdef0123456789";

/// An `[[admin.token]]` entry for settings: its name, role, advertiser and
/// the hash of `secret`.
pub fn admin_token_entry(name: &str, role: &str, advertiser: Option<&str>, secret: &str) -> String {
    let advertiser = advertiser
        .map(|a| format!("advertiser = \"{a}\"\n"))
        .unwrap_or_default();
    format!(
        "\n[[admin.token]]\nname = \"{name}\"\nrole = \"{role}\"\n{advertiser}sha256 = \"{}\"\n",
        bullseye::settings::access::hex(&bullseye::settings::access::token_hash(secret))
    )
}

/// The admin token of [`TEST_SETTINGS`] (an admin named `test-admin`).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghijk";

/// The admin listener's address, from a binary's log.
pub fn admin_addr_in(log: &str) -> String {
    let at = log.find("admin listening on ").expect("admin listener logged");
    log[at + 19..].split_whitespace().next().unwrap().to_string()
}

/// The postback secret the test configs give advertiser `Travel`.
pub const POSTBACK_SECRET: &str = "travel-postback-secret-0123456789abcdef";

/// `[[postback]]` for advertiser `Travel`, its secret in a file under
/// `dir` (a config directory).
pub fn postback_settings(dir: &Path) -> String {
    let file = dir.join("travel.postback");
    std::fs::write(&file, POSTBACK_SECRET).unwrap();
    format!(
        "\n[[postback]]\nadvertiser = \"Travel\"\nsecret_file = \"{}\"\n",
        file.display()
    )
}

/// `/t/conv?{query}&sig=…`: `query` signed as the README shows with
/// `openssl dgst -sha256 -hmac` (lowercase hex HMAC-SHA256).
pub fn signed_postback(secret: &str, query: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(query.as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("/t/conv?{query}&sig={hex}")
}

/// Serves the IAB schema files to the validator by their `$id` file name.
struct SchemaFiles(std::collections::HashMap<String, Value>);

impl jsonschema::Retrieve for SchemaFiles {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.as_str().rsplit('/').next().unwrap_or_default();
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| format!("no schema {name}").into())
    }
}

/// Validates BidResponses against the IAB Tech Lab's JSON Schema.
pub fn response_validator() -> jsonschema::Validator {
    let dir = repo_root().join("../shared/openrtb-schema");
    let load =
        |name: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap() };
    let files: std::collections::HashMap<String, Value> = ["Bid.json", "SeatBid.json", "BidResponse.json"]
        .iter()
        .map(|n| (n.to_string(), load(n)))
        .collect();
    let root = files["BidResponse.json"].clone();
    jsonschema::options()
        .with_retriever(SchemaFiles(files))
        .build(&root)
        .expect("schema compiles")
}

/// A CPM campaign bidding 3.50 with a budget of 0.01: each impression
/// costs 0.0035, so three bids hold the whole budget (the third goes over).
pub const SMALL: &str = r#"
[[campaign]]
id = "small"
advertiser = "Small"
adomain = ["small.example"]
pricing = "cpm"
max_bid = "3.50"
daily_budget = "0.01"
pacing = "asap"
  [[campaign.creative]]
  id = "s1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.small.example/a.png"
  landing_url = "https://small.example/"
"#;

/// The `fans` campaign: 3.00 CPM on 300×250 banners for users in
/// `segment`, with more top-level keys (`top`, whole lines) and targeting
/// keys (`targeting`, indented lines).
pub fn fans_campaign(segment: &str, top: &str, targeting: &str) -> String {
    format!(
        r#"
[[campaign]]
id = "fans"
advertiser = "Segment"
adomain = ["fans.example"]
{top}pricing = "cpm"
max_bid = "3.00"
daily_budget = "100"
  [campaign.targeting]
{targeting}  [campaign.targeting.segments]
  any = ["{segment}"]
  [[campaign.creative]]
  id = "f1"
  format = "banner"
  w = 300
  h = 250
  image_url = "https://cdn.fans.example/a.png"
  landing_url = "https://fans.example/"
"#
    )
}

/// A real `redis-server` on an ephemeral port, for cluster tests; killed
/// when dropped. Panics (the test fails, it does not skip) when
/// `redis-server` is not installed: `.ci/run` installs it.
pub struct RedisServer {
    pub port: u16,
    child: std::process::Child,
    pub dir: TempDir,
}

impl RedisServer {
    /// Starts `redis-server` with no persistence on a free port and waits
    /// until it answers PING.
    pub fn start() -> RedisServer {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// Starts `redis-server` with extra arguments (e.g. AOF settings).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..20 {
            // Redis takes no "port 0": pick a free port, release it, start.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
                .arg(dir.path())
                .args(extra)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("redis-server could not start ({e}): install it (apt-get install redis-server)")
                });
            if redis_ready(port, &mut child) {
                return RedisServer { port, child, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start on any free port");
    }

    /// `redis://127.0.0.1:{port}/0`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's process id (to SIGSTOP/SIGCONT it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs one command over RESP; its reply as text (simple string, bulk
    /// string or integer), `None` on error or no connection.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        redis_command(self.port, args)
    }
}

/// True once the server on `port` answers PING (false if it exits first).
fn redis_ready(port: u16, child: &mut std::process::Child) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if redis_command(port, &["PING"]).as_deref() == Some("PONG") {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// One command to the Redis on `port`; its reply as text.
pub fn redis_command(port: u16, args: &[&str]) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).ok()?;
    let mut conn = client
        .get_connection_with_timeout(std::time::Duration::from_secs(2))
        .ok()?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let value: redis::Value = cmd.query(&mut conn).ok()?;
    match value {
        redis::Value::SimpleString(s) => Some(s),
        redis::Value::BulkString(b) => String::from_utf8(b).ok(),
        redis::Value::Int(i) => Some(i.to_string()),
        redis::Value::Okay => Some("OK".into()),
        redis::Value::Nil => None,
        other => Some(format!("{other:?}")),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an in-process node of a cluster: the real server on ephemeral
/// ports, joined to `redis_url` as `node_id`.
pub async fn spawn_node(
    config_dir: &Path,
    data_dir: &Path,
    redis_url: &str,
    node_id: &str,
    clock: Arc<dyn Clock>,
) -> TestBidder {
    let options = ServeOptions {
        config_dir: config_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        segments: None,
        clock,
        watch: true,
        allow_dev_secrets: false,
        redis_url: Some(redis_url.to_string()),
        node_id: Some(node_id.to_string()),
        ledger_storage: None,
    };
    let running = server::start(options)
        .await
        .unwrap_or_else(|e| panic!("node {node_id} failed to start: {e}"));
    TestBidder {
        addr: running.addr,
        admin_addr: running.admin_addr,
        running: Some(running),
        client: client(),
        dirs: vec![],
    }
}

impl RedisServer {
    /// Kills the server and starts an empty one on the same port: a Redis
    /// restarted without persistence (clients reconnect to the same URL).
    pub fn restart_empty(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for _ in 0..50 {
            let mut child = std::process::Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--dir"])
                .arg(self.dir.path())
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("redis-server restarts");
            if redis_ready(self.port, &mut child) {
                self.child = child;
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// Commands Redis ran since its start (or `CONFIG RESETSTAT`), from
    /// `INFO commandstats` (commands inside scripts included), and the
    /// calls per command.
    pub fn commands(&self) -> (u64, Vec<(String, u64)>) {
        let info = self.command(&["INFO", "commandstats"]).unwrap_or_default();
        let mut each = Vec::new();
        for line in info.lines() {
            let Some(rest) = line.strip_prefix("cmdstat_") else {
                continue;
            };
            let Some((name, stats)) = rest.split_once(':') else {
                continue;
            };
            let calls = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            each.push((name.to_string(), calls));
        }
        (each.iter().map(|(_, n)| n).sum(), each)
    }
}
