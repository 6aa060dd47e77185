//! A stateful WooCommerce REST v3 coupon simulator that enforces what `providers/woocommerce.md`
//! says a shop enforces: OAuth 1.0a (one-legged, HMAC-SHA1, timestamp window, nonce replay) on
//! plain http and Basic / query keys on https, schema type checks with WordPress's error shapes,
//! lowercased codes unique among published coupons ignoring case, string amounts formatted to two
//! decimals (percent > 100 silently zeroed), site-local expiry dates, meta_data semantics, trash
//! versus forced delete, list filters and pagination headers, and batches with a size limit.
//! Faults are injected through [`Common`].

use super::{Common, Fault, Recorded, dropped};
use crate::providers::woocommerce::oauth::{base_string, encode_pairs, signature};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use base64::Engine;
use chrono::{NaiveDate, NaiveDateTime, TimeDelta, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};
use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

type Answer = (StatusCode, Value);
type Out = (StatusCode, Value, Vec<(&'static str, String)>);

const DATE_FMT: &str = "%Y-%m-%dT%H:%M:%S";
/// Seconds a timestamp may be off, and how long a nonce stays used.
const OAUTH_WINDOW: i64 = 900;
/// Fewest stored nonces at which stale ones are pruned.
const NONCE_PRUNE_MIN: usize = 1024;

/// Writable fields, in schema order (the order WordPress validates and reports them).
const WRITABLE: [&str; 19] = [
    "code",
    "amount",
    "discount_type",
    "description",
    "date_expires",
    "individual_use",
    "product_ids",
    "excluded_product_ids",
    "usage_limit",
    "usage_limit_per_user",
    "limit_usage_to_x_items",
    "free_shipping",
    "product_categories",
    "excluded_product_categories",
    "exclude_sale_items",
    "minimum_amount",
    "maximum_amount",
    "email_restrictions",
    "meta_data",
];

#[derive(Clone)]
struct Config {
    key: String,
    secret: String,
    gmt_offset: f64,
    https: bool,
    subscriptions: bool,
    batch_limit: usize,
}

struct Data {
    /// Published and trashed coupons, in id order, API shape without `_links`.
    coupons: Vec<Value>,
    next_id: i64,
    next_meta: i64,
    /// OAuth nonce → unix time it was used. Entries older than the window count as unused;
    /// they are pruned whenever the map reaches `nonce_prune_at` entries.
    nonces: HashMap<String, i64>,
    /// Size of `nonces` at which stale entries are pruned next (doubles with the live count,
    /// so pruning costs O(1) per request amortised).
    nonce_prune_at: usize,
    /// Lower-cased code → ids of the coupons holding it whose `status` is exactly `"publish"`
    /// (the duplicate-code check and `?code=`). Kept by [`Data::index`] / [`Data::unindex`].
    by_code: HashMap<String, Vec<i64>>,
    /// Ids, ascending, of the coupons a default list leaves out (`status` a string other than
    /// `"publish"`, i.e. trashed): lets an id-ordered page be cut without a scan.
    hidden: Vec<i64>,
}

/// What the indexes of [`Data`] record about one coupon.
struct Keys {
    id: i64,
    /// Lower-cased code, when the coupon is published (`status == "publish"`).
    code: Option<String>,
    /// Left out of a default (`status=publish`) list.
    hidden: bool,
}

fn keys(c: &Value) -> Keys {
    Keys {
        id: id_of(c),
        code: (c["status"] == "publish").then(|| lc(&c["code"])),
        hidden: !listed(c),
    }
}

/// Shown by a default (`status=publish`) list.
fn listed(c: &Value) -> bool {
    c["status"].as_str().unwrap_or("publish") == "publish"
}

/// The simulator: share it (`Arc`) between its server and the test that inspects it.
pub struct WooSim {
    pub common: Common,
    config: Mutex<Config>,
    data: Mutex<Data>,
    rejections: AtomicU64,
}

// ---------------------------------------------------------------------------------------------
// Error bodies

fn st(n: u16) -> StatusCode {
    StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn wc_err(status: StatusCode, code: &str, message: impl Into<String>) -> Answer {
    (
        status,
        json!({"code": code, "message": message.into(), "data": {"status": status.as_u16()}}),
    )
}

fn no_route() -> Answer {
    wc_err(
        StatusCode::NOT_FOUND,
        "rest_no_route",
        "No route was found matching the URL and request method.",
    )
}

fn invalid_id(status: u16) -> Answer {
    wc_err(
        st(status),
        "woocommerce_rest_shop_coupon_invalid_id",
        "Invalid ID.",
    )
}

fn invalid_json() -> Answer {
    wc_err(
        StatusCode::BAD_REQUEST,
        "rest_invalid_json",
        "Invalid JSON body passed.",
    )
}

fn missing_code() -> Answer {
    (
        StatusCode::BAD_REQUEST,
        json!({
            "code": "rest_missing_callback_param",
            "message": "Missing parameter(s): code",
            "data": {"status": 400, "params": ["code"]}
        }),
    )
}

/// One failed schema check: the parameter, its message, and its `details` entry.
struct Invalid {
    param: String,
    message: String,
    detail: Value,
}

fn type_error(param: &str, path: &str, ty: &str) -> Invalid {
    let message = format!("{path} is not of type {ty}.");
    Invalid {
        param: param.to_owned(),
        message: message.clone(),
        detail: json!({"code": "rest_invalid_type", "message": message, "data": {"param": path}}),
    }
}

/// WordPress's `%l`: "a", "a and b", "a, b, and c".
fn wp_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [a] => (*a).to_owned(),
        [a, b] => format!("{a} and {b}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

fn enum_error(param: &str, allowed: &[&str]) -> Invalid {
    let message = format!("{param} is not one of {}.", wp_list(allowed));
    Invalid {
        param: param.to_owned(),
        message: message.clone(),
        detail: json!({"code": "rest_not_in_enum", "message": message, "data": null}),
    }
}

fn other_error(param: &str, code: &str, message: String) -> Invalid {
    Invalid {
        param: param.to_owned(),
        message: message.clone(),
        detail: json!({"code": code, "message": message, "data": null}),
    }
}

fn invalid_params(list: Vec<Invalid>) -> Answer {
    let names = list
        .iter()
        .map(|i| i.param.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut params = Map::new();
    let mut details = Map::new();
    for i in list {
        params.insert(i.param.clone(), Value::String(i.message));
        details.insert(i.param, i.detail);
    }
    (
        StatusCode::BAD_REQUEST,
        json!({
            "code": "rest_invalid_param",
            "message": format!("Invalid parameter(s): {names}"),
            "data": {"status": 400, "params": params, "details": details}
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Value helpers

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An integer list (array, or a comma-separated string). `Err(Some(i))`: item `i` is not an
/// integer; `Err(None)`: not a list at all.
fn id_list(v: &Value) -> Result<Vec<i64>, Option<usize>> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| as_int(x).ok_or(Some(i)))
            .collect(),
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
            .map(|(i, p)| p.parse::<i64>().map_err(|_| Some(i)))
            .collect(),
        _ => Err(None),
    }
}

fn str_list(v: &Value) -> Result<Vec<String>, Option<usize>> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| x.as_str().map(str::to_owned).ok_or(Some(i)))
            .collect(),
        Value::String(s) => Ok(s
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()),
        _ => Err(None),
    }
}

fn lc(v: &Value) -> String {
    v.as_str().unwrap_or("").to_lowercase()
}

fn id_of(c: &Value) -> i64 {
    c["id"].as_i64().unwrap_or(0)
}

fn str_of(c: &Value, k: &str) -> String {
    c[k].as_str().unwrap_or("").to_owned()
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    Decimal::from_str(t)
        .ok()
        .or_else(|| Decimal::from_scientific(t).ok())
}

/// Two decimals, rounded half away from zero; anything non-numeric is "0.00".
fn money(s: &str) -> String {
    let Some(d) = parse_decimal(s) else {
        return "0.00".to_owned();
    };
    let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    if r.is_zero() {
        return "0.00".to_owned();
    }
    r.rescale(2);
    r.to_string()
}

fn money_value(v: &Value) -> String {
    match v {
        Value::String(s) => money(s),
        Value::Number(n) => money(&n.to_string()),
        _ => "0.00".to_owned(),
    }
}

fn meta_value(v: &Value) -> Value {
    match v {
        Value::String(_) | Value::Array(_) | Value::Object(_) => v.clone(),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Null => Value::Null,
    }
}

fn offset_secs(hours: f64) -> i64 {
    (hours * 3600.0).round() as i64
}

fn fmt_date(d: NaiveDateTime) -> String {
    d.format(DATE_FMT).to_string()
}

/// (local, gmt) now.
fn now_pair(hours: f64) -> (String, String) {
    let utc = Utc::now().naive_utc();
    let local = utc + TimeDelta::seconds(offset_secs(hours));
    (fmt_date(local), fmt_date(utc))
}

/// A site-local date-time from what a client sends: date only (00:00), date and time, or an
/// RFC 3339 value with a zone (converted to site time).
fn parse_local_date(s: &str, hours: f64) -> Option<NaiveDateTime> {
    let t = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0);
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, f) {
            return Some(dt);
        }
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|dt| dt.naive_utc() + TimeDelta::seconds(offset_secs(hours)))
}

