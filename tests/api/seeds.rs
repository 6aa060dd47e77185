//! Every example request of the seeds, answered in the seeds' response shape, field for field
//! (ids and timestamps aside).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

const COUPON_WRITE_KEYS: [&str; 17] = [
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
    "additional_info",
    "times_redeemed",
    "created_at",
    "updated_at",
    "deleted_at",
];
const ENVELOPE_KEYS: [&str; 6] = [
    "data",
    "status",
    "message",
    "synchronization_enabled",
    "synchronization_successful",
    "synchronization_message",
];

/// Seed 002: the create request and its response.
#[tokio::test]
async fn seed_002_create_coupon() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .post(
            "/v1/coupons",
            json!({"name": "PARTNERO25", "uuid_code": "coupon_123", "coupon_discount_type": "percent",
                   "coupon_discount_amount": 25, "coupon_duration_type": "months", "coupon_duration_value": 11,
                   "redemption_times_status": true, "redemption_times_value": 24}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(keys(&body), ENVELOPE_KEYS);
    assert_eq!(keys(&body["data"]), COUPON_WRITE_KEYS);
    let expected = json!({
        "data": {"name": "PARTNERO25", "uuid_code": "coupon_123", "active": true, "coupon_discount_type": "percent",
                 "coupon_discount_amount": 25, "coupon_duration_type": "months", "coupon_duration_value": 11,
                 "redemption_specific_date_status": false, "redemption_specific_date_value": null,
                 "redemption_times_status": true, "redemption_times_value": 24, "metadata": [], "additional_info": [],
                 "times_redeemed": 0, "deleted_at": null},
        "status": 1, "message": "Coupon created in the app successfully.",
        "synchronization_enabled": false, "synchronization_successful": false, "synchronization_message": ""
    });
    assert_eq!(without_times(&body), expected);
    let ts = body["data"]["created_at"].as_str().unwrap();
    assert_eq!(ts.len(), "2025-05-07T17:43:26.000000Z".len(), "{ts}");
    assert!(ts.ends_with('Z'));
    assert_eq!(body["data"]["created_at"], body["data"]["updated_at"]);
}

/// Seed 002: `sync: null` means no sync; a provider that is not connected gets the exact 422 and stores nothing.
#[tokio::test]
async fn seed_002_sync_rules() {
    let app = TestApp::spawn().await;
    let mut c = coupon("nosync");
    c["sync"] = json!(null);
    let (s, body) = app.post("/v1/coupons", c).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(body["synchronization_enabled"], false);

    let mut c = coupon("coupon_123");
    c["sync"] = json!({"provider": "woocommerce"});
    let (s, body) = app.post("/v1/coupons", c).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"message": "woocommerce is not connected for this program.",
               "errors": {"sync.provider": ["woocommerce is not connected for this program."]}})
    );
    assert_eq!(
        app.get("/v1/coupons/coupon_123").await.0,
        StatusCode::NOT_FOUND,
        "nothing is stored"
    );

    let mut c = coupon("coupon_123");
    c["sync"] = json!({"provider": "paypal"});
    let (s, body) = app.post("/v1/coupons", c).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"]["sync.provider"][0],
        "The selected sync.provider is invalid."
    );
}

/// Seed 002: create with a connected provider reports sync as enabled.
#[tokio::test]
async fn seed_002_create_with_connected_provider() {
    let app = TestApp::spawn().await;
    let mut c = coupon("coupon_123");
    c["sync"] = json!({"provider": "stripe"});
    let (s, body) = app.post("/v1/coupons", c).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(keys(&body), ENVELOPE_KEYS);
    assert_eq!(body["synchronization_enabled"], true);
    assert!(
        body["synchronization_message"]
            .as_str()
            .unwrap()
            .contains("Stripe"),
        "{body}"
    );
    // GET carries no sync fields (B27)
    let (_, got) = app.get("/v1/coupons/coupon_123").await;
    assert_eq!(keys(&got), ["data", "status"]);
}

/// Seed 000: rename, assign a provider, record a redemption, the already-set 422.
#[tokio::test]
async fn seed_000_update_coupon() {
    let app = TestApp::spawn().await;
    app.post("/v1/coupons", coupon("coupon_123")).await;
    app.post(
        "/v1/transactions",
        json!({"key": "order_4561", "amount": 10, "customer": {"key": "c1"}}),
    )
    .await;

    let (s, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "coupon_123", "name": "PARTNERO25_UPDATED"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys(&body), ENVELOPE_KEYS);
    assert_eq!(keys(&body["data"]), COUPON_WRITE_KEYS);
    assert_eq!(body["data"]["name"], "PARTNERO25_UPDATED");
    assert_eq!(body["message"], "Coupon updated in the app successfully.");
    assert_eq!(
        (
            body["synchronization_enabled"].clone(),
            body["synchronization_message"].clone()
        ),
        (json!(false), json!(""))
    );

    let (s, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "coupon_123", "redeem": true, "transaction_key": "order_4561"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["data"]["times_redeemed"], 1);
    let log = &body["data"]["additional_info"]["redemptions"];
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(keys(&log[0]), ["redeemed_at", "transaction_key"]);
    assert_eq!(log[0]["transaction_key"], "order_4561");
    assert_eq!(
        log[0]["redeemed_at"], body["data"]["updated_at"],
        "redeemed_at equals the new updated_at (B11)"
    );

    let (s, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "coupon_123", "sync": {"provider": "stripe"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["synchronization_enabled"], true);

    let (s, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "coupon_123", "sync": {"provider": "shopify"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"],
        json!({"sync.provider": ["sync.provider is already set on this coupon and cannot be changed."]})
    );
    // not connected wins over already set (B23)
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "coupon_123", "sync": {"provider": "paddle"}}),
        )
        .await;
    assert_eq!(
        body["errors"]["sync.provider"][0],
        "paddle is not connected for this program."
    );
    // the same provider again is a 200 no-op
    let (s, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "coupon_123", "sync": {"provider": "stripe"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["synchronization_message"], "");
}

