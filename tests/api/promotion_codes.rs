//! `/v1/promotion-codes` rules (spec §4).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_get_list_and_uniqueness() {
    let app = TestApp::spawn().await;
    app.post("/v1/coupons", coupon("c1")).await;
    let (s, body) = app
        .post(
            "/v1/promotion-codes",
            json!({"coupon_uuid": "c1", "code": "Spring-10", "limit_to_specific_partner": true,
                   "coupon_specific_partners": {"id": 7, "full_name": "Ann Lee"}, "expiration_date_status": true,
                   "expiration_date_value": "2099-01-01", "redemption_times_status": "on", "redemption_times_value": "3",
                   "limit_to_specific_subscriber": true, "coupon_specific_subscribers": [{"id": "s1", "subscriber_full_name": "S"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(keys(&body), ["data", "status", "message"]);
    assert_eq!(
        body["message"],
        "Promotion code created in the app successfully."
    );
    assert_eq!(
        body["data"]["coupon_specific_partners"],
        json!([{"id": 7, "full_name": "Ann Lee"}])
    );
    assert_eq!(
        body["data"]["expiration_date_value"],
        "2099-01-01T23:59:59.000000Z"
    );
    assert_eq!(body["data"]["redemption_times_value"], 3);
    assert!(
        body["data"].get("coupon_specific_subscribers").is_none(),
        "subscribers are stored, not emitted (§9 item 12)"
    );

    let (s, body) = app
        .post(
            "/v1/promotion-codes",
            json!({"coupon_uuid": "c1", "code": "SPRING-10"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"]["code"][0],
        "The code has already been taken."
    );
    let (s, body) = app
        .post(
            "/v1/promotion-codes",
            json!({"coupon_uuid": "nope", "code": "X1"}),
        )
        .await;
    assert_eq!(
        (s, body["errors"]["coupon_uuid"][0].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("The selected coupon uuid is invalid.")
        )
    );
    let (s, body) = app
        .post("/v1/promotion-codes", json!({"coupon_id": 5}))
        .await;
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && body["errors"]["coupon_uuid"].is_array());
    // legacy singular alias; generated code
    let (s, body) = app
        .post("/v1/promotion-code", json!({"coupon_uuid": "c1"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(body["data"]["code"].as_str().unwrap().len(), 8);

    let (s, body) = app.get("/v1/promotion-codes/spring-10").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys(&body["data"]).last(), Some(&"coupon"));
    assert_eq!(
        keys(&body["data"]["coupon"]),
        [
            "name",
            "uuid_code",
            "active",
            "coupon_discount_type",
            "coupon_discount_amount",
            "coupon_duration_type",
            "coupon_duration_value",
            "created_at",
            "updated_at"
        ]
    );
    let (_, list) = app.get("/v1/promotion-codes").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert!(list["data"][0].get("coupon").is_none());
    let (s, body) = app.get("/v1/promotion-codes/none").await;
    assert_eq!(
        (s, body),
        (
            StatusCode::NOT_FOUND,
            json!({"status": 0, "message": "Promotion code not found"})
        )
    );
}

#[tokio::test]
async fn update_partner_switch_and_ignored_fields() {
    let app = TestApp::spawn().await;
    let mut c = coupon("c1");
    c["promotion_codes"] = json!([{"code": "P1", "limit_to_specific_partner": true, "coupon_specific_partners": [{"id": 1, "full_name": "A"}]}]);
    app.post("/v1/coupons", c).await;
    let (_, body) = app.put("/v1/promotion-codes", json!({"code": "P1", "limit_to_specific_partner": false, "first_time_order": true, "minimum_order_status": true})).await;
    assert_eq!(body["data"]["coupon_specific_partners"], json!([]));
    assert_eq!(body["data"]["limit_to_specific_partner"], false);
    assert_eq!(
        body["data"]["first_time_order"], false,
        "only the documented fields change"
    );
    let (s, body) = app
        .put(
            "/v1/promotion-codes",
            json!({"code": "P1", "limit_to_specific_partner": true}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["coupon_specific_partners"].is_array());
    let (_, body) = app.put("/v1/promotion-codes", json!({"code": "P1", "limit_to_specific_partner": "on", "coupon_specific_partners": {"id": "x9", "full_name": "B"}})).await;
    assert_eq!(
        body["data"]["coupon_specific_partners"],
        json!([{"id": "x9", "full_name": "B"}])
    );
    let (s, _) = app
        .put(
            "/v1/promotion-codes",
            json!({"code": "NOPE", "metadata": {"a": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn code_redemptions_are_separate_from_the_coupon() {
    let app = TestApp::spawn().await;
    let mut c = coupon("c1");
    c["promotion_codes"] =
        json!([{"code": "P1", "redemption_times_status": true, "redemption_times_value": 1}]);
    app.post("/v1/coupons", c).await;
    let (_, body) = app
        .put("/v1/promotion-codes", json!({"code": "P1", "redeem": true}))
        .await;
    assert_eq!(body["data"]["times_redeemed"], 1);
    let (s, body) = app
        .put("/v1/promotion-codes", json!({"code": "P1", "redeem": true}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"]["redeem"][0],
        "The promotion code has reached its redemption limit."
    );
    let (_, coupon) = app.get("/v1/coupons/c1").await;
    assert_eq!(
        coupon["data"]["times_redeemed"], 0,
        "a code redeem leaves the coupon counter alone (B19)"
    );
    app.put("/v1/coupons", json!({"uuid_code": "c1", "active": false}))
        .await;
    app.post(
        "/v1/promotion-codes",
        json!({"coupon_uuid": "c1", "code": "P2"}),
    )
    .await;
    let (s, body) = app
        .put("/v1/promotion-codes", json!({"code": "P2", "redeem": true}))
        .await;
    assert_eq!(
        (s, body["errors"]["redeem"][0].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("The coupon is not active.")
        )
    );
}

#[tokio::test]
async fn delete_nested_envelope_and_reuse() {
    let app = TestApp::spawn().await;
    let mut c = coupon("c1");
    c["promotion_codes"] = json!([{"code": "P1"}]);
    app.post("/v1/coupons", c).await;
    app.post("/v1/coupons", coupon("c2")).await;
    // wrong coupon: nested not-found
    let (s, body) = app
        .delete(
            "/v1/promotion-codes",
            Some(json!({"code": "P1", "coupon": {"uuid_code": "c2"}})),
        )
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::NOT_FOUND,
            json!({"data": {"status": 0, "message": "Promotion code not found"}})
        )
    );
    let (s, body) = app
        .delete("/v1/promotion-codes", Some(json!({"code": "P1"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["coupon.uuid_code"].is_array() && body.get("data").is_none());
    // the SDK's form: PHP bracket query string with the whole coupon model
    let (s, body) = app.delete("/v1/promotion-codes?code=P1&coupon%5Buuid_code%5D=c1&coupon%5Bname%5D=c1&coupon%5Bactive%5D=1", None).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            json!({"data": {"status": 1, "message": "Promotion code deleted in the app successfully"}})
        )
    );
    assert_eq!(
        app.get("/v1/promotion-codes/P1").await.0,
        StatusCode::NOT_FOUND
    );
    let (s, _) = app
        .post(
            "/v1/promotion-codes",
            json!({"coupon_uuid": "c2", "code": "P1"}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "a deleted code can be created again at once (B30)"
    );
}
