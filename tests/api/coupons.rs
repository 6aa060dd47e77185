//! `/v1/coupons` rules of the spec: validation, merged updates, redemptions, pagination, deletion.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn error_fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Each create rule → 422 naming the field (spec §3.1).
#[tokio::test]
async fn create_validation_names_each_field() {
    let app = TestApp::spawn().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"coupon_discount_type": "fixed"}),
            "coupon_discount_type",
        ),
        (
            json!({"coupon_discount_amount": 0}),
            "coupon_discount_amount",
        ),
        (
            json!({"coupon_discount_amount": 100.5}),
            "coupon_discount_amount",
        ),
        (
            json!({"coupon_discount_amount": -5}),
            "coupon_discount_amount",
        ),
        (
            json!({"coupon_discount_amount": "abc"}),
            "coupon_discount_amount",
        ),
        (
            json!({"coupon_duration_type": "weekly"}),
            "coupon_duration_type",
        ),
        (
            json!({"coupon_duration_value": null}),
            "coupon_duration_value",
        ),
        (json!({"coupon_duration_value": 0}), "coupon_duration_value"),
        (
            json!({"coupon_duration_value": 1.5}),
            "coupon_duration_value",
        ),
        (json!({"uuid_code": "has space"}), "uuid_code"),
        (json!({"uuid_code": "x".repeat(256)}), "uuid_code"),
        (json!({"name": "n".repeat(256)}), "name"),
        (json!({"active": "maybe"}), "active"),
        (
            json!({"redemption_times_value": null}),
            "redemption_times_value",
        ),
        (
            json!({"redemption_times_value": 0}),
            "redemption_times_value",
        ),
        (
            json!({"redemption_specific_date_status": true}),
            "redemption_specific_date_value",
        ),
        (
            json!({"redemption_specific_date_status": true, "redemption_specific_date_value": "2001-01-01"}),
            "redemption_specific_date_value",
        ),
        (
            json!({"redemption_specific_date_status": true, "redemption_specific_date_value": "someday"}),
            "redemption_specific_date_value",
        ),
        (json!({"metadata": "x"}), "metadata"),
        (json!({"metadata": {"a": {"b": 1}}}), "metadata.a"),
        (json!({"promotion_codes": "x"}), "promotion_codes"),
        (
            json!({"promotion_codes": [{"code": "bad code"}]}),
            "promotion_codes.0.code",
        ),
        (
            json!({"promotion_codes": [{"minimum_order_status": true}]}),
            "promotion_codes.0.minimum_order_value",
        ),
        (json!({"sync": {}}), "sync.provider"),
    ];
    for (patch, field) in cases {
        let mut body = coupon("valid");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, resp) = app.post("/v1/coupons", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{patch} → {resp}");
        assert_eq!(keys(&resp), ["message", "errors"], "{resp}");
        assert!(
            error_fields(&resp).contains(&field.to_owned()),
            "{patch}: expected {field} in {resp}"
        );
    }
    let (s, resp) = app.post("/v1/coupons", json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_fields(&resp),
        [
            "coupon_discount_type",
            "coupon_discount_amount",
            "coupon_duration_type"
        ]
    );
    assert_eq!(
        resp["message"],
        "The coupon discount type field is required. (and 2 more errors)"
    );
    assert_eq!(
        app.get("/v1/coupons").await.1["data"],
        json!([]),
        "no failed create stored anything"
    );
}

/// B1: uuid_code is unique case-insensitively, including soft-deleted coupons; case is preserved.
#[tokio::test]
async fn uuid_code_uniqueness() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post("/v1/coupons", coupon("Summer")).await.0,
        StatusCode::CREATED
    );
    let (s, body) = app.post("/v1/coupons", coupon("SUMMER")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"]["uuid_code"][0],
        "The uuid code has already been taken."
    );
    let (_, got) = app.get("/v1/coupons/summer").await;
    assert_eq!(got["data"]["uuid_code"], "Summer");
    app.delete("/v1/coupons/Summer", None).await;
    assert_eq!(
        app.post("/v1/coupons", coupon("summer")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "stays taken (B28)"
    );
}

