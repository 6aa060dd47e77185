//! A stateful Paddle Classic simulator (the "vendors" API: `POST /2.0/product/list_coupons`,
//! `POST /2.1/product/create_coupon`, `POST /2.1/product/update_coupon`,
//! `POST /2.0/product/delete_coupon`) that enforces what `providers/paddle.md` §1 and the
//! update_coupon reference page (seed 004) say Classic enforces.
//!
//! Enforced:
//! * POST only (another method: HTTP 405 with error 101; an unknown path: HTTP 404, error 101).
//! * Credentials in the body: `vendor_id` + `vendor_auth_code`. Missing either or a wrong auth
//!   code → 102 "Bad api key"; a wrong vendor id → 107.
//! * Every failure is HTTP 200 with `{"success":false,"error":{"code":N,"message":"..."}}`;
//!   success is `{"success":true,"response":...}` (delete: `{"success":true}` only).
//! * create: coupon_type (116/165), discount_type (116/127), discount_amount (percentage
//!   above 0 and below 100 → 128; flat ≥ 0.01 → 129), product_ids for product coupons (116; each must
//!   exist → 108), currency needed for flat (116), three capital letters (134) and equal to the
//!   balance currency (158), allowed_uses (130/137; default 999999), expires `YYYY-MM-DD`
//!   (133) strictly after today UTC (138), recurring 0/1 (160), coupon_code 5–300 chars (131;
//!   random 8 characters `[A-Z0-9]` when absent), description ≤ 300 chars (166), group 1–50
//!   chars (162), minimum_threshold > 0.01 (161), coupon_code with coupon_prefix/num_coupons
//!   (159), num_coupons 1..=1000 (163), duplicate code ignoring case among live coupons (132).
//!   Unknown parameters are ignored.
//! * update: exactly one of coupon_code / group (159), target not found (135), discount_type or
//!   coupon_type sent (159), new_coupon_code with group (159), 5–300 (131), taken (132),
//!   new_group (162), product_ids (blank clears them and makes the coupon `checkout`; otherwise
//!   `product`, ids must exist → 108), expires (blank clears; 133/138), allowed_uses (130/137;
//!   below times_used of any target → 136 and nothing changes), discount_amount against each
//!   target's discount_type (128/129; flat needs currency → 116), currency (134/158),
//!   recurring (160), minimum_threshold (blank clears; 161). Omitted fields are unchanged.
//!   Every check runs before anything changes.
//! * delete: coupon_code (116), unknown (135), optional product_id must be one of the coupon's
//!   products (135; so a checkout coupon cannot be deleted "for" a product). The coupon is gone
//!   for good: a second delete answers 135.
//! * list: product_id (116), must exist (108), limit 1..=500 (default and cap 500), offset ≥ 1,
//!   offset without limit (191), is_valid, coupon (one code, ignoring case). Entries carry the
//!   quirks the live API shows: percentage `discount_amount` as a fraction (12.5 → 0.125),
//!   flat as a number, `discount_currency` always null, `expires` as `"YYYY-MM-DD 00:00:00"`.
//! * Faults through [`Common`]: latency; rate limit / injected 429 → error 189 in HTTP 200
//!   (default) or HTTP 429 with `Retry-After` (`set_http_429(true)`); an injected server error
//!   → error 120 in HTTP 200 without executing; a dropped connection after executing.
//!
//! Assumptions (Paddle does not say, see §5 of the fact sheet):
//! * A form body (`application/x-www-form-urlencoded`) and a JSON object body are both
//!   accepted (a JSON body is recognised by its Content-Type or, without one, by a leading
//!   `{`). JSON numbers and booleans are read as their text (`true` → `1`), null as blank, an
//!   array of scalars as a comma-separated list. A body that cannot be read carries no
//!   credentials and so answers 102.
//! * list_coupons for a product lists the `product` coupons holding that product **and every
//!   `checkout` coupon**, in creation order.
//! * `count` (entries in this page) and `total` (all matching entries) sit at the top level of
//!   the body next to `response`, not inside it.
//! * `offset` is the 1-based position of the first entry returned (not a page number). An
//!   invalid limit or offset, or an is_valid other than 0/1/true/false, answers 116.
//!   `is_valid=1` lists only coupons that are unexpired (today UTC before `expires`) with uses
//!   left (`times_used < allowed_uses`); `is_valid=0` only the others.
//! * update's `updated` counts the coupons whose state actually changed (a no-op update, such
//!   as a retry of an update that already took effect, answers `updated: 0`).
//! * A currency sent with a percentage coupon is checked (134/158) and kept; a blank currency
//!   counts as absent. Blank optional create parameters (other than coupon_code, group and
//!   description) count as absent.
//! * Codes generated with `coupon_prefix` are the prefix followed by 8 random `[A-Z0-9]`.
//! * Group names are matched exactly (case-sensitive); codes ignoring case.

