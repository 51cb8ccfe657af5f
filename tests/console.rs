//! The web console in a real browser: headless Chromium driven through
//! chromedriver (WebDriver), against the real server on ephemeral ports.
//!
//! Sign in; create a campaign through the new-campaign form (with its
//! preview); see it bid on a corpus request; change its daily budget
//! through the edit form and see the change in the API; send billing
//! notices and see a chart with non-zero data points; visit every page;
//! no JavaScript error or CSP violation in the browser's log; a form
//! without its CSRF token is refused and changes nothing; sign out; a
//! wrong token is refused. Screenshots of each page go to
//! `target/console-screenshots/`.
//!
//! This test FAILS (never skips) without `chromium` and `chromedriver`
//! (Debian: `apt-get install chromium chromium-driver`; `.ci/run` installs
//! them). `CHROMEDRIVER` and `CHROMIUM` override their paths.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, in one function"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bullseye::clock::SystemClock;
use common::*;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A 1×1 PNG, so the preview needs no network.
const PIXEL_PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn executable(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found at {}: the console's browser test needs Chromium and chromedriver \
         (apt-get install chromium chromium-driver, or set {variable})",
        default,
        path.display()
    );
    path
}

/// chromedriver on an ephemeral port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let binary = executable("CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok() {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not come up on port {port}");
}

async fn connect(driver: &Driver, profile: &Path) -> Client {
    let chromium = executable("CHROMIUM", "/usr/bin/chromium");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:loggingPrefs": {"browser": "ALL"},
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1366,900", "--hide-scrollbars", "--lang=en-US",
                     format!("--user-data-dir={}", profile.display())],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with headless Chromium")
}

/// chromedriver's browser log (`goog:loggingPrefs`), drained.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type": "browser"}"#.into()))
    }
}

