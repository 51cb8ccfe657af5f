//! Cluster mode (issue 12): nodes sharing state through a real Redis,
//! started by the tests on an ephemeral port.

mod common;

use std::sync::Arc;

use bullseye::clock::SystemClock;
use common::*;

/// The test settings with another URL-signing key.
fn settings_with_key(signing_key: &str) -> String {
    TEST_SETTINGS.replace("test-signing-key-0123456789abcdefghijkl", signing_key)
}

/// A node joins; a node whose signing key differs from the cluster's is
/// refused; port 0 without a node id has no stable id and is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_signing_key_is_refused() {
    let redis = RedisServer::start();
    let config = write_config(TEST_SETTINGS, &large_budget(), "user-1,sports\n");
    let data = tempfile::tempdir().unwrap();
    let node = spawn_node(
        config.path(),
        data.path(),
        &redis.url(),
        "node-a",
        Arc::new(SystemClock),
    )
    .await;
    assert_eq!(
        redis.command(&["HGET", "bullseye:nodes", "node-a"]).map(|t| t.len()),
        Some(8)
    );

    let other = write_config(
        &settings_with_key("another-signing-key-0123456789abcdef0000"),
        &large_budget(),
        "user-1,sports\n",
    );
    let other_data = tempfile::tempdir().unwrap();
    let options = bullseye::server::ServeOptions {
        config_dir: other.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: other_data.path().to_path_buf(),
        segments: None,
        clock: Arc::new(SystemClock),
        watch: false,
        allow_dev_secrets: false,
        redis_url: Some(redis.url()),
        node_id: Some("node-b".into()),
        ledger_storage: None,
    };
    match bullseye::server::start(options).await {
        Err(bullseye::server::StartError::Cluster(bullseye::cluster::ClusterError::SigningKey { .. })) => {}
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a node with another signing key joined"),
    }

    let options = bullseye::server::ServeOptions {
        config_dir: config.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: other_data.path().to_path_buf(),
        segments: None,
        clock: Arc::new(SystemClock),
        watch: false,
        allow_dev_secrets: false,
        redis_url: Some(redis.url()),
        node_id: None,
        ledger_storage: None,
    };
    match bullseye::server::start(options).await {
        Err(bullseye::server::StartError::Cluster(bullseye::cluster::ClusterError::NodeId(_))) => {}
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("port 0 without a node id joined"),
    }
    node.stop().await;
}

/// A node asked to join a Redis that is not there refuses to start, with
/// the reason, rather than serving alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_redis_is_unreachable_does_not_start() {
    let config = write_config(TEST_SETTINGS, &large_budget(), "user-1,sports\n");
    let data = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = bullseye::server::ServeOptions {
        config_dir: config.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        segments: None,
        clock: Arc::new(SystemClock),
        watch: false,
        allow_dev_secrets: false,
        redis_url: Some(format!("redis://127.0.0.1:{closed}/0")),
        node_id: Some("node-a".into()),
        ledger_storage: None,
    };
    match bullseye::server::start(options).await {
        Err(bullseye::server::StartError::Cluster(
            bullseye::cluster::ClusterError::Redis(_) | bullseye::cluster::ClusterError::Unreachable { .. },
        )) => {}
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("started without its Redis"),
    }
}

/// The CSRF token in a console page.
fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf_token\" value=\"").expect("a CSRF input") + 25;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

/// The console page at `path` of `node` with a session cookie: its status.
async fn console_get(node: &TestBidder, path: &str, session: &str) -> (reqwest::StatusCode, String) {
    let response = node
        .client
        .get(node.admin_url(path))
        .header("cookie", format!("bz_session={session}"))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Signs in to `node`'s console; the session cookie's value.
async fn console_sign_in(node: &TestBidder) -> String {
    let page = node.client.get(node.admin_url("/admin/")).send().await.unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf_token", csrf.as_str()), ("token", ADMIN_TOKEN)])
        .finish();
    let response = node
        .client
        .post(node.admin_url("/admin/sign-in"))
        .header("cookie", format!("bz_sign_in={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("bz_session="))
        .expect("a session cookie");
    cookie["bz_session=".len()..cookie.find(';').unwrap()].to_string()
}

/// A console session opened on node A works on node B (a signed cookie);
/// signing out on B ends it on A too, and on a node that starts later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_sign_out_on_one_node_ends_the_session_on_every_node() {
    let redis = RedisServer::start();
    let config = write_config(TEST_SETTINGS, &large_budget(), "user-1,sports\n");
    let (data_a, data_b, data_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let clock = Arc::new(SystemClock);
    let a = spawn_node(config.path(), data_a.path(), &redis.url(), "node-a", clock.clone()).await;
    let b = spawn_node(config.path(), data_b.path(), &redis.url(), "node-b", clock.clone()).await;
    let session = console_sign_in(&a).await;
    let (status, page) = console_get(&b, "/admin/", &session).await;
    assert_eq!(status, reqwest::StatusCode::OK, "node B accepts node A's session");
    let sign_out = b
        .client
        .post(b.admin_url("/admin/sign-out"))
        .header("cookie", format!("bz_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={}", csrf_in(&page)))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_out.status(), reqwest::StatusCode::SEE_OTHER);
    let signed_out = |page: &str| page.contains("name=\"token\"");
    assert!(!signed_out(&page), "a console page, not the sign-in form");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, page) = console_get(&a, "/admin/", &session).await;
        if signed_out(&page) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "node A still accepts the session");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let c = spawn_node(config.path(), data_c.path(), &redis.url(), "node-c", clock).await;
    let (_, page) = console_get(&c, "/admin/", &session).await;
    assert!(signed_out(&page), "a node started later knows the sign-out");
    for node in [a, b, c] {
        node.stop().await;
    }
}

