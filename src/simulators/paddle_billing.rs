//! A stateful Paddle Billing simulator (API version 1): discounts and discount groups, enforcing
//! what `providers/paddle.md` §2 and `reference/paddle-billing-discounts.json` (the OpenAPI
//! subset plus its `known_deltas_after_this_spec`) say Paddle enforces.
//!
//! Endpoints: `GET/POST /discounts`, `GET/PATCH /discounts/{id}` (a `@dscrev_…` suffix on the
//! id is accepted and ignored), `GET/POST /discount-groups`, `GET/PATCH /discount-groups/{id}`,
//! and `GET /_sim/state` (no auth, no faults) answering `{"discounts":[…],"discount_groups":[…]}`.
//! There is no delete: discounts and groups are archived with `PATCH {"status":"archived"}` and
//! stay readable.
//!
//! Enforced, in this order for every request:
//! 1. latency ([`Common::delay`]), then the rate limit / injected 429s ([`Common::admit`]):
//!    429 `too_many_requests` with `Retry-After` (the injected value, else 60 s);
//! 2. `Authorization: Bearer <key>`: absent → 401 `authentication_missing`, not a Bearer token →
//!    401 `authentication_malformed`, another key → 403 `invalid_token`;
//! 3. Billing switched off ([`PaddleBillingSim::set_billing_enabled`]) → 403
//!    `paddle_billing_not_enabled`;
//! 4. `Paddle-Version`: absent means 1; any other value than `1` → 400 `invalid_version`;
//! 5. routing: unknown path → 404 `not_found`, wrong method → 405 `method_not_allowed` (with
//!    `Allow`);
//! 6. POST/PATCH bodies: `Content-Type: application/json` (else 400 `bad_request`), a JSON
//!    object (else 400 `invalid_json`);
//! 7. an injected server error → 500 `internal_error` (`api_error`) WITHOUT executing;
//! 8. execution; an injected drop executes and then drops the connection (recorded status 0).
//!
//! Envelopes: `{"data":…,"meta":{"request_id":"<uuid>"}}`, lists add `meta.pagination`
//! `{per_page, next, has_more, estimated_total}` where `next` is always a full URL carrying the
//! original query and `after=<last id of the page>` (the request's own `after`, or none, when the
//! page is empty). Create answers 201, everything else 200. Errors:
//! `{"error":{"type","code","detail","documentation_url":"https://developer.paddle.com/errors/shared/<code>","errors"?},"meta":{"request_id"}}`.
//!
//! Discount validation (create; PATCH field by field): every bad field is reported in one 400
//! `invalid_field` with one `errors[]` entry per field — unknown fields ("field is not allowed"),
//! read-only fields (`id`, `times_used`, `created_at`, `updated_at`, `import_meta`, and `status`
//! on create), required `description`/`type`/`amount` on create, `description` 1–500 chars,
//! `type` flat|flat_per_seat|percentage, `mode` standard|custom, `amount` a string ("0.01"–"100"
//! for percentage; a positive integer string in minor units for flat types), `currency_code`
//! from the spec's 31-code enum (required for flat types, null for percentage),
//! `code` null or `^[a-zA-Z0-9]{1,32}$`, booleans, `maximum_recurring_intervals` int ≥ 1 or null
//! and only with `recur: true`, `usage_limit` int ≥ 1 or null, `restrict_to` null or an array of
//! unique `^(pri|pro)_[a-z\d]{26}$`, `expires_at` RFC 3339 or null and in the future,
//! `custom_data` null or an object with at least one key, `discount_group_id` null or
//! `^dsg_[a-z\d]{26}$`, PATCH `status` active|archived. After those: `maximum_recurring_intervals`
//! above 999 → 400 `discount_maximum_recurring_intervals_greater_than_maximum`; a PATCHed
//! `usage_limit` below `times_used` → 400 `discount_usage_limit_less_than_times_used`; an unknown
//! `discount_group_id` → 404 `not_found`; a taken code → 409 `discount_code_conflict`. Nothing
//! changes unless every check passes.
//!
//! Lists: `GET /discounts` takes `after`, `per_page`, `order_by` (`id[ASC]`, `id[DESC]` default,
//! `created_at[ASC]`, `created_at[DESC]`), `status` CSV (default `active`), `code` CSV (exact,
//! ignoring case), `id` CSV, `mode` (default `standard`), `discount_group_id` CSV and
//! `include=discount_group` (adds a `discount_group` object or null; also on GET one). Ids are
//! generated so that their lexical order is creation order. `GET /discount-groups` takes
//! `after`, `per_page`, `order_by`, `status` CSV (default `active`), `id` CSV and `name`.
//!
//! Assumptions (Paddle does not say, or the brief chose):
//! * Codes are unique ignoring case among ALL discounts — archived, expired and used included —
//!   not only active ones. Paddle documents "unique in the account" without saying whether
//!   archived discounts free their code; the strict reading makes clients handle 409 by adopting.
//!   The 409 detail names the code but not the holder.
//! * `custom_data` in a PATCH replaces the stored object (no merge).
//! * `code: null` on create is treated like an omitted code: with `enabled_for_checkout` true
//!   (the default) a random 10-character `[A-Z0-9]` code is generated.
//! * `status` is stored as active|archived; reads derive `expired` (expires_at passed; checked
//!   first) and `used` (times_used ≥ usage_limit) from an active discount. List `status` filters
//!   match the derived value, so `status=active` omits expired and used discounts.
//! * `expires_at` is normalised to UTC with a `Z` (`2024-12-03T00:00:00Z`). A past value is
//!   rejected on create, and on PATCH only when it differs from the stored value.
//! * PATCH cross-field rules (type/amount/currency_code, recur/maximum_recurring_intervals) are
//!   checked on the merged state, only when the patch touches one of the fields involved; the
//!   error names the patched field (`type` or `recur` when only those were sent).
//! * `updated_at` moves only when a PATCH or [`PaddleBillingSim::edit`] changes something;
//!   [`PaddleBillingSim::set_times_used`] (a redemption) does not move it.
//! * `per_page` above 200 is clamped to 200 (the spec: "Paddle returns the maximum number of
//!   results if a number greater than the maximum is requested"); below 1 or not an integer →
//!   `invalid_field`. An `after` id that does not exist is compared lexically under `id`
//!   ordering and rejected (`invalid_field`) under `created_at` ordering.
//! * Unknown query parameters on GET requests → `invalid_field` ("query parameter is not
//!   allowed"); query strings on POST/PATCH are ignored.
//! * Discount group names are unique exactly (case-sensitive) among all groups, archived
//!   included (409 `discount_group_name_conflict`). The group list `status` filter (default
//!   `active`) and `name` filter (exact, one name) are not in the reference.
//! * A `discount_group_id` naming an archived group is accepted.
//! * `documentation_url` is `…/errors/shared/<code>` for every code.

