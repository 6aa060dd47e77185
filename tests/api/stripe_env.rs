//! A Stripe simulator wired to a test daemon, and a checker of Stripe requests against the
//! OpenAPI subset in `../shared/reference/stripe-openapi-subset.json`.

use crate::helpers::*;
use coupond::api::extract::parse_php_query;
use coupond::simulators::stripe::StripeSim;
use serde_json::{Map, Value};
use std::sync::Arc;

pub const STRIPE_KEY: &str = "sk_test_simulated_0123456789";

/// Fast retries for tests: milliseconds instead of minutes.
pub const FAST_SYNC: &str = r#"
[sync]
retry_schedule = ["10ms", "20ms", "40ms", "80ms", "100ms", "100ms", "100ms", "100ms"]
min_throttle_delay_secs = 0
max_retry_after_secs = 2
poll_interval_ms = 20
credentials_probe_secs = 0
inline_deadline_ms = 5000
"#;

pub struct StripeEnv {
    pub sim: Arc<StripeSim>,
    pub app: TestApp,
    #[allow(dead_code)]
    pub sim_url: String,
}

impl StripeEnv {
    /// A simulator and a daemon (`worker`: run the background worker) with `extra` config.
    pub async fn start(extra: &str, worker: bool) -> Self {
        let sim = StripeSim::new(STRIPE_KEY);
        let addr = coupond::simulators::serve(sim.router(), 0)
            .await
            .expect("sim");
        let sim_url = format!("http://{addr}");
        let cfg = format!(
            "{FAST_SYNC}\n[programs.acme.stripe]\nsecret_key = \"{STRIPE_KEY}\"\nbase_url = \"{sim_url}\"\nrate_per_second = 500\n"
        );
        let app = TestApp::spawn_layers(&[&cfg, extra], worker).await;
        Self { sim, app, sim_url }
    }

    /// Live coupons in the simulator with our marker for `uuid`.
    pub fn coupons_of(&self, uuid: &str) -> Vec<Value> {
        self.sim
            .coupons()
            .into_iter()
            .filter(|c| c["metadata"]["coupond_coupon"] == uuid)
            .collect()
    }

    /// Active promotion codes of a Stripe coupon id.
    pub fn active_codes_on(&self, coupon_id: &str) -> Vec<Value> {
        self.sim
            .promotion_codes()
            .into_iter()
            .filter(|c| c["promotion"]["coupon"] == coupon_id && c["active"] == true)
            .collect()
    }

    pub async fn drain(&self) {
        self.app.engine.drain().await.expect("drain");
    }
}

/// The reference OpenAPI subset.
pub struct StripeSpec(Value);

impl StripeSpec {
    pub fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/stripe-openapi-subset.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self(serde_json::from_str(&text).expect("json"))
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or_default();
                &self.0["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    /// Checks a request: a documented operation, and a form body valid against its schema.
    pub fn check(&self, method: &str, path: &str, body: &str) -> Result<(), String> {
        let template = self.0["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|t| matches(t, path))
            .ok_or_else(|| format!("{method} {path}: not an operation of the subset"))?;
        if method != "POST" {
            // the subset documents the request bodies of the POST operations only
            return Ok(());
        }
        let op = &self.0["paths"][template]["post"];
        if op.is_null() {
            return Err(format!("{method} {template}: not in the subset"));
        }
        let schema = &op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
        let value = Value::Object(parse_php_query(body));
        self.validate(&value, schema, "")
            .map_err(|e| format!("{method} {path}: {e}\n  body: {body}"))
    }

    fn validate(&self, v: &Value, schema: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
            let errors: Vec<String> = any
                .iter()
                .filter_map(|s| self.validate(v, s, at).err())
                .collect();
            return if errors.len() < any.len() {
                Ok(())
            } else {
                Err(format!(
                    "{at}: matches no anyOf branch ({})",
                    errors.join("; ")
                ))
            };
        }
        if let Some(en) = schema.get("enum").and_then(Value::as_array)
            && !en.iter().any(|e| e.as_str() == v.as_str())
        {
            return Err(format!("{at}: {v} not in {en:?}"));
        }
        let s = v.as_str();
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => {
                let obj = v
                    .as_object()
                    .ok_or_else(|| format!("{at}: expected an object, got {v}"))?;
                let props = schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (k, x) in obj {
                    let p = format!("{at}[{k}]");
                    match (props.get(k), schema.get("additionalProperties")) {
                        (Some(ps), _) => self.validate(x, ps, &p)?,
                        (None, Some(ap)) if ap.is_object() => self.validate(x, ap, &p)?,
                        _ => return Err(format!("{p}: unknown parameter")),
                    }
                }
                for r in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let r = r.as_str().unwrap_or_default();
                    if !obj.contains_key(r) {
                        return Err(format!("{at}[{r}]: required"));
                    }
                }
                Ok(())
            }
            Some("array") => {
                let items: Vec<&Value> = match v {
                    Value::Array(a) => a.iter().collect(),
                    Value::Object(o) if o.keys().all(|k| k.parse::<usize>().is_ok()) => {
                        o.values().collect()
                    }
                    _ => return Err(format!("{at}: expected an array")),
                };
                for (i, x) in items.into_iter().enumerate() {
                    self.validate(x, &schema["items"], &format!("{at}[{i}]"))?;
                }
                Ok(())
            }
            Some("string") => {
                let s = s.ok_or_else(|| format!("{at}: expected a string"))?;
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                    && s.chars().count() as u64 > max
                {
                    return Err(format!("{at}: longer than {max}"));
                }
                if schema.get("format").and_then(Value::as_str) == Some("currency")
                    && !(s.len() == 3 && s.bytes().all(|b| b.is_ascii_lowercase()))
                {
                    return Err(format!("{at}: {s} is not a lowercase currency"));
                }
                Ok(())
            }
            Some("integer") => s
                .and_then(|s| s.parse::<i64>().ok())
                .map(|_| ())
                .ok_or_else(|| format!("{at}: {v} is not an integer")),
            Some("number") => s
                .and_then(|s| s.parse::<f64>().ok())
                .map(|_| ())
                .ok_or_else(|| format!("{at}: {v} is not a number")),
            Some("boolean") => matches!(s, Some("true" | "false"))
                .then_some(())
                .ok_or_else(|| format!("{at}: {v} is not a boolean")),
            _ => Ok(()),
        }
    }
}

fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
}

/// Checks every request the simulator recorded; returns how many were checked.
pub fn check_all(spec: &StripeSpec, sim: &StripeSim) -> usize {
    let reqs = sim.common.requests();
    for r in &reqs {
        if r.path.starts_with("/_sim") {
            continue;
        }
        spec.check(r.method.as_str(), &r.path, &r.body)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.headers["stripe-version"], "2026-07-29.dahlia");
        if r.method == "POST" {
            assert!(
                r.headers.contains_key("idempotency-key"),
                "POST {} without Idempotency-Key",
                r.path
            );
            assert_eq!(
                r.headers["content-type"],
                "application/x-www-form-urlencoded"
            );
        }
    }
    reqs.len()
}

#[allow(dead_code)]
pub fn obj(v: &Value) -> &Map<String, Value> {
    v.as_object().unwrap()
}
