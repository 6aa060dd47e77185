//! `/v1/transactions` (spec §5).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_list_get_delete() {
    let app = TestApp::spawn().await;
    let (s, body) = app.post("/v1/transactions", json!({"key": "order_1", "amount": "99.90", "amount_units": "eur", "customer": {"key": "cust_1"}, "partner": {"key": "p1"}, "created_at": 1700000000})).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(keys(&body), ["data", "status"]);
    assert_eq!(
        keys(&body["data"]),
        [
            "key",
            "action",
            "amount",
            "partner",
            "customer",
            "credit",
            "is_currency",
            "amount_units",
            "created_at",
            "deleted_at",
            "rewards"
        ]
    );
    assert_eq!(body["data"]["amount"], json!(99.9));
    assert_eq!(body["data"]["amount_units"], "EUR");
    assert_eq!(body["data"]["created_at"], "2023-11-14T22:13:20.000000Z");
    assert_eq!(body["data"]["rewards"], json!([]));
    let (s, body) = app
        .post(
            "/v1/transactions",
            json!({"key": "order_1", "amount": 1, "customer": {"key": "c"}}),
        )
        .await;
    assert_eq!(
        (s, body["errors"]["key"][0].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("The key has already been taken.")
        )
    );
    // batch: all or nothing
    let (s, body) = app.post("/v1/transactions", json!({"customer": {"key": "c"}, "transactions": [{"key": "b1", "amount": 1}, {"key": "order_1", "amount": 2}]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["transactions.1.key"].is_array(), "{body}");
    assert_eq!(
        app.get("/v1/transactions/b1").await.0,
        StatusCode::NOT_FOUND,
        "nothing of a failed batch is stored"
    );
    let (s, body) = app.post("/v1/transactions", json!({"customer": {"key": "c"}, "transactions": [{"key": "b1", "amount": 1}, {"key": "b2", "reward": 2}]})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(body["data"].as_array().unwrap().len(), 2);

    let (_, list) = app.get("/v1/transactions?key=b2&limit=5").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(
        list["links"]["first"]
            .as_str()
            .unwrap()
            .ends_with("/v1/transactions?limit=5&key=b2&page=1")
    );
    let (_, list) = app.get("/v1/transactions?partner%5Bkey%5D=p1").await;
    assert_eq!(list["data"][0]["key"], "order_1");

    assert_eq!(
        app.delete("/v1/transactions/order_1", None).await,
        (StatusCode::OK, json!({"status": 1}))
    );
    assert_eq!(
        app.delete("/v1/transactions/order_1", None).await,
        (
            StatusCode::NOT_FOUND,
            json!({"status": 0, "message": "Transaction not found"})
        )
    );
    assert_eq!(
        app.delete("/v1/transactions", Some(json!({"key": "b1"})))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        app.delete("/v1/transactions?key=b2", None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn validation() {
    let app = TestApp::spawn().await;
    let (s, body) = app.post("/v1/transactions", json!({"key": "k"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["errors"]["amount"].is_array() && body["errors"]["customer.key"].is_array(),
        "{body}"
    );
    let (s, body) = app
        .post(
            "/v1/transactions",
            json!({"amount": "lots", "customer": {"key": "c"}}),
        )
        .await;
    assert_eq!(
        (s, body["errors"]["amount"][0].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("The amount field must be a number.")
        )
    );
}