use super::{Common, Fault, Recorded, dropped};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const DOCS: &str = "https://developer.paddle.com/errors/shared/";

static NULL: Value = Value::Null;

/// `maximum_recurring_intervals` above this → its own error code.
const MAX_RECURRING: i64 = 999;

/// Supported currency codes (the spec's `currency_code` enum).
const CURRENCIES: [&str; 31] = [
    "USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "HKD", "SGD", "SEK", "ARS", "BRL", "CNY",
    "COP", "CZK", "DKK", "HUF", "ILS", "INR", "KRW", "MXN", "NOK", "NZD", "PLN", "RUB", "THB",
    "TRY", "TWD", "UAH", "VND", "ZAR",
];

/// Fields a create may carry.
const CREATE_FIELDS: [&str; 14] = [
    "description",
    "enabled_for_checkout",
    "code",
    "type",
    "mode",
    "amount",
    "currency_code",
    "recur",
    "maximum_recurring_intervals",
    "usage_limit",
    "restrict_to",
    "expires_at",
    "custom_data",
    "discount_group_id",
];

/// Fields a PATCH may carry.
const PATCH_FIELDS: [&str; 15] = [
    "status",
    "description",
    "enabled_for_checkout",
    "code",
    "type",
    "mode",
    "amount",
    "currency_code",
    "recur",
    "maximum_recurring_intervals",
    "usage_limit",
    "restrict_to",
    "expires_at",
    "custom_data",
    "discount_group_id",
];

/// Entity fields nobody writes through the API.
const READ_ONLY: [&str; 5] = [
    "id",
    "times_used",
    "created_at",
    "updated_at",
    "import_meta",
];

/// Lowercase alphabet of generated ids (Crockford base 32: sorts like the numbers it encodes).
const ID_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Alphabet of generated discount codes.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

// ---------------------------------------------------------------------------------------------
// answers

/// A failed call: HTTP status, Paddle error code, detail, field errors, extra headers.
struct Failure {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<(String, String)>,
    headers: Vec<(&'static str, String)>,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn invalid(errors: Vec<(String, String)>) -> Self {
        let mut f = Self::new(StatusCode::BAD_REQUEST, "invalid_field", "Invalid request.");
        f.errors = errors;
        f
    }

    fn invalid_one(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![(field.to_owned(), message.into())])
    }

    fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Entity {id} not found"),
        )
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn body(&self, request_id: &str) -> Value {
        let kind = if self.status.is_server_error() {
            "api_error"
        } else {
            "request_error"
        };
        let mut e = json!({
            "type": kind,
            "code": self.code,
            "detail": self.detail,
            "documentation_url": format!("{DOCS}{}", self.code),
        });
        if !self.errors.is_empty() {
            e["errors"] = Value::Array(
                self.errors
                    .iter()
                    .map(|(f, m)| json!({"field": f, "message": m}))
                    .collect(),
            );
        }
        json!({"error": e, "meta": {"request_id": request_id}})
    }
}

/// A successful call: status, `data`, and `meta.pagination` for lists.
struct Success {
    status: StatusCode,
    data: Value,
    pagination: Option<Value>,
}

impl Success {
    fn ok(data: Value) -> Self {
        Self {
            status: StatusCode::OK,
            data,
            pagination: None,
        }
    }

    fn created(data: Value) -> Self {
        Self {
            status: StatusCode::CREATED,
            data,
            pagination: None,
        }
    }

    fn body(self, request_id: &str) -> Value {
        let mut meta = json!({"request_id": request_id});
        if let Some(p) = self.pagination {
            meta["pagination"] = p;
        }
        json!({"data": self.data, "meta": meta})
    }
}

/// Field errors of one request, at most one per field.
#[derive(Default)]
struct Errors(Vec<(String, String)>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        if !self.has(field) {
            self.0.push((field.to_owned(), message.into()));
        }
    }

    fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| f == field)
    }

    fn into_result(self) -> Result<(), Failure> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Failure::invalid(self.0))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// state

#[derive(Default)]
struct Data {
    key: String,
    billing_enabled: bool,
    /// Discounts as stored (status active|archived), in creation order.
    discounts: Vec<Value>,
    /// Discount groups, in creation order.
    groups: Vec<Value>,
    /// Milliseconds of the last generated id (ids never go back in time).
    last_ms: u64,
    /// Counter in every generated id, so ids sort in creation order within a millisecond.
    seq: u64,
    /// Discount id → its index in `discounts` (the first holder). Kept by
    /// [`Data::index_discount`] / [`Data::unindex_discount`], rebuilt by [`Data::reindex`].
    discount_ids: HashMap<String, usize>,
    /// ASCII-lower-cased code → indexes in `discounts` of the discounts holding it (any order).
    codes: HashMap<String, Vec<usize>>,
    /// Group id → its index in `groups` (the first holder).
    group_ids: HashMap<String, usize>,
    /// Group name (exact) → indexes in `groups` of the groups bearing it.
    group_names: HashMap<String, Vec<usize>>,
}

impl Data {
    /// `prefix` + 26 lowercase alphanumerics: 10 of time, 6 of sequence, 10 random.
    fn new_id(&mut self, prefix: &str) -> String {
        let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        self.last_ms = self.last_ms.max(now);
        self.seq += 1;
        let mut s = String::with_capacity(prefix.len() + 26);
        s.push_str(prefix);
        push_base32(&mut s, self.last_ms, 10);
        push_base32(&mut s, self.seq, 6);
        let mut rng = rand::rng();
        for _ in 0..10 {
            s.push(ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char);
        }
        s
    }

    fn discount_index(&self, id: &str) -> Option<usize> {
        self.discount_ids.get(id).copied()
    }

    fn group_index(&self, id: &str) -> Option<usize> {
        self.group_ids.get(id).copied()
    }

    /// Records `discounts[i]` (just stored or changed) in the indexes.
    fn index_discount(&mut self, i: usize) {
        let x = &self.discounts[i];
        if let Some(id) = x["id"].as_str() {
            self.discount_ids.entry(id.to_owned()).or_insert(i);
        }
        if let Some(c) = x["code"].as_str() {
            self.codes
                .entry(c.to_ascii_lowercase())
                .or_default()
                .push(i);
        }
    }

    /// Forgets `discounts[i]` (about to change) in the indexes.
    fn unindex_discount(&mut self, i: usize) {
        let x = &self.discounts[i];
        if let Some(id) = x["id"].as_str()
            && self.discount_ids.get(id) == Some(&i)
        {
            self.discount_ids.remove(id);
        }
        if let Some(c) = x["code"].as_str() {
            let c = c.to_ascii_lowercase();
            if let Some(list) = self.codes.get_mut(&c) {
                list.retain(|&j| j != i);
                if list.is_empty() {
                    self.codes.remove(&c);
                }
            }
        }
    }

