//! A stateful Stripe simulator (coupons and promotion codes, API version 2026-07-29.dahlia) that
//! enforces what `providers/stripe.md` says Stripe enforces: form encoding only, Bearer auth,
//! unknown and immutable parameters rejected, cross-field rules, duplicate ids, codes unique among
//! active codes ignoring case, no promotion-code delete, idempotency replay and mismatch, list
//! pagination, rate limits. Faults are injected through [`Common`].

use super::{Common, Fault, Recorded, dropped};
use crate::api::extract::parse_php_query;
use crate::providers::stripe::API_VERSION;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

type Answer = (StatusCode, Value);

#[derive(Default)]
struct Data {
    /// Live and deleted coupons by id, in creation order.
    coupons: Vec<Value>,
    deleted: HashSet<String>,
    /// Every promotion code ever created, in creation order.
    codes: Vec<Value>,
    /// Position in `coupons` of the first coupon with each (string) id, deleted ones included.
    /// Positions stay valid because `coupons` only grows, except in `remove`, which re-indexes.
    coupon_at: HashMap<String, usize>,
    /// Position in `codes` of the first promotion code with each (string) id (same validity).
    code_at: HashMap<String, usize>,
    /// ASCII-lowercased code → positions in `codes` of the active (`"active": true`) promotion
    /// codes holding it (the duplicate check).
    active_codes: HashMap<String, Vec<usize>>,
    /// Coupon id (`promotion.coupon`) → positions in `codes` of the promotion codes of it.
    codes_of: HashMap<String, Vec<usize>>,
    /// key → (request fingerprint, status, body)
    idempotency: HashMap<String, (String, u16, Value)>,
    in_flight: HashSet<String>,
    next: u64,
}

/// The simulator: share it (`Arc`) between its server and the test that inspects it.
pub struct StripeSim {
    pub common: Common,
    key: Mutex<String>,
    data: Mutex<Data>,
}

fn err(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: impl Into<String>,
) -> Answer {
    let mut e = json!({"type": kind, "message": message.into()});
    if let Some(c) = code {
        e["code"] = json!(c);
    }
    if let Some(p) = param {
        e["param"] = json!(p);
    }
    (status, json!({"error": e}))
}

fn invalid(code: &str, param: &str, message: impl Into<String>) -> Answer {
    err(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some(code),
        Some(param),
        message,
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn unknown_params(p: &Map<String, Value>, allowed: &[&str]) -> Result<(), Answer> {
    match p.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            "parameter_unknown",
            k,
            format!("Received unknown parameter: {k}"),
        )),
        None => Ok(()),
    }
}

fn int(p: &Map<String, Value>, k: &str) -> Result<Option<i64>, Answer> {
    match p.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => s.parse::<i64>().map(Some).map_err(|_| {
            invalid(
                "parameter_invalid_integer",
                k,
                format!("Invalid integer: {s}"),
            )
        }),
        Some(_) => Err(invalid("parameter_invalid_integer", k, "Invalid integer")),
    }
}

fn boolean(p: &Map<String, Value>, k: &str) -> Result<Option<bool>, Answer> {
    match p.get(k).and_then(Value::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(s) => Err(invalid(
            "parameter_invalid_boolean",
            k,
            format!("Invalid boolean: {s}"),
        )),
    }
}

/// Metadata on create (object) or update (object, or `""` to clear): validated and merged.
fn metadata(p: &Map<String, Value>, current: &Value) -> Result<Value, Answer> {
    let mut m = current.as_object().cloned().unwrap_or_default();
    match p.get("metadata") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => m.clear(),
        Some(Value::Object(o)) => {
            for (k, v) in o {
                let Some(v) = v.as_str() else {
                    return Err(invalid(
                        "parameter_invalid_string",
                        "metadata",
                        "Metadata values must be strings",
                    ));
                };
                if k.chars().count() > 40 || k.contains('[') || k.contains(']') {
                    return Err(invalid(
                        "metadata_key_invalid",
                        "metadata",
                        format!("Invalid metadata key: {k}"),
                    ));
                }
                if v.chars().count() > 500 {
                    return Err(invalid(
                        "metadata_value_too_long",
                        "metadata",
                        format!("Metadata value for {k} exceeds 500 characters"),
                    ));
                }
                if v.is_empty() {
                    m.remove(k);
                } else {
                    m.insert(k.clone(), json!(v));
                }
            }
        }
        Some(_) => return Err(invalid("parameter_invalid", "metadata", "Invalid metadata")),
    }
    if m.len() > 50 {
        return Err(invalid(
            "metadata_too_many_keys",
            "metadata",
            "Metadata can have at most 50 keys",
        ));
    }
    Ok(Value::Object(m))
}