fn local_to_gmt(local: &str, hours: f64) -> Option<String> {
    NaiveDateTime::parse_from_str(local, DATE_FMT)
        .ok()
        .map(|d| fmt_date(d - TimeDelta::seconds(offset_secs(hours))))
}

fn gmt_to_local(gmt: &str, hours: f64) -> Option<String> {
    NaiveDateTime::parse_from_str(gmt, DATE_FMT)
        .ok()
        .map(|d| fmt_date(d + TimeDelta::seconds(offset_secs(hours))))
}

fn discount_types(subscriptions: bool) -> Vec<&'static str> {
    let mut t = vec!["percent", "fixed_cart", "fixed_product"];
    if subscriptions {
        t.extend([
            "recurring_fee",
            "recurring_percent",
            "sign_up_fee",
            "sign_up_fee_percent",
        ]);
    }
    t
}

fn default_coupon(id: i64, now: &(String, String)) -> Value {
    json!({
        "id": id,
        "code": "",
        "amount": "0.00",
        "status": "publish",
        "date_created": now.0,
        "date_created_gmt": now.1,
        "date_modified": now.0,
        "date_modified_gmt": now.1,
        "discount_type": "fixed_cart",
        "description": "",
        "date_expires": null,
        "date_expires_gmt": null,
        "usage_count": 0,
        "individual_use": false,
        "product_ids": [],
        "excluded_product_ids": [],
        "usage_limit": null,
        "usage_limit_per_user": null,
        "limit_usage_to_x_items": null,
        "free_shipping": false,
        "product_categories": [],
        "excluded_product_categories": [],
        "exclude_sale_items": false,
        "minimum_amount": "0.00",
        "maximum_amount": "0.00",
        "email_restrictions": [],
        "used_by": [],
        "meta_data": []
    })
}

fn bump_modified(c: &mut Value, hours: f64) {
    let (local, gmt) = now_pair(hours);
    if let Some(o) = c.as_object_mut() {
        o.insert("date_modified".into(), Value::String(local));
        o.insert("date_modified_gmt".into(), Value::String(gmt));
    }
}

/// The coupon as the API shows it: stored fields plus `_links` for this host.
fn render(c: &Value, host: &str) -> Value {
    let mut v = c.clone();
    let id = id_of(c);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "_links".into(),
            json!({
                "self": [{
                    "href": format!("http://{host}/wp-json/wc/v3/coupons/{id}"),
                    "targetHints": {"allow": ["GET", "POST", "PUT", "PATCH", "DELETE"]}
                }],
                "collection": [{"href": format!("http://{host}/wp-json/wc/v3/coupons")}]
            }),
        );
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Validation and writes

/// Schema checks on a write body (`null` passes: it means "no change" or "reset").
fn validate(m: &Map<String, Value>, subscriptions: bool) -> Vec<Invalid> {
    let mut bad = Vec::new();
    for k in WRITABLE {
        let Some(v) = m.get(k) else { continue };
        if v.is_null() {
            continue;
        }
        match k {
            "code" | "amount" | "description" | "minimum_amount" | "maximum_amount"
                if !v.is_string() =>
            {
                bad.push(type_error(k, k, "string"));
            }
            "discount_type" => match v.as_str() {
                None => bad.push(type_error(k, k, "string")),
                Some(s) => {
                    let types = discount_types(subscriptions);
                    if !types.contains(&s) {
                        bad.push(enum_error(k, &types));
                    }
                }
            },
            "date_expires" => match v.as_str() {
                None => bad.push(type_error(k, k, "null,string")),
                Some(s) => {
                    if !s.trim().is_empty() && parse_local_date(s, 0.0).is_none() {
                        bad.push(other_error(
                            k,
                            "rest_invalid_date",
                            "Invalid date.".to_owned(),
                        ));
                    }
                }
            },
            "individual_use" | "free_shipping" | "exclude_sale_items" if as_bool(v).is_none() => {
                bad.push(type_error(k, k, "boolean"));
            }
            "product_ids"
            | "excluded_product_ids"
            | "product_categories"
            | "excluded_product_categories" => match id_list(v) {
                Ok(_) => {}
                Err(Some(i)) => bad.push(type_error(k, &format!("{k}[{i}]"), "integer")),
                Err(None) => bad.push(type_error(k, k, "array")),
            },
            "usage_limit" | "usage_limit_per_user" | "limit_usage_to_x_items"
                if as_int(v).is_none() =>
            {
                bad.push(type_error(k, k, "integer"));
            }
            "email_restrictions" => match str_list(v) {
                Ok(_) => {}
                Err(Some(i)) => bad.push(type_error(k, &format!("{k}[{i}]"), "string")),
                Err(None) => bad.push(type_error(k, k, "array")),
            },
            "meta_data" => match v.as_array() {
                None => bad.push(type_error(k, k, "array")),
                Some(items) => {
                    for (i, it) in items.iter().enumerate() {
                        let Some(o) = it.as_object() else {
                            bad.push(type_error(k, &format!("{k}[{i}]"), "object"));
                            break;
                        };
                        if o.get("key").is_some_and(|x| !x.is_null() && !x.is_string()) {
                            bad.push(type_error(k, &format!("{k}[{i}][key]"), "string"));
                            break;
                        }
                        if o.get("id")
                            .is_some_and(|x| !x.is_null() && as_int(x).is_none())
                        {
                            bad.push(type_error(k, &format!("{k}[{i}][id]"), "integer"));
                            break;
                        }
                    }
                }
            },
            _ => {}
        }
    }
    bad
}