    /// Records `groups[i]` (just stored or changed) in the indexes.
    fn index_group(&mut self, i: usize) {
        let g = &self.groups[i];
        if let Some(id) = g["id"].as_str() {
            self.group_ids.entry(id.to_owned()).or_insert(i);
        }
        if let Some(n) = g["name"].as_str() {
            self.group_names.entry(n.to_owned()).or_default().push(i);
        }
    }

    /// Forgets `groups[i]` (about to change) in the indexes.
    fn unindex_group(&mut self, i: usize) {
        let g = &self.groups[i];
        if let Some(id) = g["id"].as_str()
            && self.group_ids.get(id) == Some(&i)
        {
            self.group_ids.remove(id);
        }
        if let Some(n) = g["name"].as_str()
            && let Some(list) = self.group_names.get_mut(n)
        {
            list.retain(|&j| j != i);
            if list.is_empty() {
                self.group_names.remove(n);
            }
        }
    }

    /// Rebuilds every index (after a removal shifted the positions).
    fn reindex(&mut self) {
        self.discount_ids.clear();
        self.codes.clear();
        self.group_ids.clear();
        self.group_names.clear();
        for i in 0..self.discounts.len() {
            self.index_discount(i);
        }
        for i in 0..self.groups.len() {
            self.index_group(i);
        }
    }

    /// Another discount (any status) holds this code, ignoring case.
    fn code_taken(&self, code: &str, except: Option<&str>) -> bool {
        self.codes
            .get(&code.to_ascii_lowercase())
            .is_some_and(|list| {
                list.iter()
                    .any(|&i| self.discounts[i]["id"].as_str() != except)
            })
    }

    /// A random 10-character code nobody holds.
    fn fresh_code(&self) -> String {
        let mut rng = rand::rng();
        loop {
            let c: String = (0..10)
                .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
                .collect();
            if !self.code_taken(&c, None) {
                return c;
            }
        }
    }

    fn group_of(&self, v: &Value) -> Value {
        v["discount_group_id"]
            .as_str()
            .and_then(|gid| self.group_index(gid))
            .map(|i| self.groups[i].clone())
            .unwrap_or(Value::Null)
    }
}

fn push_base32(s: &mut String, v: u64, width: usize) {
    for i in (0..width).rev() {
        let digit = (v >> (5 * i)) & 31;
        s.push(ID_ALPHABET[digit as usize] as char);
    }
}

/// RFC 3339 with microseconds and `Z`.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn in_past(v: &Value, now: DateTime<Utc>) -> bool {
    parse_time(v).is_some_and(|t| t <= now)
}

/// A stored discount as the API shows it: `active` reads as `expired` or `used` when due.
fn view(d: &Value, now: DateTime<Utc>) -> Value {
    let mut v = d.clone();
    if v.is_object() && v["status"] == "active" {
        let expired = in_past(&v["expires_at"], now);
        let used = v["usage_limit"]
            .as_i64()
            .is_some_and(|l| v["times_used"].as_i64().unwrap_or(0) >= l);
        if expired {
            v["status"] = json!("expired");
        } else if used {
            v["status"] = json!("used");
        }
    }
    v
}

/// Applies a dashboard edit; `updated_at` moves unless `f` set it.
fn touch(target: &mut Value, f: impl FnOnce(&mut Value)) {
    let before = target["updated_at"].clone();
    f(&mut *target);
    if target.is_object() && target["updated_at"] == before {
        target["updated_at"] = json!(stamp(Utc::now()));
    }
}

/// `prefix` followed by 26 lowercase letters or digits.
fn id_like(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|r| {
        r.len() == 26
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

// ---------------------------------------------------------------------------------------------
// field validation

fn text(v: &Value, max: usize) -> Result<Value, String> {
    match v {
        Value::String(s) => {
            let n = s.chars().count();
            if n == 0 {
                Err("must not be empty".into())
            } else if n > max {
                Err(format!(
                    "max length of {max} exceeded, provided value length {n}"
                ))
            } else {
                Ok(v.clone())
            }
        }
        _ => Err("must be a string".into()),
    }
}

fn one_of(v: &Value, allowed: &[&str]) -> Result<Value, String> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(v.clone()),
        _ => Err(format!("must be one of: {}", allowed.join(", "))),
    }
}

fn boolean(v: &Value) -> Result<Value, String> {
    if v.is_boolean() {
        Ok(v.clone())
    } else {
        Err("must be a boolean".into())
    }
}

fn code(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s)
            if (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok(v.clone())
        }
        Value::String(_) => {
            Err("must be 1 to 32 letters and digits only (^[a-zA-Z0-9]{1,32}$)".into())
        }
        _ => Err("must be a string or null".into()),
    }
}

fn amount(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(v.clone()),
        Value::String(_) => Err("must not be empty".into()),
        _ => Err("must be a string, for example \"10\"".into()),
    }
}

fn currency(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) if CURRENCIES.contains(&s.as_str()) => Ok(v.clone()),
        _ => Err(format!(
            "must be null or a supported currency code ({})",
            CURRENCIES.join(", ")
        )),
    }
}

fn positive_or_null(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Number(n) if n.as_i64().is_some_and(|i| i >= 1) => Ok(v.clone()),
        _ => Err("must be an integer of at least 1, or null".into()),
    }
}

fn restrict_to(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Array(items) => {
            let mut seen = HashSet::new();
            for (i, x) in items.iter().enumerate() {
                let Some(s) = x.as_str() else {
                    return Err(format!("item {i} must be a string"));
                };
                if !(id_like(s, "pro_") || id_like(s, "pri_")) {
                    return Err(format!(
                        "item {i} ({s}) must be a product (pro_…) or price (pri_…) ID"
                    ));
                }
                if !seen.insert(s) {
                    return Err(format!(
                        "item {i} ({s}) is a duplicate; items must be unique"
                    ));
                }
            }
            Ok(v.clone())
        }
        _ => Err("must be an array of product or price IDs, or null".into()),
    }
}

fn timestamp_or_null(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| {
                json!(
                    t.with_timezone(&Utc)
                        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
                )
            })
            .map_err(|_| "must be an RFC 3339 datetime string, or null".to_owned()),
        _ => Err("must be an RFC 3339 datetime string, or null".into()),
    }
}

fn custom_data(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Object(m) if !m.is_empty() => Ok(v.clone()),
        Value::Object(_) => Err("must have at least one key, or be null".into()),
        _ => Err("must be a JSON object or null".into()),
    }
}

fn group_ref(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) if id_like(s, "dsg_") => Ok(v.clone()),
        _ => Err("must be a discount group ID (dsg_…) or null".into()),
    }
}

