//! The sync engine end to end with the WooCommerce simulator (OAuth 1.0a over plain http).

use crate::helpers::*;
use crate::woo_env::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn synced(body: &Value) {
    assert_eq!(body["synchronization_enabled"], true, "{body}");
    assert_eq!(body["synchronization_successful"], true, "{body}");
}

fn once(uuid: &str) -> Value {
    let mut c = coupon(uuid);
    c["coupon_duration_type"] = json!("once");
    c.as_object_mut().unwrap().remove("coupon_duration_value");
    c["sync"] = json!({"provider": "woocommerce"});
    c
}

fn by_code<'a>(list: &'a [Value], code: &str) -> &'a Value {
    list.iter()
        .find(|c| c["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {list:?}"))
}

/// Create, update, add/remove codes, redeem, deactivate, reactivate, delete: after each step the
/// simulator holds what docs/providers/woocommerce.md says, and every request was signed.
#[tokio::test]
async fn woocommerce_lifecycle() {
    let env = WooEnv::start("", false).await;
    let app = &env.app;
    let mut c = once("SUMMER");
    c["name"] = json!("Summer sale");
    c["metadata"] = json!({"campaign": "s1"});
    c["promotion_codes"] = json!([
        {"code": "SUMMER25", "minimum_order_status": true, "minimum_order_value": 50,
         "limit_to_specific_customer": true, "coupon_specific_customers": {"id": "ann@example.com"}},
        {"code": "Summer-VIP", "redemption_times_status": true, "redemption_times_value": 5,
         "expiration_date_status": true, "expiration_date_value": "2099-06-30",
         "limit_to_specific_partner": true, "coupon_specific_partners": {"id": 42}}
    ]);
    let (s, body) = app.post("/v1/coupons", c).await;
    assert_eq!(s, StatusCode::CREATED);
    synced(&body);
    assert_eq!(
        body["synchronization_message"],
        "The coupon was successfully created in WooCommerce."
    );
    let live = env.live_of("SUMMER");
    assert_eq!(live.len(), 2, "{live:?}");
    let a = by_code(&live, "summer25");
    assert_eq!(
        (&a["discount_type"], &a["amount"], &a["description"]),
        (&json!("percent"), &json!("25.00"), &json!("Summer sale"))
    );
    assert_eq!(a["minimum_amount"], "50.00");
    assert_eq!(a["usage_limit"], 24, "the coupon's own limit");
    assert_eq!(a["email_restrictions"], json!(["ann@example.com"]));
    assert_eq!(a["date_expires"], Value::Null);
    let vip = by_code(&live, "summer-vip");
    assert_eq!(vip["usage_limit"], 5, "the tighter limit");
    // 2099-06-30T23:59:59Z is 18:59:59 at the site's UTC-5
    assert_eq!(vip["date_expires"], "2099-06-30T18:59:59");
    assert_eq!(vip["date_expires_gmt"], "2099-06-30T23:59:59");
    assert_eq!(WooEnv::meta_of(vip, "_coupond").as_deref(), Some("1"));
    assert_eq!(
        WooEnv::meta_of(vip, "_coupond_program").as_deref(),
        Some("acme")
    );
    assert_eq!(
        WooEnv::meta_of(vip, "_coupond_code").as_deref(),
        Some("Summer-VIP")
    );
    assert_eq!(
        WooEnv::meta_of(vip, "_coupond_partners").as_deref(),
        Some("42")
    );
    assert_eq!(
        WooEnv::meta_of(vip, "_coupond_metadata").as_deref(),
        Some(r#"{"campaign":"s1"}"#)
    );
    let reqs = env.sim.common.requests();
    assert!(
        reqs.iter().any(|r| r.path.ends_with("/coupons/batch")),
        "two codes are created in one batch"
    );
    assert_eq!(env.sim.oauth_rejections(), 0);
    assert!(
        reqs.iter().filter(|r| r.path.contains("/wc/v3/")).all(|r| r
            .query
            .as_deref()
            .is_some_and(|q| q.contains("oauth_signature="))),
        "every API request is signed"
    );
    let ids: Vec<Value> = live.iter().map(|c| c["id"].clone()).collect();

    // a name change updates both in place (one batch); metadata removal deletes the meta row
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "name": "Summer 2", "metadata": {"campaign": null}}),
        )
        .await;
    synced(&body);
    let live = env.live_of("SUMMER");
    assert_eq!(
        live.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(),
        ids
    );
    assert!(live.iter().all(|c| c["description"] == "Summer 2"));
    assert!(
        live.iter()
            .all(|c| WooEnv::meta_of(c, "_coupond_metadata").is_none())
    );

    // a change of terms is an update too (WooCommerce coupons are editable)
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "coupon_discount_type": "static", "coupon_discount_amount": 7.5}),
        )
        .await;
    synced(&body);
    let live = env.live_of("SUMMER");
    assert!(
        live.iter()
            .all(|c| c["discount_type"] == "fixed_cart" && c["amount"] == "7.50")
    );

    // add a code, then remove it: trashed (delete_mode = "trash")
    let (s, _) = app
        .post(
            "/v1/promotion-codes",
            json!({"coupon_uuid": "SUMMER", "code": "EXTRA-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    env.drain().await;
    assert_eq!(env.live_of("SUMMER").len(), 3);
    app.delete(
        "/v1/promotion-codes",
        Some(json!({"code": "EXTRA-1", "coupon": {"uuid_code": "SUMMER"}})),
    )
    .await;
    env.drain().await;
    assert_eq!(env.live_of("SUMMER").len(), 2);
    let trashed = env.of("SUMMER", "trash");
    assert_eq!(trashed.len(), 1);
    assert_eq!(trashed[0]["code"], "extra-1");

    // a redemption is not a provider change
    let before = env.sim.common.requests().len();
    app.put(
        "/v1/promotion-codes",
        json!({"code": "SUMMER25", "redeem": true}),
    )
    .await;
    env.drain().await;
    assert_eq!(env.sim.common.requests().len(), before);

    // deactivate: paused (expiry in the past), same coupons and usage; reactivate: expiry back
    let before = env.live_of("SUMMER");
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "active": false}),
        )
        .await;
    synced(&body);
    let paused = env.live_of("SUMMER");
    assert_eq!(paused.len(), 2);
    assert!(
        paused
            .iter()
            .all(|c| c["date_expires"] == "2000-01-01T00:00:00"),
        "{paused:?}"
    );
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "active": true}),
        )
        .await;
    synced(&body);
    let live = env.live_of("SUMMER");
    assert_eq!(
        live.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(),
        before.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(),
        "the same coupons"
    );
    assert_eq!(
        by_code(&live, "summer-vip")["date_expires"],
        "2099-06-30T18:59:59"
    );
    assert_eq!(by_code(&live, "summer25")["date_expires"], Value::Null);
    assert_eq!(
        env.of("SUMMER", "trash").len(),
        1,
        "only the removed code is trashed"
    );

    // delete: trashed
    app.delete("/v1/coupons/SUMMER", None).await;
    env.drain().await;
    assert!(env.live_of("SUMMER").is_empty());
    assert_eq!(env.of("SUMMER", "trash").len(), 3);
    assert!(
        ids.iter()
            .all(|id| env.sim.get(id.as_i64().unwrap()).unwrap()["status"] == "trash")
    );
    assert_eq!(env.sim.oauth_rejections(), 0);
}