use super::{Common, Fault, Recorded, dropped};
use crate::api::extract::parse_php_query;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use chrono::{NaiveDate, Utc};
use rand::Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A failed call: the Classic error code and its message (always sent with HTTP 200).
struct Failure {
    code: u16,
    message: String,
}

impl Failure {
    fn new(code: u16) -> Self {
        Self {
            code,
            message: message(code).to_owned(),
        }
    }

    fn detail(code: u16, detail: &str) -> Self {
        Self {
            code,
            message: format!("{}: {detail}", message(code)),
        }
    }

    fn body(&self) -> Value {
        json!({"success": false, "error": {"code": self.code, "message": self.message}})
    }
}

fn fail<T>(code: u16) -> Result<T, Failure> {
    Err(Failure::new(code))
}

fn missing(arg: &str) -> Failure {
    Failure::detail(116, arg)
}

fn message(code: u16) -> &'static str {
    match code {
        101 => "Bad method call",
        102 => "Bad api key",
        107 => "You don't have permission to access this resource",
        108 => "Unable to find requested product",
        116 => "One or more required arguments are missing or invalid",
        120 => "Internal error",
        127 => "The discount type is not recognised: the only valid types are flat and percentage",
        128 => "The percentage is not valid: it must be a number greater than 0 and less than 100",
        129 => "The flat amount is not valid: it must be a number equal to or greater than 0.01",
        130 => "The allowed uses must be a number",
        131 => "The coupon code is invalid: it must have between 5 and 300 characters",
        132 => "The coupon code has already been used for this product",
        133 => "The coupon expiration date is invalid: the expected format is YYYY-MM-DD",
        134 => "The currency is not valid",
        135 => "Unable to find requested coupon",
        136 => "allowed_uses cannot be less than times_used",
        137 => "The allowed uses must be greater than or equal to 0",
        138 => "The expiration date must be a future date or left out",
        157 => "Unknown coupon error",
        158 => "The coupon currency must match the balance currency",
        159 => "The combination of parameters is incorrect",
        160 => "The recurring value is not valid: allowed values are 0 and 1",
        161 => "The minimum threshold is not valid: it must be a number greater than 0.01",
        162 => "The group must have between 1 and 50 characters",
        163 => "The number of coupons is not valid: it must be between 1 and 1000",
        165 => "The coupon type is not recognised: the only valid types are product and checkout",
        166 => "The description must be a string of at most 300 characters",
        189 => "Rate limit reached for this type of request",
        191 => "The offset parameter cannot be used without limit",
        _ => "Unknown error",
    }
}

/// One coupon as the simulator holds it.
#[derive(Debug, Clone, PartialEq)]
struct Coupon {
    code: String,
    group: Option<String>,
    description: Option<String>,
    /// `product` or `checkout`.
    coupon_type: String,
    product_ids: Vec<u64>,
    /// `flat` or `percentage`.
    discount_type: String,
    /// As sent (`"12.5"`, `"10.00"`).
    discount_amount: String,
    currency: Option<String>,
    allowed_uses: i64,
    times_used: i64,
    /// `YYYY-MM-DD`: the coupon stops working at 00:00 UTC that day.
    expires: Option<String>,
    recurring: bool,
    minimum_threshold: Option<String>,
}

impl Coupon {
    fn to_value(&self) -> Value {
        json!({
            "coupon_code": self.code,
            "group": self.group,
            "description": self.description,
            "coupon_type": self.coupon_type,
            "product_ids": self.product_ids,
            "discount_type": self.discount_type,
            "discount_amount": self.discount_amount,
            "currency": self.currency,
            "allowed_uses": self.allowed_uses,
            "times_used": self.times_used,
            "expires": self.expires,
            "recurring": self.recurring,
            "minimum_threshold": self.minimum_threshold,
        })
    }