/// One writable discount field, checked on its own; the normalised value.
fn validate_field(name: &str, v: &Value) -> Result<Value, String> {
    match name {
        "description" => text(v, 500),
        "enabled_for_checkout" | "recur" => boolean(v),
        "code" => code(v),
        "type" => one_of(v, &["flat", "flat_per_seat", "percentage"]),
        "mode" => one_of(v, &["standard", "custom"]),
        "amount" => amount(v),
        "currency_code" => currency(v),
        "maximum_recurring_intervals" | "usage_limit" => positive_or_null(v),
        "restrict_to" => restrict_to(v),
        "expires_at" => timestamp_or_null(v),
        "custom_data" => custom_data(v),
        "discount_group_id" => group_ref(v),
        "status" => one_of(v, &["active", "archived"]),
        _ => Err("field is not allowed".into()),
    }
}

/// Digits, optionally one `.` followed by digits.
fn decimal_shape(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// The amount against the discount type.
fn check_amount(ty: &str, a: &str) -> Result<(), String> {
    if ty == "percentage" {
        let ok = decimal_shape(a)
            && Decimal::from_str(a)
                .is_ok_and(|x| x >= Decimal::new(1, 2) && x <= Decimal::from(100));
        if ok {
            Ok(())
        } else {
            Err("must be a decimal between 0.01 and 100 for percentage discounts".into())
        }
    } else {
        let ok = !a.is_empty()
            && a.bytes().all(|b| b.is_ascii_digit())
            && a.parse::<u64>().is_ok_and(|n| n > 0);
        if ok {
            Ok(())
        } else {
            Err(format!(
                "must be a positive integer in the currency's lowest denomination for {ty} discounts"
            ))
        }
    }
}

/// The currency against the discount type.
fn check_currency(ty: &str, c: &Value) -> Result<(), String> {
    if ty == "percentage" {
        if c.is_null() {
            Ok(())
        } else {
            Err("must be null for percentage discounts".into())
        }
    } else if c.is_null() {
        Err(format!("is required for {ty} discounts"))
    } else {
        Ok(())
    }
}

fn code_conflict(code: &str) -> Failure {
    Failure::new(
        StatusCode::CONFLICT,
        "discount_code_conflict",
        format!(
            "Discount code '{code}' conflicts with an existing discount (codes are unique, ignoring case)"
        ),
    )
}

fn too_many_intervals(n: i64) -> Failure {
    Failure::new(
        StatusCode::BAD_REQUEST,
        "discount_maximum_recurring_intervals_greater_than_maximum",
        format!("maximum_recurring_intervals {n} is greater than the maximum of {MAX_RECURRING}"),
    )
}

fn group_conflict(name: &str) -> Failure {
    Failure::new(
        StatusCode::CONFLICT,
        "discount_group_name_conflict",
        format!("Discount group name '{name}' is already in use by another discount group"),
    )
}

// ---------------------------------------------------------------------------------------------
// operations

fn create_discount(d: &mut Data, body: &Map<String, Value>) -> Result<Success, Failure> {
    let now = Utc::now();
    let mut errs = Errors::default();
    let mut vals = Map::new();
    for (k, v) in body {
        if READ_ONLY.contains(&k.as_str()) || k == "status" {
            errs.add(k, "field is read-only");
        } else if !CREATE_FIELDS.contains(&k.as_str()) {
            errs.add(k, "field is not allowed");
        } else {
            match validate_field(k, v) {
                Ok(x) => {
                    vals.insert(k.clone(), x);
                }
                Err(m) => errs.add(k, m),
            }
        }
    }
    for f in ["description", "type", "amount"] {
        if !body.contains_key(f) {
            errs.add(f, "field is required");
        }
    }
    if vals.get("expires_at").is_some_and(|e| in_past(e, now)) {
        errs.add("expires_at", "must be in the future");
    }
    if let Some(ty) = vals.get("type").and_then(Value::as_str) {
        if let Some(a) = vals.get("amount").and_then(Value::as_str)
            && let Err(m) = check_amount(ty, a)
        {
            errs.add("amount", m);
        }
        if !errs.has("currency_code") {
            let c = vals.get("currency_code").unwrap_or(&NULL);
            if let Err(m) = check_currency(ty, c) {
                errs.add("currency_code", m);
            }
        }
    }
    let recur = vals.get("recur").and_then(Value::as_bool).unwrap_or(false);
    if vals
        .get("maximum_recurring_intervals")
        .is_some_and(|m| !m.is_null())
        && !recur
        && !errs.has("recur")
    {
        errs.add("maximum_recurring_intervals", "requires recur to be true");
    }
    errs.into_result()?;

    if let Some(n) = vals
        .get("maximum_recurring_intervals")
        .and_then(Value::as_i64)
        && n > MAX_RECURRING
    {
        return Err(too_many_intervals(n));
    }
    if let Some(g) = vals.get("discount_group_id").and_then(Value::as_str)
        && d.group_index(g).is_none()
    {
        return Err(Failure::not_found(g));
    }
    let enabled = vals
        .get("enabled_for_checkout")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let code = match vals.get("code") {
        Some(Value::String(c)) => {
            if d.code_taken(c, None) {
                return Err(code_conflict(c));
            }
            Value::String(c.clone())
        }
        _ if enabled => Value::String(d.fresh_code()),
        _ => Value::Null,
    };

    let id = d.new_id("dsc_");
    let ts = stamp(now);
    let take = |k: &str| vals.get(k).cloned().unwrap_or(Value::Null);
    let entity = json!({
        "id": id,
        "status": "active",
        "description": take("description"),
        "enabled_for_checkout": enabled,
        "code": code,
        "type": take("type"),
        "mode": vals.get("mode").cloned().unwrap_or_else(|| json!("standard")),
        "amount": take("amount"),
        "currency_code": take("currency_code"),
        "recur": recur,
        "maximum_recurring_intervals": take("maximum_recurring_intervals"),
        "usage_limit": take("usage_limit"),
        "restrict_to": take("restrict_to"),
        "expires_at": take("expires_at"),
        "custom_data": take("custom_data"),
        "times_used": 0,
        "discount_group_id": take("discount_group_id"),
        "created_at": ts,
        "updated_at": ts,
        "import_meta": null,
    });
    let out = view(&entity, now);
    d.discounts.push(entity);
    d.index_discount(d.discounts.len() - 1);
    Ok(Success::created(out))
}

fn patch_discount(d: &mut Data, id: &str, body: &Map<String, Value>) -> Result<Success, Failure> {
    let Some(i) = d.discount_index(id) else {
        return Err(Failure::not_found(id));
    };
    let now = Utc::now();
    let stored = d.discounts[i].clone();
    let own_id = stored["id"].as_str().unwrap_or_default().to_owned();
    let mut errs = Errors::default();
    let mut vals = Map::new();
    for (k, v) in body {
        if READ_ONLY.contains(&k.as_str()) {
            errs.add(k, "field is read-only");
        } else if !PATCH_FIELDS.contains(&k.as_str()) {
            errs.add(k, "field is not allowed");
        } else {
            match validate_field(k, v) {
                Ok(x) => {
                    vals.insert(k.clone(), x);
                }
                Err(m) => errs.add(k, m),
            }
        }
    }
    if let Some(e) = vals.get("expires_at")
        && *e != stored["expires_at"]
        && in_past(e, now)
    {
        errs.add("expires_at", "must be in the future");
    }
    {
        let touched = |k: &str| vals.contains_key(k);
        let merged =
            |k: &str| -> Value { vals.get(k).cloned().unwrap_or_else(|| stored[k].clone()) };
        let terms_bad = ["type", "amount", "currency_code"]
            .iter()
            .any(|f| errs.has(f));
        if !terms_bad && (touched("type") || touched("amount") || touched("currency_code")) {
            let ty = merged("type");
            let amt = merged("amount");
            let cur = merged("currency_code");
            if let Some(ty) = ty.as_str() {
                if (touched("type") || touched("amount"))
                    && let Some(a) = amt.as_str()
                    && let Err(m) = check_amount(ty, a)
                {
                    errs.add(if touched("amount") { "amount" } else { "type" }, m);
                }
                if (touched("type") || touched("currency_code"))
                    && let Err(m) = check_currency(ty, &cur)
                {
                    let f = if touched("currency_code") {
                        "currency_code"
                    } else {
                        "type"
                    };
                    errs.add(f, m);
                }
            }
        }
        if !errs.has("recur")
            && !errs.has("maximum_recurring_intervals")
            && (touched("recur") || touched("maximum_recurring_intervals"))
            && !merged("maximum_recurring_intervals").is_null()
            && merged("recur") != Value::Bool(true)
        {
            let f = if touched("maximum_recurring_intervals") {
                "maximum_recurring_intervals"
            } else {
                "recur"
            };
            errs.add(f, "maximum_recurring_intervals requires recur to be true");
        }
    }
    errs.into_result()?;

    if let Some(n) = vals
        .get("maximum_recurring_intervals")
        .and_then(Value::as_i64)
        && n > MAX_RECURRING
    {
        return Err(too_many_intervals(n));
    }
    if let Some(limit) = vals.get("usage_limit").and_then(Value::as_i64) {
        let used = stored["times_used"].as_i64().unwrap_or(0);
        if limit < used {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "discount_usage_limit_less_than_times_used",
                format!("usage_limit {limit} is less than times_used {used} of discount {own_id}"),
            ));
        }
    }
    if let Some(g) = vals.get("discount_group_id").and_then(Value::as_str)
        && d.group_index(g).is_none()
    {
        return Err(Failure::not_found(g));
    }
    if let Some(c) = vals.get("code").and_then(Value::as_str)
        && d.code_taken(c, Some(own_id.as_str()))
    {
        return Err(code_conflict(c));
    }

    d.unindex_discount(i);
    let e = &mut d.discounts[i];
    let mut changed = false;
    for (k, v) in vals {
        if e[k.as_str()] != v {
            e[k.as_str()] = v;
            changed = true;
        }
    }
    if changed {
        e["updated_at"] = json!(stamp(now));
    }
    let out = view(e, now);
    d.index_discount(i);
    Ok(Success::ok(out))
}