/// The keys under which a promotion code is indexed: (its lowercased code if it is active, its
/// coupon id).
fn code_keys(c: &Value) -> (Option<String>, Option<String>) {
    let active = if c["active"] == true {
        c["code"].as_str().map(str::to_ascii_lowercase)
    } else {
        None
    };
    (active, c["promotion"]["coupon"].as_str().map(str::to_owned))
}

/// Removes position `i` from the list under `key` (dropping an emptied list).
fn unlist(m: &mut HashMap<String, Vec<usize>>, key: Option<String>, i: usize) {
    let Some(k) = key else { return };
    let empty = match m.get_mut(&k) {
        Some(v) => {
            v.retain(|&x| x != i);
            v.is_empty()
        }
        None => return,
    };
    if empty {
        m.remove(&k);
    }
}

/// The indexes above are kept in step by these methods, through which every change goes.
impl Data {
    fn coupon_pos(&self, id: &str) -> Option<usize> {
        self.coupon_at.get(id).copied()
    }

    fn code_pos(&self, id: &str) -> Option<usize> {
        self.code_at.get(id).copied()
    }

    fn push_coupon(&mut self, obj: Value) {
        let i = self.coupons.len();
        if let Some(id) = obj["id"].as_str() {
            self.coupon_at.entry(id.to_owned()).or_insert(i);
        }
        self.coupons.push(obj);
    }

    fn push_code(&mut self, obj: Value) {
        let i = self.codes.len();
        if let Some(id) = obj["id"].as_str() {
            self.code_at.entry(id.to_owned()).or_insert(i);
        }
        self.codes.push(obj);
        self.index_code(i);
    }

    /// Adds code `i` to `active_codes` and `codes_of` as it now reads.
    fn index_code(&mut self, i: usize) {
        let (active, coupon) = code_keys(&self.codes[i]);
        if let Some(k) = active {
            self.active_codes.entry(k).or_default().push(i);
        }
        if let Some(k) = coupon {
            self.codes_of.entry(k).or_default().push(i);
        }
    }

    /// Takes code `i` out of `active_codes` and `codes_of` (call before changing it).
    fn unindex_code(&mut self, i: usize) {
        let (active, coupon) = code_keys(&self.codes[i]);
        unlist(&mut self.active_codes, active, i);
        unlist(&mut self.codes_of, coupon, i);
    }

    /// Rebuilds every index (after objects were removed or an id changed; test hooks only).
    fn reindex(&mut self) {
        self.coupon_at.clear();
        self.code_at.clear();
        self.active_codes.clear();
        self.codes_of.clear();
        for (i, c) in self.coupons.iter().enumerate() {
            if let Some(id) = c["id"].as_str() {
                self.coupon_at.entry(id.to_owned()).or_insert(i);
            }
        }
        for i in 0..self.codes.len() {
            if let Some(id) = self.codes[i]["id"].as_str() {
                self.code_at.entry(id.to_owned()).or_insert(i);
            }
            self.index_code(i);
        }
    }
}

impl StripeSim {
    pub fn new(secret_key: &str) -> Arc<Self> {
        Arc::new(Self {
            common: Common::default(),
            key: Mutex::new(secret_key.to_owned()),
            data: Mutex::new(Data::default()),
        })
    }

    /// The accepted secret key (changing it makes the daemon's key "rejected").
    pub fn set_key(&self, k: &str) {
        *self.key.lock().unwrap() = k.to_owned();
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_sim/state", axum::routing::get(state))
            .fallback(handle)
            .with_state(self.clone())
    }

