//! Bad input gets a clear 4xx and loses nothing: never a 5xx, never a panic.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const FIELDS: [&str; 13] = [
    "name",
    "uuid_code",
    "active",
    "coupon_discount_type",
    "coupon_discount_amount",
    "coupon_duration_type",
    "coupon_duration_value",
    "redemption_specific_date_status",
    "redemption_specific_date_value",
    "redemption_times_status",
    "redemption_times_value",
    "metadata",
    "promotion_codes",
];

fn wrong_values() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(-1),
        json!(0),
        json!(1e300),
        json!(-9223372036854775808i64),
        json!(18446744073709551615u64),
        json!(1.5),
        json!(""),
        json!("🦀 ünïcödé"),
        json!("'; DROP TABLE coupons; --"),
        json!("1 OR 1=1"),
        json!([]),
        json!([1, 2]),
        json!({}),
        json!({"a": [1]}),
        json!("9".repeat(400)),
        json!("x".repeat(5000)),
    ]
}

/// Every field of a create and an update, set to every kind of wrong value.
#[tokio::test]
async fn barrage_of_bad_requests_never_5xx_and_loses_nothing() {
    let app = TestApp::spawn().await;
    let mut good = coupon("keeper");
    good["promotion_codes"] = json!([{"code": "KEEP1"}]);
    good["metadata"] = json!({"k": "v"});
    let (_, before) = app.post("/v1/coupons", good).await;
    let (_, before_get) = app.get("/v1/coupons/keeper").await;

    let mut n = 0;
    for field in FIELDS {
        for v in wrong_values() {
            let mut body = coupon(&format!("b{n}"));
            body[field] = v.clone();
            let (s, resp) = app.post("/v1/coupons", body).await;
            assert!(
                s.is_success() || s.is_client_error(),
                "create {field}={v}: {s} {resp}"
            );
            if s == StatusCode::UNPROCESSABLE_ENTITY {
                assert!(
                    resp["errors"].as_object().is_some_and(|e| !e.is_empty()),
                    "{resp}"
                );
            }
            let mut upd = json!({"uuid_code": "keeper"});
            if field != "uuid_code" {
                upd[field] = v.clone();
                upd["redeem"] = json!(false);
                upd["uuid_code"] = json!("keeper");
                // PUT with a wrong value must either be refused or be a valid change; restore after a valid one
                let (s, resp) = app.put("/v1/coupons", upd).await;
                assert!(
                    s.is_success() || s.is_client_error(),
                    "update {field}={v}: {s} {resp}"
                );
                if s.is_success() {
                    let mut restore = before["data"].clone();
                    restore["redeem"] = json!(false);
                    restore
                        .as_object_mut()
                        .unwrap()
                        .retain(|k, _| FIELDS.contains(&k.as_str()) && k != "metadata");
                    let (s2, r2) = app.put("/v1/coupons", restore).await;
                    assert_eq!(s2, StatusCode::OK, "{r2}");
                }
            }
            n += 1;
        }
    }
    for (path, method) in [
        ("/v1/promotion-codes", Method::POST),
        ("/v1/promotion-codes", Method::PUT),
        ("/v1/transactions", Method::POST),
    ] {
        for v in wrong_values() {
            for field in [
                "code",
                "coupon_uuid",
                "metadata",
                "transaction_key",
                "amount",
                "customer",
                "key",
                "transactions",
                "coupon_specific_partners",
                "limit_to_specific_partner",
                "expiration_date_value",
            ] {
                let body = json!({ field: v.clone(), "coupon_uuid": "keeper", "code": "KEEP1" });
                let (s, resp) = app.call(method.clone(), path, Some(KEY), Some(&body)).await;
                assert!(
                    !s.is_server_error(),
                    "{method} {path} {field}={v}: {s} {resp}"
                );
            }
        }
    }
    let (_, after_get) = app.get("/v1/coupons/keeper").await;
    assert_eq!(
        without_times(&after_get["data"])["promotion_codes"],
        without_times(&before_get["data"])["promotion_codes"]
    );
    for k in [
        "name",
        "coupon_discount_amount",
        "coupon_discount_type",
        "metadata",
        "times_redeemed",
    ] {
        assert_eq!(after_get["data"][k], before_get["data"][k], "{k} changed");
    }
}

#[tokio::test]
async fn malformed_json_oversized_bodies_and_odd_routes() {
    let app = TestApp::spawn().await;
    app.post("/v1/coupons", coupon("keeper")).await;
    for body in [
        &b"{"[..],
        b"{\"a\":}",
        b"not json",
        b"\xff\xfe",
        b"{\"a\": 1e99999}",
    ] {
        let (s, text) = app.raw(Method::POST, "/v1/coupons", body.to_vec()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{text}");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"status": 0, "message": "Malformed JSON body."})
        );
    }
    for body in [&b"[1]"[..], b"\"text\"", b"42", b"null"] {
        let (s, text) = app.raw(Method::POST, "/v1/coupons", body.to_vec()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    }
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let (s, text) = app.raw(Method::POST, "/v1/coupons", big.into_bytes()).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (s, _) = app
        .raw(Method::POST, "/v1/coupons", deep.into_bytes())
        .await;
    assert!(s.is_client_error());
    let (s, body) = app.get("/v1/nothing-here").await;
    assert_eq!(
        (s, body["status"].clone()),
        (StatusCode::NOT_FOUND, json!(0))
    );
    let (s, body) = app
        .call(Method::PATCH, "/v1/coupons", Some(KEY), None)
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"status": 0, "message": "Method not allowed."})
        )
    );
    let (s, _) = app.get("/v1/coupons/%27%20OR%201%3D1--").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("/v1/coupons/%F0%9F%A6%80").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/v1/coupons/keeper").await.0, StatusCode::OK);
}