    /// Reads the internal JSON leniently, filling what is missing with defaults.
    fn from_value(v: &Value, fallback_code: String, balance: &str) -> Coupon {
        let text = |k: &str| -> Option<String> {
            match v.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }
        };
        let int = |k: &str| -> Option<i64> {
            match v.get(k) {
                Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
        };
        let product_ids: Vec<u64> = match v.get("product_ids") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| {
                    x.as_u64()
                        .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
                })
                .collect(),
            Some(Value::String(s)) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
            Some(Value::Number(n)) => n.as_u64().into_iter().collect(),
            _ => Vec::new(),
        };
        let coupon_type = match text("coupon_type").as_deref() {
            Some("product") => "product",
            Some("checkout") => "checkout",
            _ if product_ids.is_empty() => "checkout",
            _ => "product",
        }
        .to_owned();
        let discount_type = if text("discount_type").as_deref() == Some("flat") {
            "flat"
        } else {
            "percentage"
        }
        .to_owned();
        let currency = match v.get("currency") {
            Some(Value::String(s)) => Some(s.clone()),
            None if discount_type == "flat" => Some(balance.to_owned()),
            _ => None,
        };
        let expires = text("expires").map(|s| s.get(..10).unwrap_or(s.as_str()).to_owned());
        let recurring = match v.get("recurring") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        Coupon {
            code: text("coupon_code")
                .or_else(|| text("coupon"))
                .unwrap_or(fallback_code),
            group: v.get("group").and_then(Value::as_str).map(str::to_owned),
            description: v
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            coupon_type,
            product_ids,
            discount_type,
            discount_amount: text("discount_amount").unwrap_or_else(|| "10".to_owned()),
            currency,
            allowed_uses: int("allowed_uses").unwrap_or(999_999),
            times_used: int("times_used").unwrap_or(0),
            expires,
            recurring,
            minimum_threshold: text("minimum_threshold"),
        }
    }

    /// Unexpired (today before `expires`) with uses left.
    fn valid(&self, today: NaiveDate) -> bool {
        self.expires
            .as_deref()
            .and_then(parse_date)
            .is_none_or(|e| today < e)
            && self.times_used < self.allowed_uses
    }

    /// The list_coupons entry, with the live API's quirks.
    fn list_entry(&self) -> Value {
        let amount = decimal(&self.discount_amount).unwrap_or_default();
        let shown = if self.discount_type == "percentage" {
            amount / Decimal::from(100)
        } else {
            amount
        };
        json!({
            "coupon": self.code,
            "description": self.description,
            "discount_type": self.discount_type,
            "discount_amount": shown.to_f64().unwrap_or(0.0),
            "discount_currency": Value::Null,
            "allowed_uses": self.allowed_uses,
            "times_used": self.times_used,
            "is_recurring": self.recurring,
            "expires": self.expires.as_ref().map(|e| format!("{e} 00:00:00")),
        })
    }
}

struct Data {
    vendor_id: u64,
    auth_code: String,
    balance_currency: String,
    products: BTreeSet<u64>,
    http_429: bool,
    /// Live coupons by creation sequence number, so in creation order (deleted ones are
    /// removed). Change them only through `push`, `replace`, `take` or with `unindex`/`index`
    /// around the change, which keep `by_code` and `by_group` in step.
    coupons: BTreeMap<u64, Coupon>,
    /// The sequence number the next new coupon gets.
    next_seq: u64,
    /// Lowercased code (`str::to_lowercase`, as [`same_code`] compares) → sequence numbers of
    /// the live coupons holding it, ascending (one, unless a dashboard edit made a duplicate).
    by_code: HashMap<String, Vec<u64>>,
    /// Group (exact) → sequence numbers of the live coupons in it, ascending.
    by_group: HashMap<String, Vec<u64>>,
    /// Parameters of every successful update_coupon call.
    updates: Vec<Map<String, Value>>,
}

/// Adds `k` to the ascending list under `key`.
fn add_seq(m: &mut HashMap<String, Vec<u64>>, key: String, k: u64) {
    let v = m.entry(key).or_default();
    if let Err(pos) = v.binary_search(&k) {
        v.insert(pos, k);
    }
}

/// Removes `k` from the list under `key` (dropping an emptied list).
fn drop_seq(m: &mut HashMap<String, Vec<u64>>, key: &str, k: u64) {
    let empty = match m.get_mut(key) {
        Some(v) => {
            if let Ok(pos) = v.binary_search(&k) {
                v.remove(pos);
            }
            v.is_empty()
        }
        None => return,
    };
    if empty {
        m.remove(key);
    }
}

impl Data {
    /// The first (oldest) live coupon whose code is `code` ignoring case.
    fn find(&self, code: &str) -> Option<u64> {
        self.by_code
            .get(&code.to_lowercase())
            .and_then(|v| v.first().copied())
    }

    /// Whether a live coupon other than `me` has the code `code` ignoring case.
    fn code_taken_by_other(&self, code: &str, me: u64) -> bool {
        self.by_code
            .get(&code.to_lowercase())
            .is_some_and(|v| v.iter().any(|&k| k != me))
    }

    /// The live coupons of a group, in creation order.
    fn in_group(&self, group: &str) -> Vec<u64> {
        self.by_group.get(group).cloned().unwrap_or_default()
    }

