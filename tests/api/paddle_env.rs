//! Paddle simulators (Billing and Classic) wired to a test daemon, and a checker of Billing
//! requests against `../shared/reference/paddle-billing-discounts.json`.

use crate::helpers::*;
use crate::stripe_env::FAST_SYNC;
use coupond::simulators::paddle_billing::PaddleBillingSim;
use coupond::simulators::paddle_classic::PaddleClassicSim;
use serde_json::Value;
use std::sync::Arc;

pub const PADDLE_KEY: &str = "pdl_sdbx_apikey_simulated0123456789";
pub const VENDOR_ID: u64 = 4242;
pub const VENDOR_AUTH: &str = "0123456789abcdef0123456789abcdef";

pub fn billing_config(url: &str) -> String {
    format!(
        "[programs.acme.paddle]\nflavour = \"billing\"\napi_key = \"{PADDLE_KEY}\"\nbase_url = \"{url}\"\nrate_per_minute = 6000\n"
    )
}

pub fn classic_config(url: &str) -> String {
    format!(
        "[programs.acme.paddle]\nflavour = \"classic\"\nvendor_id = {VENDOR_ID}\nvendor_auth_code = \"{VENDOR_AUTH}\"\nbase_url = \"{url}\"\nrate_per_minute = 6000\nlookup_product_id = 1001\n"
    )
}

pub struct BillingEnv {
    pub sim: Arc<PaddleBillingSim>,
    pub app: TestApp,
    #[allow(dead_code)]
    pub url: String,
}

impl BillingEnv {
    pub async fn start(extra: &str, worker: bool) -> Self {
        let sim = PaddleBillingSim::new(PADDLE_KEY);
        let url = format!(
            "http://{}",
            coupond::simulators::serve(sim.router(), 0).await.unwrap()
        );
        let cfg = format!("{FAST_SYNC}\n{}", billing_config(&url));
        let app = TestApp::spawn_layers(&[&cfg, extra], worker).await;
        Self { sim, app, url }
    }

    /// Discounts of this coupon (any status).
    pub fn of(&self, uuid: &str) -> Vec<Value> {
        self.sim
            .discounts()
            .into_iter()
            .filter(|d| d["custom_data"]["coupon"] == uuid)
            .collect()
    }

    pub fn active_of(&self, uuid: &str) -> Vec<Value> {
        self.of(uuid)
            .into_iter()
            .filter(|d| d["status"] == "active")
            .collect()
    }

    pub async fn drain(&self) {
        self.app.engine.drain().await.expect("drain");
    }
}

pub struct ClassicEnv {
    pub sim: Arc<PaddleClassicSim>,
    pub app: TestApp,
}

impl ClassicEnv {
    pub async fn start(extra: &str, worker: bool) -> Self {
        let sim = PaddleClassicSim::new(VENDOR_ID, VENDOR_AUTH);
        let url = format!(
            "http://{}",
            coupond::simulators::serve(sim.router(), 0).await.unwrap()
        );
        let cfg = format!("{FAST_SYNC}\n{}", classic_config(&url));
        let app = TestApp::spawn_layers(&[&cfg, extra], worker).await;
        Self { sim, app }
    }

    /// Live Classic coupons created for this coupon (by description).
    pub fn of(&self, uuid: &str) -> Vec<Value> {
        let d = format!("coupond:acme:{uuid}");
        self.sim
            .coupons()
            .into_iter()
            .filter(|c| c["description"] == d.as_str())
            .collect()
    }

    pub async fn drain(&self) {
        self.app.engine.drain().await.expect("drain");
    }
}

/// The Billing reference spec: request bodies checked against the discount schemas.
pub struct BillingSpec(Value);

