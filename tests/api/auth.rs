//! Bearer keys per program; a key never sees another program's data (spec §1.1).

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn missing_unknown_and_disabled_keys() {
    let app = TestApp::spawn().await;
    let unauth = json!({"status": 0, "message": "Unauthenticated."});
    assert_eq!(
        app.call(Method::GET, "/v1/coupons", None, None).await,
        (StatusCode::UNAUTHORIZED, unauth.clone())
    );
    assert_eq!(
        app.call(Method::GET, "/v1/coupons", Some("not-a-key"), None)
            .await,
        (StatusCode::UNAUTHORIZED, unauth.clone())
    );
    let (s, _) = app
        .client
        .get(format!("{}/v1/coupons", app.base))
        .header("authorization", format!("Basic {KEY}"))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.call(Method::GET, "/v1/coupons", Some(DISABLED_KEY), None)
            .await,
        (
            StatusCode::FORBIDDEN,
            json!({"status": 0, "message": "Forbidden."})
        )
    );
    // unauthenticated writes store nothing
    app.call(Method::POST, "/v1/coupons", None, Some(&coupon("x")))
        .await;
    assert_eq!(app.get("/v1/coupons").await.1["data"], json!([]));
}

#[tokio::test]
async fn programs_are_isolated() {
    let app = TestApp::spawn().await;
    let mut c = coupon("shared");
    c["promotion_codes"] = json!([{"code": "SHARED1"}]);
    app.post("/v1/coupons", c).await;
    app.post(
        "/v1/transactions",
        json!({"key": "t1", "amount": 1, "customer": {"key": "c"}}),
    )
    .await;
    let other = |m, p: &str, b: Option<serde_json::Value>| {
        let app = &app;
        let p = p.to_owned();
        async move { app.call(m, &p, Some(OTHER_KEY), b.as_ref()).await }
    };
    assert_eq!(
        other(Method::GET, "/v1/coupons/shared", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other(Method::GET, "/v1/coupons", None).await.1["data"],
        json!([])
    );
    assert_eq!(
        other(Method::GET, "/v1/promotion-codes/SHARED1", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other(
            Method::PUT,
            "/v1/coupons",
            Some(json!({"uuid_code": "shared", "name": "hijack"}))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other(Method::DELETE, "/v1/coupons/shared", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other(Method::GET, "/v1/transactions/t1", None).await.0,
        StatusCode::NOT_FOUND
    );
    // the same identifiers are free in the other program
    assert_eq!(
        other(Method::POST, "/v1/coupons", Some(coupon("shared")))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        other(
            Method::POST,
            "/v1/promotion-codes",
            Some(json!({"coupon_uuid": "shared", "code": "SHARED1"}))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    // a redeem with the other program's transaction key is the unknown-key no-op
    let (_, body) = other(
        Method::PUT,
        "/v1/coupons",
        Some(json!({"uuid_code": "shared", "redeem": true, "transaction_key": "t1"})),
    )
    .await;
    assert_eq!(body["data"]["times_redeemed"], 0);
    let (_, mine) = app.get("/v1/coupons/shared").await;
    assert_eq!(mine["data"]["name"], "shared");
    // sync.provider connection is per program
    let mut c = coupon("s2");
    c["sync"] = json!({"provider": "stripe"});
    let (s, body) = other(Method::POST, "/v1/coupons", Some(c)).await;
    assert_eq!(
        (s, body["message"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("stripe is not connected for this program.")
        )
    );
}

#[tokio::test]
async fn optional_per_key_rate_limit() {
    let app = TestApp::spawn_with("[programs.other]\nrate_limit_per_minute = 2\n").await;
    for remaining in ["1", "0"] {
        let r = app
            .client
            .get(format!("{}/v1/coupons", app.base))
            .bearer_auth(OTHER_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-ratelimit-limit"], "2");
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining);
    }
    let r = app
        .client
        .get(format!("{}/v1/coupons", app.base))
        .bearer_auth(OTHER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"status": 0, "message": "Too Many Attempts."})
    );
    // off by default: acme has no headers
    let r = app
        .client
        .get(format!("{}/v1/coupons", app.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-ratelimit-limit").is_none());
}