    /// Adds coupon `k` to the indexes as it now reads.
    fn index(&mut self, k: u64) {
        let Some(c) = self.coupons.get(&k) else {
            return;
        };
        let code = c.code.to_lowercase();
        let group = c.group.clone();
        add_seq(&mut self.by_code, code, k);
        if let Some(g) = group {
            add_seq(&mut self.by_group, g, k);
        }
    }

    /// Takes coupon `k` out of the indexes (call before changing its code or group).
    fn unindex(&mut self, k: u64) {
        let Some(c) = self.coupons.get(&k) else {
            return;
        };
        let code = c.code.to_lowercase();
        let group = c.group.clone();
        drop_seq(&mut self.by_code, &code, k);
        if let Some(g) = group {
            drop_seq(&mut self.by_group, &g, k);
        }
    }

    /// Appends a new live coupon (last in creation order).
    fn push(&mut self, c: Coupon) {
        let k = self.next_seq;
        self.next_seq += 1;
        self.coupons.insert(k, c);
        self.index(k);
    }

    /// Replaces coupon `k` in place (keeping its place in creation order).
    fn replace(&mut self, k: u64, c: Coupon) {
        self.unindex(k);
        self.coupons.insert(k, c);
        self.index(k);
    }

    /// Deletes coupon `k`.
    fn take(&mut self, k: u64) -> Option<Coupon> {
        self.unindex(k);
        self.coupons.remove(&k)
    }

    /// A random code (`prefix` + 8 of `[A-Z0-9]`) not used by a live coupon nor in `also`.
    fn random_code(&self, prefix: &str, also: &[String]) -> String {
        loop {
            let c = format!("{prefix}{}", random8());
            if self.find(&c).is_none() && !also.iter().any(|o| same_code(o, &c)) {
                return c;
            }
        }
    }

    fn check_currency(&self, c: &str) -> Result<String, Failure> {
        let c = c.trim();
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return fail(134);
        }
        if c != self.balance_currency {
            return fail(158);
        }
        Ok(c.to_owned())
    }

    /// Comma-separated product ids, each of which must exist (108).
    fn products_from(&self, s: &str) -> Result<Vec<u64>, Failure> {
        let mut ids: Vec<u64> = Vec::new();
        for part in s.split(',') {
            let t = part.trim();
            if t.is_empty() {
                continue;
            }
            let Ok(id) = t.parse::<u64>() else {
                return fail(108);
            };
            if !self.products.contains(&id) {
                return fail(108);
            }
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

/// The simulator: share it (`Arc`) between its server and the test that inspects it.
pub struct PaddleClassicSim {
    pub common: Common,
    data: Mutex<Data>,
}

fn same_code(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

fn random8() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Strict `YYYY-MM-DD`.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn decimal(s: &str) -> Option<Decimal> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    Decimal::from_str(t)
        .ok()
        .or_else(|| Decimal::from_scientific(t).ok())
}

/// A parameter's text (all parameters are text after [`normalize`]).
fn text<'a>(p: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    p.get(k).and_then(Value::as_str)
}

/// A parameter that is present and not blank.
fn given<'a>(p: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    text(p, k).filter(|s| !s.trim().is_empty())
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => (if *b { "1" } else { "0" }).to_owned(),
        other => other.to_string(),
    }
}

/// Every parameter as text: numbers as written, booleans as 1/0, null as blank, an array of
/// scalars as a comma-separated list, anything else as its JSON text.
fn normalize(raw: Map<String, Value>) -> Map<String, Value> {
    raw.into_iter()
        .map(|(k, v)| {
            let t = match &v {
                Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
                    items.iter().map(scalar_text).collect::<Vec<_>>().join(",")
                }
                Value::Array(_) | Value::Object(_) => v.to_string(),
                other => scalar_text(other),
            };
            (k, Value::String(t))
        })
        .collect()
}

/// Form body, or a JSON object body (by Content-Type, or by a leading `{` without one).
fn parse_body(headers: &HeaderMap, body: &str) -> Map<String, Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let json_body =
        ct.contains("json") || (!ct.contains("form") && body.trim_start().starts_with('{'));
    let raw = if json_body {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    } else {
        parse_php_query(body)
    };
    normalize(raw)
}

fn check_code(s: &str) -> Result<String, Failure> {
    let n = s.chars().count();
    if !(5..=300).contains(&n) {
        return fail(131);
    }
    Ok(s.to_owned())
}

fn check_group(s: &str) -> Result<String, Failure> {
    let n = s.chars().count();
    if !(1..=50).contains(&n) {
        return fail(162);
    }
    Ok(s.to_owned())
}