/// Blank code, or a code another published coupon uses (ignoring case).
fn check_code(d: &Data, m: &Map<String, Value>, self_id: Option<i64>) -> Result<(), Answer> {
    let Some(code) = m.get("code").and_then(Value::as_str) else {
        return Ok(());
    };
    if code.trim().is_empty() {
        return Err(wc_err(
            StatusCode::BAD_REQUEST,
            "woocommerce_rest_empty_coupon_code",
            "The coupon code cannot be empty.",
        ));
    }
    let wanted = code.to_lowercase();
    // only the published coupons whose lower-cased code matches can hold it exactly
    let taken = d.by_code.get(&wanted).is_some_and(|ids| {
        ids.iter().any(|&id| {
            Some(id) != self_id
                && d.position(id).is_some_and(|i| {
                    let c = &d.coupons[i];
                    c["code"].as_str() == Some(wanted.as_str()) && c["status"] == "publish"
                })
        })
    });
    if taken {
        return Err(wc_err(
            StatusCode::BAD_REQUEST,
            "woocommerce_rest_coupon_code_already_exists",
            "The coupon code already exists",
        ));
    }
    Ok(())
}

fn check_amount(m: &Map<String, Value>) -> Result<(), Answer> {
    let negative = m
        .get("amount")
        .and_then(Value::as_str)
        .and_then(parse_decimal)
        .is_some_and(|d| d.is_sign_negative() && !d.is_zero());
    if negative {
        return Err(wc_err(
            StatusCode::BAD_REQUEST,
            "coupon_invalid_amount",
            "Invalid discount amount",
        ));
    }
    Ok(())
}

/// `{key, value}` replaces the first row with that key (dropping other rows with it) or adds
/// one; `{id, key, value}` targets that row; `value: null` deletes.
fn apply_meta(list: &mut Vec<Value>, items: &[Value], next_meta: &mut i64) {
    for it in items {
        let Some(it) = it.as_object() else { continue };
        let key = it.get("key").and_then(Value::as_str).map(str::to_owned);
        let value = it.get("value").cloned().unwrap_or(Value::Null);
        let mut idx = it
            .get("id")
            .and_then(as_int)
            .and_then(|i| list.iter().position(|r| r["id"].as_i64() == Some(i)));
        if idx.is_none() {
            let Some(k) = &key else { continue };
            let matches: Vec<usize> = list
                .iter()
                .enumerate()
                .filter(|(_, r)| r["key"].as_str() == Some(k.as_str()))
                .map(|(i, _)| i)
                .collect();
            if let Some((&first, rest)) = matches.split_first() {
                for &j in rest.iter().rev() {
                    list.remove(j);
                }
                idx = Some(first);
            }
        }
        match idx {
            Some(i) => {
                if value.is_null() {
                    list.remove(i);
                } else {
                    if let Some(k) = key {
                        list[i]["key"] = Value::String(k);
                    }
                    list[i]["value"] = meta_value(&value);
                }
            }
            None => {
                if let (Some(k), false) = (key, value.is_null()) {
                    list.push(json!({"id": *next_meta, "key": k, "value": meta_value(&value)}));
                    *next_meta += 1;
                }
            }
        }
    }
}