    /// Live coupons (not deleted).
    pub fn coupons(&self) -> Vec<Value> {
        let d = self.data.lock().unwrap();
        d.coupons
            .iter()
            .filter(|c| !d.deleted.contains(c["id"].as_str().unwrap_or_default()))
            .cloned()
            .collect()
    }

    /// Every promotion code ever created (they cannot be deleted).
    pub fn promotion_codes(&self) -> Vec<Value> {
        self.data.lock().unwrap().codes.clone()
    }

    /// Changes a stored object as a merchant would in the dashboard (tests of drift).
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut Value)) -> bool {
        let mut guard = self.data.lock().unwrap();
        let d = &mut *guard;
        if let Some(i) = d.coupon_pos(id) {
            f(&mut d.coupons[i]);
            if d.coupons[i]["id"] != id {
                d.reindex();
            }
            return true;
        }
        if let Some(i) = d.code_pos(id) {
            d.unindex_code(i);
            f(&mut d.codes[i]);
            d.index_code(i);
            if d.codes[i]["id"] != id {
                d.reindex();
            }
            return true;
        }
        false
    }

    /// Removes an object outright, as if it had been deleted in the dashboard (tests of drift).
    pub fn remove(&self, id: &str) -> bool {
        let mut d = self.data.lock().unwrap();
        let before = d.coupons.len() + d.codes.len();
        d.coupons.retain(|c| c["id"] != id);
        d.codes.retain(|c| c["id"] != id);
        let removed = before != d.coupons.len() + d.codes.len();
        if removed {
            d.reindex();
        }
        removed
    }

    /// Adds a coupon object as someone else would have created it (tests of drift).
    pub fn insert_coupon(&self, obj: Value) {
        self.data.lock().unwrap().push_coupon(obj);
    }

    fn next_id(d: &mut Data, prefix: &str) -> String {
        d.next += 1;
        format!("{prefix}_{:014}", d.next)
    }

    fn live_coupon<'a>(d: &'a Data, id: &str) -> Option<&'a Value> {
        if d.deleted.contains(id) {
            return None;
        }
        d.coupon_pos(id).map(|i| &d.coupons[i])
    }

    fn create_coupon(&self, p: &Map<String, Value>) -> Answer {
        let allowed = [
            "id",
            "name",
            "percent_off",
            "amount_off",
            "currency",
            "currency_options",
            "duration",
            "duration_in_months",
            "max_redemptions",
            "redeem_by",
            "applies_to",
            "metadata",
            "expand",
        ];
        if let Err(e) = unknown_params(p, &allowed) {
            return e;
        }
        let check = || -> Result<Value, Answer> {
            let percent = match p.get("percent_off").and_then(Value::as_str) {
                None => None,
                Some(s) => {
                    let d: rust_decimal::Decimal = s.parse().map_err(|_| {
                        invalid("parameter_invalid_float", "percent_off", "Invalid decimal")
                    })?;
                    if d <= rust_decimal::Decimal::ZERO
                        || d > rust_decimal::Decimal::ONE_HUNDRED
                        || d.normalize().scale() > 2
                    {
                        return Err(invalid(
                            "parameter_invalid",
                            "percent_off",
                            "percent_off must be greater than 0 and at most 100, with at most 2 decimals",
                        ));
                    }
                    Some(d)
                }
            };
            let amount = int(p, "amount_off")?;
            let currency = p.get("currency").and_then(Value::as_str);
            match (percent, amount) {
                (None, None) => {
                    return Err(invalid(
                        "parameter_missing",
                        "percent_off",
                        "You must pass either percent_off or amount_off",
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "parameters_exclusive",
                        "amount_off",
                        "percent_off and amount_off are mutually exclusive",
                    ));
                }
                (Some(_), None) if currency.is_some() => {
                    return Err(invalid(
                        "parameters_exclusive",
                        "currency",
                        "currency is only for amount_off coupons",
                    ));
                }
                (None, Some(a)) => {
                    if a <= 0 {
                        return Err(invalid(
                            "parameter_invalid_integer",
                            "amount_off",
                            "amount_off must be positive",
                        ));
                    }
                    match currency {
                        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()) => {}
                        Some(c) => {
                            return Err(invalid(
                                "parameter_invalid",
                                "currency",
                                format!("Invalid currency: {c}"),
                            ));
                        }
                        None => {
                            return Err(invalid(
                                "parameter_missing",
                                "currency",
                                "currency is required with amount_off",
                            ));
                        }
                    }
                }
                _ => {}
            }
            let duration = p.get("duration").and_then(Value::as_str).unwrap_or("once");
            if !["once", "repeating", "forever"].contains(&duration) {
                return Err(invalid(
                    "parameter_invalid",
                    "duration",
                    format!("Invalid duration: {duration}"),
                ));
            }
            let months = int(p, "duration_in_months")?;
            match (duration, months) {
                ("repeating", None) => {
                    return Err(invalid(
                        "parameter_missing",
                        "duration_in_months",
                        "duration_in_months is required for repeating coupons",
                    ));
                }
                ("repeating", Some(m)) if m <= 0 => {
                    return Err(invalid(
                        "parameter_invalid_integer",
                        "duration_in_months",
                        "must be positive",
                    ));
                }
                (d, Some(_)) if d != "repeating" => {
                    return Err(invalid(
                        "parameter_invalid",
                        "duration_in_months",
                        "duration_in_months is only for repeating coupons",
                    ));
                }
                _ => {}
            }
            let max = int(p, "max_redemptions")?;
            if max.is_some_and(|m| m <= 0) {
                return Err(invalid(
                    "parameter_invalid_integer",
                    "max_redemptions",
                    "must be positive",
                ));
            }
            let redeem_by = int(p, "redeem_by")?;
            if let Some(t) = redeem_by
                && (t <= now() || t > now() + 5 * 366 * 86400)
            {
                return Err(invalid(
                    "parameter_invalid",
                    "redeem_by",
                    "redeem_by must be in the future and at most 5 years away",
                ));
            }
            let name = p.get("name").and_then(Value::as_str);
            if name.is_some_and(|n| n.chars().count() > 40) {
                return Err(invalid(
                    "parameter_invalid_string",
                    "name",
                    "name must be at most 40 characters",
                ));
            }
            let meta = metadata(p, &json!({}))?;
            Ok(json!({
                "object": "coupon", "amount_off": amount, "created": now(), "currency": currency,
                "duration": duration, "duration_in_months": months, "livemode": false, "max_redemptions": max,
                "metadata": meta, "name": name, "percent_off": percent.map(|d| d.normalize().to_string().parse::<f64>().unwrap_or(0.0)),
                "redeem_by": redeem_by, "times_redeemed": 0, "valid": true,
            }))
        };
        let mut obj = match check() {
            Ok(o) => o,
            Err(e) => return e,
        };
        let mut d = self.data.lock().unwrap();
        let id = match p.get("id").and_then(Value::as_str) {
            Some(id) => {
                if d.coupon_pos(id).is_some() {
                    return invalid(
                        "resource_already_exists",
                        "id",
                        format!("Coupon already exists: {id}"),
                    );
                }
                id.to_owned()
            }
            None => Self::next_id(&mut d, "cpn"),
        };
        obj["id"] = json!(id);
        d.push_coupon(obj.clone());
        (StatusCode::OK, obj)
    }

    fn update_coupon(&self, id: &str, p: &Map<String, Value>) -> Answer {
        if let Err(e) = unknown_params(p, &["name", "metadata", "currency_options", "expand"]) {
            return e;
        }
        if p.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.chars().count() > 40)
        {
            return invalid(
                "parameter_invalid_string",
                "name",
                "name must be at most 40 characters",
            );
        }
        let mut d = self.data.lock().unwrap();
        if d.deleted.contains(id) {
            return invalid(
                "resource_missing",
                "coupon",
                format!("No such coupon: '{id}'"),
            );
        }
        let Some(i) = d.coupon_pos(id) else {
            return err(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("resource_missing"),
                Some("coupon"),
                format!("No such coupon: '{id}'"),
            );
        };
        let c = &mut d.coupons[i];
        let meta = match metadata(p, &c["metadata"]) {
            Ok(m) => m,
            Err(e) => return e,
        };
        c["metadata"] = meta;
        if let Some(n) = p.get("name").and_then(Value::as_str) {
            c["name"] = json!(n);
        }
        (StatusCode::OK, c.clone())
    }

    fn delete_coupon(&self, id: &str) -> Answer {
        let mut d = self.data.lock().unwrap();
        if Self::live_coupon(&d, id).is_none() {
            return err(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("resource_missing"),
                Some("id"),
                format!("No such coupon: '{id}'"),
            );
        }
        d.deleted.insert(id.to_owned());
        let of_coupon = d.codes_of.get(id).cloned().unwrap_or_default();
        for i in of_coupon {
            d.unindex_code(i);
            d.codes[i]["active"] = json!(false);
            d.index_code(i);
        }
        (
            StatusCode::OK,
            json!({"id": id, "object": "coupon", "deleted": true}),
        )
    }

    fn active_code_taken(d: &Data, code: &str, except: Option<&str>) -> bool {
        d.active_codes
            .get(&code.to_ascii_lowercase())
            .is_some_and(|v| {
                v.iter()
                    .any(|&i| except.is_none_or(|e| d.codes[i]["id"] != e))
            })
    }

    fn create_code(&self, p: &Map<String, Value>) -> Answer {
        let allowed = [
            "active",
            "code",
            "customer",
            "customer_account",
            "expand",
            "expires_at",
            "max_redemptions",
            "metadata",
            "promotion",
            "restrictions",
        ];
        if let Err(e) = unknown_params(p, &allowed) {
            return e;
        }
        let check = |d: &Data| -> Result<Value, Answer> {
            let promo = p
                .get("promotion")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    invalid(
                        "parameter_missing",
                        "promotion",
                        "Missing required param: promotion",
                    )
                })?;
            if promo.get("type").and_then(Value::as_str) != Some("coupon") {
                return Err(invalid(
                    "parameter_invalid",
                    "promotion[type]",
                    "promotion[type] must be coupon",
                ));
            }
            let cid = promo.get("coupon").and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    "parameter_missing",
                    "promotion[coupon]",
                    "Missing promotion[coupon]",
                )
            })?;
            let coupon = Self::live_coupon(d, cid).ok_or_else(|| {
                invalid(
                    "resource_missing",
                    "promotion[coupon]",
                    format!("No such coupon: '{cid}'"),
                )
            })?;
            let active = boolean(p, "active")?.unwrap_or(true);
            let code = match p.get("code").and_then(Value::as_str) {
                Some(c) => {
                    if c.is_empty()
                        || c.len() > 500
                        || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    {
                        return Err(invalid(
                            "parameter_invalid_string",
                            "code",
                            "code may contain only letters, digits and '-' (at most 500)",
                        ));
                    }
                    c.to_owned()
                }
                None => format!("GEN{}", d.next + 1),
            };
            if active && Self::active_code_taken(d, &code, None) {
                return Err(invalid(
                    "resource_already_exists",
                    "code",
                    format!("An active promotion code with the code {code} already exists."),
                ));
            }
            let expires_at = int(p, "expires_at")?;
            if let Some(t) = expires_at {
                if t <= now() {
                    return Err(invalid(
                        "parameter_invalid",
                        "expires_at",
                        "expires_at must be in the future",
                    ));
                }
                if coupon["redeem_by"].as_i64().is_some_and(|r| t > r) {
                    return Err(invalid(
                        "parameter_invalid",
                        "expires_at",
                        "expires_at cannot be after the coupon's redeem_by",
                    ));
                }
            }
            let max = int(p, "max_redemptions")?;
            if max.is_some_and(|m| m <= 0)
                || max
                    .zip(coupon["max_redemptions"].as_i64())
                    .is_some_and(|(m, c)| m > c)
            {
                return Err(invalid(
                    "parameter_invalid",
                    "max_redemptions",
                    "max_redemptions must be positive and at most the coupon's",
                ));
            }
            let r = p
                .get("restrictions")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            unknown_params(
                &r,
                &[
                    "first_time_transaction",
                    "minimum_amount",
                    "minimum_amount_currency",
                    "currency_options",
                ],
            )?;
            let first = boolean(&r, "first_time_transaction")?.unwrap_or(false);
            let min = int(&r, "minimum_amount")?;
            let min_cur = r.get("minimum_amount_currency").and_then(Value::as_str);
            if min.is_some() != min_cur.is_some() {
                return Err(invalid(
                    "parameter_missing",
                    "restrictions[minimum_amount_currency]",
                    "minimum_amount and minimum_amount_currency go together",
                ));
            }
            let customer = p.get("customer").and_then(Value::as_str);
            if customer.is_some_and(|c| !c.starts_with("cus_")) {
                return Err(invalid("resource_missing", "customer", "No such customer"));
            }
            let meta = metadata(p, &json!({}))?;
            Ok(json!({
                "object": "promotion_code", "active": active, "code": code, "created": now(), "customer": customer,
                "expires_at": expires_at, "livemode": false, "max_redemptions": max, "metadata": meta,
                "promotion": {"type": "coupon", "coupon": cid},
                "restrictions": {"first_time_transaction": first, "minimum_amount": min, "minimum_amount_currency": min_cur},
                "times_redeemed": 0,
            }))
        };
        let mut d = self.data.lock().unwrap();
        let mut obj = match check(&d) {
            Ok(o) => o,
            Err(e) => return e,
        };
        obj["id"] = json!(Self::next_id(&mut d, "promo"));
        d.push_code(obj.clone());
        (StatusCode::OK, obj)
    }

    fn update_code(&self, id: &str, p: &Map<String, Value>) -> Answer {
        if let Err(e) = unknown_params(p, &["active", "metadata", "restrictions", "expand"]) {
            return e;
        }
        if let Some(r) = p.get("restrictions").and_then(Value::as_object)
            && let Err(e) = unknown_params(r, &["currency_options"])
        {
            return e;
        }
        let active = match boolean(p, "active") {
            Ok(a) => a,
            Err(e) => return e,
        };
        let mut d = self.data.lock().unwrap();
        let Some(idx) = d.code_pos(id) else {
            return err(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("resource_missing"),
                Some("promotion_code"),
                format!("No such promotion code: '{id}'"),
            );
        };
        if active == Some(true) && d.codes[idx]["active"] == false {
            let code = d.codes[idx]["code"].as_str().unwrap_or_default().to_owned();
            let cid = d.codes[idx]["promotion"]["coupon"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if Self::live_coupon(&d, &cid).is_none() {
                return invalid(
                    "parameter_invalid",
                    "active",
                    "The coupon of this promotion code is no longer valid",
                );
            }
            if Self::active_code_taken(&d, &code, Some(id)) {
                return invalid(
                    "resource_already_exists",
                    "active",
                    format!("An active promotion code with the code {code} already exists."),
                );
            }
        }
        let meta = match metadata(p, &d.codes[idx]["metadata"]) {
            Ok(m) => m,
            Err(e) => return e,
        };
        d.unindex_code(idx);
        let c = &mut d.codes[idx];
        c["metadata"] = meta;
        if let Some(a) = active {
            c["active"] = json!(a);
        }
        let out = c.clone();
        d.index_code(idx);
        (StatusCode::OK, out)
    }

    /// One page of a list, newest first as Stripe lists: of `objs` (oldest first), the `limit`
    /// objects that `keep` accepts, before the cursor `starting_after` (found by `pos`). Unfiltered,
    /// a page costs its own length, not the list's, so paging through 300,000 codes stays linear.
    fn list(
        objs: &[Value],
        pos: impl Fn(&str) -> Option<usize>,
        keep: impl Fn(&Value) -> bool,
        q: &Map<String, Value>,
        url: &str,
    ) -> Answer {
        let limit = match q
            .get("limit")
            .and_then(Value::as_str)
            .map(str::parse::<usize>)
        {
            None => 10,
            Some(Ok(l)) if (1..=100).contains(&l) => l,
            Some(_) => {
                return invalid(
                    "parameter_invalid_integer",
                    "limit",
                    "limit must be between 1 and 100",
                );
            }
        };
        let before = match q.get("starting_after").and_then(Value::as_str) {
            None => objs.len(),
            Some(after) => match pos(after).filter(|&i| keep(&objs[i])) {
                Some(i) => i,
                None => {
                    return invalid(
                        "resource_missing",
                        "starting_after",
                        format!("No such object: '{after}'"),
                    );
                }
            },
        };
        let mut items = Vec::new();
        let mut has_more = false;
        for o in objs[..before].iter().rev().filter(|o| keep(o)) {
            if items.len() == limit {
                has_more = true;
                break;
            }
            items.push(o.clone());
        }
        (
            StatusCode::OK,
            json!({"object": "list", "data": items, "has_more": has_more, "url": url}),
        )
    }

    fn route(&self, method: &Method, path: &str, p: &Map<String, Value>) -> Answer {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method.as_str(), segs.as_slice()) {
            ("POST", ["v1", "coupons"]) => self.create_coupon(p),
            ("POST", ["v1", "coupons", id]) => self.update_coupon(id, p),
            ("DELETE", ["v1", "coupons", id]) => self.delete_coupon(id),
            ("GET", ["v1", "coupons"]) => match unknown_params(
                p,
                &[
                    "limit",
                    "starting_after",
                    "ending_before",
                    "created",
                    "expand",
                ],
            ) {
                Err(e) => e,
                Ok(()) => {
                    let d = self.data.lock().unwrap();
                    Self::list(
                        &d.coupons,
                        |id| d.coupon_pos(id),
                        |c| !d.deleted.contains(c["id"].as_str().unwrap_or_default()),
                        p,
                        "/v1/coupons",
                    )
                }
            },
            ("GET", ["v1", "coupons", id]) => {
                match Self::live_coupon(&self.data.lock().unwrap(), id) {
                    Some(c) => (StatusCode::OK, c.clone()),
                    None => err(
                        StatusCode::NOT_FOUND,
                        "invalid_request_error",
                        Some("resource_missing"),
                        Some("id"),
                        format!("No such coupon: '{id}'"),
                    ),
                }
            }
            ("POST", ["v1", "promotion_codes"]) => self.create_code(p),
            ("POST", ["v1", "promotion_codes", id]) => self.update_code(id, p),
            ("GET", ["v1", "promotion_codes"]) => {
                let allowed = [
                    "active",
                    "code",
                    "coupon",
                    "customer",
                    "customer_account",
                    "created",
                    "limit",
                    "starting_after",
                    "ending_before",
                    "expand",
                ];
                if let Err(e) = unknown_params(p, &allowed) {
                    return e;
                }
                let filter = |c: &Value| {
                    p.get("code").and_then(Value::as_str).is_none_or(|x| {
                        c["code"]
                            .as_str()
                            .is_some_and(|y| y.eq_ignore_ascii_case(x))
                    }) && p
                        .get("coupon")
                        .and_then(Value::as_str)
                        .is_none_or(|x| c["promotion"]["coupon"] == x)
                        && p.get("active")
                            .and_then(Value::as_str)
                            .is_none_or(|x| c["active"] == (x == "true"))
                };
                let code = p.get("code").and_then(Value::as_str);
                let d = self.data.lock().unwrap();
                match (code, p.get("active").and_then(Value::as_str)) {
                    // the active codes with this code, from the index (creation order)
                    (Some(code), Some("true")) => {
                        let mut at = d
                            .active_codes
                            .get(&code.to_ascii_lowercase())
                            .cloned()
                            .unwrap_or_default();
                        at.sort_unstable();
                        let found: Vec<Value> =
                            at.into_iter().map(|i| d.codes[i].clone()).collect();
                        let pos = |id: &str| found.iter().position(|c| c["id"] == id);
                        Self::list(&found, pos, filter, p, "/v1/promotion_codes")
                    }
                    _ => Self::list(
                        &d.codes,
                        |id| d.code_pos(id),
                        filter,
                        p,
                        "/v1/promotion_codes",
                    ),
                }
            }
            ("GET", ["v1", "promotion_codes", id]) => {
                let d = self.data.lock().unwrap();
                match d.code_pos(id) {
                    Some(i) => (StatusCode::OK, d.codes[i].clone()),
                    None => err(
                        StatusCode::NOT_FOUND,
                        "invalid_request_error",
                        Some("resource_missing"),
                        Some("id"),
                        format!("No such promotion code: '{id}'"),
                    ),
                }
            }
            _ => err(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                None,
                None,
                format!("Unrecognized request URL ({method}: {path})."),
            ),
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let key = self.key.lock().unwrap().clone();
        let Some(h) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        h.strip_prefix("Bearer ").is_some_and(|k| k == key)
    }
}

