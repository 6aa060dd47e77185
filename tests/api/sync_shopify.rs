//! The sync engine end to end with the Shopify simulator; every document and its variables are
//! validated against the reference schema.

use crate::helpers::*;
use crate::shopify_env::*;
use coupond::providers::shopify::documents;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn synced(body: &Value) {
    assert_eq!(body["synchronization_enabled"], true, "{body}");
    assert_eq!(body["synchronization_successful"], true, "{body}");
}

fn shopify(uuid: &str) -> Value {
    let mut c = coupon(uuid);
    c["sync"] = json!({"provider": "shopify"});
    c
}

#[test]
fn every_document_is_valid_against_the_reference_schema() {
    let schema = schema();
    for (name, doc) in documents::ALL {
        apollo_compiler::ExecutableDocument::parse_and_validate(&schema, *doc, *name)
            .unwrap_or_else(|e| panic!("{name}: {}", e.errors));
    }
    // the checker itself refuses what the schema refuses
    let bad_field =
        json!({"query": documents::CREATE, "variables": {"input": {"title": "x", "nonsense": 1}}});
    assert!(check_request(&schema, &bad_field.to_string()).is_err());
    let bad_doc =
        json!({"query": "mutation { discountCodeBasicCreate(basicCodeDiscount: {}) { nope } }"});
    assert!(check_request(&schema, &bad_doc.to_string()).is_err());
}

/// Create, update, add/remove codes, redeem, deactivate, reactivate, delete: after each step the
/// simulator holds what docs/providers/shopify.md says.
#[tokio::test]
async fn shopify_lifecycle() {
    let env = ShopifyEnv::start("", false).await;
    let app = &env.app;
    let mut c = shopify("SUMMER");
    c["name"] = json!("Summer sale");
    c["promotion_codes"] = json!([
        {"code": "SUMMER25", "minimum_order_status": true, "minimum_order_value": 50,
         "limit_to_specific_customer": true, "coupon_specific_customers": {"id": "gid://shopify/Customer/7"}},
        {"code": "summer-vip", "redemption_times_status": true, "redemption_times_value": 5,
         "expiration_date_status": true, "expiration_date_value": "2099-06-30"}
    ]);
    let (s, body) = app.post("/v1/coupons", c).await;
    assert_eq!(s, StatusCode::CREATED);
    synced(&body);
    assert_eq!(
        body["synchronization_message"],
        "The coupon was successfully created in Shopify."
    );
    assert_eq!(env.discounts_of("SUMMER").len(), 2);
    let a = env.discount("SUMMER25");
    let b = &a["codeDiscount"];
    assert_eq!(b["__typename"], "DiscountCodeBasic");
    assert_eq!(b["title"], "Summer sale");
    assert_eq!(b["status"], "ACTIVE");
    assert_eq!(b["customerGets"]["value"]["percentage"], 0.25);
    assert_eq!(b["customerGets"]["items"]["allItems"], true);
    assert_eq!(b["recurringCycleLimit"], 11, "11 months, monthly billing");
    assert_eq!(b["usageLimit"], 24);
    assert_eq!(b["endsAt"], Value::Null);
    assert_eq!(
        b["minimumRequirement"]["greaterThanOrEqualToSubtotal"]["amount"]
            .as_str()
            .map(|s| s.parse::<f64>().unwrap()),
        Some(50.0)
    );
    assert_eq!(
        b["context"]["customers"],
        json!([{"id": "gid://shopify/Customer/7"}])
    );
    let vip = env.discount("SUMMER-VIP");
    assert_eq!(vip["codeDiscount"]["usageLimit"], 5);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(vip["codeDiscount"]["endsAt"].as_str().unwrap())
            .unwrap(),
        chrono::DateTime::parse_from_rfc3339("2099-06-30T23:59:59Z").unwrap()
    );
    let tags = vip["codeDiscount"]["tags"].as_array().unwrap();
    for t in ["coupond", "coupond-program:acme", "coupond-coupon:SUMMER"] {
        assert!(tags.contains(&json!(t)), "{tags:?}");
    }
    let ids: Vec<Value> = env
        .discounts_of("SUMMER")
        .iter()
        .map(|d| d["id"].clone())
        .collect();

    // name and terms are edited in place
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "name": "Summer 2", "coupon_discount_type": "static", "coupon_discount_amount": 7.5}),
        )
        .await;
    synced(&body);
    let now: Vec<Value> = env.discounts_of("SUMMER");
    assert_eq!(now.iter().map(|d| d["id"].clone()).collect::<Vec<_>>(), ids);
    for d in &now {
        let v = &d["codeDiscount"]["customerGets"]["value"];
        assert_eq!(v["__typename"], "DiscountAmount", "{v}");
        assert_eq!(
            v["amount"]["amount"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap(),
            7.5
        );
        assert_eq!(d["codeDiscount"]["title"], "Summer 2");
    }

    // add and remove a code
    app.post(
        "/v1/promotion-codes",
        json!({"coupon_uuid": "SUMMER", "code": "EXTRA-1"}),
    )
    .await;
    env.drain().await;
    assert_eq!(env.discounts_of("SUMMER").len(), 3);
    app.delete(
        "/v1/promotion-codes",
        Some(json!({"code": "EXTRA-1", "coupon": {"uuid_code": "SUMMER"}})),
    )
    .await;
    env.drain().await;
    assert_eq!(env.discounts_of("SUMMER").len(), 2);
    assert!(env.sim.by_code("EXTRA-1").is_none(), "deleted");

    // a redemption is not a provider change
    let before = env.sim.common.requests().len();
    app.put(
        "/v1/promotion-codes",
        json!({"code": "SUMMER25", "redeem": true}),
    )
    .await;
    env.drain().await;
    assert_eq!(env.sim.common.requests().len(), before);

    // deactivate / reactivate
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "active": false}),
        )
        .await;
    synced(&body);
    assert!(
        env.discounts_of("SUMMER")
            .iter()
            .all(|d| d["codeDiscount"]["status"] == "EXPIRED")
    );
    let (_, body) = app
        .put(
            "/v1/coupons",
            json!({"uuid_code": "SUMMER", "active": true}),
        )
        .await;
    synced(&body);
    let now = env.discounts_of("SUMMER");
    assert!(
        now.iter().all(|d| d["codeDiscount"]["status"] == "ACTIVE"),
        "{now:?}"
    );
    let vip = env.discount("summer-vip");
    assert!(
        vip["codeDiscount"]["endsAt"]
            .as_str()
            .unwrap()
            .starts_with("2099-06-30T23:59:59"),
        "our expiry is back: {vip}"
    );

    // delete: gone
    app.delete("/v1/coupons/SUMMER", None).await;
    env.drain().await;
    assert!(env.discounts_of("SUMMER").is_empty());

    let checked = check_all(&env.sim);
    assert!(checked > 15, "{checked}");
    assert_eq!(env.sim.validation_failures(), 0);
}

