//! The WooCommerce simulator answers like the recorded WooCommerce 10.0.2 in
//! `../shared/reference/woocommerce-coupons-v3-samples/`: same status, same error bodies, same
//! object fields in the same order. And the adapter authenticates the way WooCommerce accepts.

use crate::woo_env::*;
use coupond::config::{BillingInterval, Secret, WooAuth, WooDeleteMode};
use coupond::providers::http::{Limiter, Transport};
use coupond::providers::woocommerce::{WooClient, WooOptions};
use coupond::simulators::woocommerce::WooSim;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn sample(name: &str) -> (u16, Value) {
    let path = format!(
        "{}/../shared/reference/woocommerce-coupons-v3-samples/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
    )
    .unwrap();
    (v["status"].as_u64().unwrap() as u16, v["body"].clone())
}

/// Same keys in the same order, recursively (values may differ: ids, dates, hosts).
fn same_shape(ours: &Value, theirs: &Value, at: &str) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            assert_eq!(ka, kb, "{at}: keys differ");
            for k in b.keys() {
                same_shape(&a[k], &b[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) if !a.is_empty() && !b.is_empty() => {
            same_shape(&a[0], &b[0], &format!("{at}[0]"));
        }
        _ => {}
    }
}

/// An error answer: same status, same body (errors carry no ids or dates).
fn same_error(got: (u16, Value), name: &str) {
    let (status, body) = sample(name);
    assert_eq!(got.0, status, "{name}: status");
    assert_eq!(got.1, body, "{name}: body");
}

struct Shop {
    sim: Arc<WooSim>,
    base: String,
    client: reqwest::Client,
}