fn get_discount(d: &Data, id: &str, query: &[(String, String)]) -> Result<Success, Failure> {
    let mut errs = Errors::default();
    check_params(query, &["include"], &mut errs);
    let include = include_group(query, &mut errs);
    errs.into_result()?;
    let Some(i) = d.discount_index(id) else {
        return Err(Failure::not_found(id));
    };
    let mut v = view(&d.discounts[i], Utc::now());
    if include {
        v["discount_group"] = d.group_of(&v);
    }
    Ok(Success::ok(v))
}

fn list_discounts(
    d: &Data,
    query: &[(String, String)],
    next: &NextUrl,
) -> Result<Success, Failure> {
    let mut errs = Errors::default();
    check_params(
        query,
        &[
            "after",
            "per_page",
            "order_by",
            "status",
            "code",
            "id",
            "mode",
            "discount_group_id",
            "include",
        ],
        &mut errs,
    );
    let lp = list_params(query, &mut errs);
    let statuses = csv_enum(
        query,
        "status",
        &["active", "archived", "expired", "used"],
        &["active"],
        &mut errs,
    );
    let codes = csv(query, "code", &mut errs);
    let ids = csv(query, "id", &mut errs);
    let groups = csv(query, "discount_group_id", &mut errs);
    let mode = match param(query, "mode") {
        None => "standard".to_owned(),
        Some(m) if m == "standard" || m == "custom" => m.to_owned(),
        Some(_) => {
            errs.add("mode", "must be one of: standard, custom");
            String::new()
        }
    };
    let include = include_group(query, &mut errs);
    errs.into_result()?;
    let after = resolve_after(&lp, &d.discounts)?;
    let now = Utc::now();
    // `code=`: only the discounts holding one of the codes (in stored order) can match
    let pool: Vec<&Value> = match &codes {
        Some(cs) => {
            let mut at: Vec<usize> = cs
                .iter()
                .filter_map(|c| d.codes.get(&c.to_ascii_lowercase()))
                .flatten()
                .copied()
                .collect();
            at.sort_unstable();
            at.dedup();
            at.into_iter().map(|i| &d.discounts[i]).collect()
        }
        None => d.discounts.iter().collect(),
    };
    let items: Vec<Value> = pool
        .into_iter()
        .map(|x| view(x, now))
        .filter(|v| {
            statuses.iter().any(|s| v["status"] == s.as_str())
                && codes.as_ref().is_none_or(|cs| {
                    v["code"]
                        .as_str()
                        .is_some_and(|c| cs.iter().any(|x| x.eq_ignore_ascii_case(c)))
                })
                && ids
                    .as_ref()
                    .is_none_or(|is| is.iter().any(|x| v["id"] == x.as_str()))
                && v["mode"] == mode.as_str()
                && groups
                    .as_ref()
                    .is_none_or(|gs| gs.iter().any(|x| v["discount_group_id"] == x.as_str()))
        })
        .map(|mut v| {
            if include {
                v["discount_group"] = d.group_of(&v);
            }
            v
        })
        .collect();
    Ok(paginate(items, &lp, after, next))
}

fn create_group(d: &mut Data, body: &Map<String, Value>) -> Result<Success, Failure> {
    let mut errs = Errors::default();
    let mut name = None;
    for (k, v) in body {
        match k.as_str() {
            "name" => match text(v, 500) {
                Ok(x) => name = x.as_str().map(str::to_owned),
                Err(m) => errs.add(k, m),
            },
            "id" | "status" | "created_at" | "updated_at" | "import_meta" => {
                errs.add(k, "field is read-only");
            }
            _ => errs.add(k, "field is not allowed"),
        }
    }
    if !body.contains_key("name") {
        errs.add("name", "field is required");
    }
    errs.into_result()?;
    let name = name.unwrap_or_default();
    if d.group_names.contains_key(&name) {
        return Err(group_conflict(&name));
    }
    let id = d.new_id("dsg_");
    let ts = stamp(Utc::now());
    let g = json!({
        "id": id,
        "name": name,
        "status": "active",
        "import_meta": null,
        "created_at": ts,
        "updated_at": ts,
    });
    d.groups.push(g.clone());
    d.index_group(d.groups.len() - 1);
    Ok(Success::created(g))
}