/// 20 concurrent creates of the same uuid_code: exactly one succeeds.
#[tokio::test]
async fn concurrent_creates_of_one_uuid() {
    let app = TestApp::spawn().await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (client, base) = (app.client.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}/v1/coupons"))
                .bearer_auth(KEY)
                .json(&coupon("race"))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
            .count(),
        19,
        "{statuses:?}"
    );
}

/// Defaults and the paired-switch null rule (B3, B5, B6).
#[tokio::test]
async fn defaults_and_switches() {
    let app = TestApp::spawn().await;
    let (_, body) = app
        .post(
            "/v1/coupons",
            json!({"uuid_code": "d1", "coupon_discount_type": "static", "coupon_discount_amount": "12.50",
                   "coupon_duration_type": "lifetime", "coupon_duration_value": 4, "redemption_times_status": false,
                   "redemption_times_value": 9, "redemption_specific_date_status": "1", "redemption_specific_date_value": "2099-12-31"}),
        )
        .await;
    let d = &body["data"];
    assert_eq!(d["name"], "d1");
    assert_eq!(d["coupon_discount_amount"], json!(12.5));
    assert_eq!(d["coupon_duration_value"], Value::Null);
    assert_eq!(d["redemption_times_value"], Value::Null);
    assert_eq!(
        d["redemption_specific_date_value"],
        "2099-12-31T23:59:59.000000Z"
    );
    let (s, _) = app.post("/v1/coupons", json!({"uuid_code": "d2", "coupon_discount_type": "static", "coupon_discount_amount": 1.234, "coupon_duration_type": "once"})).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "static amounts have at most 2 decimals"
    );
}

/// B7: PUT validates the merged state; stale stored dates do not block; unknown coupon → 404.
#[tokio::test]
async fn update_merged_state() {
    let app = TestApp::spawn().await;
    let mut c = coupon("m1");
    c["coupon_discount_type"] = json!("static");
    c["coupon_discount_amount"] = json!(150);
    c["coupon_duration_type"] = json!("once");
    app.post("/v1/coupons", c).await;
    let (s, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "m1", "coupon_discount_type": "percent"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&body), ["coupon_discount_amount"]);
    let (s, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "m1", "coupon_duration_type": "days"}),
        )
        .await;
    assert_eq!(
        (s, error_fields(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["coupon_duration_value".to_owned()]
        )
    );
    let (s, body) = app.put("/v1/coupons", json!({"uuid_code": "m1", "coupon_duration_type": "days", "coupon_duration_value": 3, "active": "off"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            body["data"]["coupon_duration_value"].clone(),
            body["data"]["active"].clone()
        ),
        (json!(3), json!(false))
    );
    let (s, body) = app
        .put("/v1/coupons", json!({"uuid_code": "nope", "name": "x"}))
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::NOT_FOUND,
            json!({"status": 0, "message": "Coupon not found"})
        )
    );
    let (s, body) = app.put("/v1/coupons", json!({"name": "x"})).await;
    assert_eq!(
        (s, error_fields(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["uuid_code".to_owned()]
        )
    );
    // promotion_codes on PUT are ignored
    let (s, _) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "m1", "promotion_codes": [{"code": "IGNORED"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.get("/v1/promotion-codes/IGNORED").await.0,
        StatusCode::NOT_FOUND
    );
}

/// B8: metadata merged key by key; null removes; `[]` changes nothing; a no-op keeps updated_at.
#[tokio::test]
async fn metadata_merge() {
    let app = TestApp::spawn().await;
    let mut c = coupon("meta");
    c["metadata"] = json!({"a": 1, "b": "x"});
    let (_, created) = app.post("/v1/coupons", c).await;
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "meta", "metadata": {"a": 2, "b": null, "c": true}}),
        )
        .await;
    assert_eq!(body["data"]["metadata"], json!({"a": 2, "c": true}));
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "meta", "metadata": {"a": null, "c": null}}),
        )
        .await;
    assert_eq!(body["data"]["metadata"], json!([]), "empty metadata is []");
    let before = body["data"]["updated_at"].clone();
    let (_, body) = app
        .put("/v1/coupons", json!({"uuid_code": "meta", "metadata": []}))
        .await;
    assert_eq!(body["data"]["updated_at"], before, "no change, no write");
    assert_ne!(created["data"]["updated_at"], before);
}

