//! The `bullseye` binary: check-config, segments build, serve and shutdown.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn bullseye() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bullseye"))
}

#[test]
fn check_config_accepts_the_bundled_config() {
    let output = bullseye()
        .args(["check-config", "--config"])
        .arg(repo_root().join("bidder-config"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for line in [
        "  campaigns: 8 (8 active, 0 paused, 0 archived)",
        "  advertisers: 8",
        "  admin tokens: 1",
        "  warning: an admin token is the development one",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} missing:\n{stdout}");
    }
}

/// Issue 11: `bullseye admin token` mints a token whose printed hash is its
/// SHA-256, in an `[[admin.token]]` entry that the config accepts.
#[test]
fn admin_token_mints_a_token_and_its_config_entry() {
    let output = bullseye()
        .args([
            "admin",
            "token",
            "--name",
            "acme ops",
            "--role",
            "advertiser",
            "--advertiser",
            "acme-outdoor",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.lines().find_map(|l| l.strip_prefix("token: ")).unwrap();
    let hash = bullseye::settings::access::hex(&bullseye::settings::access::token_hash(token));
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    let entry = stdout.split_once("[[admin.token]]").unwrap().1;
    assert_eq!(
        entry.trim(),
        format!("name = \"acme ops\"\nrole = \"advertiser\"\nadvertiser = \"acme-outdoor\"\nsha256 = \"{hash}\"")
    );
    let refused = bullseye()
        .args(["admin", "token", "--name", "x", "--role", "advertiser"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

#[test]
fn check_config_reports_one_line_per_problem() {
    let campaigns = r#"
[[campaign]]
id = "bad"
advertiser = "X"
pricing = "cpc"
max_bid = "1.5.0"
daily_budget = "-3"
time_zone = "Mars/Olympus"
  [campaign.targeting]
  countries = ["FRANCE"]
  [[campaign.creative]]
  id = "c"
  format = "banner"
  image_url = "https://x/a.png"
  landing_url = "ftp://x"
"#;
    let dir = write_config(TEST_SETTINGS, campaigns, "u,a\n");
    let output = bullseye()
        .args(["check-config", "--config"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    for field in [
        "max_bid",
        "daily_budget",
        "pctr_prior",
        "time_zone",
        "targeting.countries",
        "creative[0].w",
        "creative[0].landing_url",
    ] {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!(": {field}: ")))
            .unwrap_or_else(|| panic!("no line for {field}:\n{stdout}"));
        assert!(line.contains("campaigns/test.toml: campaign bad: "), "{line}");
    }
    assert_eq!(lines.len(), 7, "{stdout}");

    std::fs::write(
        dir.path().join("campaigns/test.toml"),
        "[[campaign]]\nid = 1\nsurprise = true\n",
    )
    .unwrap();
    let output = bullseye()
        .args(["check-config", "--config"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("test.toml: line 2"), "{stdout}");
}

#[test]
fn segments_build_reports_and_rejects_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(
        &csv,
        "user_id,segments\nu1,interest/finance|rfm/gold\nbroken line\nu2,a/b/c/d/e\nu3,interest/sports\n",
    )
    .unwrap();
    let jsonl = dir.path().join("more.jsonl");
    std::fs::write(&jsonl, "{\"user_id\":\"u1\",\"segments\":[\"crm/list-a\"]}\n").unwrap();
    let output_path = dir.path().join("out.snapshot");
    let strict = bullseye()
        .args(["segments", "build"])
        .arg(&csv)
        .arg("--output")
        .arg(&output_path)
        .output()
        .unwrap();
    assert!(!strict.status.success());
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(stderr.contains("in.csv:3"), "{stderr}");
    assert!(!output_path.exists());

    let lenient = bullseye()
        .args(["segments", "build"])
        .arg(&csv)
        .arg(&jsonl)
        .args(["--max-bad-fraction", "0.5", "--output"])
        .arg(&output_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&lenient.stdout);
    assert!(lenient.status.success(), "{stdout}");
    assert!(
        stdout.contains("rejected") && stdout.contains("in.csv:3") && stdout.contains("in.csv:4"),
        "{stdout}"
    );
    assert_eq!(snapshot_users(&stdout), Some(2), "{stdout}");
    let snapshot = bullseye::audience::Snapshot::open(&output_path).unwrap();
    let u1 = snapshot.lookup(bullseye::audience::user_key("u1")).unwrap();
    let paths: Vec<&str> = u1.indexes().map(|i| snapshot.segment_path(i)).collect();
    assert_eq!(paths, ["crm/list-a", "interest/finance", "rfm/gold"]);
}

#[test]
fn serve_rejects_an_invalid_config_with_a_clear_message() {
    let dir = write_config(TEST_SETTINGS, "[[campaign]]\nid = \"x\"\n", "u,a\n");
    let output = bullseye()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid configuration") && stderr.contains("test.toml"),
        "{stderr}"
    );
}

#[test]
fn serve_logs_its_address_and_exits_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_binary(&repo_root().join("bidder-config"), data.path());
    let health = std::net::TcpStream::connect(&addr).map(|mut s| {
        use std::io::{Read, Write};
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    });
    assert!(health.unwrap().starts_with("HTTP/1.1 200"));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "exit status {exit}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The user count in `segments build`'s summary ("… N users …").
fn snapshot_users(stdout: &str) -> Option<u64> {
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let at = words.iter().position(|w| w.trim_end_matches(',') == "users")?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}
