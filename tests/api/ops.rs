//! Operations: /status probes, /metrics, graceful shutdown, secrets in logs.

use crate::crash::stripe_daemon;
use crate::helpers::*;
use crate::stripe_env::*;
use coupond::simulators::Faults;
use coupond::store::{Store, StoreOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn status(app: &TestApp) -> (StatusCode, Value) {
    let r = app
        .client
        .get(format!("{}/status", app.base))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// `/status` turns 503 naming the component — rejected credentials, dead syncs over the threshold,
/// an unwritable store — and back to 200 when fixed.
#[tokio::test]
async fn status_names_the_failing_component_and_recovers() {
    let env = StripeEnv::start("[store]\nbusy_timeout_ms = 200\n", false).await;
    let (s, body) = status(&env.app).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["components"]["store"]["ok"], true);
    let providers = body["components"]["providers"].as_array().unwrap();
    assert!(
        providers.iter().any(|p| p["program"] == "acme"
            && p["provider"] == "stripe"
            && p["credentials"] == "ok")
    );
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    // credentials rejected
    env.sim.set_key("sk_rotated");
    let mut c = coupon("S1");
    c["sync"] = json!({"provider": "stripe"});
    env.app.post("/v1/coupons", c).await;
    let (s, body) = status(&env.app).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["failing"], json!(["provider:acme/stripe"]), "{body}");
    env.sim.set_key(STRIPE_KEY);
    env.drain().await;
    assert_eq!(status(&env.app).await.0, StatusCode::OK);

    // a dead sync over the threshold (0)
    let mut c = coupon("S2");
    c["sync"] = json!({"provider": "stripe"});
    c["coupon_duration_type"] = json!("days");
    c["coupon_duration_value"] = json!(3);
    env.app.post("/v1/coupons", c).await;
    let (s, body) = status(&env.app).await;
    assert_eq!(
        (s, body["failing"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!(["outbox"]))
    );
    assert_eq!(body["components"]["outbox"]["dead"], 1);
    env.app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "S2", "coupon_duration_type": "months"}),
        )
        .await;
    assert_eq!(status(&env.app).await.0, StatusCode::OK);

    // an unwritable store: another process holds the write lock
    let db = env.app.store.path_for_tests();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let (s, body) = status(&env.app).await;
    assert_eq!(
        (s, body["failing"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!(["store"])),
        "{body}"
    );
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert_eq!(status(&env.app).await.0, StatusCode::OK);
}

use sqlx::Connection;

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            let (head, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            let n = head.split('{').next().unwrap_or("");
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| head.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| {
            l.rsplit_once(' ')
                .map(|(_, v)| v.parse::<f64>().unwrap_or(0.0))
                .unwrap_or(0.0)
        })
        .sum()
}

