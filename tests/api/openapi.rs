//! `/openapi.json` describes every route, and every documented request field is one the parser reads.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn doc(app: &TestApp) -> Value {
    app.client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_route_is_described() {
    let app = TestApp::spawn().await;
    let d = doc(&app).await;
    assert!(d["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, methods) in [
        ("/v1/coupons", &["get", "post", "put", "delete"][..]),
        ("/v1/coupons/{uuid_code}", &["get", "delete"]),
        ("/v1/promotion-codes", &["get", "post", "put", "delete"]),
        ("/v1/promotion-codes/{code}", &["get"]),
        ("/v1/transactions", &["get", "post", "delete"]),
        ("/v1/transactions/{key}", &["get", "delete"]),
    ] {
        for m in methods {
            assert!(d["paths"][path][m].is_object(), "{m} {path} missing");
        }
    }
    let coupon_props = d["components"]["schemas"]["CouponOut"]["properties"]
        .as_object()
        .unwrap();
    assert_eq!(coupon_props.len(), 18, "17 keys + promotion_codes");
}

/// Drift check: sending a wrong type in each property of the documented create/update bodies
/// yields a 422 naming that property, so the parser really reads every documented field.
#[tokio::test]
async fn documented_request_fields_are_parsed() {
    let app = TestApp::spawn().await;
    app.post("/v1/coupons", coupon("base")).await;
    let d = doc(&app).await;
    let schemas = &d["components"]["schemas"];
    for (schema, path, method, base) in [
        (
            "CouponCreateRequest",
            "/v1/coupons",
            reqwest::Method::POST,
            coupon("x1"),
        ),
        (
            "CouponUpdateRequest",
            "/v1/coupons",
            reqwest::Method::PUT,
            json!({"uuid_code": "base"}),
        ),
    ] {
        let props = schemas[schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} missing"));
        assert!(props.len() >= 10);
        for name in props.keys() {
            if name == "uuid_code" && schema == "CouponUpdateRequest" {
                continue;
            }
            let mut body = base.clone();
            // an object where a scalar is expected, a number where a string/object/array is expected
            let wrong = if ["metadata", "sync", "promotion_codes"].contains(&name.as_str()) {
                json!(5)
            } else {
                json!({"x": {}})
            };
            body[name] = wrong;
            let (s, resp) = app.call(method.clone(), path, Some(KEY), Some(&body)).await;
            assert_eq!(
                s,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{schema}.{name}: {resp}"
            );
            let named = resp["errors"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k == name || k.starts_with(&format!("{name}.")));
            assert!(
                named,
                "{schema}.{name} is documented but the parser did not name it: {resp}"
            );
        }
    }
}