fn check_amount(discount_type: &str, s: &str) -> Result<String, Failure> {
    let percentage = discount_type == "percentage";
    let code = if percentage { 128 } else { 129 };
    let Some(d) = decimal(s) else {
        return fail(code);
    };
    let ok = if percentage {
        d > Decimal::ZERO && d < Decimal::from(100)
    } else {
        d >= Decimal::new(1, 2)
    };
    if !ok {
        return fail(code);
    }
    Ok(s.trim().to_owned())
}

fn check_allowed_uses(s: &str) -> Result<i64, Failure> {
    let Ok(n) = s.trim().parse::<i64>() else {
        return fail(130);
    };
    if n < 0 {
        return fail(137);
    }
    Ok(n)
}

/// Blank: no expiry; otherwise a strict date after today.
fn check_expires(s: &str, today: NaiveDate) -> Result<Option<String>, Failure> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let Some(d) = parse_date(t) else {
        return fail(133);
    };
    if d <= today {
        return fail(138);
    }
    Ok(Some(t.to_owned()))
}

fn check_recurring(s: &str) -> Result<bool, Failure> {
    match s.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => fail(160),
    }
}

fn check_threshold(s: &str) -> Result<String, Failure> {
    match decimal(s) {
        Some(d) if d > Decimal::new(1, 2) => Ok(s.trim().to_owned()),
        _ => fail(161),
    }
}

fn ok(response: Value) -> Value {
    json!({"success": true, "response": response})
}

#[derive(Clone, Copy)]
enum Endpoint {
    List,
    Create,
    Update,
    Delete,
}

impl PaddleClassicSim {
    pub fn new(vendor_id: u64, vendor_auth_code: &str) -> Arc<Self> {
        Arc::new(Self {
            common: Common::default(),
            data: Mutex::new(Data {
                vendor_id,
                auth_code: vendor_auth_code.to_owned(),
                balance_currency: "USD".to_owned(),
                products: [1001u64, 1002, 1003].into_iter().collect(),
                http_429: false,
                coupons: BTreeMap::new(),
                next_seq: 0,
                by_code: HashMap::new(),
                by_group: HashMap::new(),
                updates: Vec::new(),
            }),
        })
    }

    /// The accepted credentials (changing them makes the daemon's "rejected").
    pub fn set_auth(&self, vendor_id: u64, vendor_auth_code: &str) {
        let mut d = self.data.lock().unwrap();
        d.vendor_id = vendor_id;
        d.auth_code = vendor_auth_code.to_owned();
    }

    /// The account's balance currency (default `USD`).
    pub fn set_balance_currency(&self, code: &str) {
        self.data.lock().unwrap().balance_currency = code.to_owned();
    }

    /// Adds products that exist (1001, 1002 and 1003 exist from the start).
    pub fn add_products(&self, ids: &[u64]) {
        self.data
            .lock()
            .unwrap()
            .products
            .extend(ids.iter().copied());
    }

    /// Rate-limit answers: `false` (default) HTTP 200 with error 189; `true` HTTP 429 with
    /// `Retry-After` and the same body.
    pub fn set_http_429(&self, on: bool) {
        self.data.lock().unwrap().http_429 = on;
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_sim/state", axum::routing::get(state))
            .fallback(handle)
            .with_state(self.clone())
    }

    /// Every live coupon (internal state), in creation order.
    pub fn coupons(&self) -> Vec<Value> {
        self.data
            .lock()
            .unwrap()
            .coupons
            .values()
            .map(Coupon::to_value)
            .collect()
    }

    /// A live coupon by code, ignoring case.
    pub fn get(&self, code: &str) -> Option<Value> {
        let d = self.data.lock().unwrap();
        d.find(code).map(|i| d.coupons[&i].to_value())
    }

    /// An edit made in the dashboard: `f` changes the internal JSON (unreadable fields fall
    /// back to defaults). False if no live coupon has the code.
    pub fn edit(&self, code: &str, f: impl FnOnce(&mut Value)) -> bool {
        let (original, mut v) = {
            let d = self.data.lock().unwrap();
            let Some(i) = d.find(code) else {
                return false;
            };
            (d.coupons[&i].code.clone(), d.coupons[&i].to_value())
        };
        f(&mut v);
        let mut d = self.data.lock().unwrap();
        let Some(i) = d.find(&original) else {
            return false;
        };
        let balance = d.balance_currency.clone();
        d.replace(i, Coupon::from_value(&v, original, &balance));
        true
    }

    /// A coupon deleted in the dashboard. False if no live coupon has the code.
    pub fn remove(&self, code: &str) -> bool {
        let mut d = self.data.lock().unwrap();
        match d.find(code) {
            Some(i) => {
                d.take(i);
                true
            }
            None => false,
        }
    }