fn patch_group(d: &mut Data, id: &str, body: &Map<String, Value>) -> Result<Success, Failure> {
    let Some(i) = d.group_index(id) else {
        return Err(Failure::not_found(id));
    };
    let mut errs = Errors::default();
    let mut vals = Map::new();
    for (k, v) in body {
        let checked = match k.as_str() {
            "name" => text(v, 500),
            "status" => one_of(v, &["active", "archived"]),
            "id" | "created_at" | "updated_at" | "import_meta" => {
                Err("field is read-only".to_owned())
            }
            _ => Err("field is not allowed".to_owned()),
        };
        match checked {
            Ok(x) => {
                vals.insert(k.clone(), x);
            }
            Err(m) => errs.add(k, m),
        }
    }
    errs.into_result()?;
    if let Some(n) = vals.get("name").and_then(Value::as_str)
        && d.group_names
            .get(n)
            .is_some_and(|list| list.iter().any(|&j| j != i))
    {
        return Err(group_conflict(n));
    }
    d.unindex_group(i);
    let g = &mut d.groups[i];
    let mut changed = false;
    for (k, v) in vals {
        if g[k.as_str()] != v {
            g[k.as_str()] = v;
            changed = true;
        }
    }
    if changed {
        g["updated_at"] = json!(stamp(Utc::now()));
    }
    let out = g.clone();
    d.index_group(i);
    Ok(Success::ok(out))
}

fn get_group(d: &Data, id: &str, query: &[(String, String)]) -> Result<Success, Failure> {
    let mut errs = Errors::default();
    check_params(query, &[], &mut errs);
    errs.into_result()?;
    d.group_index(id)
        .map(|i| Success::ok(d.groups[i].clone()))
        .ok_or_else(|| Failure::not_found(id))
}

fn list_groups(d: &Data, query: &[(String, String)], next: &NextUrl) -> Result<Success, Failure> {
    let mut errs = Errors::default();
    check_params(
        query,
        &["after", "per_page", "order_by", "status", "id", "name"],
        &mut errs,
    );
    let lp = list_params(query, &mut errs);
    let statuses = csv_enum(
        query,
        "status",
        &["active", "archived"],
        &["active"],
        &mut errs,
    );
    let ids = csv(query, "id", &mut errs);
    let name = param(query, "name").map(str::to_owned);
    errs.into_result()?;
    let after = resolve_after(&lp, &d.groups)?;
    let items: Vec<Value> = d
        .groups
        .iter()
        .filter(|g| {
            statuses.iter().any(|s| g["status"] == s.as_str())
                && ids
                    .as_ref()
                    .is_none_or(|is| is.iter().any(|x| g["id"] == x.as_str()))
                && name.as_ref().is_none_or(|n| g["name"] == n.as_str())
        })
        .cloned()
        .collect();
    Ok(paginate(items, &lp, after, next))
}

// ---------------------------------------------------------------------------------------------
// query strings and pagination

fn parse_query(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of a query parameter.
fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn check_params(query: &[(String, String)], allowed: &[&str], errs: &mut Errors) {
    for (k, _) in query {
        if !allowed.contains(&k.as_str()) {
            errs.add(k, "query parameter is not allowed");
        }
    }
}

fn csv(query: &[(String, String)], name: &str, errs: &mut Errors) -> Option<Vec<String>> {
    let s = param(query, name)?;
    let items: Vec<String> = s.split(',').map(|x| x.trim().to_owned()).collect();
    if items.iter().any(String::is_empty) {
        errs.add(name, "must be a comma-separated list without empty items");
    }
    Some(items)
}

fn csv_enum(
    query: &[(String, String)],
    name: &str,
    allowed: &[&str],
    default: &[&str],
    errs: &mut Errors,
) -> Vec<String> {
    match csv(query, name, errs) {
        None => default.iter().map(|s| (*s).to_owned()).collect(),
        Some(items) => {
            for x in &items {
                if !x.is_empty() && !allowed.contains(&x.as_str()) {
                    errs.add(name, format!("{x:?} is not one of: {}", allowed.join(", ")));
                }
            }
            items
        }
    }
}

fn include_group(query: &[(String, String)], errs: &mut Errors) -> bool {
    csv_enum(query, "include", &["discount_group"], &[], errs)
        .iter()
        .any(|x| x == "discount_group")
}

struct ListParams {
    after: Option<String>,
    per_page: usize,
    by_created: bool,
    asc: bool,
}

fn list_params(query: &[(String, String)], errs: &mut Errors) -> ListParams {
    let per_page = match param(query, "per_page") {
        None => 50,
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if n >= 1 => usize::try_from(n.min(200)).unwrap_or(200),
            _ => {
                errs.add("per_page", "must be an integer between 1 and 200");
                50
            }
        },
    };
    let (by_created, asc) = match param(query, "order_by") {
        None | Some("id[DESC]") => (false, false),
        Some("id[ASC]") => (false, true),
        Some("created_at[ASC]") => (true, true),
        Some("created_at[DESC]") => (true, false),
        Some(_) => {
            errs.add(
                "order_by",
                "must be one of: id[ASC], id[DESC], created_at[ASC], created_at[DESC]",
            );
            (false, false)
        }
    };
    let after = match param(query, "after") {
        Some("") => {
            errs.add("after", "must not be empty");
            None
        }
        a => a.map(str::to_owned),
    };
    ListParams {
        after,
        per_page,
        by_created,
        asc,
    }
}

type SortKey = (i64, String);

fn sort_key(v: &Value, by_created: bool) -> SortKey {
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    if by_created {
        (
            parse_time(&v["created_at"]).map_or(0, |t| t.timestamp_micros()),
            id,
        )
    } else {
        (0, id)
    }
}

/// The sort key of the `after` cursor, looked up among every stored entity.
fn resolve_after(lp: &ListParams, store: &[Value]) -> Result<Option<SortKey>, Failure> {
    let Some(a) = &lp.after else {
        return Ok(None);
    };
    if let Some(v) = store.iter().find(|v| v["id"] == a.as_str()) {
        return Ok(Some(sort_key(v, lp.by_created)));
    }
    if !lp.by_created {
        return Ok(Some((0, a.clone())));
    }
    Err(Failure::invalid_one("after", "no entity with this ID"))
}

/// Scheme, host and path of a list request, and its query without `after`.
struct NextUrl {
    base: String,
    params: Vec<(String, String)>,
}

impl NextUrl {
    fn new(headers: &HeaderMap, uri: &Uri, query: &[(String, String)]) -> Self {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        Self {
            base: format!("http://{host}{}", uri.path()),
            params: query
                .iter()
                .filter(|(k, _)| k != "after")
                .cloned()
                .collect(),
        }
    }

