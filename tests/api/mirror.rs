//! Mirror mode, tested the natural way: one coupond is the upstream of another.

use crate::crash::write_config;
use crate::helpers::*;
use crate::stripe_env::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode as AxStatus, Uri};
use axum::response::{IntoResponse, Response};
use coupond::simulators::stripe::StripeSim;
use coupond::store::{Store, StoreOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A proxy in front of the upstream that fails chosen pages (500 or a hang) and adds latency.
#[derive(Default)]
struct Flaky {
    target: String,
    /// Before answering this page, delete this coupon upstream (a change during a pass).
    delete_before: Mutex<Option<(String, String)>>,
    fail_500: Mutex<HashSet<String>>,
    hang: Mutex<HashSet<String>>,
    latency: Mutex<Duration>,
    requests: Mutex<u64>,
}

async fn forward(
    State(f): State<Arc<Flaky>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    *f.requests.lock().unwrap() += 1;
    let page = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .unwrap_or("1")
        .to_owned();
    let hook = f.delete_before.lock().unwrap().clone();
    if let Some((p, uuid)) = hook.filter(|(p, _)| *p == page && uri.path() == "/v1/coupons") {
        *f.delete_before.lock().unwrap() = None;
        let auth = headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let _ = p;
        reqwest::Client::new()
            .delete(format!("{}/v1/coupons/{uuid}", f.target))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
    }
    let latency = *f.latency.lock().unwrap();
    tokio::time::sleep(latency).await;
    if f.fail_500.lock().unwrap().contains(&page) {
        return (
            AxStatus::INTERNAL_SERVER_ERROR,
            "simulated upstream failure",
        )
            .into_response();
    }
    if f.hang.lock().unwrap().contains(&page) {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let mut req = reqwest::Client::new().request(
        method,
        format!(
            "{}{}",
            f.target,
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        ),
    );
    if let Some(a) = headers.get("authorization") {
        req = req.header("authorization", a.to_str().unwrap());
    }
    let r = req.body(body.to_vec()).send().await.unwrap();
    let status = AxStatus::from_u16(r.status().as_u16()).unwrap();
    (
        status,
        [("content-type", "application/json")],
        r.bytes().await.unwrap(),
    )
        .into_response()
}

async fn flaky(target: &str) -> (Arc<Flaky>, String) {
    let f = Arc::new(Flaky {
        target: target.to_owned(),
        ..Default::default()
    });
    let addr = coupond::simulators::serve(
        axum::Router::new().fallback(forward).with_state(f.clone()),
        0,
    )
    .await
    .unwrap();
    (f, format!("http://{addr}"))
}

fn upstream_config(url: &str) -> String {
    format!(
        "[programs.acme.upstream]\nbase_url = \"{url}\"\napi_key = \"{KEY}\"\nprovider = \"stripe\"\npage_limit = 2\npoll_interval_ms = 50\n"
    )
}

async fn upstream_coupon(up: &TestApp, uuid: &str, codes: &[&str]) {
    let mut c = coupon(uuid);
    c["promotion_codes"] = Value::Array(codes.iter().map(|code| json!({"code": code})).collect());
    assert_eq!(up.post("/v1/coupons", c).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn mirror_follows_creates_changes_and_deletes() {
    let up = TestApp::spawn().await;
    let (_proxy, url) = flaky(&up.base).await;
    let env = StripeEnv::start(&upstream_config(&url), false).await;
    let mirror = env.app.mirrors[0].clone();
    for i in 0..5 {
        upstream_coupon(
            &up,
            &format!("U{i}"),
            &[&format!("U{i}-A"), &format!("U{i}-B")],
        )
        .await;
    }
    let r = mirror.pass().await.unwrap();
    assert_eq!(
        (r.pages, r.seen, r.created, r.deleted),
        (3, 5, 5, 0),
        "{r:?}"
    );
    env.drain().await;
    for i in 0..5 {
        let cs = env.coupons_of(&format!("U{i}"));
        assert_eq!(cs.len(), 1);
        assert_eq!(env.active_codes_on(cs[0]["id"].as_str().unwrap()).len(), 2);
    }
    let (_, got) = env.app.get("/v1/coupons/U0").await;
    assert_eq!(
        got["data"]["promotion_codes"]["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // change, add a code, delete a code, delete a coupon — upstream
    up.put(
        "/v1/coupons",
        json!({"uuid_code": "U1", "coupon_discount_amount": 40}),
    )
    .await;
    up.post(
        "/v1/promotion-codes",
        json!({"coupon_uuid": "U2", "code": "U2-C"}),
    )
    .await;
    up.delete(
        "/v1/promotion-codes",
        Some(json!({"code": "U3-A", "coupon": {"uuid_code": "U3"}})),
    )
    .await;
    up.delete("/v1/coupons/U4", None).await;
    up.put("/v1/coupons", json!({"uuid_code": "U0", "redeem": true}))
        .await;
    let r = mirror.pass().await.unwrap();
    assert_eq!((r.created, r.changed, r.deleted), (0, 4, 1), "{r:?}");
    env.drain().await;
    assert_eq!(env.coupons_of("U1")[0]["percent_off"], json!(40.0));
    assert_eq!(
        env.active_codes_on(env.coupons_of("U2")[0]["id"].as_str().unwrap())
            .len(),
        3
    );
    let u3 = env.active_codes_on(env.coupons_of("U3")[0]["id"].as_str().unwrap());
    assert_eq!(u3.len(), 1);
    assert_eq!(u3[0]["code"], "U3-B");
    assert!(env.coupons_of("U4").is_empty());
    assert_eq!(env.app.get("/v1/coupons/U4").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        env.app.get("/v1/coupons/U0").await.1["data"]["times_redeemed"],
        1,
        "counters follow upstream"
    );

    // an unchanged upstream: nothing written, nothing pushed
    let before = env.sim.common.requests().len();
    let r = mirror.pass().await.unwrap();
    assert_eq!((r.created, r.changed, r.deleted), (0, 0, 0));
    env.drain().await;
    assert_eq!(env.sim.common.requests().len(), before);

    // the mirror's own API is read-only for coupon data, and shows sync state
    let (s, body) = env.app.post("/v1/coupons", coupon("LOCAL")).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        body["message"].as_str().unwrap().contains("mirrors"),
        "{body}"
    );
    assert_eq!(
        env.app
            .put("/v1/coupons", json!({"uuid_code": "U0", "name": "x"}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        env.app.delete("/v1/coupons/U0", None).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        env.app
            .post("/v1/promotion-codes", json!({"coupon_uuid": "U0"}))
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        env.app
            .put(
                "/v1/promotion-codes",
                json!({"code": "U0-A", "redeem": true})
            )
            .await
            .0,
        StatusCode::CONFLICT
    );
    let (_, h) = env.app.get("/v1/sync/coupons/U1").await;
    assert_eq!(h["data"]["syncs"][0]["status"], "synced");
    let st: Value = env
        .app
        .client
        .get(format!("{}/status", env.app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = &st["components"]["mirrors"][0];
    assert_eq!(
        (
            m["program"].clone(),
            m["ok"].clone(),
            m["state"]["complete_passes"].clone()
        ),
        (json!("acme"), json!(true), json!(3)),
        "{st}"
    );
}

#[tokio::test]
async fn a_failed_pass_deletes_nothing_and_the_next_complete_pass_converges() {
    let up = TestApp::spawn().await;
    let (proxy, url) = flaky(&up.base).await;
    let env = StripeEnv::start(
        &format!(
            "{}\n[sync]\nrequest_timeout_ms = 400\n",
            upstream_config(&url)
        ),
        false,
    )
    .await;
    let mirror = env.app.mirrors[0].clone();
    for i in 0..6 {
        upstream_coupon(&up, &format!("P{i}"), &[&format!("P{i}-A")]).await;
    }
    mirror.pass().await.unwrap();
    up.delete("/v1/coupons/P0", None).await;
    up.delete("/v1/coupons/P5", None).await;
    // 500s on the second page: the pass fails, nothing is deleted
    proxy.fail_500.lock().unwrap().insert("2".into());
    assert!(mirror.pass().await.is_err());
    proxy.fail_500.lock().unwrap().clear();
    // a hang past the timeout on the last page: the same
    proxy.hang.lock().unwrap().insert("2".into());
    assert!(mirror.pass().await.is_err());
    proxy.hang.lock().unwrap().clear();
    let (_, list) = env.app.get("/v1/coupons").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        6,
        "no deletion from a partial pass"
    );
    let st: Value = env
        .app
        .client
        .get(format!("{}/status", env.app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        st["components"]["mirrors"][0]["state"]["last_error"].is_string(),
        "{st}"
    );
    let r = mirror.pass().await.unwrap();
    assert_eq!(r.deleted, 2);
    let (_, list) = env.app.get("/v1/coupons").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 4);
    env.drain().await;
    assert_eq!(env.sim.coupons().len(), 4);
}

/// The real binary as the mirror, killed mid-pass and restarted: converges, no duplicate pushes.
#[tokio::test]
async fn restart_during_a_pass_converges_without_duplicate_pushes() {
    let up = TestApp::spawn().await;
    for i in 0..16 {
        upstream_coupon(&up, &format!("R{i}"), &[&format!("R{i}-A")]).await;
    }
    let (proxy, url) = flaky(&up.base).await;
    *proxy.latency.lock().unwrap() = Duration::from_millis(60);
    let sim = StripeSim::new(STRIPE_KEY);
    let sim_url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &sim_url, &upstream_config(&url));
    let mut d = Daemon::start(dir.path(), &[]).await;
    tokio::time::sleep(Duration::from_millis(250)).await; // a few of the 8 pages in
    d.kill9();
    let _ = d.child.wait().await;
    *proxy.latency.lock().unwrap() = Duration::ZERO;
    let _d = Daemon::start(dir.path(), &[]).await;
    let store = Store::open(&dir.path().join("coupond.db"), &StoreOptions::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let st = store
            .mirror_state("acme", chrono::Utc::now())
            .await
            .unwrap();
        let o = store.outbox_stats(chrono::Utc::now()).await.unwrap();
        if st.is_some_and(|s| s.complete_passes >= 1) && o.depth == 0 && sim.coupons().len() == 16 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "did not converge: {o:?}, {} in Stripe",
            sim.coupons().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let creates = sim
        .common
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/coupons" && r.method == "POST" && r.status == 200)
        .count();
    assert_eq!(
        creates, 16,
        "each coupon was created in Stripe exactly once"
    );
    let codes = sim.promotion_codes();
    assert_eq!(codes.iter().filter(|c| c["active"] == true).count(), 16);
}

/// The daemon's own poller: an upstream change shows up within a poll interval (plus the pass).
#[tokio::test]
async fn the_poller_picks_up_changes_within_an_interval() {
    let up = TestApp::spawn().await;
    let env = StripeEnv::start(&upstream_config(&up.base), true).await;
    upstream_coupon(&up, "LIVE", &["LIVE-1"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while env.coupons_of("LIVE").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not mirrored and pushed in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        env.app.get("/v1/promotion-codes/LIVE-1").await.0,
        StatusCode::OK
    );
    up.delete("/v1/coupons/LIVE", None).await;
    while !env.coupons_of("LIVE").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "deletion not mirrored in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A coupon deleted upstream during a pass shifts later coupons to earlier pages; the one that is
/// never seen is confirmed alive before anything is deleted.
#[tokio::test]
async fn a_deletion_during_a_pass_does_not_delete_shifted_coupons() {
    let up = TestApp::spawn().await;
    let (proxy, url) = flaky(&up.base).await;
    let env = StripeEnv::start(&upstream_config(&url), false).await;
    let mirror = env.app.mirrors[0].clone();
    for i in 0..6 {
        upstream_coupon(&up, &format!("S{i}"), &[&format!("S{i}-A")]).await;
    }
    mirror.pass().await.unwrap();
    // while the next pass reads page 2, S0 (on page 1) is deleted upstream: S2 moves to page 1 unseen
    *proxy.delete_before.lock().unwrap() = Some(("2".into(), "S0".into()));
    let r = mirror.pass().await.unwrap();
    // S0 was seen (page 1) before it went, S2 was not seen but is confirmed alive: nothing deleted
    assert_eq!(r.deleted, 0, "{r:?}");
    assert_eq!(env.app.get("/v1/coupons/S2").await.0, StatusCode::OK);
    let r = mirror.pass().await.unwrap();
    assert_eq!(r.deleted, 1, "the next pass removes S0: {r:?}");
    let (_, list) = env.app.get("/v1/coupons").await;
    let left: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uuid_code"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["S1", "S2", "S3", "S4", "S5"]);
}
