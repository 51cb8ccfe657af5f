//! Cluster mode (issue 12), replication between nodes: three in-process
//! nodes, each with its own copy of the config directory (so that a file
//! written by one reaches the others only through Redis), and a real
//! redis-server on an ephemeral port. Changes are polled for with a
//! generous deadline; the delays seen are printed (`--nocapture`) for
//! docs/cluster.md.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bullseye::clock::SystemClock;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

const DEADLINE: Duration = Duration::from_secs(10);

/// The generic campaign capped at one impression per user per hour.
fn capped() -> String {
    large_budget().replace(
        "  [[campaign.creative]]",
        "  [campaign.targeting.frequency]\n  per_hour = 1\n  [[campaign.creative]]",
    )
}

/// Three nodes over one Redis, each with its own config and data
/// directories.
struct Cluster {
    redis: RedisServer,
    nodes: Vec<TestBidder>,
    _dirs: Vec<TempDir>,
}

impl Cluster {
    async fn start(campaigns: &str) -> Cluster {
        Cluster::start_with(TEST_SETTINGS, campaigns).await
    }

    async fn start_with(settings: &str, campaigns: &str) -> Cluster {
        let redis = RedisServer::start();
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for name in ["node-a", "node-b", "node-c"] {
            let config = write_config(settings, campaigns, "user-1,sports\n");
            let data = tempfile::tempdir().unwrap();
            let node = spawn_node(config.path(), data.path(), &redis.url(), name, Arc::new(SystemClock)).await;
            nodes.push(node);
            dirs.push(config);
            dirs.push(data);
        }
        Cluster {
            redis,
            nodes,
            _dirs: dirs,
        }
    }

    async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
    }
}

/// Polls `check` until it holds or [`DEADLINE`] passes; the time it took.
async fn within_deadline<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// The path and query of a tracking URL (from `/t/`), to send to any node.
fn tracking_path(url: &str) -> String {
    url[url.find("/t/").expect("a tracking URL")..].to_string()
}

/// The single bid of a response.
fn the_bid(response: &Option<Value>) -> Value {
    response.as_ref().expect("a bid")["seatbid"][0]["bid"][0].clone()
}

/// What explain says of `campaign` on `node` for a request of `user`:
/// its reason not to bid, `None` when it would bid.
async fn verdict(node: &TestBidder, user: &str, campaign: &str) -> Option<String> {
    let response = node
        .admin(Method::POST, "/admin/api/explain")
        .header("content-type", "application/json")
        .body(banner_request(user, 0.0, json!({})).to_string())
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let campaigns = body["imp"][0]["campaigns"].as_array().cloned().unwrap_or_default();
    let found = campaigns.iter().find(|c| c["id"] == campaign);
    let Some(found) = found else {
        return Some("not in the index".into());
    };
    found["reason"].as_str().map(str::to_string)
}