#[tokio::test]
async fn refusals_are_named_and_permanent() {
    let env = ShopifyEnv::start("", false).await;
    let cases = [
        (
            json!({"coupon_duration_type": "hours", "coupon_duration_value": 3}),
            "coupon_duration_type",
        ),
        (
            json!({"promotion_codes": [{"code": "FT1", "first_time_order": true}]}),
            "first_time_order",
        ),
        (
            json!({"promotion_codes": [{"code": "C1", "limit_to_specific_customer": true, "coupon_specific_customers": {"id": "ann@example.com"}}]}),
            "gid://shopify/Customer/",
        ),
        (
            json!({"promotion_codes": [{"code": "S1", "limit_to_specific_subscriber": true, "coupon_specific_subscribers": {"id": 1}}]}),
            "subscribers",
        ),
    ];
    for (i, (patch, needle)) in cases.iter().enumerate() {
        let uuid = format!("ref{i}");
        let mut c = shopify(&uuid);
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        let (_, body) = env.app.post("/v1/coupons", c).await;
        assert_eq!(body["synchronization_successful"], false, "{body}");
        let msg = body["synchronization_message"].as_str().unwrap();
        assert!(
            msg.starts_with("The coupon could not be created in Shopify: Shopify cannot hold"),
            "{msg}"
        );
        assert!(msg.contains(needle), "{msg} should name {needle}");
        let (_, hist) = env.app.get(&format!("/v1/sync/coupons/{uuid}")).await;
        assert_eq!(hist["data"]["syncs"][0]["status"], "dead", "{hist}");
    }
    assert!(env.sim.discounts().is_empty());
    // yearly billing cannot hold 5 months
    let yearly = ShopifyEnv::start(
        "[programs.acme.shopify]\nbilling_interval = \"year\"\n",
        false,
    )
    .await;
    let mut c = shopify("Y");
    c["coupon_duration_value"] = json!(5);
    let (_, body) = yearly.app.post("/v1/coupons", c).await;
    assert!(
        body["synchronization_message"]
            .as_str()
            .unwrap()
            .contains("5 months"),
        "{body}"
    );
    // a code held by a discount coupond does not manage
    let foreign = env.sim.insert(
        json!({"codeDiscount": {"__typename": "DiscountCodeBasic", "title": "theirs", "tags": [],
        "codes": {"nodes": [{"code": "TAKEN"}]}}}),
    );
    let mut c = shopify("TAKER");
    c["promotion_codes"] = json!([{"code": "taken"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    let msg = body["synchronization_message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("{foreign}, which coupond does not manage")),
        "{msg}"
    );
}

/// A create whose answer was lost: TAKEN, looked up by code, ours → adopted, not duplicated.
#[tokio::test]
async fn lost_answers_are_adopted_not_duplicated() {
    let env = ShopifyEnv::start("", false).await;
    env.sim.common.set_faults(coupond::simulators::Faults {
        drop_rate: 0.5,
        ..Default::default()
    });
    for i in 0..6 {
        let mut c = shopify(&format!("D{i}"));
        c["promotion_codes"] = json!([{"code": format!("D{i}-A")}, {"code": format!("D{i}-B")}]);
        env.app.post("/v1/coupons", c).await;
    }
    env.sim.common.set_faults(Default::default());
    drain_until_synced(&env.app, 30).await;
    for i in 0..6 {
        assert_eq!(env.discounts_of(&format!("D{i}")).len(), 2, "D{i}");
    }
    assert_eq!(env.sim.discounts().len(), 12, "no duplicates");
    check_all(&env.sim);
}

/// The cost bucket Shopify reports paces the requests: a small bucket throttles at most the
/// requests sent before the first answer told us its size; everything ends synced.
#[tokio::test]
async fn pacing_follows_the_reported_cost_bucket() {
    for http_429 in [false, true] {
        let env = ShopifyEnv::start("[sync]\nworkers = 4\ninline_deadline_ms = 1\n", true).await;
        env.sim.set_bucket(60.0, 100.0);
        env.sim.set_throttle_http_429(http_429);
        for i in 0..15 {
            let mut c = shopify(&format!("T{i}"));
            c["promotion_codes"] =
                json!([{"code": format!("T{i}-A")}, {"code": format!("T{i}-B")}]);
            env.app.post("/v1/coupons", c).await;
        }
        wait_synced(&env.app, 60).await;
        assert_eq!(env.sim.discounts().len(), 30);
        let throttled = env.sim.throttled();
        let total = env.sim.common.requests().len();
        eprintln!("429 mode {http_429}: {throttled} throttled of {total}");
        assert!(
            throttled <= 4,
            "the pacer should keep throttling to the first burst: {throttled} of {total}"
        );
    }
}

/// 429s, 500s and dropped answers: everything ends synced, once, within Retry-After.
#[tokio::test]
async fn faults_end_synced() {
    let env = ShopifyEnv::start("[sync]\nworkers = 4\ninline_deadline_ms = 1\n\
         retry_schedule = [\"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\", \"20ms\"]\n", true).await;
    env.sim.common.set_faults(coupond::simulators::Faults {
        rate_429: 0.25,
        retry_after_secs: Some(1),
        retry_after_share: 0.15,
        rate_500: 0.2,
        drop_rate: 0.05,
        ..Default::default()
    });
    for i in 0..20 {
        let mut c = shopify(&format!("F{i}"));
        c["promotion_codes"] = json!([{"code": format!("FC{i}")}]);
        env.app.post("/v1/coupons", c).await;
    }
    wait_synced(&env.app, 90).await;
    for i in 0..20 {
        assert_eq!(env.discounts_of(&format!("F{i}")).len(), 1, "F{i}");
    }
    let reqs = env.sim.common.requests();
    assert!(reqs.iter().any(|r| r.status == 429) && reqs.iter().any(|r| r.status == 500));
    assert_eq!(*env.sim.common.retry_after_violations.lock().unwrap(), 0);
}

/// 401 parks the connection, and so do frozen or locked shops briefly; all resume.
#[tokio::test]
async fn rejected_token_parks_and_resumes() {
    let env = ShopifyEnv::start("", true).await;
    env.sim.set_token("shpat_rotated");
    let mut c = shopify("CRED");
    c["promotion_codes"] = json!([{"code": "CRED-1"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    assert_eq!(body["synchronization_successful"], false);
    assert!(
        body["synchronization_message"]
            .as_str()
            .unwrap()
            .contains("rejected the credentials"),
        "{body}"
    );
    env.sim.set_token(SHOPIFY_TOKEN);
    wait_synced(&env.app, 30).await;
    assert_eq!(env.discounts_of("CRED").len(), 1);

    env.sim.set_shop_state(Some(423));
    let mut c = shopify("LOCK");
    c["promotion_codes"] = json!([{"code": "LOCK-1"}]);
    let (_, body) = env.app.post("/v1/coupons", c).await;
    assert!(
        body["synchronization_message"]
            .as_str()
            .unwrap()
            .contains("locked"),
        "{body}"
    );
    env.sim.set_shop_state(None);
    wait_synced(&env.app, 30).await;
    assert_eq!(env.discounts_of("LOCK").len(), 1);
}