/// Seed 001: metadata merge on a promotion code and a redemption with a transaction key.
#[tokio::test]
async fn seed_001_update_promotion_code() {
    let app = TestApp::spawn().await;
    let mut c = coupon("coupon_123");
    c["promotion_codes"] = json!([{"code": "PROMO123", "first_time_order": true, "minimum_order_status": true,
                                    "minimum_order_value": 22, "metadata": {"source": "seed"}}]);
    assert_eq!(app.post("/v1/coupons", c).await.0, StatusCode::CREATED);
    app.post(
        "/v1/transactions",
        json!({"key": "order_4561", "amount": 10, "customer": {"key": "c1"}}),
    )
    .await;

    let (s, body) = app
        .put(
            "/v1/promotion-codes",
            json!({"code": "PROMO123", "metadata": {"campaign": "summer_sale"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys(&body), ["data", "status", "message"]);
    assert_eq!(
        body["message"],
        "Promotion code updated in the app successfully."
    );
    assert_eq!(
        keys(&body["data"]),
        [
            "code",
            "first_time_order",
            "limit_to_specific_partner",
            "coupon_specific_partners",
            "limit_to_specific_customer",
            "coupon_specific_customers",
            "minimum_order_status",
            "minimum_order_value",
            "expiration_date_status",
            "expiration_date_value",
            "redemption_times_status",
            "redemption_times_value",
            "metadata",
            "additional_info",
            "times_redeemed"
        ]
    );
    assert_eq!(
        body["data"]["metadata"],
        json!({"source": "seed", "campaign": "summer_sale"}),
        "merged (B8)"
    );

    let (_, body) = app
        .put(
            "/v1/promotion-codes",
            json!({"code": "PROMO123", "redeem": true, "transaction_key": "order_4561"}),
        )
        .await;
    let expected = json!({
        "data": {"code": "PROMO123", "first_time_order": true, "limit_to_specific_partner": false,
                 "coupon_specific_partners": [], "limit_to_specific_customer": false, "coupon_specific_customers": [],
                 "minimum_order_status": true, "minimum_order_value": 22, "expiration_date_status": false,
                 "expiration_date_value": null, "redemption_times_status": false, "redemption_times_value": null,
                 "metadata": {"source": "seed", "campaign": "summer_sale"},
                 "additional_info": {"redemptions": [{"transaction_key": "order_4561"}]}, "times_redeemed": 1},
        "status": 1, "message": "Promotion code updated in the app successfully."
    });
    assert_eq!(without_times(&body), expected);
    // the same key again: silent no-op (B15)
    let (s, again) = app
        .put(
            "/v1/promotion-codes",
            json!({"code": "PROMO123", "redeem": true, "transaction_key": "order_4561"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["data"]["times_redeemed"], 1);
}

/// Seed 003: the legacy create (on/off strings, empty uuid_code, `promotion_codes: []`), fetch, update with `id`, delete.
#[tokio::test]
async fn seed_003_legacy_flow() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .post(
            "/v1/coupons",
            json!({"name": "PARTNERO25", "uuid_code": "", "active": true, "coupon_discount_type": "percent",
                   "coupon_discount_amount": 25, "coupon_duration_type": "months", "coupon_duration_value": 11,
                   "redemption_specific_date_status": "off", "redemption_specific_date_value": null,
                   "redemption_times_status": "on", "redemption_times_value": 24, "promotion_codes": []}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let uuid = body["data"]["uuid_code"].as_str().unwrap().to_owned();
    assert_eq!(uuid.len(), 8);
    assert!(
        uuid.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    assert_eq!(body["data"]["redemption_times_value"], 24);

    let (s, got) = app.get(&format!("/v1/coupons/{uuid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["data"]["promotion_codes"], json!({"data": []}));
    assert!(got["data"].get("id").is_none(), "no integer id (§9 item 4)");

    let (s, upd) = app
        .put(
            "/v1/coupons",
            json!({"id": 5, "name": "PARTNERO30", "uuid_code": uuid, "coupon_discount_type": "percent",
                   "coupon_discount_amount": 30, "coupon_duration_type": "months", "coupon_duration_value": 11,
                   "redemption_specific_date_status": false, "redemption_specific_date_value": null,
                   "redemption_times_status": true, "redemption_times_value": 24}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{upd}");
    assert_eq!(
        (
            upd["data"]["name"].clone(),
            upd["data"]["coupon_discount_amount"].clone()
        ),
        (json!("PARTNERO30"), json!(30))
    );

    let (_, list) = app.get("/v1/coupons").await;
    assert_eq!(keys(&list), ["data", "links", "meta", "status"]);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let (s, del) = app.delete(&format!("/v1/coupons/{uuid}"), None).await;
    assert_eq!((s, del), (StatusCode::OK, json!({"status": 1})));
    let (s, del) = app.delete(&format!("/v1/coupons/{uuid}"), None).await;
    assert_eq!(
        (s, del),
        (
            StatusCode::NOT_FOUND,
            json!({"status": 0, "message": "Coupon not found"})
        )
    );
    let (_, list) = app.get("/v1/coupons").await;
    assert_eq!(list["data"], json!([]));
}
