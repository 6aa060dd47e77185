//! The sync engine end to end with the Paddle simulators: Billing (every request checked against
//! the reference spec) and Classic (seed 004's update capabilities through the API).

use crate::helpers::*;
use crate::paddle_env::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn synced(body: &Value) {
    assert_eq!(body["synchronization_enabled"], true, "{body}");
    assert_eq!(body["synchronization_successful"], true, "{body}");
}

fn paddle(uuid: &str) -> Value {
    let mut c = coupon(uuid);
    c["sync"] = json!({"provider": "paddle"});
    c
}

fn find<'a>(list: &'a [Value], code: &str) -> &'a Value {
    list.iter()
        .find(|d| {
            d["code"]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case(code))
        })
        .unwrap_or_else(|| panic!("no {code} in {list:?}"))
}

#[tokio::test]
async fn billing_lifecycle() {
    let env = BillingEnv::start("", false).await;
    let app = &env.app;
    let mut c = paddle("SUMMER");
    c["name"] = json!("Summer sale");
    c["metadata"] = json!({"campaign": "s1"});
    c["promotion_codes"] = json!([
        {"code": "SUMMER25"},
        {"code": "VIP10", "redemption_times_status": true, "redemption_times_value": 5,
         "expiration_date_status": true, "expiration_date_value": "2099-06-30"}
    ]);
    let (s, body) = app.post("/v1/coupons", c).await;
    assert_eq!(s, StatusCode::CREATED);
    synced(&body);
    assert_eq!(
        body["synchronization_message"],
        "The coupon was successfully created in Paddle."
    );
    let groups = env.sim.groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "coupond acme/SUMMER");
    let ds = env.active_of("SUMMER");
    assert_eq!(ds.len(), 2);
    let a = find(&ds, "SUMMER25");
    assert_eq!(
        (
            &a["type"],
            &a["amount"],
            &a["currency_code"],
            &a["recur"],
            &a["maximum_recurring_intervals"]
        ),
        (
            &json!("percentage"),
            &json!("25"),
            &Value::Null,
            &json!(true),
            &json!(11)
        )
    );
    assert_eq!(a["usage_limit"], 24);
    assert_eq!(a["description"], "Summer sale");
    assert_eq!(a["discount_group_id"], groups[0]["id"]);
    assert_eq!(a["custom_data"]["coupond"], "1");
    assert_eq!(a["custom_data"]["metadata"], json!({"campaign": "s1"}));
    let vip = find(&ds, "VIP10");
    assert_eq!(vip["usage_limit"], 5);
    assert!(
        vip["expires_at"]
            .as_str()
            .unwrap()
            .starts_with("2099-06-30T23:59:59")
    );
    let ids: Vec<Value> = ds.iter().map(|d| d["id"].clone()).collect();

    // name and terms change in place
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "name": "Summer 2", "coupon_discount_type": "static", "coupon_discount_amount": 7.5}),
        )
        .await;
    synced(&body);
    let ds = env.active_of("SUMMER");
    assert_eq!(ds.iter().map(|d| d["id"].clone()).collect::<Vec<_>>(), ids);
    for d in &ds {
        assert_eq!(
            (
                &d["type"],
                &d["amount"],
                &d["currency_code"],
                &d["description"]
            ),
            (
                &json!("flat"),
                &json!("750"),
                &json!("USD"),
                &json!("Summer 2")
            )
        );
    }

    // add and remove a code: the removed one is archived
    app.post(
        "/v1/promotion-codes",
        json!({"coupon_uuid": "SUMMER", "code": "EXTRA1"}),
    )
    .await;
    env.drain().await;
    assert_eq!(env.active_of("SUMMER").len(), 3);
    app.delete(
        "/v1/promotion-codes",
        Some(json!({"code": "EXTRA1", "coupon": {"uuid_code": "SUMMER"}})),
    )
    .await;
    env.drain().await;
    assert_eq!(env.active_of("SUMMER").len(), 2);
    assert_eq!(env.sim.by_code("extra1").unwrap()["status"], "archived");

    // deactivate / reactivate
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "active": false}),
        )
        .await;
    synced(&body);
    assert!(env.active_of("SUMMER").is_empty());
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "active": true}),
        )
        .await;
    synced(&body);
    assert_eq!(env.active_of("SUMMER").len(), 2);

    // delete: every discount and the group archived
    app.delete("/v1/coupons/SUMMER", None).await;
    env.drain().await;
    assert!(env.active_of("SUMMER").is_empty());
    assert_eq!(env.sim.groups()[0]["status"], "archived");

    let checked = BillingSpec::load().check_all(&env.sim);
    assert!(checked > 10, "{checked}");
}