    /// A coupon created by someone else (internal JSON; missing fields get defaults: a random
    /// code, percentage 10, 999999 uses, ...). A live coupon with the same code is replaced.
    pub fn insert(&self, coupon: Value) {
        let mut d = self.data.lock().unwrap();
        let fallback = d.random_code("", &[]);
        let balance = d.balance_currency.clone();
        let c = Coupon::from_value(&coupon, fallback, &balance);
        match d.find(&c.code) {
            Some(i) => d.replace(i, c),
            None => d.push(c),
        }
    }

    /// Customers used the coupon `n` times.
    pub fn set_times_used(&self, code: &str, n: i64) {
        let mut d = self.data.lock().unwrap();
        if let Some(i) = d.find(code)
            && let Some(c) = d.coupons.get_mut(&i)
        {
            c.times_used = n;
        }
    }

    /// The (text) parameters of every successful update_coupon call, in order, credentials
    /// included.
    pub fn updates(&self) -> Vec<Map<String, Value>> {
        self.data.lock().unwrap().updates.clone()
    }

    fn authorize(&self, p: &Map<String, Value>) -> Result<(), Failure> {
        let d = self.data.lock().unwrap();
        let (Some(id), Some(code)) = (given(p, "vendor_id"), given(p, "vendor_auth_code")) else {
            return fail(102);
        };
        if id.trim().parse::<u64>().ok() != Some(d.vendor_id) {
            return fail(107);
        }
        if code != d.auth_code {
            return fail(102);
        }
        Ok(())
    }

    fn route(&self, endpoint: Endpoint, p: &Map<String, Value>) -> Result<Value, Failure> {
        match endpoint {
            Endpoint::List => self.list(p),
            Endpoint::Create => self.create(p),
            Endpoint::Update => self.update(p),
            Endpoint::Delete => self.delete(p),
        }
    }

    fn create(&self, p: &Map<String, Value>) -> Result<Value, Failure> {
        let today = today();
        let mut d = self.data.lock().unwrap();
        let code = text(p, "coupon_code");
        let prefix = given(p, "coupon_prefix");
        let num = given(p, "num_coupons");
        if code.is_some() && (prefix.is_some() || num.is_some()) {
            return fail(159);
        }
        let coupon_type = match text(p, "coupon_type").map(str::trim) {
            None | Some("") => return Err(missing("coupon_type")),
            Some(t @ ("product" | "checkout")) => t.to_owned(),
            Some(_) => return fail(165),
        };
        let product_ids = if coupon_type == "product" {
            let Some(raw) = given(p, "product_ids") else {
                return Err(missing("product_ids"));
            };
            let ids = d.products_from(raw)?;
            if ids.is_empty() {
                return Err(missing("product_ids"));
            }
            ids
        } else {
            Vec::new()
        };
        let discount_type = match text(p, "discount_type").map(str::trim) {
            None | Some("") => return Err(missing("discount_type")),
            Some(t @ ("flat" | "percentage")) => t.to_owned(),
            Some(_) => return fail(127),
        };
        let Some(amount) = given(p, "discount_amount") else {
            return Err(missing("discount_amount"));
        };
        let discount_amount = check_amount(&discount_type, amount)?;
        let currency = match given(p, "currency") {
            Some(c) => Some(d.check_currency(c)?),
            None if discount_type == "flat" => return Err(missing("currency")),
            None => None,
        };
        let allowed_uses = match given(p, "allowed_uses") {
            Some(s) => check_allowed_uses(s)?,
            None => 999_999,
        };
        let expires = match text(p, "expires") {
            Some(s) => check_expires(s, today)?,
            None => None,
        };
        let recurring = match given(p, "recurring") {
            Some(s) => check_recurring(s)?,
            None => false,
        };
        let description = match text(p, "description") {
            Some(s) if s.chars().count() > 300 => return fail(166),
            Some(s) => Some(s.to_owned()),
            None => None,
        };
        let group = text(p, "group").map(check_group).transpose()?;
        let minimum_threshold = given(p, "minimum_threshold")
            .map(check_threshold)
            .transpose()?;
        let codes: Vec<String> = match code {
            Some(c) => {
                let c = check_code(c)?;
                if d.find(&c).is_some() {
                    return fail(132);
                }
                vec![c]
            }
            None => {
                let n = match num {
                    Some(s) => match s.trim().parse::<i64>() {
                        Ok(n) if (1..=1000).contains(&n) => n as usize,
                        _ => return fail(163),
                    },
                    None => 1,
                };
                let prefix = prefix.unwrap_or("");
                if prefix.chars().count() + 8 > 300 {
                    return fail(131);
                }
                let mut out: Vec<String> = Vec::with_capacity(n);
                while out.len() < n {
                    let c = d.random_code(prefix, &out);
                    out.push(c);
                }
                out
            }
        };
        for c in &codes {
            d.push(Coupon {
                code: c.clone(),
                group: group.clone(),
                description: description.clone(),
                coupon_type: coupon_type.clone(),
                product_ids: product_ids.clone(),
                discount_type: discount_type.clone(),
                discount_amount: discount_amount.clone(),
                currency: currency.clone(),
                allowed_uses,
                times_used: 0,
                expires: expires.clone(),
                recurring,
                minimum_threshold: minimum_threshold.clone(),
            });
        }
        Ok(ok(json!({"coupon_codes": codes})))
    }