impl BillingSpec {
    pub fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/paddle-billing-discounts.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self(serde_json::from_str(&text).unwrap())
    }

    fn schema(&self, name: &str) -> &Value {
        &self.0["components"]["schemas"][name]
    }

    fn resolve<'a>(&'a self, s: &'a Value) -> &'a Value {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => self.schema(r.rsplit('/').next().unwrap_or_default()),
            None => s,
        }
    }

    /// Checks one request: POST /discounts against `discount-create`, PATCH /discounts/{id}
    /// against `discount`; read-only fields and unknown fields fail. `discount_group_id` is
    /// allowed as the spec's `known_deltas_after_this_spec` says (pattern `^dsg_[a-z\d]{26}$`).
    pub fn check(&self, method: &str, path: &str, body: &str) -> Result<(), String> {
        let schema = match (method, path) {
            ("POST", "/discounts") => self.schema("discount-create"),
            ("PATCH", p) if p.starts_with("/discounts/dsc_") => self.schema("discount"),
            ("GET", p) if p == "/discounts" || p.starts_with("/discounts/") => return Ok(()),
            (_, p) if p.starts_with("/discount-groups") => return Ok(()),
            _ => {
                return Err(format!(
                    "{method} {path}: not an operation of the reference"
                ));
            }
        };
        let v: Value = serde_json::from_str(body).map_err(|e| format!("{method} {path}: {e}"))?;
        let obj = v.as_object().ok_or("body is not an object")?;
        let props = schema["properties"].as_object().unwrap();
        let re = regex::Regex::new(r"^dsg_[a-z\d]{26}$").unwrap();
        for (k, x) in obj {
            if k == "discount_group_id" {
                if !x.is_null() && !x.as_str().is_some_and(|s| re.is_match(s)) {
                    return Err(format!("{method} {path}: discount_group_id {x}"));
                }
                continue;
            }
            let p = props
                .get(k)
                .ok_or_else(|| format!("{method} {path}: unknown field {k}"))?;
            if p["readOnly"] == true {
                return Err(format!("{method} {path}: read-only field {k}"));
            }
            self.validate(x, p, k)
                .map_err(|e| format!("{method} {path}: {e}\n  body: {body}"))?;
        }
        for r in schema["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                return Err(format!("{method} {path}: {r} is required"));
            }
        }
        Ok(())
    }

    fn validate(&self, v: &Value, s: &Value, at: &str) -> Result<(), String> {
        let s = self.resolve(s);
        if let Some(branches) = s.get("oneOf").and_then(Value::as_array) {
            let ok = branches
                .iter()
                .filter(|b| self.validate(v, b, at).is_ok())
                .count();
            return if ok == 1 {
                Ok(())
            } else {
                Err(format!("{at}: {v} matches {ok} oneOf branches"))
            };
        }
        let types: Vec<&str> = match &s["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() {
            let actual = match v {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            let fits =
                types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
            if !fits {
                return Err(format!("{at}: {v} is {actual}, not {types:?}"));
            }
        }
        if let Some(en) = s.get("enum").and_then(Value::as_array)
            && !v.is_null()
            && !en.contains(v)
        {
            return Err(format!("{at}: {v} not in {en:?}"));
        }
        if let Some(t) = v.as_str() {
            let n = t.chars().count() as u64;
            if s["minLength"].as_u64().is_some_and(|m| n < m)
                || s["maxLength"].as_u64().is_some_and(|m| n > m)
            {
                return Err(format!("{at}: length {n}"));
            }
            if let Some(p) = s["pattern"].as_str()
                && !regex::Regex::new(p).unwrap().is_match(t)
            {
                return Err(format!("{at}: {t} does not match {p}"));
            }
            if s["format"] == "date-time" && chrono::DateTime::parse_from_rfc3339(t).is_err() {
                return Err(format!("{at}: {t} is not RFC 3339"));
            }
        }
        if let Some(n) = v.as_f64()
            && s["minimum"].as_f64().is_some_and(|m| n < m)
        {
            return Err(format!("{at}: {n} below the minimum"));
        }
        if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
            for (i, x) in a.iter().enumerate() {
                self.validate(x, items, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    /// Checks every request the simulator received; returns how many were checked.
    pub fn check_all(&self, sim: &PaddleBillingSim) -> usize {
        let mut n = 0;
        for r in sim.common.requests() {
            if r.path.starts_with("/_sim") {
                continue;
            }
            assert_eq!(
                r.headers
                    .get("paddle-version")
                    .and_then(|v| v.to_str().ok()),
                Some("1"),
                "{} {}: Paddle-Version",
                r.method,
                r.path
            );
            if let Err(e) = self.check(r.method.as_str(), &r.path, &r.body) {
                panic!("{e}");
            }
            n += 1;
        }
        n
    }
}