/// `GET /_sim/state`: what the simulator holds (no auth; for people trying `--demo`).
async fn state(State(sim): State<Arc<StripeSim>>) -> axum::Json<Value> {
    axum::Json(json!({"coupons": sim.coupons(), "promotion_codes": sim.promotion_codes()}))
}

fn json_response(status: StatusCode, body: &Value, extra: &[(&str, String)]) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Request-Id", "req_sim");
    for (k, v) in extra {
        b = b.header(*k, v);
    }
    b.body(Body::from(body.to_string())).expect("response")
}

async fn handle(
    State(sim): State<Arc<StripeSim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let (status, resp) = answer(&sim, &method, &uri, &headers, &body_text).await;
    sim.common.record(Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: body_text,
        at: Instant::now(),
        status,
    });
    resp
}

async fn answer(
    sim: &StripeSim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &str,
) -> (u16, Response<Body>) {
    sim.common.delay().await;
    let reply = |(s, v): Answer| (s.as_u16(), json_response(s, &v, &[]));
    if !sim.authorized(headers) {
        return reply(err(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            None,
            "Invalid API Key provided.",
        ));
    }
    if headers.get("stripe-version").and_then(|v| v.to_str().ok()) != Some(API_VERSION) {
        return reply(invalid(
            "invalid_version",
            "Stripe-Version",
            format!("This simulator speaks Stripe-Version {API_VERSION} only"),
        ));
    }
    if let Err(retry_after) = sim.common.admit() {
        let (s, v) = err(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request_error",
            Some("rate_limit"),
            None,
            "Too many requests hit the API too quickly.",
        );
        let extra: Vec<(&str, String)> = retry_after
            .map(|r| vec![("Retry-After", r.to_string())])
            .unwrap_or_default();
        return (429, json_response(s, &v, &extra));
    }
    let params = if *method == Method::POST {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return reply(invalid(
                "parameter_invalid",
                "Content-Type",
                format!(
                    "Content-Type didn't match: expected application/x-www-form-urlencoded, got {ct:?}"
                ),
            ));
        }
        parse_php_query(body)
    } else {
        parse_php_query(uri.query().unwrap_or(""))
    };
    let idem = if *method == Method::POST {
        headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    } else {
        None
    };
    let fingerprint = hex::encode(Sha256::digest(
        format!("{method} {} {body}", uri.path()).as_bytes(),
    ));
    if let Some(k) = &idem {
        let mut d = sim.data.lock().unwrap();
        if d.in_flight.contains(k) {
            drop(d);
            return reply(err(
                StatusCode::CONFLICT,
                "idempotency_error",
                Some("idempotency_key_in_use"),
                None,
                "A request with this idempotency key is in progress.",
            ));
        }
        if let Some((fp, s, v)) = d.idempotency.get(k).cloned() {
            drop(d);
            if fp != fingerprint {
                return reply(err(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    None,
                    None,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                ));
            }
            let s = StatusCode::from_u16(s).unwrap_or(StatusCode::OK);
            return (
                s.as_u16(),
                json_response(s, &v, &[("Idempotent-Replayed", "true".into())]),
            );
        }
        d.in_flight.insert(k.clone());
    }
    let fault = sim.common.after_effects();
    let (s, v) = if fault == Fault::ServerError {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            None,
            None,
            "An unknown error occurred (simulated).",
        )
    } else {
        sim.route(method, uri.path(), &params)
    };
    if let Some(k) = idem {
        let mut d = sim.data.lock().unwrap();
        d.in_flight.remove(&k);
        // Stripe stores the outcome once execution started: successes and server errors.
        if s.is_success() || s.is_server_error() {
            d.idempotency
                .insert(k, (fingerprint, s.as_u16(), v.clone()));
        }
    }
    if fault == Fault::Drop && s.is_success() {
        return (0, dropped());
    }
    reply((s, v))
}