/// `delete_mode = "force"`: deleted codes and coupons are gone for good.
#[tokio::test]
async fn force_delete_mode_deletes_for_good() {
    let env = WooEnv::start(
        "[programs.acme.woocommerce]\ndelete_mode = \"force\"\n",
        false,
    )
    .await;
    let mut c = once("GONE");
    c["promotion_codes"] = json!([{"code": "GONE-1"}, {"code": "GONE-2"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    synced(&body);
    assert_eq!(env.live_of("GONE").len(), 2);
    env.app.delete("/v1/coupons/GONE", None).await;
    env.drain().await;
    assert!(env.sim.coupons().is_empty(), "{:?}", env.sim.coupons());
}

#[tokio::test]
async fn refusals_are_named_and_permanent() {
    let env = WooEnv::start("", false).await;
    let cases = [
        (
            json!({"coupon_duration_type": "months", "coupon_duration_value": 3}),
            "WooCommerce Subscriptions",
        ),
        (
            json!({"coupon_duration_type": "days", "coupon_duration_value": 3}),
            "coupon_duration_type",
        ),
        (
            json!({"promotion_codes": [{"code": "FT1", "first_time_order": true}]}),
            "first_time_order",
        ),
        (
            json!({"promotion_codes": [{"code": "C1", "limit_to_specific_customer": true, "coupon_specific_customers": {"id": 9}}]}),
            "coupon_specific_customers 9",
        ),
        (
            json!({"promotion_codes": [{"code": "S1", "limit_to_specific_subscriber": true, "coupon_specific_subscribers": {"id": 1}}]}),
            "subscribers",
        ),
    ];
    for (i, (patch, needle)) in cases.iter().enumerate() {
        let uuid = format!("ref{i}");
        let mut c = once(&uuid);
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        let (s, body) = env.app.post("/v1/coupons", c).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(body["synchronization_successful"], false, "{body}");
        let msg = body["synchronization_message"].as_str().unwrap();
        assert!(
            msg.starts_with(
                "The coupon could not be created in WooCommerce: WooCommerce cannot hold"
            ),
            "{msg}"
        );
        assert!(msg.contains(needle), "{msg} should name {needle}");
        let (_, hist) = env.app.get(&format!("/v1/sync/coupons/{uuid}")).await;
        assert_eq!(hist["data"]["syncs"][0]["status"], "dead", "{hist}");
        assert!(env.sim.coupons().is_empty());
    }
    // a code taken by a coupon coupond does not manage
    let foreign = env
        .sim
        .insert(json!({"code": "taken", "amount": "5", "discount_type": "percent"}));
    let mut c = once("TAKER");
    c["promotion_codes"] = json!([{"code": "TAKEN"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    let msg = body["synchronization_message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "WooCommerce coupon {foreign}, which coupond does not manage"
        )),
        "{msg}"
    );
    assert_eq!(
        env.sim.get(foreign).unwrap()["amount"],
        "5.00",
        "left alone"
    );
}

/// WooCommerce Subscriptions: durations become recurring coupons limited to N payments.
#[tokio::test]
async fn subscriptions_map_durations_to_payments() {
    let env = WooEnv::start("[programs.acme.woocommerce]\nsubscriptions = true\n", false).await;
    env.sim.set_subscriptions(true);
    let mut c = coupon("SUB");
    c["sync"] = json!({"provider": "woocommerce"});
    c["promotion_codes"] = json!([{"code": "SUB-1"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    synced(&body);
    let live = env.live_of("SUB");
    assert_eq!(live[0]["discount_type"], "recurring_percent");
    assert_eq!(
        WooEnv::meta_of(&live[0], "_wcs_number_payments").as_deref(),
        Some("11")
    );
}

/// A create whose answer was lost left our coupon behind: it is adopted, not duplicated.
#[tokio::test]
async fn unrecorded_creates_are_adopted_and_lost_answers_not_duplicated() {
    let env = WooEnv::start("", false).await;
    let id = env.sim.insert(json!({
        "code": "adopt-me", "amount": "1", "discount_type": "percent", "description": "old",
        "meta_data": [{"key": "_coupond", "value": "1"}, {"key": "_coupond_program", "value": "acme"},
                      {"key": "_coupond_coupon", "value": "ADOPT"}]
    }));
    let mut c = once("ADOPT");
    c["promotion_codes"] = json!([{"code": "ADOPT-ME"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    synced(&body);
    let live = env.live_of("ADOPT");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["id"], id, "adopted");
    assert_eq!(live[0]["amount"], "25.00", "and brought up to date");

    // every answer dropped after the write happened: still one coupon per code
    env.sim.common.set_faults(coupond::simulators::Faults {
        drop_rate: 0.5,
        ..Default::default()
    });
    for i in 0..6 {
        let mut c = once(&format!("D{i}"));
        c["promotion_codes"] = json!([{"code": format!("D{i}-A")}, {"code": format!("D{i}-B")}]);
        env.app.post("/v1/coupons", c).await;
    }
    env.sim.common.set_faults(Default::default());
    drain_until_synced(&env.app, 30).await;
    for i in 0..6 {
        let live = env.live_of(&format!("D{i}"));
        assert_eq!(live.len(), 2, "D{i}: {live:?}");
    }
    let published: Vec<String> = env
        .sim
        .coupons()
        .into_iter()
        .filter(|c| c["status"] == "publish")
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    let mut dedup = published.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(
        dedup.len(),
        published.len(),
        "no duplicate codes: {published:?}"
    );
}

/// More codes than one batch holds: batches of at most 100, a failing item fails alone.
#[tokio::test]
async fn bulk_pushes_use_batches_of_at_most_100() {
    let env = WooEnv::start("", false).await;
    env.sim
        .insert(json!({"code": "bulk-77", "amount": "5", "discount_type": "percent"}));
    let mut c = once("BULK");
    c["promotion_codes"] = json!(
        (0..150)
            .map(|i| json!({"code": format!("BULK-{i}")}))
            .collect::<Vec<_>>()
    );
    let (s, body) = env.app.post("/v1/coupons", c).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(body["synchronization_successful"], false);
    let msg = body["synchronization_message"].as_str().unwrap();
    assert!(msg.contains("bulk-77"), "{msg}");
    assert_eq!(
        env.live_of("BULK").len(),
        149,
        "every other code was created"
    );
    let batches: Vec<String> = env
        .sim
        .common
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/coupons/batch"))
        .map(|r| r.body)
        .collect();
    assert_eq!(batches.len(), 2);
    let sizes: Vec<usize> = batches
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["create"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, vec![100, 50]);
}

/// 429s with and without Retry-After, 500s and dropped answers: everything ends synced, once.
#[tokio::test]
async fn faults_end_synced_within_rate_and_retry_after() {
    let env = WooEnv::start("[programs.acme.woocommerce]\nrate_per_second = 100\n[sync]\nworkers = 4\ninline_deadline_ms = 1\n\
         retry_schedule = [\"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\"]\n", true).await;
    env.sim.common.enforce_rate(100.0, 2.0);
    env.sim.common.set_faults(coupond::simulators::Faults {
        rate_429: 0.25,
        retry_after_secs: Some(1),
        retry_after_share: 0.15,
        rate_500: 0.2,
        drop_rate: 0.05,
        ..Default::default()
    });
    // enough requests that both kinds of fault are all but sure to happen (0.8^60 for 500s)
    let n = 30;
    for i in 0..n {
        let mut c = once(&format!("F{i}"));
        c["promotion_codes"] = json!([{"code": format!("FC{i}")}, {"code": format!("FD{i}")}]);
        let (s, _) = env.app.post("/v1/coupons", c).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    wait_synced(&env.app, 90).await;
    for i in 0..n {
        assert_eq!(env.live_of(&format!("F{i}")).len(), 2, "F{i}");
    }
    let reqs = env.sim.common.requests();
    assert!(reqs.iter().any(|r| r.status == 429) && reqs.iter().any(|r| r.status == 500));
    assert_eq!(*env.sim.common.rate_violations.lock().unwrap(), 0);
    assert_eq!(*env.sim.common.retry_after_violations.lock().unwrap(), 0);
    assert_eq!(env.sim.oauth_rejections(), 0, "no nonce was ever replayed");
}

/// Rejected credentials park the connection; fixed credentials resume it.
#[tokio::test]
async fn rejected_credentials_park_and_resume() {
    let env = WooEnv::start("", true).await;
    env.sim.set_credentials(WOO_KEY, "cs_something_else");
    let mut c = once("CRED");
    c["promotion_codes"] = json!([{"code": "CRED-1"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    assert_eq!(body["synchronization_successful"], false);
    let r = env
        .app
        .client
        .get(format!("{}/status", env.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let st: Value = r.json().await.unwrap();
    assert_eq!(st["failing"], json!(["provider:acme/woocommerce"]), "{st}");
    env.sim.set_credentials(WOO_KEY, WOO_SECRET);
    wait_synced(&env.app, 30).await;
    assert_eq!(env.live_of("CRED").len(), 1);
}