/// After a scripted workload against the real binary, the counters add up.
#[tokio::test]
async fn metrics_add_up_after_a_workload() {
    let (sim, _dir, d) = stripe_daemon("", &[]).await;
    let client = reqwest::Client::new();
    for i in 0..3 {
        let mut c = coupon(&format!("M{i}"));
        c["sync"] = json!({"provider": "stripe"});
        c["promotion_codes"] = json!([{"code": format!("MC{i}")}]);
        assert_eq!(
            client
                .post(format!("{}/v1/coupons", d.base))
                .bearer_auth(KEY)
                .json(&c)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::CREATED
        );
    }
    assert_eq!(
        client
            .post(format!("{}/v1/coupons", d.base))
            .bearer_auth(KEY)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        422
    );
    for _ in 0..2 {
        client
            .get(format!("{}/v1/coupons/M0", d.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
    }
    // scrape once the pushes (inline or finished by the worker) have all been recorded
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = client
            .get(format!("{}/metrics", d.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let settled = metric(
            &text,
            "coupond_sync_attempts_total",
            &[("outcome", "synced")],
        ) == 3.0
            && metric(&text, "coupond_outbox_depth", &[]) == 0.0;
        if settled {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workload did not settle: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        metric(
            &text,
            "coupond_http_requests_total",
            &[
                ("route", "/v1/coupons"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "coupond_http_requests_total",
            &[
                ("route", "/v1/coupons"),
                ("method", "POST"),
                ("status", "422")
            ]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "coupond_http_requests_total",
            &[("route", "/v1/coupons/{uuid_code}"), ("method", "GET")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "coupond_http_request_seconds_count",
            &[("route", "/v1/coupons")]
        ),
        4.0
    );
    let sim_calls = sim.common.requests().len() as f64;
    assert_eq!(
        metric(
            &text,
            "coupond_provider_calls_total",
            &[("provider", "Stripe")]
        ),
        sim_calls,
        "every provider call is counted once"
    );
    assert_eq!(
        metric(
            &text,
            "coupond_provider_calls_total",
            &[("operation", "create_coupon"), ("outcome", "success")]
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "coupond_provider_call_seconds_count",
            &[("provider", "Stripe")]
        ),
        sim_calls
    );
    assert_eq!(
        metric(
            &text,
            "coupond_sync_attempts_total",
            &[("outcome", "synced")]
        ),
        3.0
    );
    assert_eq!(metric(&text, "coupond_outbox_depth", &[]), 0.0);
    assert_eq!(
        metric(
            &text,
            "coupond_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
}

/// SIGTERM during a slow provider call: the call finishes, its result is recorded, the daemon
/// exits 0 and leaves nothing claimed.
#[tokio::test]
async fn sigterm_lets_the_in_flight_call_finish() {
    let (sim, dir, mut d) = stripe_daemon("", &[]).await;
    sim.common.set_faults(Faults {
        latency: Duration::from_millis(1500),
        ..Default::default()
    });
    let mut c = coupon("SLOW");
    c["sync"] = json!({"provider": "stripe"});
    let r = d.post_coupon(&c).await;
    assert!(
        r["synchronization_message"]
            .as_str()
            .unwrap()
            .contains("queued"),
        "the inline deadline passed: {r}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // the call is in flight at the simulator
    let pid = d.child.id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::time::timeout(Duration::from_secs(20), d.child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    assert_eq!(sim.coupons().len(), 1, "the in-flight call finished");
    let store = Store::open(&dir.path().join("coupond.db"), &StoreOptions::default())
        .await
        .unwrap();
    let (marks, attempts) = store.sync_history("acme", "SLOW").await.unwrap().unwrap();
    assert_eq!(
        marks[0].status, "synced",
        "its result was recorded: {marks:?}"
    );
    assert_eq!(attempts.last().unwrap().outcome, "success");
    assert_eq!(
        store.claimed_count().await.unwrap(),
        0,
        "nothing left claimed"
    );
    let lines = d.lines.lock().unwrap().join("\n");
    assert!(lines.contains("coupond stopped"), "{lines}");
}

/// No configured secret ever appears in a log line, through a workload with errors and retries.
#[tokio::test]
async fn no_secret_in_any_log_line() {
    let (sim, _dir, mut d) = stripe_daemon("", &[("RUST_LOG", "debug")]).await;
    let client = reqwest::Client::new();
    sim.common.set_faults(Faults {
        rate_500: 0.3,
        rate_429: 0.2,
        ..Default::default()
    });
    for i in 0..6 {
        let mut c = coupon(&format!("L{i}"));
        c["sync"] = json!({"provider": "stripe"});
        c["promotion_codes"] = json!([{"code": format!("LC{i}")}]);
        client
            .post(format!("{}/v1/coupons", d.base))
            .bearer_auth(KEY)
            .json(&c)
            .send()
            .await
            .unwrap();
    }
    sim.set_key("sk_rotated");
    let mut c = coupon("L9");
    c["sync"] = json!({"provider": "stripe"});
    client
        .post(format!("{}/v1/coupons", d.base))
        .bearer_auth(KEY)
        .json(&c)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{}/v1/coupons", d.base))
        .bearer_auth(DISABLED_KEY)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{}/v1/coupons", d.base))
        .bearer_auth("wrong-key-0123456789")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = d.child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(20), d.child.wait()).await;
    let lines = d.lines.lock().unwrap().clone();
    assert!(lines.len() > 20, "the workload logged: {}", lines.len());
    assert!(
        lines.iter().any(|l| l.contains("rejected the credentials")),
        "the 401 was logged"
    );
    for secret in [
        STRIPE_KEY,
        "shpat_acme_secret_value",
        KEY,
        OTHER_KEY,
        DISABLED_KEY,
    ] {
        for l in &lines {
            assert!(!l.contains(secret), "secret {secret} in: {l}");
        }
    }
}

fn admin(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coupond"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The operator commands work against the store of a running daemon.
#[tokio::test]
async fn admin_commands_list_retry_and_show_history() {
    let (_sim, dir, d) = stripe_daemon("", &[]).await;
    let client = reqwest::Client::new();
    let mut c = coupon("DAYS");
    c["sync"] = json!({"provider": "stripe"});
    c["coupon_duration_type"] = json!("days");
    c["coupon_duration_value"] = json!(3);
    client
        .post(format!("{}/v1/coupons", d.base))
        .bearer_auth(KEY)
        .json(&c)
        .send()
        .await
        .unwrap();
    let mut ok = coupon("FINE");
    ok["sync"] = json!({"provider": "stripe"});
    client
        .post(format!("{}/v1/coupons", d.base))
        .bearer_auth(KEY)
        .json(&ok)
        .send()
        .await
        .unwrap();

    let (code, out) = admin(dir.path(), &["--dead"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("DAYS")
            && out.contains("coupon_duration_type")
            && out.contains("1 dead sync(s)"),
        "{out}"
    );
    assert!(!out.contains("FINE"));
    let (code, out) = admin(
        dir.path(),
        &["--dead", "--format", "json", "--program", "acme"],
    );
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["sync"]["uuid_code"], "DAYS");
    let (code, out) = admin(dir.path(), &["--history", "FINE"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("success") && out.contains("The coupon was successfully created in Stripe."),
        "{out}"
    );
    let (code, out) = admin(dir.path(), &["--retry-dead", "--coupon", "DAYS"]);
    assert_eq!((code, out.contains("requeued 1")), (0, true), "{out}");
    let (code, out) = admin(dir.path(), &["--history", "NOPE"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = admin(dir.path(), &["--dead", "--program", "ghost"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ghost"));
}