#[tokio::test]
async fn billing_refusals_are_named_and_permanent() {
    let env = BillingEnv::start("", false).await;
    let cases = [
        (
            json!({"promotion_codes": [{"code": "SAVE-10"}]}),
            "code 'SAVE-10': letters and digits only",
        ),
        (
            json!({"coupon_duration_type": "hours", "coupon_duration_value": 3}),
            "coupon_duration_type",
        ),
        (
            json!({"promotion_codes": [{"code": "FT1", "first_time_order": true}]}),
            "first_time_order",
        ),
        (
            json!({"promotion_codes": [{"code": "MIN1", "minimum_order_status": true, "minimum_order_value": 20}]}),
            "minimum_order_value",
        ),
        (
            json!({"metadata": {"paddle_products": "123"}, "promotion_codes": [{"code": "P1"}]}),
            "pro_",
        ),
    ];
    for (i, (patch, needle)) in cases.iter().enumerate() {
        let uuid = format!("ref{i}");
        let mut c = paddle(&uuid);
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        let (_, body) = env.app.post("/v1/coupons", c).await;
        assert_eq!(body["synchronization_successful"], false, "{body}");
        let msg = body["synchronization_message"].as_str().unwrap();
        assert!(
            msg.starts_with(
                "The coupon could not be created in Paddle: Paddle Billing cannot hold"
            ),
            "{msg}"
        );
        assert!(msg.contains(needle), "{msg} should name {needle}");
    }
    assert!(env.sim.discounts().is_empty());
    // a code held by a discount coupond does not manage
    let foreign = env.sim.insert(
        json!({"code": "TAKEN1", "description": "theirs", "type": "percentage", "amount": "5"}),
    );
    let mut c = paddle("TAKER");
    c["promotion_codes"] = json!([{"code": "taken1"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    let msg = body["synchronization_message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("{foreign}, which coupond does not manage")),
        "{msg}"
    );
}

/// Lost answers (dropped after Paddle acted) end with one discount per code: 409 → adopted.
#[tokio::test]
async fn billing_lost_answers_are_adopted() {
    let env = BillingEnv::start("", false).await;
    env.sim.common.set_faults(coupond::simulators::Faults {
        drop_rate: 0.4,
        ..Default::default()
    });
    for i in 0..6 {
        let mut c = paddle(&format!("D{i}"));
        c["promotion_codes"] = json!([{"code": format!("D{i}A")}, {"code": format!("D{i}B")}]);
        env.app.post("/v1/coupons", c).await;
    }
    env.sim.common.set_faults(Default::default());
    drain_until_synced(&env.app, 30).await;
    for i in 0..6 {
        assert_eq!(env.active_of(&format!("D{i}")).len(), 2, "D{i}");
    }
    assert_eq!(env.sim.discounts().len(), 12, "no duplicates");
    assert_eq!(env.sim.groups().len(), 6, "one group per coupon");
    BillingSpec::load().check_all(&env.sim);
}

/// Two programs on one Paddle base URL share one bucket (Paddle limits per IP): together they
/// stay under the rate; with 429s and 500s injected everything still ends synced.
#[tokio::test]
async fn billing_shares_one_bucket_per_base_url_and_survives_faults() {
    let sim = coupond::simulators::paddle_billing::PaddleBillingSim::new(PADDLE_KEY);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    let two = format!(
        "{}\n[sync]\nworkers = 8\ninline_deadline_ms = 1\nretry_schedule = [\"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\"]\n\
         [programs.other.paddle]\nflavour = \"billing\"\napi_key = \"{PADDLE_KEY}\"\nbase_url = \"{url}\"\nrate_per_minute = 3000\n",
        billing_config(&url).replace("rate_per_minute = 6000", "rate_per_minute = 3000")
    );
    let app = TestApp::spawn_layers(&[crate::stripe_env::FAST_SYNC, &two], true).await;
    // 50 requests a second at most, for both programs together
    sim.common.enforce_rate(50.0, 2.0);
    sim.common.set_faults(coupond::simulators::Faults {
        rate_429: 0.2,
        retry_after_secs: Some(1),
        retry_after_share: 0.3,
        rate_500: 0.2,
        ..Default::default()
    });
    for i in 0..10 {
        for (key, prefix) in [(KEY, "A"), (OTHER_KEY, "B")] {
            let mut c = paddle(&format!("{prefix}{i}"));
            c["promotion_codes"] = json!([{"code": format!("{prefix}{i}CODE")}]);
            let r = app
                .client
                .post(format!("{}/v1/coupons", app.base))
                .bearer_auth(key)
                .json(&c)
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::CREATED,
                "{}",
                r.text().await.unwrap()
            );
        }
    }
    wait_synced(&app, 90).await;
    assert_eq!(sim.discounts().len(), 20);
    assert_eq!(
        *sim.common.rate_violations.lock().unwrap(),
        0,
        "the shared bucket held"
    );
    assert_eq!(*sim.common.retry_after_violations.lock().unwrap(), 0);
    let reqs = sim.common.requests();
    assert!(reqs.iter().any(|r| r.status == 429) && reqs.iter().any(|r| r.status == 500));
}

/// Seed 004's update capabilities, each through the API → sync → Classic simulator.
#[tokio::test]
async fn classic_seed_004_capabilities() {
    let env = ClassicEnv::start("", false).await;
    let app = &env.app;
    let mut c = paddle("SUMMER");
    c["coupon_duration_type"] = json!("lifetime");
    c.as_object_mut().unwrap().remove("coupon_duration_value");
    c.as_object_mut().unwrap().remove("redemption_times_status");
    c.as_object_mut().unwrap().remove("redemption_times_value");
    c["coupon_discount_amount"] = json!(10);
    c["metadata"] = json!({"paddle_products": "1001"});
    c["promotion_codes"] = json!([{"code": "SUMMER2026"}, {"code": "VIPCODE1"}]);
    let (s, body) = app.post("/v1/coupons", c).await;
    assert_eq!(s, StatusCode::CREATED);
    synced(&body);
    let held = env.of("SUMMER");
    assert_eq!(held.len(), 2);
    let group = held[0]["group"].as_str().unwrap().to_owned();
    for h in &held {
        assert_eq!(h["group"], group.as_str());
        assert_eq!(
            (
                &h["coupon_type"],
                &h["product_ids"],
                &h["discount_type"],
                &h["recurring"],
                &h["allowed_uses"]
            ),
            (
                &json!("product"),
                &json!([1001]),
                &json!("percentage"),
                &json!(true),
                &json!(999_999)
            )
        );
    }
    let updates_before = env.sim.updates().len();
    let last_update = |env: &ClassicEnv| env.sim.updates().last().cloned().unwrap();

    // change the amount: one update by group
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "coupon_discount_amount": 15}),
        )
        .await;
    synced(&body);
    assert_eq!(
        env.sim.updates().len(),
        updates_before + 1,
        "one call for the whole group"
    );
    let u = last_update(&env);
    assert_eq!(
        (u["group"].as_str(), u["discount_amount"].as_str()),
        (Some(group.as_str()), Some("15"))
    );
    assert!(u.get("coupon_code").is_none());
    assert!(
        env.of("SUMMER")
            .iter()
            .all(|h| h["discount_amount"] == "15")
    );

    // extend the expiry: valid through 2099-12-31 is sent as 2100-01-01
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "redemption_specific_date_status": true, "redemption_specific_date_value": "2099-12-31"}),
        )
        .await;
    synced(&body);
    let u = last_update(&env);
    assert_eq!(
        (u["group"].as_str(), u["expires"].as_str()),
        (Some(group.as_str()), Some("2100-01-01"))
    );
    assert!(
        env.of("SUMMER")
            .iter()
            .all(|h| h["expires"] == "2100-01-01")
    );

    // make another product eligible
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "metadata": {"paddle_products": "1001,1002"}}),
        )
        .await;
    synced(&body);
    assert_eq!(last_update(&env)["product_ids"], "1001,1002");
    assert!(
        env.of("SUMMER")
            .iter()
            .all(|h| h["product_ids"] == json!([1001, 1002]))
    );

    // change allowed_uses
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "redemption_times_status": true, "redemption_times_value": 50}),
        )
        .await;
    synced(&body);
    assert_eq!(last_update(&env)["allowed_uses"], "50");
    // …never below the times used: error 136 is a named refusal
    env.sim.set_times_used("SUMMER2026", 45);
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "redemption_times_value": 40}),
        )
        .await;
    assert_eq!(body["synchronization_successful"], false, "{body}");
    let msg = body["synchronization_message"].as_str().unwrap();
    assert!(
        msg.contains("Paddle Classic cannot hold allowed_uses") && msg.contains("136"),
        "{msg}"
    );
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "redemption_times_value": 60}),
        )
        .await;
    app.post("/v1/sync/coupons/SUMMER/retry", json!({})).await;
    env.drain().await;
    let _ = body;
    assert!(env.of("SUMMER").iter().all(|h| h["allowed_uses"] == 60));

    // rename a code: one removed and one added in the same change → new_coupon_code
    app.delete(
        "/v1/promotion-codes",
        Some(json!({"code": "VIPCODE1", "coupon": {"uuid_code": "SUMMER"}})),
    )
    .await;
    app.post(
        "/v1/promotion-codes",
        json!({"coupon_uuid": "SUMMER", "code": "VIPCODE2"}),
    )
    .await;
    env.drain().await;
    let u = last_update(&env);
    assert_eq!(
        (u["coupon_code"].as_str(), u["new_coupon_code"].as_str()),
        (Some("VIPCODE1"), Some("VIPCODE2")),
        "{u:?}"
    );
    assert!(env.sim.get("VIPCODE1").is_none());
    assert_eq!(env.sim.get("VIPCODE2").unwrap()["group"], group.as_str());

    // move a code to another coupon's group: new_group, never deleted on the way
    let mut w = paddle("WINTER");
    w["coupon_duration_type"] = json!("lifetime");
    w.as_object_mut().unwrap().remove("coupon_duration_value");
    // no limit of its own: the moved code has been used 45 times (a limit of 24 would be error 136)
    w.as_object_mut().unwrap().remove("redemption_times_status");
    w.as_object_mut().unwrap().remove("redemption_times_value");
    w["coupon_discount_amount"] = json!(15);
    w["metadata"] = json!({"paddle_products": "1001,1002"});
    w["promotion_codes"] = json!([{"code": "WINTER2026"}]);
    let (_, body) = app.post("/v1/coupons", w).await;
    synced(&body);
    let winter_group = env.sim.get("WINTER2026").unwrap()["group"]
        .as_str()
        .unwrap()
        .to_owned();
    let deletes_before = env
        .sim
        .common
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("delete_coupon"))
        .count();
    app.delete(
        "/v1/promotion-codes",
        Some(json!({"code": "SUMMER2026", "coupon": {"uuid_code": "SUMMER"}})),
    )
    .await;
    app.post(
        "/v1/promotion-codes",
        json!({"coupon_uuid": "WINTER", "code": "SUMMER2026"}),
    )
    .await;
    env.drain().await;
    let moved = env.sim.get("SUMMER2026").expect("still held");
    assert_eq!(
        moved["group"],
        winter_group.as_str(),
        "moved into WINTER's group"
    );
    assert_eq!(moved["times_used"], 45, "the same Classic coupon");
    assert!(env.sim.updates().iter().any(|u| {
        u.get("new_group")
            .is_some_and(|g| g == winter_group.as_str())
    }));
    let deletes_after = env
        .sim
        .common
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("delete_coupon"))
        .count();
    assert_eq!(deletes_after, deletes_before, "moved, not deleted");

    // deactivate: deleted (Classic has no deactivate); reactivate: created again; delete
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "active": false}),
        )
        .await;
    synced(&body);
    assert!(env.sim.get("VIPCODE2").is_none());
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "active": true}),
        )
        .await;
    synced(&body);
    assert_eq!(env.sim.get("VIPCODE2").unwrap()["group"], group.as_str());
    app.delete("/v1/coupons/WINTER", None).await;
    env.drain().await;
    assert!(env.sim.get("SUMMER2026").is_none() && env.sim.get("WINTER2026").is_none());
    // every request authenticated in the form body, always POST
    for r in env
        .sim
        .common
        .requests()
        .iter()
        .filter(|r| !r.path.starts_with("/_sim"))
    {
        assert_eq!(r.method, reqwest::Method::POST);
        assert!(
            r.body.contains(&format!("vendor_id={VENDOR_ID}")),
            "{}",
            r.body
        );
    }
}