/// B11–B19 on coupons: dedupe, unknown key no-op, limits after the no-op checks, atomic counters.
#[tokio::test]
async fn coupon_redemptions() {
    let app = TestApp::spawn().await;
    let mut c = coupon("r1");
    c["redemption_times_value"] = json!(2);
    app.post("/v1/coupons", c).await;
    for k in ["t1", "t2", "t3"] {
        app.post(
            "/v1/transactions",
            json!({"key": k, "amount": 5, "customer": {"key": "c"}}),
        )
        .await;
    }
    let (_, body) = app.put("/v1/coupons", json!({"uuid_code": "r1", "redeem": true, "transaction_key": "unknown", "name": "ignored"})).await;
    assert_eq!(
        (
            body["data"]["times_redeemed"].clone(),
            body["data"]["name"].clone()
        ),
        (json!(0), json!("r1")),
        "unknown key: silent no-op (B14, B16)"
    );
    let (_, body) = app
        .put("/v1/coupons", json!({"uuid_code": "r1", "redeem": true}))
        .await;
    assert_eq!(
        body["data"]["additional_info"]["redemptions"][0]["transaction_key"],
        Value::Null
    );
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "r1", "redeem": "true", "transaction_key": "t1"}),
        )
        .await;
    assert_eq!(body["data"]["times_redeemed"], 2);
    // at the limit: a repeat of t1 is still a 200 no-op, a new key is refused
    let (s, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "r1", "redeem": true, "transaction_key": "t1"}),
        )
        .await;
    assert_eq!(
        (s, body["data"]["times_redeemed"].clone()),
        (StatusCode::OK, json!(2))
    );
    let (s, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "r1", "redeem": true, "transaction_key": "t2"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"]["redeem"][0],
        "The coupon has reached its redemption limit."
    );
    // transaction_key without redeem is ignored
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "r1", "transaction_key": "t3"}),
        )
        .await;
    assert_eq!(body["data"]["times_redeemed"], 2);
    // deleting a transaction keeps the log; a later redeem with it is the unknown-key no-op (B17)
    app.delete("/v1/transactions/t1", None).await;
    let (_, got) = app.get("/v1/coupons/r1").await;
    assert_eq!(
        got["data"]["additional_info"]["redemptions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// B19: N concurrent redeems with distinct keys → min(N, remaining); one key N times → one.
#[tokio::test]
async fn concurrent_redeems_are_atomic() {
    let app = TestApp::spawn().await;
    let mut c = coupon("atomic");
    c["redemption_times_value"] = json!(5);
    app.post("/v1/coupons", c).await;
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let txs: Vec<Value> = keys
        .iter()
        .map(|k| json!({"key": k, "amount": 1}))
        .collect();
    app.post(
        "/v1/transactions",
        json!({"customer": {"key": "c"}, "transactions": txs}),
    )
    .await;
    let mut tasks = Vec::new();
    for k in keys
        .iter()
        .cloned()
        .chain(std::iter::repeat_n("k0".to_owned(), 4))
    {
        let (client, base) = (app.client.clone(), app.base.clone());
        tasks.push(tokio::spawn(async move {
            client
                .put(format!("{base}/v1/coupons"))
                .bearer_auth(KEY)
                .json(&json!({"uuid_code": "atomic", "redeem": true, "transaction_key": k}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        let s = t.await.unwrap();
        assert!(
            s == StatusCode::OK || s == StatusCode::UNPROCESSABLE_ENTITY,
            "{s}"
        );
    }
    let (_, got) = app.get("/v1/coupons/atomic").await;
    assert_eq!(got["data"]["times_redeemed"], 5);
    let log = got["data"]["additional_info"]["redemptions"]
        .as_array()
        .unwrap();
    let k0 = log.iter().filter(|e| e["transaction_key"] == "k0").count();
    assert!(k0 <= 1, "k0 recorded {k0} times");
}

/// §1.6: limits clamp, pages walk every item exactly once, links carry `limit`.
#[tokio::test]
async fn pagination() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.post("/v1/coupons", coupon(&format!("p{i}"))).await;
    }
    let mut seen = Vec::new();
    let mut next = Some(format!("{}/v1/coupons?limit=3", app.base));
    while let Some(url) = next {
        let body: Value = app
            .client
            .get(&url)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for c in body["data"].as_array().unwrap() {
            seen.push(c["uuid_code"].as_str().unwrap().to_owned());
        }
        next = body["links"]["next"].as_str().map(str::to_owned);
        assert_eq!(body["links"]["last"], Value::Null);
        assert!(body["meta"].get("total").is_none());
    }
    assert_eq!(seen, (0..7).map(|i| format!("p{i}")).collect::<Vec<_>>());
    let (_, body) = app.get("/v1/coupons?limit=0&page=-1").await;
    assert_eq!(
        (
            body["meta"]["per_page"].clone(),
            body["meta"]["current_page"].clone()
        ),
        (json!(1), json!(1))
    );
    let (_, body) = app.get("/v1/coupons?limit=1000").await;
    assert_eq!(body["meta"]["per_page"], 250);
    let (s, body) = app.get("/v1/coupons?page=99&limit=abc").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            body["data"].clone(),
            body["meta"]["from"].clone(),
            body["links"]["next"].clone()
        ),
        (json!([]), Value::Null, Value::Null)
    );
    assert_eq!(body["meta"]["per_page"], 15);
    let (_, body) = app.get("/v1/coupons?limit=2&page=2").await;
    let path = format!("{}/v1/coupons", app.base);
    assert_eq!(body["meta"]["path"].as_str().unwrap(), path);
    assert!(
        body["links"]["prev"]
            .as_str()
            .unwrap()
            .ends_with("/v1/coupons?limit=2&page=1")
    );
    assert_eq!(
        (body["meta"]["from"].clone(), body["meta"]["to"].clone()),
        (json!(3), json!(4))
    );
}

/// DELETE by body and by PHP-style query; deleting removes the coupon's codes (B29).
#[tokio::test]
async fn delete_forms() {
    let app = TestApp::spawn().await;
    let mut c = coupon("del1");
    c["promotion_codes"] = json!([{"code": "DELCODE"}]);
    app.post("/v1/coupons", c).await;
    app.post("/v1/coupons", coupon("del2")).await;
    assert_eq!(
        app.delete("/v1/coupons", Some(json!({"uuid_code": "del1"})))
            .await,
        (StatusCode::OK, json!({"status": 1}))
    );
    assert_eq!(
        app.get("/v1/promotion-codes/DELCODE").await.0,
        StatusCode::NOT_FOUND
    );
    // the code is free again once its coupon is gone
    let (s, _) = app
        .post(
            "/v1/promotion-codes",
            json!({"coupon_uuid": "del2", "code": "DELCODE"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        app.delete("/v1/coupons?uuid_code=del2", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.delete("/v1/coupons", None).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// A nested code taken by another coupon, or twice in one request, is a 422 on that code's path;
/// nothing of the refused coupon is kept (uniqueness is the store's constraint, not a lookup).
#[tokio::test]
async fn taken_nested_codes_name_their_path_and_keep_nothing() {
    let app = TestApp::spawn().await;
    let mut first = coupon("First");
    first["promotion_codes"] = json!([{"code": "SHARED10"}]);
    assert_eq!(app.post("/v1/coupons", first).await.0, StatusCode::CREATED);
    for (codes, path) in [
        (
            json!([{"code": "NEW10"}, {"code": "shared10"}]),
            "promotion_codes.1.code",
        ),
        (
            json!([{"code": "TWICE"}, {"code": "twice"}]),
            "promotion_codes.1.code",
        ),
    ] {
        let mut body = coupon("Second");
        body["promotion_codes"] = codes.clone();
        let (s, resp) = app.post("/v1/coupons", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{codes} → {resp}");
        assert_eq!(
            resp["errors"][path][0], "The promotion codes.1.code has already been taken.",
            "{resp}"
        );
        assert_eq!(app.get("/v1/coupons/Second").await.0, StatusCode::NOT_FOUND);
        for c in codes.as_array().unwrap() {
            let code = c["code"].as_str().unwrap();
            let (s, got) = app.get(&format!("/v1/promotion-codes/{code}")).await;
            if code.eq_ignore_ascii_case("shared10") {
                assert_eq!(
                    got["data"]["code"], "SHARED10",
                    "the first coupon's code is intact"
                );
            } else {
                assert_eq!(s, StatusCode::NOT_FOUND, "{code} was not kept");
            }
        }
    }
}