async fn browser_log(client: &Client) -> Vec<String> {
    let entries = client.issue_cmd(BrowserLog).await.expect("browser log");
    entries
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["level"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn screenshots() -> PathBuf {
    let dir = repo_root().join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Types into a field, replacing what it held.
async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Clicks a submit button and waits until the browser has left the page
/// (its old document gone), so that what is looked for next is looked for
/// on the page the form led to, not found early on the one it came from.
async fn click(client: &Client, css: &str) {
    let old_page = client.find(Locator::Css("html")).await.unwrap();
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
    for _ in 0..200 {
        if old_page.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} did not leave the page");
}

async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

async fn page_text(client: &Client) -> String {
    client.find(Locator::Css("body")).await.unwrap().text().await.unwrap()
}

async fn sign_in(client: &Client, bidder: &TestBidder, token: &str) {
    client.goto(&bidder.admin_url("/admin/")).await.unwrap();
    fill(client, "input[name=token]", token).await;
    click(client, "form[action='/admin/sign-in'] button[type=submit]").await;
}

/// The campaign as the API shows it.
async fn api_campaign(bidder: &TestBidder, id: &str) -> Value {
    let response = bidder
        .admin(reqwest::Method::GET, &format!("/admin/api/campaigns/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Sends the corpus banner request; returns the bids' billing URLs.
async fn bid_and_collect_burls(bidder: &TestBidder, id: &str, n: usize) -> Vec<String> {
    let request = std::fs::read_to_string(corpus().join("requests/iab/simple-banner.json")).unwrap();
    let mut burls = Vec::new();
    for i in 0..n {
        let mut body: Value = serde_json::from_str(&request).unwrap();
        body["id"] = json!(format!("console-{i}"));
        let (status, response) = bidder.bid_json(&body).await;
        assert_eq!(status, 200, "the new campaign bids");
        assert_eq!(winner(&response).as_deref(), Some(id), "{response:?}");
        let bid = &response.unwrap()["seatbid"][0]["bid"][0];
        burls.push(bid["burl"].as_str().expect("burl").to_string());
    }
    burls
}

fn severe(log: &[String]) -> Vec<&String> {
    log.iter()
        .filter(|l| l.starts_with("SEVERE") || l.contains("Content Security Policy"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let driver = start_driver().await;
    let dir = write_config(TEST_SETTINGS, GENERIC, "u1,interest/sports\n");
    let mut bidder = spawn_bidder_with(dir.path(), Arc::new(SystemClock), false).await;
    bidder.dirs.push(dir);
    let profile = tempfile::tempdir().unwrap();
    let client = connect(&driver, profile.path()).await;

    // Sign in.
    client.goto(&bidder.admin_url("/admin/")).await.unwrap();
    wait_for(&client, "input[name=token]").await;
    screenshot(&client, "sign-in").await;
    sign_in(&client, &bidder, ADMIN_TOKEN).await;
    wait_for(&client, "tr[data-campaign='generic']").await;

    // Create a campaign through the form, previewing its creative first.
    client.goto(&bidder.admin_url("/admin/new")).await.unwrap();
    fill(&client, "input[name=id]", "console-spring").await;
    client
        .find(Locator::Css("select[name=advertiser]"))
        .await
        .unwrap()
        .select_by_value("Generic")
        .await
        .unwrap();
    fill(&client, "input[name=max_bid]", "5.00").await;
    fill(&client, "input[name=daily_budget]", "500").await;
    client
        .find(Locator::Css("select[name=pacing]"))
        .await
        .unwrap()
        .select_by_value("asap")
        .await
        .unwrap();
    fill(&client, "input[name=adomain]", "generic.example").await;
    fill(&client, "input[name=image_url]", PIXEL_PNG).await;
    fill(&client, "input[name=landing_url]", "https://generic.example/spring").await;
    click(&client, "button[value=preview]").await;
    let preview = wait_for(&client, "iframe[sandbox][srcdoc]").await;
    assert!(preview.attr("srcdoc").await.unwrap().unwrap().contains("<img"));
    screenshot(&client, "new-campaign").await;
    click(&client, "button[value=create]").await;
    wait_for(&client, "form.edit input[name=daily_budget]").await;
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/campaigns/console-spring")
    );
    assert_eq!(api_campaign(&bidder, "console-spring").await["max_bid"], "5.00");

    // It bids on a corpus request.
    let burls = bid_and_collect_burls(&bidder, "console-spring", 3).await;

    // Change its daily budget through the edit form; the API shows it.
    fill(&client, "form.edit input[name=daily_budget]", "750").await;
    assert!(
        client
            .find(Locator::Css("form.edit input[type=hidden][name*=csrf]"))
            .await
            .is_ok()
    );
    click(&client, "form.edit button[type=submit]").await;
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//p[contains(@class, 'notice') and contains(., 'Saved')]",
        ))
        .await
        .expect("the change is saved");
    assert_eq!(api_campaign(&bidder, "console-spring").await["daily_budget"], "750");

    // Billing notices; the charts show spend.
    for burl in &burls {
        let response = bidder.get(&burl.replace("${AUCTION_PRICE}", "2.50")).await;
        assert!(response.status().is_success(), "{burl}: {}", response.status());
    }
    client
        .goto(&bidder.admin_url("/admin/campaigns/console-spring"))
        .await
        .unwrap();
    let points = client
        .find_all(Locator::Css("svg[data-chart='spend-hourly'] [data-value]"))
        .await
        .unwrap();
    let mut spent = 0.0;
    for point in &points {
        spent += point.attr("data-value").await.unwrap().unwrap().parse::<f64>().unwrap();
    }
    assert!(spent > 0.0, "the hourly spend chart has a non-zero point");
    assert!(
        !client
            .find_all(Locator::Css("svg[data-chart='pacing'] [data-value]"))
            .await
            .unwrap()
            .is_empty()
    );
    screenshot(&client, "campaign").await;

    // The campaigns page: the row shows today's spend; its first link opens the campaign.
    client.goto(&bidder.admin_url("/admin/")).await.unwrap();
    let row = wait_for(&client, "tr[data-campaign='console-spring']").await;
    assert!(
        row.text().await.unwrap().contains("$0.0075"),
        "{}",
        row.text().await.unwrap()
    );
    screenshot(&client, "campaigns").await;
    row.find(Locator::Css("a")).await.unwrap().click().await.unwrap();
    wait_for(&client, "svg[data-chart='spend-daily']").await;

    // Every other page renders.
    for (path, name, css) in [
        ("/admin/reports", "reports", "table.report"),
        ("/admin/audience", "audience", "ul.taxonomy"),
        ("/admin/audit", "audit", "table.audit"),
        ("/admin/explain", "explain", "textarea[name=request]"),
    ] {
        client.goto(&bidder.admin_url(path)).await.unwrap();
        wait_for(&client, css).await;
        screenshot(&client, name).await;
    }
    let request = std::fs::read_to_string(corpus().join("requests/iab/simple-banner.json")).unwrap();
    fill(&client, "textarea[name=request]", &request).await;
    click(&client, "form.edit button[type=submit]").await;
    wait_for(&client, "p.notice, p.error, table.verdicts").await;
    client.goto(&bidder.admin_url("/admin/audit")).await.unwrap();
    let audit = page_text(&client).await;
    assert!(audit.contains("campaign.create") && audit.contains("campaign.patch") && audit.contains("console.sign_in"));

    let log = browser_log(&client).await;
    assert!(severe(&log).is_empty(), "browser log: {log:#?}");

    // A form without its CSRF token is refused and changes nothing.
    client
        .goto(&bidder.admin_url("/admin/campaigns/console-spring"))
        .await
        .unwrap();
    fill(&client, "form.edit input[name=daily_budget]", "999").await;
    client
        .execute(
            "document.querySelector('form.edit input[name=csrf_token]').remove()",
            vec![],
        )
        .await
        .unwrap();
    click(&client, "form.edit button[type=submit]").await;
    assert!(page_text(&client).await.contains("CSRF"));
    assert_eq!(api_campaign(&bidder, "console-spring").await["daily_budget"], "750");

    // Sign out: /admin/ shows the sign-in form again.
    client.goto(&bidder.admin_url("/admin/")).await.unwrap();
    click(&client, "form.sign-out button[type=submit]").await;
    wait_for(&client, "input[name=token]").await;
    client.goto(&bidder.admin_url("/admin/")).await.unwrap();
    wait_for(&client, "input[name=token]").await;

    // A wrong token is refused.
    sign_in(&client, &bidder, "not-the-token-0123456789abcdefghijklmn").await;
    wait_for(&client, "p.error").await;
    assert!(client.find(Locator::Css("input[name=token]")).await.is_ok());
    client.goto(&bidder.admin_url("/admin/")).await.unwrap();
    wait_for(&client, "input[name=token]").await;

    // The refusals (403, 401) are logged by the browser as failed loads;
    // nothing else may be: no script error, no CSP violation.
    let log = browser_log(&client).await;
    let unexpected: Vec<&String> = severe(&log)
        .into_iter()
        .filter(|l| !l.contains("the server responded with a status of 40"))
        .collect();
    assert!(unexpected.is_empty(), "browser log: {log:#?}");

    client.close().await.unwrap();
    bidder.stop().await;
}