impl Shop {
    async fn start() -> Self {
        let sim = WooSim::new(WOO_KEY, WOO_SECRET);
        // TLS terminated in front of the site: Basic auth is accepted
        sim.set_https(true);
        let addr = coupond::simulators::serve(sim.router(), 0).await.unwrap();
        Self {
            sim,
            base: format!("http://{addr}/wp-json/wc/v3"),
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(WOO_KEY, Some(WOO_SECRET));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let s = resp.status().as_u16();
        (s, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}

#[tokio::test]
async fn simulator_answers_like_the_recorded_woocommerce() {
    let shop = Shop::start().await;
    use reqwest::Method;
    let (_, full) = sample("create_full");
    let mut req = full.clone();
    for k in [
        "id",
        "status",
        "date_created",
        "date_created_gmt",
        "date_modified",
        "date_modified_gmt",
        "date_expires_gmt",
        "usage_count",
        "used_by",
        "_links",
    ] {
        req.as_object_mut().unwrap().remove(k);
    }
    req["code"] = json!("Summer10");
    req["meta_data"] =
        json!([{"key": "partnero_uuid", "value": "abc-123"}, {"key": "partner_id", "value": 42}]);
    let (s, body) = shop.post("/coupons", req.clone()).await;
    assert_eq!(s, 201, "{body}");
    same_shape(&body, &full, "create_full");
    assert_eq!(body["code"], "summer10", "lower-cased");
    assert_eq!(body["amount"], "10.00");
    assert_eq!(
        body["meta_data"][1]["value"], "42",
        "scalars come back as strings"
    );
    let id = body["id"].as_i64().unwrap();

    same_error(
        shop.post("/coupons", json!({"code": "summer10", "amount": "1"}))
            .await,
        "create_duplicate_same_case",
    );
    same_error(
        shop.post("/coupons", json!({"code": "SUMMER10", "amount": "1"}))
            .await,
        "create_duplicate_other_case",
    );
    same_error(
        shop.post("/coupons", json!({"code": "num", "amount": 10}))
            .await,
        "create_amount_number",
    );
    same_error(
        shop.post(
            "/coupons",
            json!({"code": "badtype", "amount": "1", "discount_type": "percentage"}),
        )
        .await,
        "create_bad_type",
    );
    same_error(
        shop.post("/coupons", json!({"amount": "1"})).await,
        "create_no_code",
    );
    let (s, over) = shop
        .post(
            "/coupons",
            json!({"code": "over100", "amount": "150", "discount_type": "percent"}),
        )
        .await;
    let (ss, sb) = sample("create_percent_over_100");
    assert_eq!((s, &over["amount"]), (ss, &sb["amount"]), "silently 0.00");
    let (_, d) = shop
        .post(
            "/coupons",
            json!({"code": "dateonly", "date_expires": "2031-06-30"}),
        )
        .await;
    assert_eq!(
        d["date_expires"],
        sample("create_date_only").1["date_expires"]
    );
    let (_, d) = shop
        .post(
            "/coupons",
            json!({"code": "dategmt", "date_expires_gmt": "2031-06-30T10:00:00"}),
        )
        .await;
    assert_eq!(
        d["date_expires"],
        sample("create_date_gmt").1["date_expires"],
        "date_expires_gmt is ignored"
    );
    same_error(
        shop.send(Method::GET, "/coupons/999999", None).await,
        "get_not_found",
    );
    let (_, other) = shop.post("/coupons", json!({"code": "other"})).await;
    let other_id = other["id"].as_i64().unwrap();
    same_error(
        shop.send(
            Method::PUT,
            &format!("/coupons/{other_id}"),
            Some(json!({"code": "SUMMER10"})),
        )
        .await,
        "update_code_to_existing",
    );
    same_error(
        shop.send(Method::GET, "/coupons?per_page=101", None).await,
        "per_page_101",
    );
    let (s, page) = shop
        .send(Method::GET, "/coupons?per_page=2&page=50", None)
        .await;
    assert_eq!((s, page), sample("page_beyond"));

    // meta: by key replaces, null deletes
    let (_, m) = shop
        .send(
            Method::PUT,
            &format!("/coupons/{id}"),
            Some(json!({"meta_data": [{"key": "partner_id", "value": "43"}]})),
        )
        .await;
    let rows: Vec<&Value> = m["meta_data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["key"] == "partner_id")
        .collect();
    assert_eq!((rows.len(), &rows[0]["value"]), (1, &json!("43")));
    let (_, m) = shop
        .send(
            Method::PUT,
            &format!("/coupons/{id}"),
            Some(json!({"meta_data": [{"key": "partner_id", "value": null}]})),
        )
        .await;
    assert!(
        m["meta_data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["key"] != "partner_id")
    );
    // usage_limit 0 → unlimited (null); status writes ignored
    let (_, u) = shop
        .send(
            Method::PUT,
            &format!("/coupons/{id}"),
            Some(json!({"usage_limit": 0})),
        )
        .await;
    assert_eq!(
        u["usage_limit"],
        sample("usage_limit_zero_update").1["usage_limit"]
    );
    let (_, dr) = shop
        .post("/coupons", json!({"code": "draftme", "status": "draft"}))
        .await;
    assert_eq!(dr["status"], sample("status_draft_create").1["status"]);

    // trash: the body is the coupon before; then status trash, invisible to ?code=, reusable
    let (s, before) = shop
        .send(Method::DELETE, &format!("/coupons/{id}"), None)
        .await;
    let (ts, tb) = sample("delete_no_force");
    assert_eq!((s, &before["status"]), (ts, &tb["status"]));
    let (_, after) = shop
        .send(Method::GET, &format!("/coupons/{id}"), None)
        .await;
    assert_eq!(after["status"], sample("get_after_trash").1["status"]);
    let (_, listed) = shop.send(Method::GET, "/coupons?code=summer10", None).await;
    assert_eq!(listed, json!([]));
    let (_, trash) = shop.send(Method::GET, "/coupons?status=trash", None).await;
    assert_eq!(trash.as_array().unwrap().len(), 1);
    let (s, again) = shop
        .post("/coupons", json!({"code": "summer10", "amount": "1"}))
        .await;
    assert_eq!(s, sample("create_same_code_while_trashed").0, "{again}");
    // force: last state, then 404
    let (s, _) = shop
        .send(Method::DELETE, &format!("/coupons/{id}?force=true"), None)
        .await;
    assert_eq!(s, sample("delete_force").0);
    same_error(
        shop.send(Method::DELETE, &format!("/coupons/{id}?force=true"), None)
            .await,
        "delete_force_again",
    );

    // batch: per-item errors in order; more than 100 items refused
    let (s, b) = shop
        .post(
            "/coupons/batch",
            json!({"create": [{"code": "batch1", "amount": "5"}, {"code": "batch1", "amount": "6"}, {"code": "batch2", "amount": "7", "discount_type": "percent"}],
                   "update": [{"id": 999999, "amount": "1"}],
                   "delete": [other_id]}),
        )
        .await;
    let (bs, bb) = sample("batch_mixed");
    assert_eq!(s, bs);
    assert_eq!(b["create"][1], bb["create"][1], "the failed create");
    same_shape(&b["create"][0], &bb["create"][0], "batch create");
    let failed_update = b["update"][0].clone();
    assert!(
        failed_update["error"]["code"] == "woocommerce_rest_shop_coupon_invalid_id",
        "{b}"
    );
    let items: Vec<Value> = (0..101).map(|i| json!({"code": format!("b{i}")})).collect();
    same_error(
        shop.post("/coupons/batch", json!({"create": items})).await,
        "batch_101",
    );
    assert_eq!(shop.sim.oauth_rejections(), 0);
}

fn client(url: &str, auth: WooAuth) -> WooClient {
    let t = Transport::new(
        "WooCommerce",
        reqwest::Client::new(),
        Arc::new(Limiter::new(100, Duration::from_secs(1))),
        Duration::from_secs(1),
    );
    WooClient::new(
        url,
        Secret::new(WOO_KEY),
        Secret::new(WOO_SECRET),
        WooOptions {
            auth,
            delete_mode: WooDeleteMode::Trash,
            subscriptions: false,
            billing_interval: BillingInterval::Month,
        },
        t,
    )
}

/// Basic where the site sees HTTPS, OAuth 1.0a on plain HTTP, and what WooCommerce refuses.
#[tokio::test]
async fn basic_over_https_oauth_over_http() {
    let sim = WooSim::new(WOO_KEY, WOO_SECRET);
    let url = format!(
        "http://{}",
        coupond::simulators::serve(sim.router(), 0).await.unwrap()
    );
    sim.insert(json!({"code": "seen"}));
    // the site behind a TLS terminator: Basic works
    sim.set_https(true);
    let basic = client(&url, WooAuth::Basic);
    assert!(basic.lookup("seen").await.unwrap().is_some());
    // plain HTTP: WooCommerce ignores Basic (401), OAuth works
    sim.set_https(false);
    let e = basic.lookup("seen").await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(
        e.to_string().contains("woocommerce_rest_cannot_view"),
        "{e}"
    );
    let oauth = client(&url, WooAuth::Auto);
    assert!(oauth.lookup("seen").await.unwrap().is_some());
    let (page, pages) = oauth.list_page(1, 100).await.unwrap();
    assert_eq!((page.len(), pages), (1, 1));
    let rejected_before = sim.oauth_rejections();
    // a wrong secret fails the signature
    sim.set_credentials(WOO_KEY, "cs_other");
    let e = oauth.lookup("seen").await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert_eq!(sim.oauth_rejections(), rejected_before + 1);
    // a captured signed request cannot be replayed (nonce)
    sim.set_credentials(WOO_KEY, WOO_SECRET);
    let q = coupond::providers::woocommerce::oauth::signed_query(
        "GET",
        &format!("{url}/wp-json/wc/v3/coupons"),
        &[],
        WOO_KEY,
        WOO_SECRET,
    );
    let once = format!("{url}/wp-json/wc/v3/coupons?{q}");
    assert_eq!(reqwest::get(&once).await.unwrap().status(), 200);
    let again = reqwest::get(&once).await.unwrap();
    assert_eq!(again.status(), 401);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["code"], "woocommerce_rest_authentication_error");
}