    fn update(&self, p: &Map<String, Value>) -> Result<Value, Failure> {
        let today = today();
        let mut d = self.data.lock().unwrap();
        let code = text(p, "coupon_code");
        let group = text(p, "group");
        if code.is_some() == group.is_some() {
            return fail(159);
        }
        if p.contains_key("discount_type") || p.contains_key("coupon_type") {
            return fail(159);
        }
        if group.is_some() && p.contains_key("new_coupon_code") {
            return fail(159);
        }
        let targets: Vec<u64> = match (code, group) {
            (Some(c), _) => d.find(c).into_iter().collect(),
            (None, Some(g)) => d.in_group(g),
            (None, None) => Vec::new(),
        };
        if targets.is_empty() {
            return fail(135);
        }
        // every check before any change
        let new_code = match text(p, "new_coupon_code") {
            Some(s) => {
                let s = check_code(s)?;
                let me = targets[0];
                if d.code_taken_by_other(&s, me) {
                    return fail(132);
                }
                Some(s)
            }
            None => None,
        };
        let new_group = text(p, "new_group").map(check_group).transpose()?;
        let products: Option<Vec<u64>> = match text(p, "product_ids") {
            Some(s) if s.trim().is_empty() => Some(Vec::new()),
            Some(s) => Some(d.products_from(s)?),
            None => None,
        };
        let expires: Option<Option<String>> = match text(p, "expires") {
            Some(s) => Some(check_expires(s, today)?),
            None => None,
        };
        let allowed_uses = text(p, "allowed_uses")
            .map(check_allowed_uses)
            .transpose()?;
        let recurring = text(p, "recurring").map(check_recurring).transpose()?;
        let threshold: Option<Option<String>> = match text(p, "minimum_threshold") {
            Some(s) if s.trim().is_empty() => Some(None),
            Some(s) => Some(Some(check_threshold(s)?)),
            None => None,
        };
        let currency = match given(p, "currency") {
            Some(c) => Some(d.check_currency(c)?),
            None => None,
        };
        let amount = text(p, "discount_amount");
        for &i in &targets {
            let c = &d.coupons[&i];
            if let Some(n) = allowed_uses
                && n < c.times_used
            {
                return fail(136);
            }
            if let Some(a) = amount {
                check_amount(&c.discount_type, a)?;
                if c.discount_type == "flat" && currency.is_none() {
                    return Err(missing("currency"));
                }
            }
        }
        let mut updated: u64 = 0;
        for &i in &targets {
            // code and group may change: out of the indexes and back in
            d.unindex(i);
            let Some(c) = d.coupons.get_mut(&i) else {
                continue;
            };
            let before = c.clone();
            if let Some(s) = &new_code {
                c.code = s.clone();
            }
            if let Some(g) = &new_group {
                c.group = Some(g.clone());
            }
            if let Some(ids) = &products {
                c.product_ids = ids.clone();
                c.coupon_type = (if ids.is_empty() {
                    "checkout"
                } else {
                    "product"
                })
                .to_owned();
            }
            if let Some(e) = &expires {
                c.expires = e.clone();
            }
            if let Some(n) = allowed_uses {
                c.allowed_uses = n;
            }
            if let Some(a) = amount {
                c.discount_amount = a.trim().to_owned();
            }
            if let Some(cur) = &currency {
                c.currency = Some(cur.clone());
            }
            if let Some(r) = recurring {
                c.recurring = r;
            }
            if let Some(m) = &threshold {
                c.minimum_threshold = m.clone();
            }
            let changed = *c != before;
            d.index(i);
            if changed {
                updated += 1;
            }
        }
        d.updates.push(p.clone());
        Ok(ok(json!({"updated": updated})))
    }

    fn delete(&self, p: &Map<String, Value>) -> Result<Value, Failure> {
        let mut d = self.data.lock().unwrap();
        let Some(code) = given(p, "coupon_code") else {
            return Err(missing("coupon_code"));
        };
        let Some(i) = d.find(code) else {
            return fail(135);
        };
        if let Some(pid) = given(p, "product_id") {
            let Ok(pid) = pid.trim().parse::<u64>() else {
                return fail(135);
            };
            if !d.coupons[&i].product_ids.contains(&pid) {
                return fail(135);
            }
        }
        d.take(i);
        Ok(json!({"success": true}))
    }