/// Writes a validated body onto a stored coupon.
fn apply(c: &mut Value, m: &Map<String, Value>, hours: f64, next_meta: &mut i64) {
    let Some(o) = c.as_object_mut() else { return };
    for k in WRITABLE {
        let Some(v) = m.get(k) else { continue };
        let key: String = k.to_owned();
        match k {
            "code" => {
                if let Some(s) = v.as_str() {
                    o.insert(key, Value::String(s.to_lowercase()));
                }
            }
            "amount" => {
                if let Some(s) = v.as_str() {
                    o.insert(key, Value::String(money(s)));
                }
            }
            "discount_type" | "description" => {
                if let Some(s) = v.as_str() {
                    o.insert(key, Value::String(s.to_owned()));
                }
            }
            "date_expires" => {
                if let Some(s) = v.as_str() {
                    if s.trim().is_empty() {
                        o.insert(key, Value::Null);
                        o.insert("date_expires_gmt".into(), Value::Null);
                    } else if let Some(dt) = parse_local_date(s, hours) {
                        let gmt = dt - TimeDelta::seconds(offset_secs(hours));
                        o.insert(key, Value::String(fmt_date(dt)));
                        o.insert("date_expires_gmt".into(), Value::String(fmt_date(gmt)));
                    }
                }
            }
            "individual_use" | "free_shipping" | "exclude_sale_items" => {
                if let Some(b) = as_bool(v) {
                    o.insert(key, Value::Bool(b));
                }
            }
            "product_ids"
            | "excluded_product_ids"
            | "product_categories"
            | "excluded_product_categories" => {
                if let Ok(ids) = id_list(v) {
                    let mut out: Vec<i64> = Vec::new();
                    for i in ids.into_iter().map(i64::abs) {
                        if !out.contains(&i) {
                            out.push(i);
                        }
                    }
                    o.insert(key, json!(out));
                }
            }
            "usage_limit" | "usage_limit_per_user" | "limit_usage_to_x_items" => {
                let n = as_int(v).map(i64::abs).filter(|&n| n != 0);
                o.insert(key, n.map_or(Value::Null, |n| json!(n)));
            }
            "minimum_amount" | "maximum_amount" => match v {
                Value::Null => {
                    o.insert(key, Value::String("0.00".into()));
                }
                Value::String(s) => {
                    o.insert(key, Value::String(money(s)));
                }
                _ => {}
            },
            "email_restrictions" => {
                if let Ok(list) = str_list(v) {
                    let list: Vec<String> = list
                        .into_iter()
                        .map(|e| e.trim().to_lowercase())
                        .filter(|e| !e.is_empty())
                        .collect();
                    o.insert(key, json!(list));
                }
            }
            "meta_data" => {
                if let Some(items) = v.as_array() {
                    if !o.get("meta_data").is_some_and(Value::is_array) {
                        o.insert(key, Value::Array(Vec::new()));
                    }
                    if let Some(Value::Array(list)) = o.get_mut("meta_data") {
                        apply_meta(list, items, next_meta);
                    }
                }
            }
            _ => {}
        }
    }
    let touched = m.get("amount").is_some_and(|v| !v.is_null())
        || m.get("discount_type").is_some_and(|v| !v.is_null());
    let percent = o
        .get("discount_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("percent"));
    let over = o
        .get("amount")
        .and_then(Value::as_str)
        .and_then(parse_decimal)
        .is_some_and(|a| a > Decimal::ONE_HUNDRED);
    if touched && percent && over {
        o.insert("amount".into(), Value::String("0.00".into()));
    }
}

impl Data {
    /// `coupons` is kept in ascending id order (ids are unique): a binary search.
    fn position(&self, id: i64) -> Option<usize> {
        self.coupons.binary_search_by_key(&id, id_of).ok()
    }

    /// Records a coupon just stored (or changed) in the indexes.
    fn index(&mut self, k: Keys) {
        if let Some(code) = k.code {
            self.by_code.entry(code).or_default().push(k.id);
        }
        if k.hidden {
            let p = self.hidden.partition_point(|&h| h < k.id);
            self.hidden.insert(p, k.id);
        }
    }

    /// Forgets a coupon about to be removed or changed (`k` from its state before).
    fn unindex(&mut self, k: Keys) {
        if let Some(code) = k.code
            && let Some(ids) = self.by_code.get_mut(&code)
        {
            if let Some(i) = ids.iter().position(|&x| x == k.id) {
                ids.swap_remove(i);
            }
            if ids.is_empty() {
                self.by_code.remove(&code);
            }
        }
        if k.hidden
            && let Ok(p) = self.hidden.binary_search(&k.id)
        {
            self.hidden.remove(p);
        }
    }

    /// Position in `coupons` of the `k`-th (0-based) coupon a default list shows, in id order
    /// (`coupons.len()` when there are not that many): a binary search over positions, counting
    /// the hidden coupons before each through `hidden`.
    fn nth_listed(&self, k: usize) -> usize {
        let n = self.coupons.len();
        // listed coupons among positions [0, q), q >= 1
        let upto = |q: usize| {
            let last = id_of(&self.coupons[q - 1]);
            q.saturating_sub(self.hidden.partition_point(|&h| h <= last))
        };
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if upto(mid + 1) <= k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn create(&mut self, cfg: &Config, input: &Value) -> Result<Value, Answer> {
        let empty = Map::new();
        let m = input.as_object().unwrap_or(&empty);
        if m.get("code").is_none_or(Value::is_null) {
            return Err(missing_code());
        }
        let bad = validate(m, cfg.subscriptions);
        if !bad.is_empty() {
            return Err(invalid_params(bad));
        }
        check_code(self, m, None)?;
        check_amount(m)?;
        let id = self.next_id;
        self.next_id += 1;
        let mut c = default_coupon(id, &now_pair(cfg.gmt_offset));
        apply(&mut c, m, cfg.gmt_offset, &mut self.next_meta);
        let pos = self.coupons.partition_point(|x| id_of(x) < id);
        self.coupons.insert(pos, c.clone());
        self.index(keys(&c));
        Ok(c)
    }

    fn update(
        &mut self,
        cfg: &Config,
        id: i64,
        input: &Value,
        missing: u16,
    ) -> Result<Value, Answer> {
        let Some(idx) = self.position(id) else {
            return Err(invalid_id(missing));
        };
        let empty = Map::new();
        let m = input.as_object().unwrap_or(&empty);
        let bad = validate(m, cfg.subscriptions);
        if !bad.is_empty() {
            return Err(invalid_params(bad));
        }
        check_code(self, m, Some(id))?;
        check_amount(m)?;
        let mut c = self.coupons[idx].clone();
        apply(&mut c, m, cfg.gmt_offset, &mut self.next_meta);
        bump_modified(&mut c, cfg.gmt_offset);
        let old = keys(&self.coupons[idx]);
        self.unindex(old);
        self.coupons[idx] = c.clone();
        self.index(keys(&c));
        Ok(c)
    }

    /// Forced: gone, answered with its last state. Otherwise: trashed, answered with the state
    /// before.
    fn delete(&mut self, cfg: &Config, id: i64, force: bool) -> Result<Value, Answer> {
        let Some(idx) = self.position(id) else {
            return Err(invalid_id(404));
        };
        if force {
            let c = self.coupons.remove(idx);
            self.unindex(keys(&c));
            return Ok(c);
        }
        if self.coupons[idx]["status"] == "trash" {
            return Err(wc_err(
                st(410),
                "woocommerce_rest_already_trashed",
                "The shop_coupon has already been deleted.",
            ));
        }
        let before = self.coupons[idx].clone();
        self.unindex(keys(&before));
        let c = &mut self.coupons[idx];
        c["status"] = Value::String("trash".into());
        bump_modified(c, cfg.gmt_offset);
        let k = keys(&self.coupons[idx]);
        self.index(k);
        Ok(before)
    }
}

// ---------------------------------------------------------------------------------------------
// Request helpers

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of a parameter (as PHP reads a repeated one).
fn find(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// `include=1,2` or `include[]=1&include[]=2`.
fn id_param(pairs: &[(String, String)], key: &str) -> Vec<i64> {
    let bracket = format!("{key}[]");
    pairs
        .iter()
        .filter(|(k, _)| *k == key || *k == bracket)
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|p| p.trim().parse::<i64>().ok())
                .collect::<Vec<_>>()
        })
        .flatten()
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hi = (b[i + 1] as char).to_digit(16);
            let lo = (b[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parameters of an `Authorization: OAuth k="v", ...` header (without `realm`).
fn oauth_header(h: &str) -> Option<Vec<(String, String)>> {
    let rest = h
        .strip_prefix("OAuth ")
        .or_else(|| h.strip_prefix("oauth "))?;
    let mut out = Vec::new();
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k == "realm" {
            continue;
        }
        out.push((pct_decode(k), pct_decode(v.trim().trim_matches('"'))));
    }
    Some(out)
}

fn host_of(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_owned()
}

fn parse_body(body: &str) -> Result<Value, Answer> {
    if body.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(body).map_err(|_| invalid_json())
}

fn entry_error(id: i64, (_, body): Answer) -> Value {
    json!({"id": id, "error": body})
}

fn plain((s, v): Answer) -> Out {
    (s, v, Vec::new())
}

// ---------------------------------------------------------------------------------------------
// The simulator

impl WooSim {
    pub fn new(consumer_key: &str, consumer_secret: &str) -> Arc<Self> {
        Arc::new(WooSim {
            common: Common::default(),
            config: Mutex::new(Config {
                key: consumer_key.to_owned(),
                secret: consumer_secret.to_owned(),
                gmt_offset: 0.0,
                https: false,
                subscriptions: false,
                batch_limit: 100,
            }),
            data: Mutex::new(Data {
                coupons: Vec::new(),
                next_id: 1,
                next_meta: 1,
                nonces: HashMap::new(),
                nonce_prune_at: NONCE_PRUNE_MIN,
                by_code: HashMap::new(),
                hidden: Vec::new(),
            }),
            rejections: AtomicU64::new(0),
        })
    }

    fn cfg(&self) -> Config {
        self.config.lock().unwrap().clone()
    }

    pub fn set_credentials(&self, consumer_key: &str, consumer_secret: &str) {
        let mut c = self.config.lock().unwrap();
        c.key = consumer_key.to_owned();
        c.secret = consumer_secret.to_owned();
    }

    /// Site timezone offset in hours (what `GET /wp-json/` reports as `gmt_offset`).
    pub fn set_gmt_offset(&self, hours: f64) {
        self.config.lock().unwrap().gmt_offset = hours;
    }

    /// `false` (default): plain http, OAuth 1.0a only. `true`: Basic or query-string keys.
    pub fn set_https(&self, on: bool) {
        self.config.lock().unwrap().https = on;
    }

    /// WooCommerce Subscriptions installed: its discount types join the enum.
    pub fn set_subscriptions(&self, on: bool) {
        self.config.lock().unwrap().subscriptions = on;
    }

    /// The `woocommerce_rest_batch_items_limit` filter (default 100).
    pub fn set_batch_limit(&self, n: usize) {
        self.config.lock().unwrap().batch_limit = n;
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_sim/state", axum::routing::get(state))
            .fallback(handle)
            .with_state(self.clone())
    }

    /// Every stored coupon, published and trashed, in id order (without `_links`).
    pub fn coupons(&self) -> Vec<Value> {
        self.data.lock().unwrap().coupons.clone()
    }

    pub fn get(&self, id: i64) -> Option<Value> {
        let d = self.data.lock().unwrap();
        d.position(id).map(|i| d.coupons[i].clone())
    }

    /// Changes a coupon behind the API's back (as wp-admin would); bumps `date_modified`.
    pub fn edit(&self, id: i64, f: impl FnOnce(&mut Value)) -> bool {
        let hours = self.cfg().gmt_offset;
        let mut d = self.data.lock().unwrap();
        let Some(i) = d.position(id) else {
            return false;
        };
        let old = keys(&d.coupons[i]);
        d.unindex(old);
        let c = &mut d.coupons[i];
        f(&mut *c);
        bump_modified(c, hours);
        let k = keys(&d.coupons[i]);
        let moved = k.id != id;
        d.index(k);
        if moved {
            // the closure changed the id: keep `coupons` in id order for `position`
            d.coupons.sort_by_key(id_of);
        }
        true
    }

    /// Deletes a coupon for good.
    pub fn remove(&self, id: i64) -> bool {
        let mut d = self.data.lock().unwrap();
        match d.position(id) {
            Some(i) => {
                let c = d.coupons.remove(i);
                d.unindex(keys(&c));
                true
            }
            None => false,
        }
    }

    /// Stores a coupon created elsewhere (wp-admin, another plugin): missing fields get the
    /// defaults a create gives, the code is lowercased, amounts formatted, meta ids assigned.
    /// Keeps a free positive `id` if given; returns the id.
    pub fn insert(&self, obj: Value) -> i64 {
        let cfg = self.cfg();
        let hours = cfg.gmt_offset;
        let now = now_pair(hours);
        let mut d = self.data.lock().unwrap();
        let id = match obj.get("id").and_then(Value::as_i64) {
            Some(i) if i > 0 && d.position(i).is_none() => i,
            _ => d.next_id,
        };
        d.next_id = d.next_id.max(id + 1);
        let mut c = default_coupon(id, &now);
        let empty = Map::new();
        let m = obj.as_object().unwrap_or(&empty);
        if let Some(o) = c.as_object_mut() {
            for (k, v) in m {
                if k == "id" || k == "_links" || k == "meta_data" {
                    continue;
                }
                if let Some(slot) = o.get_mut(k.as_str()) {
                    *slot = v.clone();
                }
            }
            let code = o.get("code").map(lc).unwrap_or_default();
            o.insert("code".into(), Value::String(code));
            for k in ["amount", "minimum_amount", "maximum_amount"] {
                let v = o.get(k).map(money_value).unwrap_or_else(|| "0.00".into());
                o.insert(k.into(), Value::String(v));
            }
            let trashed = o.get("status").and_then(Value::as_str) == Some("trash");
            o.insert(
                "status".into(),
                Value::String(if trashed { "trash" } else { "publish" }.into()),
            );
            for k in [
                "usage_limit",
                "usage_limit_per_user",
                "limit_usage_to_x_items",
            ] {
                let n = o.get(k).and_then(as_int).map(i64::abs).filter(|&n| n != 0);
                o.insert(k.into(), n.map_or(Value::Null, |n| json!(n)));
            }
            if !o.get("usage_count").is_some_and(Value::is_i64) {
                let n = o.get("usage_count").and_then(as_int).unwrap_or(0);
                o.insert("usage_count".into(), json!(n));
            }
            // expiry: local wins, else derived from gmt
            let local = o
                .get("date_expires")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .and_then(|s| parse_local_date(s, hours))
                .map(fmt_date);
            let (exp, exp_gmt) = match local {
                Some(l) => {
                    let g = local_to_gmt(&l, hours);
                    (Some(l), g)
                }
                None => {
                    let g = o
                        .get("date_expires_gmt")
                        .and_then(Value::as_str)
                        .and_then(|s| parse_local_date(s, 0.0))
                        .map(fmt_date);
                    let l = g.as_deref().and_then(|g| gmt_to_local(g, hours));
                    (l, g)
                }
            };
            o.insert(
                "date_expires".into(),
                exp.map_or(Value::Null, Value::String),
            );
            o.insert(
                "date_expires_gmt".into(),
                exp_gmt.map_or(Value::Null, Value::String),
            );
            for (k, kg) in [
                ("date_created", "date_created_gmt"),
                ("date_modified", "date_modified_gmt"),
            ] {
                let given_local = m.get(k).and_then(Value::as_str).is_some();
                let given_gmt = m.get(kg).and_then(Value::as_str).is_some();
                if given_local && !given_gmt {
                    let l = o.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    if let Some(g) = local_to_gmt(&l, hours) {
                        o.insert(kg.into(), Value::String(g));
                    }
                } else if given_gmt && !given_local {
                    let g = o.get(kg).and_then(Value::as_str).unwrap_or("").to_owned();
                    if let Some(l) = gmt_to_local(&g, hours) {
                        o.insert(k.into(), Value::String(l));
                    }
                }
            }
            if m.get("date_created").is_some() && m.get("date_modified").is_none() {
                let l = o.get("date_created").cloned().unwrap_or(Value::Null);
                let g = o.get("date_created_gmt").cloned().unwrap_or(Value::Null);
                o.insert("date_modified".into(), l);
                o.insert("date_modified_gmt".into(), g);
            }
            let mut meta = Vec::new();
            if let Some(items) = m.get("meta_data").and_then(Value::as_array) {
                for it in items {
                    let Some(k) = it.get("key").and_then(Value::as_str) else {
                        continue;
                    };
                    let v = it.get("value").map(meta_value).unwrap_or(Value::Null);
                    if v.is_null() {
                        continue;
                    }
                    meta.push(json!({"id": d.next_meta, "key": k, "value": v}));
                    d.next_meta += 1;
                }
            }
            o.insert("meta_data".into(), Value::Array(meta));
        }
        let pos = d.coupons.partition_point(|x| id_of(x) < id);
        let k = keys(&c);
        d.coupons.insert(pos, c);
        d.index(k);
        id
    }

    pub fn set_usage_count(&self, id: i64, n: i64) {
        let mut d = self.data.lock().unwrap();
        if let Some(i) = d.position(id) {
            d.coupons[i]["usage_count"] = json!(n);
        }
    }

    /// Requests refused by authentication.
    pub fn oauth_rejections(&self) -> u64 {
        self.rejections.load(Ordering::Relaxed)
    }

    /// Consumer-key authentication as WooCommerce does it (`providers/woocommerce.md` §2).
    fn authenticate(
        &self,
        cfg: &Config,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        host: &str,
    ) -> Result<(), Answer> {
        let cannot_view = || {
            wc_err(
                StatusCode::UNAUTHORIZED,
                "woocommerce_rest_cannot_view",
                "Sorry, you cannot list resources.",
            )
        };
        let auth_err = |m: &str| {
            wc_err(
                StatusCode::UNAUTHORIZED,
                "woocommerce_rest_authentication_error",
                m,
            )
        };
        let query = query_pairs(uri);
        let authz = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if cfg.https {
            let basic = authz
                .strip_prefix("Basic ")
                .and_then(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .ok()
                })
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
            let from_query = || {
                Some((
                    find(&query, "consumer_key")?,
                    find(&query, "consumer_secret")?,
                ))
            };
            let Some((ck, cs)) = basic.or_else(from_query) else {
                return Err(cannot_view());
            };
            if ck != cfg.key {
                return Err(cannot_view());
            }
            if cs != cfg.secret {
                return Err(auth_err("Consumer secret is invalid."));
            }
            return Ok(());
        }
        let mut params = query;
        if let Some(h) = oauth_header(authz) {
            params.extend(h);
        }
        if !params.iter().any(|(k, _)| k.starts_with("oauth_")) {
            return Err(cannot_view());
        }
        let missing: Vec<&str> = [
            "oauth_consumer_key",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_nonce",
            "oauth_timestamp",
        ]
        .into_iter()
        .filter(|k| find(&params, k).is_none())
        .collect();
        if !missing.is_empty() {
            return Err(wc_err(
                StatusCode::UNAUTHORIZED,
                "woocommerce_rest_authentication_missing_parameter",
                format!("Missing OAuth parameter {}", missing.join(", ")),
            ));
        }
        let get = |k: &str| find(&params, k).unwrap_or_default();
        if get("oauth_consumer_key") != cfg.key {
            return Err(cannot_view());
        }
        if get("oauth_signature_method") != "HMAC-SHA1" {
            return Err(auth_err("Invalid signature - signature method is invalid."));
        }
        let now = Utc::now().timestamp();
        match get("oauth_timestamp").trim().parse::<i64>() {
            Ok(t) if (t - now).abs() <= OAUTH_WINDOW => {}
            _ => return Err(auth_err("Invalid timestamp.")),
        }
        let nonce = get("oauth_nonce");
        {
            let mut d = self.data.lock().unwrap();
            if d.nonces.len() >= d.nonce_prune_at {
                d.nonces.retain(|_, t| *t >= now - OAUTH_WINDOW);
                d.nonce_prune_at = (d.nonces.len() * 2).max(NONCE_PRUNE_MIN);
            }
            // an entry older than the window counts as pruned
            if d.nonces
                .get(&nonce)
                .is_some_and(|t| *t >= now - OAUTH_WINDOW)
            {
                return Err(auth_err("Invalid nonce - nonce has already been used."));
            }
        }
        let url = format!("http://{host}{}", uri.path());
        let expected = signature(&base_string(method.as_str(), &url, &params), &cfg.secret);
        if expected != get("oauth_signature") {
            return Err(auth_err(
                "Invalid signature - provided signature does not match.",
            ));
        }
        self.data.lock().unwrap().nonces.insert(nonce, now);
        Ok(())
    }

    /// `GET /coupons`.
    fn list(&self, q: &[(String, String)], host: &str) -> Out {
        let get = |k: &str| find(q, k);
        let mut bad = Vec::new();
        let page = int_param(&mut bad, "page", get("page"), 1, 1, None);
        let per_page = int_param(&mut bad, "per_page", get("per_page"), 10, 1, Some(100));
        let offset = match get("offset") {
            None => None,
            Some(s) => match s.trim().parse::<i64>() {
                Ok(n) => Some(n.max(0)),
                Err(_) => {
                    bad.push(type_error("offset", "offset", "integer"));
                    None
                }
            },
        };
        let order = get("order").unwrap_or_else(|| "desc".into());
        if order != "asc" && order != "desc" {
            bad.push(enum_error("order", &["asc", "desc"]));
        }
        let orderbys = ["date", "id", "include", "title", "slug", "modified"];
        let orderby = get("orderby").unwrap_or_else(|| "date".into());
        if !orderbys.iter().any(|o| *o == orderby) {
            bad.push(enum_error("orderby", &orderbys));
        }
        if !bad.is_empty() {
            return plain(invalid_params(bad));
        }
        let status = get("status").unwrap_or_else(|| "publish".into());
        let statuses: Vec<String> = status.split(',').map(|s| s.trim().to_owned()).collect();
        let status_ok = |c: &Value| {
            let s = c["status"].as_str().unwrap_or("publish");
            statuses
                .iter()
                .any(|w| w == s || (w == "any" && s != "trash"))
        };
        let include = id_param(q, "include");
        let exclude = id_param(q, "exclude");
        let search = get("search")
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase());
        let code = get("code")
            .filter(|s| !s.is_empty())
            .map(|s| s.to_lowercase());
        let d = self.data.lock().unwrap();
        // `?code=`: the newest published coupon with that code, at most one
        let code_id: Option<Option<i64>> = code.map(|wanted| {
            d.by_code
                .get(&wanted)
                .into_iter()
                .flatten()
                .filter_map(|&id| d.position(id).map(|i| &d.coupons[i]))
                .filter(|x| x["status"] == "publish" && lc(&x["code"]) == wanted)
                .max_by_key(|x| (str_of(x, "date_created_gmt"), id_of(x)))
                .map(id_of)
        });
        let per = per_page as usize;
        let page = page as usize;
        let start = match offset {
            Some(o) => o as usize,
            None => (page - 1).saturating_mul(per),
        };
        // The reconcile's query (published, by id, no filters): the coupons are stored in id
        // order, so a page is a run of the Vec found by binary search, O(page size).
        let fast = orderby == "id"
            && statuses.len() == 1
            && statuses[0] == "publish"
            && code_id.is_none()
            && search.is_none()
            && include.is_empty()
            && exclude.is_empty();
        let (total, page_items): (usize, Vec<&Value>) = if fast {
            let total = d.coupons.len().saturating_sub(d.hidden.len());
            let lo = start.min(total);
            let hi = start.saturating_add(per).min(total);
            // the same ranks counted in ascending id order
            let (a, b) = if order == "desc" {
                (total - hi, total - lo)
            } else {
                (lo, hi)
            };
            let mut run: Vec<&Value> = Vec::with_capacity(b - a);
            if b > a {
                for c in &d.coupons[d.nth_listed(a)..] {
                    if run.len() == b - a {
                        break;
                    }
                    if listed(c) {
                        run.push(c);
                    }
                }
            }
            if order == "desc" {
                run.reverse();
            }
            (total, run)
        } else {
            // `?code=` names at most one coupon: filter just that one
            let pool: &[Value] = match code_id {
                Some(Some(cid)) => d
                    .position(cid)
                    .map_or(&d.coupons[..0], |i| std::slice::from_ref(&d.coupons[i])),
                Some(None) => &d.coupons[..0],
                None => &d.coupons,
            };
            // references until the page is cut: a list of 100,000 coupons clones only one page
            let mut items: Vec<&Value> = pool
                .iter()
                .filter(|c| {
                    let id = id_of(c);
                    status_ok(c)
                        && code_id.is_none_or(|cid| cid == Some(id))
                        && search.as_ref().is_none_or(|s| {
                            lc(&c["code"]).contains(s.as_str())
                                || lc(&c["description"]).contains(s.as_str())
                        })
                        && (include.is_empty() || include.contains(&id))
                        && !exclude.contains(&id)
                })
                .collect();
            if orderby == "include" {
                items.sort_by_key(|c| {
                    include
                        .iter()
                        .position(|&i| i == id_of(c))
                        .unwrap_or(usize::MAX)
                });
            } else {
                items.sort_by(|a, b| {
                    let primary = match orderby.as_str() {
                        "id" => CmpOrdering::Equal,
                        "title" | "slug" => str_of(a, "code").cmp(&str_of(b, "code")),
                        "modified" => {
                            str_of(a, "date_modified_gmt").cmp(&str_of(b, "date_modified_gmt"))
                        }
                        _ => str_of(a, "date_created_gmt").cmp(&str_of(b, "date_created_gmt")),
                    };
                    primary.then(id_of(a).cmp(&id_of(b)))
                });
                if order == "desc" {
                    items.reverse();
                }
            }
            let total = items.len();
            (total, items.into_iter().skip(start).take(per).collect())
        };
        let pages = total.div_ceil(per);
        let body: Vec<Value> = page_items.into_iter().map(|c| render(c, host)).collect();
        drop(d);
        let base = format!("http://{host}/wp-json/wc/v3/coupons");
        let link_for = |p: usize| {
            let mut pairs: Vec<(String, String)> =
                q.iter().filter(|(k, _)| k != "page").cloned().collect();
            pairs.push(("page".into(), p.to_string()));
            format!("<{base}?{}>", encode_pairs(&pairs))
        };
        let mut extra: Vec<(&'static str, String)> = vec![
            ("X-WP-Total", total.to_string()),
            ("X-WP-TotalPages", pages.to_string()),
        ];
        if page > 1 {
            let prev = (page - 1).min(pages.max(1));
            extra.push(("Link", format!("{}; rel=\"prev\"", link_for(prev))));
        }
        if pages > page {
            extra.push(("Link", format!("{}; rel=\"next\"", link_for(page + 1))));
        }
        (StatusCode::OK, Value::Array(body), extra)
    }

    /// `POST|PUT|PATCH /coupons/batch`.
    fn batch(&self, cfg: &Config, input: &Value, host: &str) -> Answer {
        let empty = Map::new();
        let m = input.as_object().unwrap_or(&empty);
        let items = |k: &str| -> Vec<Value> {
            m.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (creates, updates, deletes) = (items("create"), items("update"), items("delete"));
        if creates.len() + updates.len() + deletes.len() > cfg.batch_limit {
            return wc_err(
                st(413),
                "woocommerce_rest_request_entity_too_large",
                format!(
                    "Unable to accept more than {} items for this request.",
                    cfg.batch_limit
                ),
            );
        }
        let mut d = self.data.lock().unwrap();
        let mut out = Map::new();
        if m.contains_key("create") {
            let mut list = Vec::new();
            for it in &creates {
                list.push(match d.create(cfg, it) {
                    Ok(c) => render(&c, host),
                    Err(e) => entry_error(0, e),
                });
            }
            out.insert("create".into(), Value::Array(list));
        }
        if m.contains_key("update") {
            let mut list = Vec::new();
            for it in &updates {
                let id = it.get("id").and_then(as_int).unwrap_or(0);
                list.push(if id <= 0 {
                    entry_error(id, invalid_id(400))
                } else {
                    match d.update(cfg, id, it, 400) {
                        Ok(c) => render(&c, host),
                        Err(e) => entry_error(id, e),
                    }
                });
            }
            out.insert("update".into(), Value::Array(list));
        }
        if m.contains_key("delete") {
            let mut list = Vec::new();
            for it in &deletes {
                let id = as_int(it)
                    .or_else(|| it.get("id").and_then(as_int))
                    .unwrap_or(0);
                if id == 0 {
                    continue;
                }
                list.push(match d.delete(cfg, id, true) {
                    Ok(c) => render(&c, host),
                    Err(e) => entry_error(id, e),
                });
            }
            out.insert("delete".into(), Value::Array(list));
        }
        (StatusCode::OK, Value::Object(out))
    }

    /// Executes an authenticated, admitted request under `/wp-json/wc/...`.
    fn route(&self, cfg: &Config, method: &Method, uri: &Uri, host: &str, body: &str) -> Out {
        let q = query_pairs(uri);
        let Some(rest) = uri.path().strip_prefix("/wp-json/wc/v3") else {
            return plain(no_route());
        };
        let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let m = method.as_str();
        match segs.as_slice() {
            ["coupons"] => match m {
                "GET" => self.list(&q, host),
                "POST" => {
                    let input = match parse_body(body) {
                        Ok(v) => v,
                        Err(e) => return plain(e),
                    };
                    let created = self.data.lock().unwrap().create(cfg, &input);
                    match created {
                        Ok(c) => {
                            let id = id_of(&c);
                            (
                                StatusCode::CREATED,
                                render(&c, host),
                                vec![(
                                    "Location",
                                    format!("http://{host}/wp-json/wc/v3/coupons/{id}"),
                                )],
                            )
                        }
                        Err(e) => plain(e),
                    }
                }
                _ => plain(no_route()),
            },
            ["coupons", "batch"] => match m {
                "POST" | "PUT" | "PATCH" => match parse_body(body) {
                    Ok(input) => plain(self.batch(cfg, &input, host)),
                    Err(e) => plain(e),
                },
                _ => plain(no_route()),
            },
            ["coupons", id] => {
                let Ok(id) = id.parse::<i64>() else {
                    return plain(no_route());
                };
                match m {
                    "GET" => match self.get(id) {
                        Some(c) => (StatusCode::OK, render(&c, host), Vec::new()),
                        None => plain(invalid_id(404)),
                    },
                    "PUT" | "PATCH" | "POST" => {
                        let input = match parse_body(body) {
                            Ok(v) => v,
                            Err(e) => return plain(e),
                        };
                        let updated = self.data.lock().unwrap().update(cfg, id, &input, 404);
                        match updated {
                            Ok(c) => (StatusCode::OK, render(&c, host), Vec::new()),
                            Err(e) => plain(e),
                        }
                    }
                    "DELETE" => {
                        let from_body = parse_body(body)
                            .ok()
                            .and_then(|v| v.get("force").and_then(as_bool));
                        let force = find(&q, "force")
                            .and_then(|f| as_bool(&Value::String(f)))
                            .or(from_body)
                            .unwrap_or(false);
                        let deleted = self.data.lock().unwrap().delete(cfg, id, force);
                        match deleted {
                            Ok(c) => (StatusCode::OK, render(&c, host), Vec::new()),
                            Err(e) => plain(e),
                        }
                    }
                    _ => plain(no_route()),
                }
            }
            _ => plain(no_route()),
        }
    }
}

fn int_param(
    bad: &mut Vec<Invalid>,
    name: &str,
    raw: Option<String>,
    default: i64,
    min: i64,
    max: Option<i64>,
) -> i64 {
    let Some(raw) = raw else { return default };
    let Ok(n) = raw.trim().parse::<i64>() else {
        bad.push(type_error(name, name, "integer"));
        return default;
    };
    if n < min || max.is_some_and(|m| n > m) {
        let message = match max {
            Some(m) => format!("{name} must be between {min} (inclusive) and {m} (inclusive)"),
            None => format!("{name} must be greater than or equal to {min}"),
        };
        bad.push(other_error(name, "rest_out_of_bounds", message));
        return default;
    }
    n
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// `GET /_sim/state`: what the simulator holds (no auth; for people trying `--demo`).
async fn state(State(sim): State<Arc<WooSim>>) -> axum::Json<Value> {
    axum::Json(json!({"coupons": sim.coupons()}))
}

fn json_response(status: StatusCode, body: &Value, extra: &[(&str, String)]) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=UTF-8");
    for (k, v) in extra {
        b = b.header(*k, v);
    }
    b.body(Body::from(body.to_string())).expect("response")
}

fn reply((s, v): Answer, extra: &[(&'static str, String)]) -> (u16, Response<Body>) {
    (s.as_u16(), json_response(s, &v, extra))
}

async fn handle(
    State(sim): State<Arc<WooSim>>,
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
    sim: &WooSim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &str,
) -> (u16, Response<Body>) {
    let host = host_of(headers);
    let path = uri.path();
    if path == "/wp-json" || path == "/wp-json/" {
        sim.common.delay().await;
        if *method != Method::GET {
            return reply(no_route(), &[]);
        }
        let offset = sim.cfg().gmt_offset;
        let index = json!({
            "name": "Simulated shop",
            "url": format!("http://{host}"),
            "gmt_offset": offset,
            "timezone_string": "",
            "namespaces": ["wc/v3"]
        });
        return reply((StatusCode::OK, index), &[]);
    }
    if !path.starts_with("/wp-json/wc/") {
        return reply(no_route(), &[]);
    }
    let api_link = (
        "Link",
        format!("<http://{host}/wp-json/>; rel=\"https://api.w.org/\""),
    );
    let cfg = sim.cfg();
    if let Err(a) = sim.authenticate(&cfg, method, uri, headers, &host) {
        sim.rejections.fetch_add(1, Ordering::Relaxed);
        return reply(a, &[api_link]);
    }
    sim.common.delay().await;
    if let Err(retry_after) = sim.common.admit() {
        let mut extra = vec![api_link];
        if let Some(r) = retry_after {
            extra.push(("Retry-After", r.to_string()));
        }
        return reply(
            wc_err(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests.",
            ),
            &extra,
        );
    }
    match sim.common.after_effects() {
        Fault::ServerError => {
            return reply(
                wc_err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_server_error",
                    "There has been a critical error on this website.",
                ),
                &[api_link],
            );
        }
        Fault::Drop => {
            let _ = sim.route(&cfg, method, uri, &host, body);
            return (0, dropped());
        }
        _ => {}
    }
    let (s, v, rest) = sim.route(&cfg, method, uri, &host, body);
    let mut extra = vec![api_link];
    extra.extend(rest);
    reply((s, v), &extra)
}