/// A campaign's `live.today` figures on a node.
async fn today(node: &TestBidder, campaign: &str) -> Value {
    let response = node
        .admin(Method::GET, &format!("/admin/api/campaigns/{campaign}"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["live"]["today"].clone()
}

/// A campaign paused through node A stops bidding on B and C; its file
/// reaches their config directories; bid ids carry the origin node's tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_paused_on_one_node_stops_bidding_on_the_others() {
    let cluster = Cluster::start(&large_budget()).await;
    let [a, b, c] = &cluster.nodes[..] else { unreachable!() };
    for node in [a, b, c] {
        let (_, response) = node.bid_json(&banner_request("user-1", 0.0, json!({}))).await;
        assert_eq!(winner(&response).as_deref(), Some("generic"));
    }
    let (_, response) = a.bid_json(&banner_request("user-1", 0.0, json!({}))).await;
    let bid_id = the_bid(&response)["id"].as_str().unwrap().to_string();
    let tag = cluster.redis.command(&["HGET", "bullseye:nodes", "node-a"]).unwrap();
    assert_eq!(bid_id.len(), 24, "{bid_id}");
    assert!(bid_id.starts_with(&tag), "{bid_id} carries node-a's tag {tag}");

    let changed = Instant::now();
    let response = a
        .admin(Method::PATCH, "/admin/api/campaigns/generic")
        .header("content-type", "application/json")
        .body(json!({"status": "paused"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, response) = a.bid_json(&banner_request("user-1", 0.0, json!({}))).await;
    assert_eq!(winner(&response), None, "paused at once where changed");
    for (name, node) in [("B", b), ("C", c)] {
        within_deadline(&format!("paused on {name}"), || async {
            let (_, response) = node.bid_json(&banner_request("user-1", 0.0, json!({}))).await;
            winner(&response).is_none()
        })
        .await;
        eprintln!(
            "propagation delay A → {name}: campaign paused after {} ms",
            changed.elapsed().as_millis()
        );
    }
    // The file is B's own now: its campaign reads paused from its config
    // directory, and its audit log has no entry (the change was A's).
    let response = b
        .admin(Method::GET, "/admin/api/campaigns/generic")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "paused", "{body}");
    let metrics = b.metrics().await;
    assert!(metric(&metrics, "bullseye_replication_control_applied_total") >= 1.0);
    assert_eq!(metric(&metrics, "bullseye_replication_backlog"), 0.0);
    assert!(metric(&a.metrics().await, "bullseye_replication_control_published_total") >= 1.0);
    let files = cluster.redis.command(&["HLEN", "bullseye:control:files"]);
    assert_eq!(files.as_deref(), Some("1"));
    cluster.stop().await;
}

/// A node started after the change catches up from Redis before it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_joining_later_catches_up_with_campaign_changes() {
    let redis = RedisServer::start();
    let config = write_config(TEST_SETTINGS, &large_budget(), "user-1,sports\n");
    let data = tempfile::tempdir().unwrap();
    let a = spawn_node(
        config.path(),
        data.path(),
        &redis.url(),
        "node-a",
        Arc::new(SystemClock),
    )
    .await;
    let response = a
        .admin(Method::PATCH, "/admin/api/campaigns/generic")
        .header("content-type", "application/json")
        .body(json!({"status": "paused"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    within_deadline("published", || async {
        redis.command(&["HLEN", "bullseye:control:files"]).as_deref() == Some("1")
    })
    .await;
    // B's config directory is stale: the campaign still runs there.
    let stale = write_config(TEST_SETTINGS, &large_budget(), "user-1,sports\n");
    let b_data = tempfile::tempdir().unwrap();
    let b = spawn_node(
        stale.path(),
        b_data.path(),
        &redis.url(),
        "node-b",
        Arc::new(SystemClock),
    )
    .await;
    let (_, response) = b.bid_json(&banner_request("user-1", 0.0, json!({}))).await;
    assert_eq!(winner(&response), None, "caught up before serving");
    let text = std::fs::read_to_string(stale.path().join("campaigns/test.toml")).unwrap();
    assert!(text.contains(r#"status = "paused""#), "{text}");
    a.stop().await;
    b.stop().await;
}

/// `n` bid requests for `user` at once, spread over `nodes`: the bids
/// made, with the index of the node that made each.
async fn bids_at_once(nodes: &[TestBidder], user: &str, n: usize) -> Vec<(usize, Value)> {
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..n {
        let node = i % nodes.len();
        let (client, url) = (nodes[node].client.clone(), nodes[node].url("/openrtb2/bid"));
        let body = banner_request(user, 0.0, json!({})).to_string();
        requests.spawn(async move {
            let response = client.post(url).body(body).send().await.unwrap();
            let bytes = response.bytes().await.unwrap();
            (node, serde_json::from_slice::<Value>(&bytes).ok())
        });
    }
    let answers = requests.join_all().await;
    answers
        .into_iter()
        .filter(|(_, response)| winner(response).is_some())
        .map(|(node, response)| (node, the_bid(&response)))
        .collect()
}

/// A frequency cap of 1 per user per hour across three nodes: a node
/// holds a pending impression per bid, so it never bids twice for a user
/// before the pixel (at most one bid per node: the stated bound of one
/// extra impression per node and window); once an impression is
/// replicated, no node bids for the user again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frequency_cap_holds_across_nodes_within_one_per_node() {
    let cluster = Cluster::start(&capped()).await;
    let nodes = &cluster.nodes;
    // 48 requests for one user at once, spread over the nodes.
    let bids = bids_at_once(nodes, "user-1", 48).await;
    let mut bids_per_node = [0; 3];
    for (node, _) in &bids {
        bids_per_node[*node] += 1;
    }
    assert!(
        bids_per_node.iter().all(|&n| n <= 1),
        "each node bids at most once before the pixel: {bids_per_node:?}"
    );
    assert!(!bids.is_empty());
    // Each bid's pixel fires at the next node (a load balancer's spread).
    for (node, bid) in &bids {
        let pixel = tracking_path(&url_in_adm(bid, "/t/imp?"));
        let status = nodes[(node + 1) % 3].get(&pixel).await.status();
        assert_eq!(status, 200);
    }
    for (i, node) in nodes.iter().enumerate() {
        within_deadline(&format!("capped on node {i}"), || async {
            verdict(node, "user-1", "generic").await.as_deref() == Some("frequency")
        })
        .await;
    }
    // A user seen on one node only is capped on the others too.
    let (_, response) = nodes[0].bid_json(&banner_request("user-2", 0.0, json!({}))).await;
    let bid = the_bid(&response);
    let pixel = tracking_path(&url_in_adm(&bid, "/t/imp?"));
    assert_eq!(nodes[0].get(&pixel).await.status(), 200);
    let shown = Instant::now();
    for i in [1, 2] {
        within_deadline(&format!("user-2 capped on node {i}"), || async {
            verdict(&nodes[i], "user-2", "generic").await.as_deref() == Some("frequency")
        })
        .await;
        eprintln!(
            "event delay: impression on A → frequency on node {i} after {} ms",
            shown.elapsed().as_millis()
        );
    }
    let mut more = 0;
    for node in nodes {
        for user in ["user-1", "user-2"] {
            let (_, response) = node.bid_json(&banner_request(user, 0.0, json!({}))).await;
            more += usize::from(winner(&response).is_some());
        }
    }
    assert_eq!(more, 0, "no node bids again within the hour");
    cluster.stop().await;
}

/// A suppression made through node A stops bids for that user on B and
/// C; lifting it on A lets them bid again; audience events posted to C
/// reach A's overlay; an erasure on B reaches A.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suppressions_and_erasures_reach_every_node() {
    let cluster = Cluster::start(&large_budget()).await;
    let [a, b, c] = &cluster.nodes[..] else { unreachable!() };
    let suppression = "/admin/api/advertisers/Generic/suppressions/user-9";
    let response = a.admin(Method::PUT, suppression).send().await.unwrap();
    assert_eq!(response.status(), 200);
    for (name, node) in [("B", b), ("C", c)] {
        within_deadline(&format!("suppressed on {name}"), || async {
            let (_, response) = node.bid_json(&banner_request("user-9", 0.0, json!({}))).await;
            winner(&response).is_none()
        })
        .await;
    }
    let response = b.admin(Method::GET, suppression).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["suppressed"], true, "{body}");
    let response = a.admin(Method::DELETE, suppression).send().await.unwrap();
    assert_eq!(response.status(), 200);
    within_deadline("lifted on C", || async {
        let (_, response) = c.bid_json(&banner_request("user-9", 0.0, json!({}))).await;
        winner(&response).is_some()
    })
    .await;
    // Audience overlay events posted to C reach A.
    let events = r#"{"user_id": "user-7", "segment": "Offer/Loan", "op": "add", "ttl_seconds": 600}"#;
    let response = c
        .admin(Method::POST, "/admin/api/audience/events")
        .header("content-type", "application/x-ndjson")
        .body(events)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    within_deadline("overlay change on A", || async {
        let response = a
            .admin(Method::GET, "/admin/api/audience/users/user-7")
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["overlay"]["added"][0]["segment"] == "offer/loan"
    })
    .await;
    let response = b
        .admin(Method::DELETE, "/admin/api/audience/users/user-8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    within_deadline("erased on A", || async {
        let (_, response) = a.bid_json(&banner_request("user-8", 0.0, json!({}))).await;
        winner(&response).is_none()
    })
    .await;
    cluster.stop().await;
}

/// A bid made by node A and billed at node B: B records the charge, A
/// gives the bid's reservation back when the replicated event reaches it
/// (so its budget is not held twice), and B holds nothing for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bid_billed_at_another_node_releases_its_reservation_at_the_origin() {
    let cluster = Cluster::start(&large_budget()).await;
    let [a, b, _] = &cluster.nodes[..] else { unreachable!() };
    let (_, response) = a.bid_json(&banner_request("user-1", 0.0, json!({}))).await;
    let bid = the_bid(&response);
    let outstanding = today(a, "generic").await["outstanding"].as_str().unwrap().to_string();
    assert_ne!(outstanding, "0", "A holds the bid's cost");
    let burl = tracking_path(bid["burl"].as_str().unwrap()).replace("${AUCTION_PRICE}", "0.50");
    let status = b.get(&burl).await.status();
    assert_eq!(status, 204);
    let billed = Instant::now();
    within_deadline("A's reservation released", || async {
        today(a, "generic").await["outstanding"] == "0"
    })
    .await;
    eprintln!(
        "event delay: bill on B → reservation released on A after {} ms",
        billed.elapsed().as_millis()
    );
    let at_b = today(b, "generic").await;
    assert_eq!(at_b["outstanding"], "0", "B held nothing: {at_b}");
    assert!(at_b["spend_micros"].as_i64().unwrap() > 0, "B spent the charge: {at_b}");
    let at_a = today(a, "generic").await;
    assert_eq!(at_a["spend_micros"], 0, "A's spend is its own: {at_a}");
    cluster.stop().await;
}

/// Redis paused (SIGSTOP) for a while: bids go on, a change made meanwhile
/// is kept in the node's outbox and reaches the others once Redis answers
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_made_while_redis_is_paused_arrives_when_it_resumes() {
    let cluster = Cluster::start(&large_budget()).await;
    let [a, b, _] = &cluster.nodes[..] else { unreachable!() };
    let pid = cluster.redis.pid().to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    let response = a
        .admin(Method::PATCH, "/admin/api/campaigns/generic")
        .header("content-type", "application/json")
        .body(json!({"status": "paused"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "changes do not wait for Redis");
    let (_, response) = b.bid_json(&banner_request("user-1", 0.0, json!({}))).await;
    assert_eq!(winner(&response).as_deref(), Some("generic"), "B bids on, not told yet");
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal("-CONT");
    let resumed = Instant::now();
    within_deadline("paused on B once Redis is back", || async {
        let (_, response) = b.bid_json(&banner_request("user-1", 0.0, json!({}))).await;
        winner(&response).is_none()
    })
    .await;
    eprintln!("propagation after Redis resumed: {} ms", resumed.elapsed().as_millis());
    cluster.stop().await;
}

/// A loss notice for node A's bid arriving at node B: A gives the bid's
/// reservation and its held impression back (a capped user may be bid on
/// again), B holds nothing and gives nothing back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_loss_notice_at_another_node_releases_the_hold_at_the_origin() {
    let settings = format!("{TEST_SETTINGS}\n[[exchange]]\nname = \"lossy\"\nsends_lurl = true\n");
    let cluster = Cluster::start_with(&settings, &capped()).await;
    let [a, b, _] = &cluster.nodes[..] else { unreachable!() };
    let request = banner_request("user-3", 0.0, json!({})).to_string();
    let (_, response) = a.bid_at("/openrtb2/bid/lossy", request.clone()).await;
    let bid = the_bid(&response);
    let (_, again) = a.bid_at("/openrtb2/bid/lossy", request.clone()).await;
    assert_eq!(winner(&again), None, "the first bid holds the user's one impression");
    let lurl = tracking_path(bid["lurl"].as_str().unwrap())
        .replace("${AUCTION_LOSS}", "102")
        .replace("${AUCTION_MIN_TO_WIN}", "");
    assert_eq!(b.get(&lurl).await.status(), 204);
    within_deadline("A's hold given back", || async {
        today(a, "generic").await["outstanding"] == "0"
    })
    .await;
    let (_, again) = a.bid_at("/openrtb2/bid/lossy", request).await;
    assert_eq!(
        winner(&again).as_deref(),
        Some("generic"),
        "the lost bid's hold is given back"
    );
    assert_eq!(today(b, "generic").await["outstanding"], "0");
    cluster.stop().await;
}