#[tokio::test]
async fn classic_refusals_are_named_and_permanent() {
    let env = ClassicEnv::start("", false).await;
    let once = |uuid: &str| {
        let mut c = paddle(uuid);
        c["coupon_duration_type"] = json!("once");
        c.as_object_mut().unwrap().remove("coupon_duration_value");
        c
    };
    let cases = [
        (
            json!({"promotion_codes": [{"code": "AB"}]}),
            "code 'AB' (2 characters)",
        ),
        (
            json!({"coupon_discount_amount": 100, "promotion_codes": [{"code": "FULL100"}]}),
            "below 100",
        ),
        (
            json!({"coupon_duration_type": "months", "coupon_duration_value": 3}),
            "'months' (3)",
        ),
        (
            json!({"promotion_codes": [{"code": "FIRST1", "first_time_order": true}]}),
            "first_time_order",
        ),
    ];
    for (i, (patch, needle)) in cases.iter().enumerate() {
        let uuid = format!("ref{i}");
        let mut c = once(&uuid);
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        let (_, body) = env.app.post("/v1/coupons", c).await;
        assert_eq!(body["synchronization_successful"], false, "{body}");
        let msg = body["synchronization_message"].as_str().unwrap();
        assert!(msg.contains("Paddle Classic cannot hold"), "{msg}");
        assert!(msg.contains(needle), "{msg} should name {needle}");
    }
    assert!(env.sim.coupons().is_empty());
    // a code taken by a coupon coupond does not manage
    env.sim.insert(
        json!({"coupon_code": "THEIRS1", "description": "merchant", "discount_type": "percentage",
                          "discount_amount": "5", "coupon_type": "checkout"}),
    );
    let mut c = once("TAKER");
    c["promotion_codes"] = json!([{"code": "THEIRS1"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    let msg = body["synchronization_message"].as_str().unwrap();
    assert!(msg.contains("that coupond does not manage"), "{msg}");
    assert_eq!(
        env.sim.get("THEIRS1").unwrap()["description"],
        "merchant",
        "left alone"
    );
}

/// Error 189 (rate limit, HTTP 200), error 120 and dropped answers: everything ends synced, once.
#[tokio::test]
async fn classic_faults_end_synced_without_duplicates() {
    let env = ClassicEnv::start("[sync]\nworkers = 4\ninline_deadline_ms = 1\n\
         retry_schedule = [\"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\"]\n", true).await;
    env.sim.common.set_faults(coupond::simulators::Faults {
        rate_429: 0.2,
        rate_500: 0.1,
        drop_rate: 0.1,
        ..Default::default()
    });
    for i in 0..12 {
        let mut c = paddle(&format!("F{i}"));
        c["coupon_duration_type"] = json!("once");
        c.as_object_mut().unwrap().remove("coupon_duration_value");
        c["promotion_codes"] =
            json!([{"code": format!("FCODE{i}A")}, {"code": format!("FCODE{i}B")}]);
        env.app.post("/v1/coupons", c).await;
    }
    wait_synced(&env.app, 90).await;
    for i in 0..12 {
        assert_eq!(env.of(&format!("F{i}")).len(), 2, "F{i}");
    }
    assert_eq!(env.sim.coupons().len(), 24);
    let bodies: Vec<String> = env
        .sim
        .common
        .requests()
        .iter()
        .map(|r| r.status.to_string())
        .collect();
    assert!(!bodies.is_empty());
}