/// A user synced with an exchange through node A is recognised by node B:
/// the match travels as a control change. (A node started later learns
/// only the syncs that follow: matches are not kept in Redis.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_synced_through_one_node_is_recognised_by_another() {
    let redis = RedisServer::start();
    let settings = TEST_SETTINGS.replace(
        "[bidding]\n",
        "[bidding]\nuser_id_order = [\"buyeruid\", \"user_id\"]\n",
    );
    let settings =
        format!("{settings}\n[[exchange]]\nname = \"syncx\"\nsync_url = \"https://sync.example/?uid={{UID}}\"\n");
    let config = write_config(
        &settings,
        &fans_campaign("interest/sports", "", ""),
        "our-user-1,interest/sports\n",
    );
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = Arc::new(SystemClock);
    let a = spawn_node(config.path(), data_a.path(), &redis.url(), "node-a", clock.clone()).await;
    let b = spawn_node(config.path(), data_b.path(), &redis.url(), "node-b", clock).await;
    let mut request = banner_request("unused", 0.5, serde_json::json!({}));
    request["user"] = serde_json::json!({"buyeruid": "EX-42"});
    let winner_on = |node: &TestBidder| {
        let body = request.to_string();
        let node_url = node.url("/openrtb2/bid/syncx");
        let client = node.client.clone();
        async move {
            let response = client.post(node_url).body(body).send().await.unwrap();
            let status = response.status();
            let body: Option<serde_json::Value> = response.json().await.ok();
            assert!(matches!(status.as_u16(), 200 | 204), "{status}");
            winner(&body)
        }
    };
    assert_eq!(winner_on(&b).await, None, "not synced yet");
    let back = a
        .client
        .get(a.url("/sync/syncx/return?uid=EX-42"))
        .header("cookie", "bz_uid=our-user-1")
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), reqwest::StatusCode::OK);
    assert_eq!(winner_on(&a).await.as_deref(), Some("fans"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while winner_on(&b).await.is_none() {
        assert!(std::time::Instant::now() < deadline, "node B never learned the match");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    a.stop().await;
    b.stop().await;
}

/// The cluster's campaign versions are compared and set atomically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_versions_are_compared_and_set_in_the_cluster() {
    use bullseye::reload::CampaignVersions;
    let redis = RedisServer::start();
    let options = bullseye::cluster::ClusterOptions {
        redis_url: redis.url(),
        node_id: "node-a".into(),
    };
    let node = Arc::new(bullseye::cluster::Node::join(&options, b"k").await.unwrap());
    let versions = bullseye::cluster::replication::Versions::new(node);
    assert_eq!(versions.advance("c", None, "v1"), Ok(()), "unconditional");
    assert_eq!(versions.advance("c", Some("v0"), "v2"), Err("v1".to_string()), "stale");
    assert_eq!(versions.advance("c", Some("v1"), "v2"), Ok(()));
    assert_eq!(
        redis.command(&["HGET", "bullseye:control:versions", "c"]).as_deref(),
        Some("v2")
    );
}

/// A change made through node A with the current version wins; the same
/// stale version sent to node B right after is refused with 412 there
/// (before or after A's file reached B), and B ends up with A's change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_if_match_is_refused_on_every_node() {
    let redis = RedisServer::start();
    let config_a = write_config(TEST_SETTINGS, &large_budget(), "user-1,sports\n");
    let config_b = write_config(TEST_SETTINGS, &large_budget(), "user-1,sports\n");
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = Arc::new(SystemClock);
    let a = spawn_node(config_a.path(), data_a.path(), &redis.url(), "node-a", clock.clone()).await;
    let b = spawn_node(config_b.path(), data_b.path(), &redis.url(), "node-b", clock).await;
    let path = "/admin/api/campaigns/generic";
    let one: serde_json::Value = a
        .admin(reqwest::Method::GET, path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = format!("\"{}\"", one["version"].as_str().unwrap());
    let patch = |node: &TestBidder, max_bid: &str| {
        node.admin(reqwest::Method::PATCH, path)
            .header("content-type", "application/json")
            .header("if-match", version.clone())
            .body(serde_json::json!({ "max_bid": max_bid }).to_string())
            .send()
    };
    assert_eq!(patch(&a, "2.50").await.unwrap().status(), reqwest::StatusCode::OK);
    let on_b = patch(&b, "3.50").await.unwrap();
    assert_eq!(on_b.status(), reqwest::StatusCode::PRECONDITION_FAILED);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let one: serde_json::Value = b
            .admin(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if one["max_bid"] == "2.50" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "B never got A's change: {one}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    a.stop().await;
    b.stop().await;
}