    fn list(&self, p: &Map<String, Value>) -> Result<Value, Failure> {
        let today = today();
        let d = self.data.lock().unwrap();
        let Some(pid) = given(p, "product_id") else {
            return Err(missing("product_id"));
        };
        let Ok(pid) = pid.trim().parse::<u64>() else {
            return fail(108);
        };
        if !d.products.contains(&pid) {
            return fail(108);
        }
        let limit = match given(p, "limit") {
            Some(s) => match s.trim().parse::<usize>() {
                Ok(n) if (1..=500).contains(&n) => Some(n),
                _ => {
                    return Err(Failure::detail(
                        116,
                        "limit must be an integer from 1 to 500",
                    ));
                }
            },
            None => None,
        };
        let offset = match given(p, "offset") {
            Some(s) => {
                if limit.is_none() {
                    return fail(191);
                }
                match s.trim().parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        return Err(Failure::detail(
                            116,
                            "offset must be an integer of at least 1",
                        ));
                    }
                }
            }
            None => 1,
        };
        let is_valid = match given(p, "is_valid").map(str::trim) {
            None => None,
            Some("1" | "true") => Some(true),
            Some("0" | "false") => Some(false),
            Some(_) => return Err(Failure::detail(116, "is_valid must be a boolean")),
        };
        let wanted = given(p, "coupon");
        let matching: Vec<&Coupon> = d
            .coupons
            .values()
            .filter(|c| c.coupon_type == "checkout" || c.product_ids.contains(&pid))
            .filter(|c| wanted.is_none_or(|w| same_code(&c.code, w)))
            .filter(|c| is_valid.is_none_or(|v| c.valid(today) == v))
            .collect();
        let total = matching.len();
        let page: Vec<Value> = matching
            .iter()
            .skip(offset - 1)
            .take(limit.unwrap_or(500))
            .map(|c| c.list_entry())
            .collect();
        let count = page.len();
        Ok(json!({"success": true, "response": page, "count": count, "total": total}))
    }
}

/// `GET /_sim/state`: what the simulator holds (no auth; for people trying `--demo`).
async fn state(State(sim): State<Arc<PaddleClassicSim>>) -> axum::Json<Value> {
    axum::Json(json!({"coupons": sim.coupons()}))
}

fn json_response(status: StatusCode, body: &Value, extra: &[(&str, String)]) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in extra {
        b = b.header(*k, v);
    }
    b.body(Body::from(body.to_string())).expect("response")
}

async fn handle(
    State(sim): State<Arc<PaddleClassicSim>>,
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
    sim: &PaddleClassicSim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &str,
) -> (u16, Response<Body>) {
    sim.common.delay().await;
    let reply = |s: StatusCode, v: &Value| (s.as_u16(), json_response(s, v, &[]));
    let endpoint = match uri.path().trim_end_matches('/') {
        "/2.0/product/list_coupons" => Endpoint::List,
        "/2.1/product/create_coupon" => Endpoint::Create,
        "/2.1/product/update_coupon" => Endpoint::Update,
        "/2.0/product/delete_coupon" => Endpoint::Delete,
        _ => return reply(StatusCode::NOT_FOUND, &Failure::new(101).body()),
    };
    if *method != Method::POST {
        let s = StatusCode::METHOD_NOT_ALLOWED;
        return (
            s.as_u16(),
            json_response(
                s,
                &Failure::new(101).body(),
                &[("Allow", "POST".to_owned())],
            ),
        );
    }
    if let Err(retry_after) = sim.common.admit() {
        let limited = Failure::new(189).body();
        let http_429 = sim.data.lock().unwrap().http_429;
        if http_429 {
            let s = StatusCode::TOO_MANY_REQUESTS;
            let secs = retry_after.unwrap_or(1);
            return (
                s.as_u16(),
                json_response(s, &limited, &[("Retry-After", secs.to_string())]),
            );
        }
        return reply(StatusCode::OK, &limited);
    }
    let params = parse_body(headers, body);
    if let Err(f) = sim.authorize(&params) {
        return reply(StatusCode::OK, &f.body());
    }
    let fault = sim.common.after_effects();
    if fault == Fault::ServerError {
        return reply(StatusCode::OK, &Failure::new(120).body());
    }
    let v = match sim.route(endpoint, &params) {
        Ok(v) => v,
        Err(f) => f.body(),
    };
    if fault == Fault::Drop {
        return (0, dropped());
    }
    reply(StatusCode::OK, &v)
}