    fn with_after(&self, after: Option<&str>) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            s.append_pair(k, v);
        }
        if let Some(a) = after {
            s.append_pair("after", a);
        }
        let q = s.finish();
        if q.is_empty() {
            self.base.clone()
        } else {
            format!("{}?{q}", self.base)
        }
    }
}

fn paginate(items: Vec<Value>, lp: &ListParams, after: Option<SortKey>, next: &NextUrl) -> Success {
    let total = items.len();
    let mut keyed: Vec<(SortKey, Value)> = items
        .into_iter()
        .map(|v| (sort_key(&v, lp.by_created), v))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if !lp.asc {
        keyed.reverse();
    }
    if let Some(k) = &after {
        keyed.retain(|(key, _)| if lp.asc { key > k } else { key < k });
    }
    let has_more = keyed.len() > lp.per_page;
    keyed.truncate(lp.per_page);
    let page: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    let last = page
        .last()
        .and_then(|v| v["id"].as_str())
        .map(str::to_owned)
        .or_else(|| lp.after.clone());
    let pagination = json!({
        "per_page": lp.per_page,
        "next": next.with_after(last.as_deref()),
        "has_more": has_more,
        "estimated_total": total,
    });
    Success {
        status: StatusCode::OK,
        data: Value::Array(page),
        pagination: Some(pagination),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

enum Route {
    ListDiscounts,
    CreateDiscount,
    GetDiscount(String),
    PatchDiscount(String),
    ListGroups,
    CreateGroup,
    GetGroup(String),
    PatchGroup(String),
}

fn unknown_path(path: &str) -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("Path {path} not found"),
    )
}

fn not_allowed(method: &Method, path: &str, allow: &str) -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("Method {method} is not allowed on {path}; allowed: {allow}"),
    )
    .header("Allow", allow.to_owned())
}

/// A discount id without a `@dscrev_…` revision suffix.
fn strip_revision(id: &str) -> String {
    match id.split_once('@') {
        Some((base, rev)) if rev.starts_with("dscrev_") => base.to_owned(),
        _ => id.to_owned(),
    }
}

fn resolve(method: &Method, path: &str) -> Result<Route, Failure> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (coll, id) = match rest.split_once('/') {
        None => (rest, None),
        Some((c, id)) => (c, Some(id)),
    };
    let groups = match coll {
        "discounts" => false,
        "discount-groups" => true,
        _ => return Err(unknown_path(path)),
    };
    match id {
        None => {
            if *method == Method::GET {
                Ok(if groups {
                    Route::ListGroups
                } else {
                    Route::ListDiscounts
                })
            } else if *method == Method::POST {
                Ok(if groups {
                    Route::CreateGroup
                } else {
                    Route::CreateDiscount
                })
            } else {
                Err(not_allowed(method, path, "GET, POST"))
            }
        }
        Some(id) if !id.is_empty() && !id.contains('/') => {
            let id = if groups {
                id.to_owned()
            } else {
                strip_revision(id)
            };
            if *method == Method::GET {
                Ok(if groups {
                    Route::GetGroup(id)
                } else {
                    Route::GetDiscount(id)
                })
            } else if *method == Method::PATCH {
                Ok(if groups {
                    Route::PatchGroup(id)
                } else {
                    Route::PatchDiscount(id)
                })
            } else {
                Err(not_allowed(method, path, "GET, PATCH"))
            }
        }
        Some(_) => Err(unknown_path(path)),
    }
}

fn parse_body(headers: &HeaderMap, body: &str) -> Result<Map<String, Value>, Failure> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("Content-Type must be application/json, got {ct:?}"),
        ));
    }
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "The request body must be a JSON object",
        )),
        Err(e) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("The request body is not valid JSON: {e}"),
        )),
    }
}

fn json_response(
    status: StatusCode,
    body: &Value,
    extra: &[(&'static str, String)],
) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in extra {
        b = b.header(*k, v);
    }
    b.body(Body::from(body.to_string())).expect("response")
}

/// `GET /_sim/state`: what the simulator holds (no auth; for people trying `--demo`).
async fn state(State(sim): State<Arc<PaddleBillingSim>>) -> axum::Json<Value> {
    axum::Json(json!({"discounts": sim.discounts(), "discount_groups": sim.groups()}))
}

async fn handle(
    State(sim): State<Arc<PaddleBillingSim>>,
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
    sim: &PaddleBillingSim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &str,
) -> (u16, Response<Body>) {
    sim.common.delay().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let fail = |f: Failure| {
        let s = f.status;
        (
            s.as_u16(),
            json_response(s, &f.body(&request_id), &f.headers),
        )
    };
    if let Err(retry_after) = sim.common.admit() {
        return fail(
            Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests; wait for the number of seconds in the Retry-After header",
            )
            .header("Retry-After", retry_after.unwrap_or(60).to_string()),
        );
    }
    if let Err(f) = sim.authorize(headers) {
        return fail(f);
    }
    if let Some(v) = headers.get("paddle-version") {
        let ok = v.to_str().is_ok_and(|s| s.trim() == "1");
        if !ok {
            return fail(Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_version",
                format!(
                    "Paddle-Version {:?} is not supported: the only API version is 1 (send `Paddle-Version: 1` or leave the header out)",
                    String::from_utf8_lossy(v.as_bytes())
                ),
            ));
        }
    }
    let route = match resolve(method, uri.path()) {
        Ok(r) => r,
        Err(f) => return fail(f),
    };
    let json_body = if *method == Method::POST || *method == Method::PATCH {
        match parse_body(headers, body) {
            Ok(m) => m,
            Err(f) => return fail(f),
        }
    } else {
        Map::new()
    };
    let query = parse_query(uri.query().unwrap_or(""));
    let fault = sim.common.after_effects();
    if fault == Fault::ServerError {
        return fail(Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An internal error occurred (simulated); the request was not executed",
        ));
    }
    let next = NextUrl::new(headers, uri, &query);
    let result = sim.execute(&route, &query, &json_body, &next);
    if fault == Fault::Drop {
        return (0, dropped());
    }
    match result {
        Ok(s) => {
            let status = s.status;
            (
                status.as_u16(),
                json_response(status, &s.body(&request_id), &[]),
            )
        }
        Err(f) => fail(f),
    }
}

// ---------------------------------------------------------------------------------------------
// the simulator

/// The simulator: share it (`Arc`) between its server and the test that inspects it.
pub struct PaddleBillingSim {
    pub common: Common,
    data: Mutex<Data>,
}

impl PaddleBillingSim {
    pub fn new(api_key: &str) -> Arc<Self> {
        Arc::new(Self {
            common: Common::default(),
            data: Mutex::new(Data {
                key: api_key.to_owned(),
                billing_enabled: true,
                ..Data::default()
            }),
        })
    }

