//! A Shopify simulator wired to a test daemon, and a checker of every GraphQL request (document
//! and variables) against `../shared/reference/shopify-admin-discounts.graphql`.

use crate::helpers::*;
use crate::stripe_env::FAST_SYNC;
use apollo_compiler::response::serde_json_bytes;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use coupond::simulators::shopify::ShopifySim;
use serde_json::Value;
use std::sync::Arc;

pub const SHOPIFY_TOKEN: &str = "shpat_simulated_0123456789";

pub fn schema_sdl() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/shopify-admin-discounts.graphql"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn schema() -> Valid<Schema> {
    let mut sdl = schema_sdl();
    // the file uses @oneOf (a built-in of newer GraphQL servers) without declaring it
    if !sdl.contains("directive @oneOf") {
        sdl.push_str("\ndirective @oneOf on INPUT_OBJECT\n");
    }
    Schema::parse_and_validate(sdl, "shopify-admin-discounts.graphql")
        .unwrap_or_else(|e| panic!("the reference schema does not build: {}", e.errors))
}

/// Validates one request body: the document against the schema, the variables against the
/// operation's variable types (unknown input fields, wrong types and missing required ones fail).
pub fn check_request(schema: &Valid<Schema>, body: &str) -> Result<(), String> {
    let req: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let query = req["query"].as_str().ok_or("no query")?;
    let doc = ExecutableDocument::parse_and_validate(schema, query, "request.graphql")
        .map_err(|e| format!("invalid document: {}\n{query}", e.errors))?;
    let op = doc
        .operations
        .get(req["operationName"].as_str())
        .map_err(|e| format!("{e:?}"))?;
    let vars: serde_json_bytes::Map<serde_json_bytes::ByteString, serde_json_bytes::Value> =
        serde_json::from_value(
            req.get("variables")
                .cloned()
                .unwrap_or(Value::Null)
                .as_object()
                .cloned()
                .map(Value::Object)
                .unwrap_or_else(|| Value::Object(Default::default())),
        )
        .map_err(|e| format!("variables: {e}"))?;
    apollo_compiler::request::coerce_variable_values(schema, op, &vars).map_err(|e| {
        format!(
            "variables do not fit the operation: {e:?}\n{}",
            req["variables"]
        )
    })?;
    Ok(())
}

/// Checks every request the simulator received; returns how many were checked.
pub fn check_all(sim: &ShopifySim) -> usize {
    let schema = schema();
    let mut n = 0;
    for r in sim.common.requests() {
        if r.method != reqwest::Method::POST || !r.path.ends_with("/graphql.json") {
            continue;
        }
        if let Err(e) = check_request(&schema, &r.body) {
            panic!("{} {}: {e}", r.method, r.path);
        }
        n += 1;
    }
    n
}

pub struct ShopifyEnv {
    pub sim: Arc<ShopifySim>,
    pub app: TestApp,
}

impl ShopifyEnv {
    /// A simulator (validating documents against the reference schema) and a daemon.
    pub async fn start(extra: &str, worker: bool) -> Self {
        let sim = ShopifySim::new(SHOPIFY_TOKEN);
        sim.set_schema(&schema_sdl()).expect("schema");
        let addr = coupond::simulators::serve(sim.router(), 0)
            .await
            .expect("sim");
        let cfg = format!(
            "{FAST_SYNC}\n[programs.acme.shopify]\naccess_token = \"{SHOPIFY_TOKEN}\"\nbase_url = \"http://{addr}\"\nrate_per_second = 500\n"
        );
        let app = TestApp::spawn_layers(&[&cfg, extra], worker).await;
        Self { sim, app }
    }

    /// Discounts in the simulator tagged as this coupon's.
    pub fn discounts_of(&self, uuid: &str) -> Vec<Value> {
        let tag = format!("coupond-coupon:{uuid}");
        self.sim
            .discounts()
            .into_iter()
            .filter(|d| {
                d["codeDiscount"]["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == tag.as_str()))
            })
            .collect()
    }

    /// The discount holding `code` (its `codeDiscount`).
    pub fn discount(&self, code: &str) -> Value {
        self.sim
            .by_code(code)
            .unwrap_or_else(|| panic!("no discount holds {code}"))
    }

    pub async fn drain(&self) {
        self.app.engine.drain().await.expect("drain");
    }
}