    /// Replaces the accepted API key (key rotation tests).
    pub fn set_key(&self, k: &str) {
        self.data.lock().unwrap().key = k.to_owned();
    }

    /// Off: every authenticated call answers 403 `paddle_billing_not_enabled`.
    pub fn set_billing_enabled(&self, on: bool) {
        self.data.lock().unwrap().billing_enabled = on;
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_sim/state", axum::routing::get(state))
            .fallback(handle)
            .with_state(self.clone())
    }

    /// Every discount (any status) as the API returns it, in creation order.
    pub fn discounts(&self) -> Vec<Value> {
        let now = Utc::now();
        self.data
            .lock()
            .unwrap()
            .discounts
            .iter()
            .map(|x| view(x, now))
            .collect()
    }

    /// Every discount group (any status), in creation order.
    pub fn groups(&self) -> Vec<Value> {
        self.data.lock().unwrap().groups.clone()
    }

    /// A discount (as the API returns it) or a discount group, by id.
    pub fn get(&self, id: &str) -> Option<Value> {
        let d = self.data.lock().unwrap();
        if let Some(i) = d.discount_index(id) {
            return Some(view(&d.discounts[i], Utc::now()));
        }
        d.group_index(id).map(|i| d.groups[i].clone())
    }

    /// The discount holding this code, ignoring case, whatever its status.
    pub fn by_code(&self, code: &str) -> Option<Value> {
        let d = self.data.lock().unwrap();
        d.codes
            .get(&code.to_ascii_lowercase())
            .and_then(|list| list.iter().min())
            .map(|&i| view(&d.discounts[i], Utc::now()))
    }

    /// A dashboard edit of a discount or group (tests of drift): `f` changes the stored JSON
    /// (status as stored: active/archived), then `updated_at` moves unless `f` set it. False if
    /// the id is unknown.
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut Value)) -> bool {
        let mut guard = self.data.lock().unwrap();
        let d = &mut *guard;
        // the closure may change the id, code or name: re-index that one object
        if let Some(i) = d.discount_index(id) {
            d.unindex_discount(i);
            touch(&mut d.discounts[i], f);
            d.index_discount(i);
        } else if let Some(i) = d.group_index(id) {
            d.unindex_group(i);
            touch(&mut d.groups[i], f);
            d.index_group(i);
        } else {
            return false;
        }
        true
    }

    /// Deletes a discount or group outright (something the API cannot do).
    pub fn remove(&self, id: &str) -> bool {
        let mut d = self.data.lock().unwrap();
        // positions after the removed one shift: rebuild the indexes (a test hook, O(n))
        if let Some(i) = d.discount_index(id) {
            d.discounts.remove(i);
            d.reindex();
            true
        } else if let Some(i) = d.group_index(id) {
            d.groups.remove(i);
            d.reindex();
            true
        } else {
            false
        }
    }

    /// A discount created by someone else (dashboard, another tool): missing fields take
    /// defaults (an id, `active`, a percentage of "10", a generated code when the code is left
    /// out and `enabled_for_checkout` is not false, timestamps now), unknown keys are kept at
    /// the end. Nothing is validated. An existing discount with the same id is replaced.
    pub fn insert(&self, discount: Value) -> String {
        let mut guard = self.data.lock().unwrap();
        let d = &mut *guard;
        let ts = stamp(Utc::now());
        let mut src = match discount {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let id = match src.get("id").and_then(Value::as_str) {
            Some(s) => s.to_owned(),
            None => d.new_id("dsc_"),
        };
        let enabled = src
            .get("enabled_for_checkout")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        if !src.contains_key("code") && enabled {
            let c = d.fresh_code();
            src.insert("code".to_owned(), json!(c));
        }
        let defaults = json!({
            "id": id.clone(),
            "status": "active",
            "description": "Created outside the sync daemon",
            "enabled_for_checkout": true,
            "code": null,
            "type": "percentage",
            "mode": "standard",
            "amount": "10",
            "currency_code": null,
            "recur": false,
            "maximum_recurring_intervals": null,
            "usage_limit": null,
            "restrict_to": null,
            "expires_at": null,
            "custom_data": null,
            "times_used": 0,
            "discount_group_id": null,
            "created_at": ts.clone(),
            "updated_at": ts,
            "import_meta": null,
        });
        let mut e = Map::new();
        if let Value::Object(defaults) = defaults {
            for (k, dv) in defaults {
                let v = src.remove(&k).unwrap_or(dv);
                e.insert(k, v);
            }
        }
        for (k, v) in src {
            e.insert(k, v);
        }
        e.insert("id".to_owned(), json!(id.clone()));
        let entity = Value::Object(e);
        match d.discount_index(&id) {
            Some(i) => {
                d.unindex_discount(i);
                d.discounts[i] = entity;
                d.index_discount(i);
            }
            None => {
                d.discounts.push(entity);
                d.index_discount(d.discounts.len() - 1);
            }
        }
        id
    }

    /// Redemptions counted by Paddle (`updated_at` does not move). No-op for unknown ids.
    pub fn set_times_used(&self, id: &str, n: i64) {
        let mut d = self.data.lock().unwrap();
        if let Some(i) = d.discount_index(id) {
            d.discounts[i]["times_used"] = json!(n);
        }
    }

    /// Bearer key, then whether Billing is on.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let Some(h) = headers.get(header::AUTHORIZATION) else {
            return Err(Failure::new(
                StatusCode::UNAUTHORIZED,
                "authentication_missing",
                "Authentication header missing: send `Authorization: Bearer <API key>`",
            ));
        };
        let malformed = || {
            Failure::new(
                StatusCode::UNAUTHORIZED,
                "authentication_malformed",
                "Authentication header malformed: expected `Authorization: Bearer <API key>`",
            )
        };
        let Ok(h) = h.to_str() else {
            return Err(malformed());
        };
        let token = match h.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                t.trim()
            }
            _ => return Err(malformed()),
        };
        let d = self.data.lock().unwrap();
        if token != d.key {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "invalid_token",
                "The API key is not valid",
            ));
        }
        if !d.billing_enabled {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "paddle_billing_not_enabled",
                "Paddle Billing is not enabled for this account",
            ));
        }
        Ok(())
    }

    fn execute(
        &self,
        route: &Route,
        query: &[(String, String)],
        body: &Map<String, Value>,
        next: &NextUrl,
    ) -> Result<Success, Failure> {
        let mut guard = self.data.lock().unwrap();
        let d = &mut *guard;
        match route {
            Route::ListDiscounts => list_discounts(d, query, next),
            Route::CreateDiscount => create_discount(d, body),
            Route::GetDiscount(id) => get_discount(d, id, query),
            Route::PatchDiscount(id) => patch_discount(d, id, body),
            Route::ListGroups => list_groups(d, query, next),
            Route::CreateGroup => create_group(d, body),
            Route::GetGroup(id) => get_group(d, id, query),
            Route::PatchGroup(id) => patch_group(d, id, body),
        }
    }
}
