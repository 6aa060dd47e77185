//! A stateful Shopify Admin GraphQL simulator (API version 2026-10; 2026-07 answers the same) for
//! code discounts (`DiscountCodeBasic`) and their metafields. It enforces what
//! `providers/shopify.md` says Shopify enforces: the `X-Shopify-Access-Token` header (401), the
//! version in the path (404), frozen and locked shops (402, 423), GraphQL parsing, validation
//! against a schema once one is set (`GRAPHQL_VALIDATION_FAILED`), unknown root fields and
//! arguments, input coercion (unknown input fields, wrong scalar types, the `@oneOf` context,
//! missing required variables), the `DiscountCodeBasicInput` rules as `userErrors` with HTTP 200
//! (required fields, codes unique store-wide ignoring case, ranges, lengths, tag limits, dates,
//! one value kind, one minimum, customer gids), partial updates with add/remove deltas,
//! activation and deactivation, `metafieldsSet` (at most 25, namespace and key lengths, typed
//! values, upserts, `compareDigest`), Relay pagination (`first`/`last` required, at most 250) and
//! the calculated-cost leaky bucket (`THROTTLED` as HTTP 200 or 429, `MAX_COST_EXCEEDED` above
//! 1000, `extensions.cost` on every GraphQL answer). Answers hold exactly the requested selection
//! (aliases, fragments, `__typename`, `@skip`/`@include`). DateTimes are kept to the second, as
//! Shopify keeps them. Faults are injected through [`Common`].

use super::{Common, Fault, Recorded, dropped};
use apollo_compiler::validation::{DiagnosticList, Valid};
use apollo_compiler::{ExecutableDocument, Schema, ast};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const API_VERSION: &str = "2026-10";
/// Versions answered (identical for this subset).
const VERSIONS: [&str; 2] = [API_VERSION, "2026-07"];
const MAX_QUERY_COST: f64 = 1000.0;
const MUTATION_COST: f64 = 10.0;
const MAX_PAGE: i64 = 250;
const MAX_METAFIELDS: usize = 25;
/// The namespace a metafield gets when none is given (the app-reserved one).
const APP_NAMESPACE: &str = "$app";
const GID: &str = "gid://shopify/";
const FIRST_ID: u64 = 1_100_000_000_000;
const MAX_DEPTH: usize = 64;
const THROTTLE_DOCS: &str = "https://shopify.dev/api/usage/rate-limits";
const BAD_TOKEN: &str =
    "[API] Invalid API key or access token (unrecognized login or wrong password)";
const CALL_LIMIT: &str = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.";
const METAFIELD_TYPES: &[&str] = &[
    "boolean",
    "collection_reference",
    "color",
    "company_reference",
    "customer_reference",
    "date",
    "date_time",
    "dimension",
    "file_reference",
    "id",
    "json",
    "link",
    "metaobject_reference",
    "mixed_reference",
    "money",
    "multi_line_text_field",
    "number_decimal",
    "number_integer",
    "page_reference",
    "product_reference",
    "rating",
    "rich_text_field",
    "single_line_text_field",
    "url",
    "variant_reference",
    "volume",
    "weight",
];

static NULL: Value = Value::Null;

struct Data {
    /// `DiscountCodeNode`s in the output shape (with `metafields: {nodes}`), in creation order.
    /// Changed only through `push_node`, `remove_node` and in place between `unindex_node` and
    /// `index_node` (when the id or the codes may change), so that the indexes below hold.
    nodes: Vec<Value>,
    /// The storage sequence number of each entry of `nodes` (same positions), strictly
    /// ascending: a key that stays valid when an earlier node is removed (position by binary
    /// search, `pos_of`).
    seqs: Vec<u64>,
    /// The sequence number the next stored node gets.
    next_seq: u64,
    /// `node_num` of a stored node → the sequence numbers of the nodes with that id, ascending
    /// (normally one; the first is the node `find_idx` answers).
    by_id: HashMap<u64, Vec<u64>>,
    /// A redeem code lower-cased → the sequence numbers of the nodes holding it, ascending, each
    /// node once (the first is the node a lookup by code answers).
    by_code: HashMap<String, Vec<u64>>,
    /// Min-heap of the future `startsAt`/`endsAt` instants (with the node's sequence number) at
    /// which a stored `status` may change: `refresh_all` recomputes only the nodes whose instant
    /// has come. Every node whose status is computed at `at` adds its instants after `at`
    /// (`note_changes`); entries of removed or since-changed nodes are harmless.
    changes: BinaryHeap<Reverse<(DateTime<Utc>, u64)>>,
    next: u64,
    currency: String,
}

/// The calculated-cost leaky bucket.
struct Bucket {
    maximum: f64,
    restore_rate: f64,
    available: f64,
    last: Instant,
}

impl Bucket {
    fn new(maximum: f64, restore_rate: f64) -> Self {
        Self {
            maximum,
            restore_rate,
            available: maximum,
            last: Instant::now(),
        }
    }

    fn restore(&mut self) {
        let now = Instant::now();
        self.available = (self.available
            + now.duration_since(self.last).as_secs_f64() * self.restore_rate)
            .min(self.maximum);
        self.last = now;
    }

    fn status(&self) -> Value {
        json!({
            "maximumAvailable": self.maximum,
            "currentlyAvailable": self.available.max(0.0).floor() as i64,
            "restoreRate": self.restore_rate,
        })
    }
}

/// The simulator: share it (`Arc`) between its server and the test that inspects it.
pub struct ShopifySim {
    pub common: Common,
    token: Mutex<String>,
    schema: Mutex<Option<Arc<Valid<Schema>>>>,
    bucket: Mutex<Bucket>,
    throttle_429: AtomicBool,
    shop_state: Mutex<Option<u16>>,
    data: Mutex<Data>,
    throttled: AtomicU64,
    validation_failures: AtomicU64,
    /// The query cost charged so far (sum of the unrounded `actualQueryCost` of executed
    /// requests), see [`ShopifySim::spent`].
    spent: Mutex<f64>,
}

/// What the GraphQL endpoint answers.
struct Reply {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            retry_after: None,
        }
    }
}

impl ShopifySim {
    pub fn new(access_token: &str) -> Arc<Self> {
        Arc::new(Self {
            common: Common::default(),
            token: Mutex::new(access_token.to_owned()),
            schema: Mutex::new(None),
            bucket: Mutex::new(Bucket::new(2000.0, 100.0)),
            throttle_429: AtomicBool::new(false),
            shop_state: Mutex::new(None),
            data: Mutex::new(Data {
                nodes: Vec::new(),
                seqs: Vec::new(),
                next_seq: 0,
                by_id: HashMap::new(),
                by_code: HashMap::new(),
                changes: BinaryHeap::new(),
                next: FIRST_ID,
                currency: "USD".to_owned(),
            }),
            throttled: AtomicU64::new(0),
            validation_failures: AtomicU64::new(0),
            spent: Mutex::new(0.0),
        })
    }

    /// The accepted access token (changing it makes the daemon's token "rejected").
    pub fn set_token(&self, t: &str) {
        *self.token.lock().unwrap() = t.to_owned();
    }

    /// Parses and validates an SDL schema; every document is validated against it from then on.
    /// apollo-compiler 1.x has no built-in `@oneOf`: when the SDL uses it without defining it,
    /// `directive @oneOf on INPUT_OBJECT` is added.
    pub fn set_schema(&self, sdl: &str) -> Result<(), String> {
        let schema = match Schema::parse_and_validate(sdl, "schema.graphql") {
            Ok(s) => s,
            Err(_) if sdl.contains("@oneOf") && !sdl.contains("directive @oneOf") => {
                Schema::parse_and_validate(
                    format!("{sdl}\n\ndirective @oneOf on INPUT_OBJECT\n"),
                    "schema.graphql",
                )
                .map_err(|e| e.errors.to_string())?
            }
            Err(e) => return Err(e.errors.to_string()),
        };
        *self.schema.lock().unwrap() = Some(Arc::new(schema));
        Ok(())
    }

    /// The cost bucket (refilled to `maximum`).
    pub fn set_bucket(&self, maximum: f64, restore_rate: f64) {
        *self.bucket.lock().unwrap() = Bucket::new(maximum, restore_rate);
    }

    /// `THROTTLED` as HTTP 429 with `Retry-After` (true) or HTTP 200 (false, the default).
    pub fn set_throttle_http_429(&self, on: bool) {
        self.throttle_429.store(on, Relaxed);
    }

    /// The shop currency of amounts created from now on.
    pub fn set_currency(&self, code: &str) {
        self.data.lock().unwrap().currency = code.to_owned();
    }

    /// `Some(402)`: frozen shop, `Some(423)`: locked shop (any other status answers that status).
    pub fn set_shop_state(&self, status: Option<u16>) {
        *self.shop_state.lock().unwrap() = status;
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/_sim/state", axum::routing::get(state))
            .fallback(handle)
            .with_state(self.clone())
    }

    /// The stored `DiscountCodeNode`s (output shape, with `metafields: {nodes}`), creation order.
    pub fn discounts(&self) -> Vec<Value> {
        let mut d = self.data.lock().unwrap();
        refresh_all(&mut d);
        d.nodes.clone()
    }

    /// The node holding this redeem code (case-insensitive).
    pub fn by_code(&self, code: &str) -> Option<Value> {
        let mut d = self.data.lock().unwrap();
        refresh_all(&mut d);
        find_code(&d, code).map(|i| d.nodes[i].clone())
    }

    /// Changes a stored node as a merchant would in the admin (tests of drift). `updatedAt` is
    /// bumped unless `f` set it.
    pub fn edit(&self, gid: &str, f: impl FnOnce(&mut Value)) -> bool {
        let mut d = self.data.lock().unwrap();
        let Some(idx) = find_idx(&d, gid) else {
            return false;
        };
        let before = d.nodes[idx]["codeDiscount"]["updatedAt"].clone();
        unindex_node(&mut d, idx);
        f(&mut d.nodes[idx]);
        let at = Utc::now();
        let node = &mut d.nodes[idx];
        if node.is_object() && node["codeDiscount"].is_object() {
            let cd = &mut node["codeDiscount"];
            if cd["updatedAt"] == before {
                cd["updatedAt"] = json!(ts(at));
            }
            let n = cd["codes"]["nodes"].as_array().map_or(0, Vec::len);
            cd["codesCount"] = json!({"count": n, "precision": "EXACT"});
            cd["status"] = json!(status_of(cd, at));
        }
        index_node(&mut d, idx);
        note_changes(&mut d, idx, at);
        true
    }

    /// Removes a discount outright, as if deleted in the admin (tests of drift).
    pub fn remove(&self, gid: &str) -> bool {
        let mut d = self.data.lock().unwrap();
        match find_idx(&d, gid) {
            Some(idx) => {
                remove_node(&mut d, idx);
                true
            }
            None => false,
        }
    }

    /// Adds a discount created elsewhere (missing fields get defaults, the id is filled unless a
    /// free `DiscountCodeNode` gid is given); returns its gid.
    pub fn insert(&self, node: Value) -> String {
        let mut d = self.data.lock().unwrap();
        // not after the instant normalize_node computes the status at (see `note_changes`)
        let at = Utc::now();
        let node = normalize_node(&mut d, node);
        let id = node["id"].as_str().unwrap_or_default().to_owned();
        push_node(&mut d, node, at);
        id
    }

    /// Sets `asyncUsageCount` of a redeem code (and the discount's total).
    pub fn set_usage(&self, code: &str, n: i64) {
        let mut d = self.data.lock().unwrap();
        let want = code.to_lowercase();
        // the first node holding the code (the index holds only nodes with a codes list)
        if let Some(idx) = find_code(&d, code) {
            let node = &mut d.nodes[idx];
            if !node.is_object() || !node["codeDiscount"].is_object() {
                return;
            }
            let cd = &mut node["codeDiscount"];
            let total = {
                let Some(list) = cd["codes"]["nodes"].as_array_mut() else {
                    return;
                };
                let Some(c) = list
                    .iter_mut()
                    .find(|c| c["code"].as_str().is_some_and(|x| x.to_lowercase() == want))
                else {
                    return;
                };
                c["asyncUsageCount"] = json!(n);
                list.iter()
                    .map(|c| c["asyncUsageCount"].as_i64().unwrap_or(0))
                    .sum::<i64>()
            };
            cd["asyncUsageCount"] = json!(total);
        }
    }

    /// Requests refused as `THROTTLED`.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Relaxed)
    }

    /// The total query cost charged so far: the sum of the (unrounded) `actualQueryCost` of
    /// every executed request, mutations included. Refused documents (parse or validation
    /// errors), `MAX_COST_EXCEEDED` and `THROTTLED` answers cost nothing. Not reset by
    /// [`set_bucket`](Self::set_bucket); divide the difference of two readings by the elapsed
    /// time for the achieved cost points per second.
    pub fn spent(&self) -> f64 {
        *self.spent.lock().unwrap()
    }

    /// Documents refused before execution: schema (or schema-less) validation, unknown root
    /// fields or arguments, arguments that do not coerce to their input types.
    pub fn validation_failures(&self) -> u64 {
        self.validation_failures.load(Relaxed)
    }

    fn cost_ext(&self, requested: f64, actual: Option<f64>) -> Value {
        let mut b = self.bucket.lock().unwrap();
        b.restore();
        json!({
            "requestedQueryCost": requested.round() as i64,
            "actualQueryCost": actual.map(|a| a.round() as i64),
            "throttleStatus": b.status(),
        })
    }

    /// One request body (`application/json`, or the bare document for `application/graphql`).
    fn graphql(&self, body: &str, raw_document: bool) -> Reply {
        let bad_request = || Reply {
            status: StatusCode::BAD_REQUEST,
            body: json!({"errors": {"query": "Required parameter missing or invalid"}}),
            retry_after: None,
        };
        if raw_document {
            return self.run(body, &Map::new(), None);
        }
        let Ok(Value::Object(req)) = serde_json::from_str::<Value>(body) else {
            return bad_request();
        };
        let Some(query) = req.get("query").and_then(Value::as_str) else {
            return bad_request();
        };
        let variables = match req.get("variables") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => m,
                _ => return bad_request(),
            },
            Some(_) => return bad_request(),
        };
        let op_name = req
            .get("operationName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        self.run(query, &variables, op_name)
    }

    /// Parses, validates, prices and executes one GraphQL request.
    fn run(&self, query: &str, variables: &Map<String, Value>, op_name: Option<&str>) -> Reply {
        let fail = |errors: Vec<Value>| {
            Reply::ok(
                json!({"errors": errors, "extensions": {"cost": self.cost_ext(0.0, Some(0.0))}}),
            )
        };
        let doc = match ast::Document::parse(query, "query.graphql") {
            Ok(doc) => doc,
            Err(e) => return fail(diagnostics(&e.errors, None)),
        };
        if let Err(list) = doc.validate_standalone_executable() {
            self.validation_failures.fetch_add(1, Relaxed);
            return fail(diagnostics(&list, Some("GRAPHQL_VALIDATION_FAILED")));
        }
        let schema = self.schema.lock().unwrap().clone();
        if let Some(schema) = schema
            && let Err(e) = ExecutableDocument::parse_and_validate(&schema, query, "query.graphql")
        {
            self.validation_failures.fetch_add(1, Relaxed);
            return fail(diagnostics(&e.errors, Some("GRAPHQL_VALIDATION_FAILED")));
        }

        let mut frags: HashMap<&str, &ast::FragmentDefinition> = HashMap::new();
        let mut ops: Vec<&ast::OperationDefinition> = Vec::new();
        for def in &doc.definitions {
            match def {
                ast::Definition::OperationDefinition(o) => ops.push(o),
                ast::Definition::FragmentDefinition(f) => {
                    frags.insert(f.name.as_str(), f);
                }
                _ => {}
            }
        }
        let op: &ast::OperationDefinition = match op_name {
            Some(n) => match ops
                .iter()
                .copied()
                .find(|o| o.name.as_ref().is_some_and(|x| x.as_str() == n))
            {
                Some(o) => o,
                None => {
                    return fail(vec![gql_error(
                        format!("No operation named \"{n}\""),
                        "OPERATION_NOT_FOUND",
                    )]);
                }
            },
            None => match ops.as_slice() {
                [o] => o,
                [] => {
                    return fail(vec![gql_error(
                        "No operations in query document",
                        "OPERATION_NOT_FOUND",
                    )]);
                }
                _ => {
                    return fail(vec![gql_error(
                        "An operation name is required",
                        "OPERATION_NAME_REQUIRED",
                    )]);
                }
            },
        };

        // variables: given, else the default, else an error when required
        let mut vars = Map::new();
        let mut var_types: HashMap<String, String> = HashMap::new();
        for vd in &op.variables {
            let name = vd.name.as_str();
            let ty = vd.ty.to_string();
            var_types.insert(name.to_owned(), ty.clone());
            match variables.get(name) {
                Some(v) if !v.is_null() => {
                    vars.insert(name.to_owned(), v.clone());
                }
                given => {
                    if given.is_none()
                        && let Some(dv) = &vd.default_value
                    {
                        vars.insert(name.to_owned(), to_json(dv, &Map::new()));
                    } else if vd.ty.is_non_null() {
                        return fail(vec![json!({
                            "message": format!("Variable ${name} of type {ty} was provided invalid value"),
                            "extensions": {"code": "INVALID_VARIABLE", "value": null,
                                "problems": [{"path": [], "explanation": "Expected value to not be null"}]},
                        })]);
                    } else if given.is_some() {
                        vars.insert(name.to_owned(), Value::Null);
                    }
                }
            }
        }
        let root = match op.operation_type {
            ast::OperationType::Query => "QueryRoot",
            ast::OperationType::Mutation => "Mutation",
            ast::OperationType::Subscription => {
                return fail(vec![gql_error(
                    "Subscriptions are not supported",
                    "BAD_REQUEST",
                )]);
            }
        };

        let mut ex = Exec {
            frags,
            vars,
            actual: 0.0,
            errors: Vec::new(),
        };
        let top: Vec<&ast::Selection> = op.selection_set.iter().collect();
        let mut fields: Grouped<'_> = Vec::new();
        ex.collect(&top, root, &mut fields, 0);

        // root fields and their arguments
        let mut errors = Vec::new();
        let mut root_args: Vec<Map<String, Value>> = Vec::new();
        for (_, fs) in &fields {
            let f = fs[0];
            let name = f.name.as_str();
            if name == "__typename" {
                root_args.push(Map::new());
                continue;
            }
            match root_spec(root, name) {
                None => errors.push(json!({
                    "message": format!("Field '{name}' doesn't exist on type '{root}'"),
                    "extensions": {"code": "undefinedField", "typeName": root, "fieldName": name},
                })),
                Some(spec) => match ex.root_args(f, spec, &var_types) {
                    Ok(a) => root_args.push(a),
                    Err(e) => errors.push(e),
                },
            }
        }
        if !errors.is_empty() {
            self.validation_failures.fetch_add(1, Relaxed);
            return fail(errors);
        }

        // the requested cost (and the pagination arguments)
        let walked = match ex.cost(&top, root, 0.0, 0) {
            Ok(c) => c,
            Err(e) => return fail(vec![e]),
        };
        let requested = if root == "Mutation" {
            MUTATION_COST
                * fields
                    .iter()
                    .filter(|(_, fs)| fs[0].name.as_str() != "__typename")
                    .count() as f64
        } else {
            walked.max(1.0)
        };
        if requested > MAX_QUERY_COST {
            let r = requested.round() as i64;
            return Reply::ok(json!({
                "errors": [{
                    "message": format!("Query cost is {r}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"),
                    "extensions": {"code": "MAX_COST_EXCEEDED", "cost": r, "maxCost": MAX_QUERY_COST},
                }],
                "extensions": {"cost": self.cost_ext(requested, None)},
            }));
        }
        {
            let mut b = self.bucket.lock().unwrap();
            b.restore();
            if b.available < requested {
                self.throttled.fetch_add(1, Relaxed);
                let body = json!({
                    "errors": [{"message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": THROTTLE_DOCS}}],
                    "extensions": {"cost": {
                        "requestedQueryCost": requested.round() as i64,
                        "actualQueryCost": null,
                        "throttleStatus": b.status(),
                    }},
                });
                let wait = if b.restore_rate > 0.0 {
                    ((requested - b.available) / b.restore_rate).ceil().max(1.0) as u64
                } else {
                    1
                };
                drop(b);
                return if self.throttle_429.load(Relaxed) {
                    Reply {
                        status: StatusCode::TOO_MANY_REQUESTS,
                        body,
                        retry_after: Some(wait),
                    }
                } else {
                    Reply::ok(body)
                };
            }
            b.available -= requested;
        }

        // execution
        let data = {
            let mut d = self.data.lock().unwrap();
            refresh_all(&mut d);
            let mut out = Map::new();
            for ((key, fs), args) in fields.iter().zip(&root_args) {
                let sub: Vec<&ast::Selection> =
                    fs.iter().flat_map(|&f| f.selection_set.iter()).collect();
                let name = fs[0].name.as_str();
                let v = if name == "__typename" {
                    json!(root)
                } else {
                    exec_root(&mut d, &mut ex, name, args, &sub)
                };
                out.insert((*key).to_owned(), v);
            }
            Value::Object(out)
        };
        let actual = if root == "Mutation" {
            requested
        } else {
            ex.actual.min(requested)
        };
        let cost = {
            let mut b = self.bucket.lock().unwrap();
            b.restore();
            b.available = (b.available + requested - actual).min(b.maximum);
            *self.spent.lock().unwrap() += actual;
            json!({
                "requestedQueryCost": requested.round() as i64,
                "actualQueryCost": actual.round() as i64,
                "throttleStatus": b.status(),
            })
        };
        let mut resp = Map::new();
        if !ex.errors.is_empty() {
            resp.insert(
                "errors".to_owned(),
                Value::Array(std::mem::take(&mut ex.errors)),
            );
        }
        resp.insert("data".to_owned(), data);
        resp.insert("extensions".to_owned(), json!({"cost": cost}));
        Reply::ok(Value::Object(resp))
    }
}

// ---------------------------------------------------------------------------------------------
// small helpers

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// RFC 3339, a date-time without offset (UTC) or a date (midnight UTC).
fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Some(n.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

fn parse_decimal(v: &Value) -> Option<Decimal> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    s.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&s).ok())
}

/// A Decimal as Shopify prints it: `10.0`, `7.5`, `0.01`.
fn decimal_str(d: Decimal) -> String {
    let s = d.normalize().to_string();
    if s.contains('.') { s } else { format!("{s}.0") }
}

fn money(d: Decimal, currency: &str) -> Value {
    json!({"amount": decimal_str(d), "currencyCode": currency})
}

fn gid(ty: &str, n: u64) -> String {
    format!("{GID}{ty}/{n}")
}

/// `gid://shopify/<Type>/<digits>` → (Type, number).
fn gid_parts(s: &str) -> Option<(&str, u64)> {
    let rest = s.strip_prefix(GID)?;
    let (ty, n) = rest.split_once('/')?;
    let n = n.split('?').next().unwrap_or("");
    if ty.is_empty()
        || !ty.bytes().all(|b| b.is_ascii_alphanumeric())
        || n.is_empty()
        || !n.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((ty, n.parse().ok()?))
}

fn is_gid(s: &str, ty: &str) -> bool {
    gid_parts(s).is_some_and(|(t, _)| t == ty)
}

fn node_num(n: &Value) -> u64 {
    n["id"].as_str().and_then(gid_parts).map_or(0, |(_, k)| k)
}

/// A discount by its `DiscountCodeNode` or `DiscountNode` gid (the first stored with that id).
fn find_idx(d: &Data, id: &str) -> Option<usize> {
    let (ty, n) = gid_parts(id)?;
    if ty != "DiscountCodeNode" && ty != "DiscountNode" {
        return None;
    }
    let seq = *d.by_id.get(&n)?.first()?;
    pos_of(d, seq)
}

/// The position in `nodes` of the node with storage sequence number `seq`.
fn pos_of(d: &Data, seq: u64) -> Option<usize> {
    d.seqs.binary_search(&seq).ok()
}

/// Whether a stored node has this `node_num`.
fn id_used(d: &Data, n: u64) -> bool {
    d.by_id.get(&n).is_some_and(|l| !l.is_empty())
}

/// The first stored node holding this redeem code (case-insensitive).
fn find_code(d: &Data, code: &str) -> Option<usize> {
    let seq = *d.by_code.get(&code.to_lowercase())?.first()?;
    pos_of(d, seq)
}

/// The distinct lower-cased redeem codes of a node (its keys in `Data::by_code`).
fn code_keys(node: &Value) -> Vec<String> {
    let mut keys: Vec<String> = codes_of(&node["codeDiscount"])
        .iter()
        .map(|c| c.to_lowercase())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Adds `seq` to the ascending list of `key`.
fn list_add<K: Eq + Hash>(map: &mut HashMap<K, Vec<u64>>, key: K, seq: u64) {
    let list = map.entry(key).or_default();
    if let Err(p) = list.binary_search(&seq) {
        list.insert(p, seq);
    }
}

/// Takes `seq` out of the list of `key` (dropping the key when its list becomes empty).
fn list_remove<K: Eq + Hash>(map: &mut HashMap<K, Vec<u64>>, key: &K, seq: u64) {
    if let Some(list) = map.get_mut(key) {
        if let Ok(p) = list.binary_search(&seq) {
            list.remove(p);
        }
        if list.is_empty() {
            map.remove(key);
        }
    }
}

/// Adds the node at `pos` (as it is now) to `by_id` and `by_code`.
fn index_node(d: &mut Data, pos: usize) {
    let seq = d.seqs[pos];
    let num = node_num(&d.nodes[pos]);
    let keys = code_keys(&d.nodes[pos]);
    list_add(&mut d.by_id, num, seq);
    for k in keys {
        list_add(&mut d.by_code, k, seq);
    }
}

/// Takes the node at `pos` (as it is now) out of `by_id` and `by_code`; call before a change
/// that may touch its id or codes, and `index_node` after it.
fn unindex_node(d: &mut Data, pos: usize) {
    let seq = d.seqs[pos];
    let num = node_num(&d.nodes[pos]);
    let keys = code_keys(&d.nodes[pos]);
    list_remove(&mut d.by_id, &num, seq);
    for k in &keys {
        list_remove(&mut d.by_code, k, seq);
    }
}

/// Remembers the instants after `at` at which the status of the node at `pos` (computed at
/// `at`, or later) changes, for `refresh_all`.
fn note_changes(d: &mut Data, pos: usize, at: DateTime<Utc>) {
    let seq = d.seqs[pos];
    let cd = &d.nodes[pos]["codeDiscount"];
    let times: Vec<DateTime<Utc>> = ["startsAt", "endsAt"]
        .iter()
        .filter_map(|f| cd[*f].as_str().and_then(parse_ts))
        .filter(|t| *t > at)
        .collect();
    for t in times {
        d.changes.push(Reverse((t, seq)));
    }
}

/// Appends a node whose status was computed at `at` (or later), indexing it.
fn push_node(d: &mut Data, node: Value, at: DateTime<Utc>) {
    let seq = d.next_seq;
    d.next_seq += 1;
    d.nodes.push(node);
    d.seqs.push(seq);
    let pos = d.nodes.len() - 1;
    index_node(d, pos);
    note_changes(d, pos, at);
}

/// Removes the node at `pos` (and its index entries).
fn remove_node(d: &mut Data, pos: usize) -> Value {
    unindex_node(d, pos);
    d.seqs.remove(pos);
    d.nodes.remove(pos)
}

fn codes_of(cd: &Value) -> Vec<String> {
    cd["codes"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect()
}

/// Whether a node other than the one at `except` holds `code` (case-insensitive).
fn code_taken(d: &Data, code: &str, except: Option<usize>) -> bool {
    let except = except.map(|i| d.seqs[i]);
    d.by_code
        .get(&code.to_lowercase())
        .is_some_and(|l| l.iter().any(|&s| Some(s) != except))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect()
}

/// The ids of a list of objects or of a connection (`{nodes}`).
fn ids_of(v: &Value) -> Vec<String> {
    let list: &[Value] = match v {
        Value::Array(a) => a.as_slice(),
        Value::Object(o) => o
            .get("nodes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]),
        _ => &[],
    };
    list.iter()
        .filter_map(|x| x.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn id_objs(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|i| json!({"id": i})).collect())
}

fn gql_error(message: impl Into<String>, code: &str) -> Value {
    let message: String = message.into();
    json!({"message": message, "extensions": {"code": code}})
}

fn diagnostics(list: &DiagnosticList, code: Option<&str>) -> Vec<Value> {
    list.iter()
        .map(|d| {
            let mut e = json!({"message": d.error.to_string()});
            if let Some(r) = d.line_column_range() {
                e["locations"] = json!([{"line": r.start.line, "column": r.start.column}]);
            }
            if let Some(c) = code {
                e["extensions"] = json!({"code": c});
            }
            e
        })
        .collect()
}

/// A literal (variables substituted; a missing variable is null).
fn to_json(v: &ast::Value, vars: &Map<String, Value>) -> Value {
    match v {
        ast::Value::Null => Value::Null,
        ast::Value::Enum(n) => Value::String(n.as_str().to_owned()),
        ast::Value::Variable(n) => vars.get(n.as_str()).cloned().unwrap_or(Value::Null),
        ast::Value::String(s) => Value::String(s.clone()),
        ast::Value::Float(f) => f
            .try_to_f64()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        ast::Value::Int(i) => match i.as_str().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => i
                .try_to_f64()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
        },
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::List(l) => Value::Array(l.iter().map(|x| to_json(x, vars)).collect()),
        ast::Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.as_str().to_owned(), to_json(x, vars)))
                .collect(),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// types of the output schema (what the projector needs to know)

/// The declared type of `parent.name` (object, union, interface or connection; "" for scalars
/// and unknown fields).
fn field_type(parent: &str, name: &str) -> String {
    if let Some(base) = parent.strip_suffix("Connection") {
        return match name {
            "nodes" => base.to_owned(),
            "edges" => format!("{base}Edge"),
            "pageInfo" => "PageInfo".to_owned(),
            _ => String::new(),
        };
    }
    if let Some(base) = parent.strip_suffix("Edge")
        && name == "node"
    {
        return base.to_owned();
    }
    let t = match (parent, name) {
        ("MetafieldsSetPayload", "metafields") => "Metafield",
        ("MetafieldsSetPayload", "userErrors") => "MetafieldsSetUserError",
        ("QueryRoot", "codeDiscountNode" | "codeDiscountNodeByCode") => "DiscountCodeNode",
        ("QueryRoot", "codeDiscountNodes") => "DiscountCodeNodeConnection",
        ("QueryRoot", "discountCodesCount") => "Count",
        ("QueryRoot", "discountNode") => "DiscountNode",
        ("QueryRoot", "discountNodes") => "DiscountNodeConnection",
        ("Mutation", "discountCodeActivate") => "DiscountCodeActivatePayload",
        ("Mutation", "discountCodeBasicCreate") => "DiscountCodeBasicCreatePayload",
        ("Mutation", "discountCodeBasicUpdate") => "DiscountCodeBasicUpdatePayload",
        ("Mutation", "discountCodeDeactivate") => "DiscountCodeDeactivatePayload",
        ("Mutation", "discountCodeDelete") => "DiscountCodeDeletePayload",
        ("Mutation", "metafieldsSet") => "MetafieldsSetPayload",
        (_, "codeDiscount") => "DiscountCode",
        (_, "discount") => "Discount",
        (_, "codeDiscountNode") => "DiscountCodeNode",
        (_, "userErrors") => "DiscountUserError",
        (_, "metafield") => "Metafield",
        (_, "metafields") => "MetafieldConnection",
        (_, "metafieldDefinitions") => "MetafieldDefinitionConnection",
        (_, "events") => "EventConnection",
        (_, "codes") => "DiscountRedeemCodeConnection",
        (_, "codesCount") => "Count",
        (_, "combinesWith") => "DiscountCombinesWith",
        (_, "context") => "DiscountContext",
        (_, "customerGets") => "DiscountCustomerGets",
        (_, "customerSelection") => "DiscountCustomerSelection",
        (_, "minimumRequirement") => "DiscountMinimumRequirement",
        (_, "shareableUrls") => "DiscountShareableUrl",
        (_, "totalSales" | "greaterThanOrEqualToSubtotal" | "amount") => "MoneyV2",
        (_, "items") => "DiscountItems",
        (_, "value") => "DiscountCustomerGetsValue",
        (_, "effect") => "DiscountEffect",
        (_, "quantity") => "DiscountQuantity",
        (_, "customers") => "Customer",
        (_, "segments") => "Segment",
        (_, "markets") => "MarketConnection",
        (_, "products") => "ProductConnection",
        (_, "productVariants") => "ProductVariantConnection",
        (_, "collections") => "CollectionConnection",
        (_, "createdBy") => "App",
        (_, "targetItemImage") => "Image",
        (_, "pageInfo") => "PageInfo",
        _ => "",
    };
    t.to_owned()
}

/// The members of a union or the implementations of an interface.
fn possible_types(t: &str) -> &'static [&'static str] {
    match t {
        "Discount" => &[
            "DiscountAutomaticApp",
            "DiscountAutomaticBasic",
            "DiscountAutomaticBxgy",
            "DiscountAutomaticFreeShipping",
            "DiscountCodeApp",
            "DiscountCodeBasic",
            "DiscountCodeBxgy",
            "DiscountCodeFreeShipping",
        ],
        "DiscountCode" => &[
            "DiscountCodeApp",
            "DiscountCodeBasic",
            "DiscountCodeBxgy",
            "DiscountCodeFreeShipping",
        ],
        "DiscountContext" => &[
            "DiscountBuyerSelectionAll",
            "DiscountCustomerSegments",
            "DiscountCustomers",
            "DiscountMarkets",
        ],
        "DiscountCustomerGetsValue" => {
            &["DiscountAmount", "DiscountOnQuantity", "DiscountPercentage"]
        }
        "DiscountCustomerSelection" => &[
            "DiscountCustomerAll",
            "DiscountCustomerSegments",
            "DiscountCustomerSelectionUnknown",
            "DiscountCustomers",
        ],
        "DiscountEffect" => &["DiscountAmount", "DiscountPercentage"],
        "DiscountItems" => &[
            "AllDiscountItems",
            "DiscountCollections",
            "DiscountProducts",
        ],
        "DiscountMinimumRequirement" => &["DiscountMinimumQuantity", "DiscountMinimumSubtotal"],
        "Node" => &[
            "App",
            "Customer",
            "DiscountAutomaticBxgy",
            "DiscountCodeNode",
            "DiscountNode",
            "Metafield",
            "Segment",
        ],
        "HasEvents" | "HasMetafieldDefinitions" | "HasMetafields" => {
            &["DiscountCodeNode", "DiscountNode"]
        }
        "DisplayableError" => &["DiscountUserError", "MetafieldsSetUserError", "UserError"],
        _ => &[],
    }
}

fn type_matches(cond: &str, concrete: &str) -> bool {
    cond == concrete || possible_types(cond).contains(&concrete)
}

/// The concrete type of a stored object: its `__typename`, else inferred from the declared type
/// and the keys it holds.
fn concrete_type(declared: &str, obj: &Map<String, Value>) -> String {
    if let Some(t) = obj.get("__typename").and_then(Value::as_str) {
        return t.to_owned();
    }
    let has = |k: &str| obj.contains_key(k);
    let t = match declared {
        "Discount" | "DiscountCode" => "DiscountCodeBasic",
        "DiscountCustomerGetsValue" | "DiscountEffect" => {
            if has("percentage") {
                "DiscountPercentage"
            } else if has("effect") {
                "DiscountOnQuantity"
            } else {
                "DiscountAmount"
            }
        }
        "DiscountItems" => {
            if has("allItems") {
                "AllDiscountItems"
            } else if has("collections") {
                "DiscountCollections"
            } else {
                "DiscountProducts"
            }
        }
        "DiscountContext" => {
            if has("customers") {
                "DiscountCustomers"
            } else if has("segments") {
                "DiscountCustomerSegments"
            } else if has("markets") {
                "DiscountMarkets"
            } else {
                "DiscountBuyerSelectionAll"
            }
        }
        "DiscountCustomerSelection" => {
            if has("customers") {
                "DiscountCustomers"
            } else if has("segments") {
                "DiscountCustomerSegments"
            } else if has("allCustomers") {
                "DiscountCustomerAll"
            } else {
                "DiscountCustomerSelectionUnknown"
            }
        }
        "DiscountMinimumRequirement" => {
            if has("greaterThanOrEqualToQuantity") {
                "DiscountMinimumQuantity"
            } else {
                "DiscountMinimumSubtotal"
            }
        }
        "DisplayableError" => "DiscountUserError",
        "Node" | "HasEvents" | "HasMetafieldDefinitions" | "HasMetafields" => {
            return obj
                .get("id")
                .and_then(Value::as_str)
                .and_then(gid_parts)
                .map_or_else(|| "DiscountCodeNode".to_owned(), |(t, _)| t.to_owned());
        }
        other => other,
    };
    t.to_owned()
}

// ---------------------------------------------------------------------------------------------
// input types and coercion

/// An input type.
#[derive(Debug, Clone, Copy)]
enum In {
    Str,
    Int,
    Float,
    Bool,
    Decimal,
    DateTime,
    Id,
    U64,
    Enum(&'static str, &'static [&'static str]),
    Obj(&'static str),
    /// `[T!]`
    List(&'static In),
}

/// (field, type, required)
type Spec = &'static [(&'static str, In, bool)];

const SORT_KEYS: &[&str] = &[
    "CREATED_AT",
    "ENDS_AT",
    "ID",
    "RELEVANCE",
    "STARTS_AT",
    "TITLE",
    "UPDATED_AT",
];

static BASIC_INPUT: Spec = &[
    ("appliesOncePerCustomer", In::Bool, false),
    ("code", In::Str, false),
    ("combinesWith", In::Obj("DiscountCombinesWithInput"), false),
    ("context", In::Obj("DiscountContextInput"), false),
    ("customerGets", In::Obj("DiscountCustomerGetsInput"), false),
    (
        "customerSelection",
        In::Obj("DiscountCustomerSelectionInput"),
        false,
    ),
    ("endsAt", In::DateTime, false),
    (
        "minimumRequirement",
        In::Obj("DiscountMinimumRequirementInput"),
        false,
    ),
    ("recurringCycleLimit", In::Int, false),
    ("startsAt", In::DateTime, false),
    ("tags", In::List(&In::Str), false),
    ("title", In::Str, false),
    ("usageLimit", In::Int, false),
];
static COMBINES_INPUT: Spec = &[
    ("orderDiscounts", In::Bool, false),
    ("productDiscounts", In::Bool, false),
    (
        "productDiscountsWithTagsOnSameCartLine",
        In::Obj("ProductDiscountsWithTagsOnSameCartLineInput"),
        false,
    ),
    ("shippingDiscounts", In::Bool, false),
];
static ADD_REMOVE_STRS: Spec = &[
    ("add", In::List(&In::Str), false),
    ("remove", In::List(&In::Str), false),
];
static ADD_REMOVE_IDS: Spec = &[
    ("add", In::List(&In::Id), false),
    ("remove", In::List(&In::Id), false),
];
static CONTEXT_INPUT: Spec = &[
    ("all", In::Enum("DiscountBuyerSelection", &["ALL"]), false),
    (
        "customerSegments",
        In::Obj("DiscountCustomerSegmentsInput"),
        false,
    ),
    ("customers", In::Obj("DiscountCustomersInput"), false),
    ("markets", In::Obj("DiscountMarketsInput"), false),
];
static GETS_INPUT: Spec = &[
    ("appliesOnOneTimePurchase", In::Bool, false),
    ("appliesOnSubscription", In::Bool, false),
    ("items", In::Obj("DiscountItemsInput"), false),
    ("value", In::Obj("DiscountCustomerGetsValueInput"), false),
];
static VALUE_INPUT: Spec = &[
    ("discountAmount", In::Obj("DiscountAmountInput"), false),
    (
        "discountOnQuantity",
        In::Obj("DiscountOnQuantityInput"),
        false,
    ),
    ("percentage", In::Float, false),
];
static AMOUNT_INPUT: Spec = &[
    ("amount", In::Decimal, false),
    ("appliesOnEachItem", In::Bool, false),
];
static ON_QUANTITY_INPUT: Spec = &[
    ("effect", In::Obj("DiscountEffectInput"), false),
    ("quantity", In::U64, false),
];
static EFFECT_INPUT: Spec = &[
    ("amount", In::Decimal, false),
    ("percentage", In::Float, false),
];
static ITEMS_INPUT: Spec = &[
    ("all", In::Bool, false),
    ("collections", In::Obj("DiscountCollectionsInput"), false),
    ("products", In::Obj("DiscountProductsInput"), false),
];
static PRODUCTS_INPUT: Spec = &[
    ("productVariantsToAdd", In::List(&In::Id), false),
    ("productVariantsToRemove", In::List(&In::Id), false),
    ("productsToAdd", In::List(&In::Id), false),
    ("productsToRemove", In::List(&In::Id), false),
];
static SELECTION_INPUT: Spec = &[
    ("all", In::Bool, false),
    (
        "customerSegments",
        In::Obj("DiscountCustomerSegmentsInput"),
        false,
    ),
    ("customers", In::Obj("DiscountCustomersInput"), false),
];
static MINIMUM_INPUT: Spec = &[
    ("quantity", In::Obj("DiscountMinimumQuantityInput"), false),
    ("subtotal", In::Obj("DiscountMinimumSubtotalInput"), false),
];
static MINIMUM_QUANTITY_INPUT: Spec = &[("greaterThanOrEqualToQuantity", In::U64, false)];
static MINIMUM_SUBTOTAL_INPUT: Spec = &[("greaterThanOrEqualToSubtotal", In::Decimal, false)];
static METAFIELD_INPUT: Spec = &[
    ("compareDigest", In::Str, false),
    ("key", In::Str, true),
    ("namespace", In::Str, false),
    ("ownerId", In::Id, true),
    ("type", In::Str, false),
    ("value", In::Str, true),
];

static ID_ARGS: Spec = &[("id", In::Id, true)];
static CREATE_ARGS: Spec = &[("basicCodeDiscount", In::Obj("DiscountCodeBasicInput"), true)];
static UPDATE_ARGS: Spec = &[
    ("basicCodeDiscount", In::Obj("DiscountCodeBasicInput"), true),
    ("id", In::Id, true),
];
static METAFIELDS_ARGS: Spec = &[("metafields", In::List(&In::Obj("MetafieldsSetInput")), true)];
static BY_CODE_ARGS: Spec = &[("code", In::Str, true)];
static DISCOUNT_NODES_ARGS: Spec = &[
    ("after", In::Str, false),
    ("before", In::Str, false),
    ("first", In::Int, false),
    ("last", In::Int, false),
    ("query", In::Str, false),
    ("reverse", In::Bool, false),
    ("savedSearchId", In::Id, false),
    ("sortKey", In::Enum("DiscountSortKeys", SORT_KEYS), false),
];
static CODE_DISCOUNT_NODES_ARGS: Spec = &[
    ("after", In::Str, false),
    ("before", In::Str, false),
    ("first", In::Int, false),
    ("last", In::Int, false),
    ("query", In::Str, false),
    ("reverse", In::Bool, false),
    ("savedSearchId", In::Id, false),
    (
        "sortKey",
        In::Enum("CodeDiscountSortKeys", SORT_KEYS),
        false,
    ),
];
static COUNT_ARGS: Spec = &[("limit", In::Int, false), ("query", In::Str, false)];

fn input_spec(name: &str) -> Spec {
    match name {
        "DiscountCodeBasicInput" => BASIC_INPUT,
        "DiscountCombinesWithInput" => COMBINES_INPUT,
        "ProductDiscountsWithTagsOnSameCartLineInput" => ADD_REMOVE_STRS,
        "DiscountContextInput" => CONTEXT_INPUT,
        "DiscountCustomersInput"
        | "DiscountCustomerSegmentsInput"
        | "DiscountMarketsInput"
        | "DiscountCollectionsInput" => ADD_REMOVE_IDS,
        "DiscountCustomerGetsInput" => GETS_INPUT,
        "DiscountCustomerGetsValueInput" => VALUE_INPUT,
        "DiscountAmountInput" => AMOUNT_INPUT,
        "DiscountOnQuantityInput" => ON_QUANTITY_INPUT,
        "DiscountEffectInput" => EFFECT_INPUT,
        "DiscountItemsInput" => ITEMS_INPUT,
        "DiscountProductsInput" => PRODUCTS_INPUT,
        "DiscountCustomerSelectionInput" => SELECTION_INPUT,
        "DiscountMinimumRequirementInput" => MINIMUM_INPUT,
        "DiscountMinimumQuantityInput" => MINIMUM_QUANTITY_INPUT,
        "DiscountMinimumSubtotalInput" => MINIMUM_SUBTOTAL_INPUT,
        "MetafieldsSetInput" => METAFIELD_INPUT,
        _ => &[],
    }
}

/// The arguments of a root field, when it exists.
fn root_spec(root: &str, name: &str) -> Option<Spec> {
    Some(match (root, name) {
        ("Mutation", "discountCodeBasicCreate") => CREATE_ARGS,
        ("Mutation", "discountCodeBasicUpdate") => UPDATE_ARGS,
        ("Mutation", "discountCodeDelete" | "discountCodeActivate" | "discountCodeDeactivate") => {
            ID_ARGS
        }
        ("Mutation", "metafieldsSet") => METAFIELDS_ARGS,
        ("QueryRoot", "codeDiscountNode" | "discountNode") => ID_ARGS,
        ("QueryRoot", "codeDiscountNodeByCode") => BY_CODE_ARGS,
        ("QueryRoot", "discountNodes") => DISCOUNT_NODES_ARGS,
        ("QueryRoot", "codeDiscountNodes") => CODE_DISCOUNT_NODES_ARGS,
        ("QueryRoot", "discountCodesCount") => COUNT_ARGS,
        _ => return None,
    })
}

fn type_name(t: In, required: bool) -> String {
    let base = match t {
        In::Str => "String".to_owned(),
        In::Int => "Int".to_owned(),
        In::Float => "Float".to_owned(),
        In::Bool => "Boolean".to_owned(),
        In::Decimal => "Decimal".to_owned(),
        In::DateTime => "DateTime".to_owned(),
        In::Id => "ID".to_owned(),
        In::U64 => "UnsignedInt64".to_owned(),
        In::Enum(n, _) | In::Obj(n) => n.to_owned(),
        In::List(i) => format!("[{}]", type_name(*i, true)),
    };
    if required { format!("{base}!") } else { base }
}

/// Why a value does not coerce, and where.
struct Problem {
    path: Vec<Value>,
    explanation: String,
}

/// Coerces a non-null JSON value to an input type, normalising it (Decimal and DateTime as
/// Shopify prints them, UnsignedInt64 as a number, single values as one-item lists).
fn coerce(v: &Value, ty: In, path: &[Value]) -> Result<Value, Problem> {
    let bad = |what: &str| Problem {
        path: path.to_vec(),
        explanation: format!("Could not coerce value {v} to {what}"),
    };
    match ty {
        In::Str => v.as_str().map(|s| json!(s)).ok_or_else(|| bad("String")),
        In::Int => match v.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => Ok(json!(i)),
            _ => Err(bad("Int")),
        },
        In::Float => match v {
            Value::Number(n) => n.as_f64().map(|f| json!(f)).ok_or_else(|| bad("Float")),
            _ => Err(bad("Float")),
        },
        In::Bool => v.as_bool().map(Value::Bool).ok_or_else(|| bad("Boolean")),
        In::Decimal => parse_decimal(v)
            .map(|d| json!(decimal_str(d)))
            .ok_or_else(|| bad("Decimal")),
        In::DateTime => v
            .as_str()
            .and_then(parse_ts)
            .map(|t| json!(ts(t)))
            .ok_or_else(|| bad("DateTime")),
        In::Id => match v {
            Value::String(s) => Ok(json!(s)),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(json!(n.to_string())),
            _ => Err(bad("ID")),
        },
        In::U64 => match v {
            Value::Number(n) => n
                .as_u64()
                .map(Value::from)
                .ok_or_else(|| bad("UnsignedInt64")),
            Value::String(s) => s
                .trim()
                .parse::<u64>()
                .ok()
                .map(Value::from)
                .ok_or_else(|| bad("UnsignedInt64")),
            _ => Err(bad("UnsignedInt64")),
        },
        In::Enum(name, values) => match v.as_str() {
            Some(s) if values.contains(&s) => Ok(json!(s)),
            _ => Err(Problem {
                path: path.to_vec(),
                explanation: format!("Expected {v} to be one of: {} ({name})", values.join(", ")),
            }),
        },
        In::List(inner) => {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, it) in items.into_iter().enumerate() {
                let mut p = path.to_vec();
                p.push(json!(i));
                if it.is_null() {
                    return Err(Problem {
                        path: p,
                        explanation: "Expected value to not be null".to_owned(),
                    });
                }
                out.push(coerce(it, *inner, &p)?);
            }
            Ok(Value::Array(out))
        }
        In::Obj(name) => {
            let Some(obj) = v.as_object() else {
                return Err(Problem {
                    path: path.to_vec(),
                    explanation: format!("Expected {v} to be a key-value object ({name})"),
                });
            };
            let spec = input_spec(name);
            if let Some(k) = obj
                .keys()
                .find(|k| !spec.iter().any(|(f, _, _)| *f == k.as_str()))
            {
                let mut p = path.to_vec();
                p.push(json!(k));
                return Err(Problem {
                    path: p,
                    explanation: format!("Field is not defined on {name}"),
                });
            }
            let mut out = Map::new();
            for &(f, t, req) in spec {
                let mut p = path.to_vec();
                p.push(json!(f));
                match obj.get(f) {
                    None | Some(Value::Null) if req => {
                        return Err(Problem {
                            path: p,
                            explanation: "Expected value to not be null".to_owned(),
                        });
                    }
                    None => {}
                    Some(Value::Null) => {
                        out.insert(f.to_owned(), Value::Null);
                    }
                    Some(x) => {
                        out.insert(f.to_owned(), coerce(x, t, &p)?);
                    }
                }
            }
            if name == "DiscountContextInput" {
                let given = out.values().filter(|x| !x.is_null()).count();
                if given != 1 || out.len() != 1 {
                    let explanation = if out.len() > 1 {
                        format!(
                            "`{name}` is a OneOf type, so only one argument may be given (instead of {})",
                            out.len()
                        )
                    } else {
                        format!(
                            "`{name}` is a OneOf type, so exactly one non-null argument must be given"
                        )
                    };
                    return Err(Problem {
                        path: path.to_vec(),
                        explanation,
                    });
                }
            }
            Ok(Value::Object(out))
        }
    }
}

/// The top-level error of an argument that does not coerce.
fn invalid_arg(
    field: &str,
    arg: &str,
    literal: &ast::Value,
    expected: String,
    raw: &Value,
    p: Problem,
    var_types: &HashMap<String, String>,
) -> Value {
    if let ast::Value::Variable(var) = literal {
        let ty = var_types.get(var.as_str()).cloned().unwrap_or(expected);
        let path: Vec<String> = p
            .path
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let message = if path.is_empty() {
            format!(
                "Variable ${var} of type {ty} was provided invalid value ({})",
                p.explanation
            )
        } else {
            format!(
                "Variable ${var} of type {ty} was provided invalid value for {} ({})",
                path.join("."),
                p.explanation
            )
        };
        json!({
            "message": message,
            "extensions": {"code": "INVALID_VARIABLE", "value": raw,
                "problems": [{"path": p.path, "explanation": p.explanation}]},
        })
    } else {
        json!({
            "message": format!("Argument '{arg}' on Field '{field}' has an invalid value ({raw}). Expected type '{expected}'."),
            "extensions": {"code": "argumentLiteralsIncompatible", "typeName": "CoercionError",
                "path": p.path, "explanation": p.explanation},
        })
    }
}

// ---------------------------------------------------------------------------------------------
// selection sets: collection, cost, projection

type Grouped<'a> = Vec<(&'a str, Vec<&'a ast::Field>)>;

/// One request's execution context over its parsed document.
struct Exec<'a> {
    frags: HashMap<&'a str, &'a ast::FragmentDefinition>,
    vars: Map<String, Value>,
    /// Objects actually answered (the actual query cost).
    actual: f64,
    /// Field errors raised while answering.
    errors: Vec<Value>,
}

impl<'a> Exec<'a> {
    fn value(&self, v: &ast::Value) -> Value {
        to_json(v, &self.vars)
    }

    fn args(&self, f: &ast::Field) -> Map<String, Value> {
        f.arguments
            .iter()
            .map(|a| (a.name.as_str().to_owned(), self.value(&a.value)))
            .collect()
    }

    /// `@skip` / `@include`.
    fn included(&self, dirs: &ast::DirectiveList) -> bool {
        dirs.0.iter().all(|d| {
            let cond = d
                .arguments
                .iter()
                .find(|a| a.name.as_str() == "if")
                .map(|a| self.value(&a.value));
            match d.name.as_str() {
                "skip" => cond != Some(Value::Bool(true)),
                "include" => cond == Some(Value::Bool(true)),
                _ => true,
            }
        })
    }

    /// The fields selected on an object of type `concrete`, grouped by response key.
    fn collect(
        &self,
        sels: &[&'a ast::Selection],
        concrete: &str,
        out: &mut Grouped<'a>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        for &sel in sels {
            match sel {
                ast::Selection::Field(f) => {
                    if !self.included(&f.directives) {
                        continue;
                    }
                    let f: &'a ast::Field = f;
                    let key = f.response_name().as_str();
                    match out.iter().position(|(k, _)| *k == key) {
                        Some(i) => out[i].1.push(f),
                        None => out.push((key, vec![f])),
                    }
                }
                ast::Selection::InlineFragment(fr) => {
                    if !self.included(&fr.directives) {
                        continue;
                    }
                    if fr
                        .type_condition
                        .as_ref()
                        .is_none_or(|t| type_matches(t.as_str(), concrete))
                    {
                        let inner: Vec<&'a ast::Selection> = fr.selection_set.iter().collect();
                        self.collect(&inner, concrete, out, depth + 1);
                    }
                }
                ast::Selection::FragmentSpread(s) => {
                    if !self.included(&s.directives) {
                        continue;
                    }
                    if let Some(&fd) = self.frags.get(s.fragment_name.as_str())
                        && type_matches(fd.type_condition.as_str(), concrete)
                    {
                        let inner: Vec<&'a ast::Selection> = fd.selection_set.iter().collect();
                        self.collect(&inner, concrete, out, depth + 1);
                    }
                }
            }
        }
    }

    /// Every field of a selection set whatever the type conditions, with the type it is
    /// selected on (for the cost).
    fn flatten(
        &self,
        sels: &[&'a ast::Selection],
        parent: &str,
        out: &mut Vec<(&'a ast::Field, String)>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        for &sel in sels {
            match sel {
                ast::Selection::Field(f) => {
                    if self.included(&f.directives) {
                        let f: &'a ast::Field = f;
                        out.push((f, parent.to_owned()));
                    }
                }
                ast::Selection::InlineFragment(fr) => {
                    if !self.included(&fr.directives) {
                        continue;
                    }
                    let p = fr.type_condition.as_ref().map_or(parent, |t| t.as_str());
                    let inner: Vec<&'a ast::Selection> = fr.selection_set.iter().collect();
                    self.flatten(&inner, p, out, depth + 1);
                }
                ast::Selection::FragmentSpread(s) => {
                    if !self.included(&s.directives) {
                        continue;
                    }
                    if let Some(&fd) = self.frags.get(s.fragment_name.as_str()) {
                        let inner: Vec<&'a ast::Selection> = fd.selection_set.iter().collect();
                        self.flatten(&inner, fd.type_condition.as_str(), out, depth + 1);
                    }
                }
            }
        }
    }

    /// The requested cost: 1 per object, 2 + the page size per connection (its items counted
    /// once per requested item). Checks the pagination arguments on the way.
    fn cost(
        &self,
        sels: &[&'a ast::Selection],
        parent: &str,
        items: f64,
        depth: usize,
    ) -> Result<f64, Value> {
        if depth > MAX_DEPTH {
            return Ok(0.0);
        }
        let mut fields = Vec::new();
        self.flatten(sels, parent, &mut fields, 0);
        let mut total = 0.0;
        for (f, p) in fields {
            let name = f.name.as_str();
            if name.starts_with("__") || f.selection_set.is_empty() {
                continue;
            }
            let ty = field_type(&p, name);
            let sub: Vec<&'a ast::Selection> = f.selection_set.iter().collect();
            total += if p.ends_with("Connection") {
                match name {
                    "nodes" => items * (1.0 + self.cost(&sub, &ty, 0.0, depth + 1)?),
                    "edges" => items * self.cost(&sub, &ty, 0.0, depth + 1)?,
                    _ => 0.0,
                }
            } else if p.ends_with("Edge") && name == "node" {
                1.0 + self.cost(&sub, &ty, 0.0, depth + 1)?
            } else if ty.ends_with("Connection") {
                let n = self.page_size(f)?;
                2.0 + self.cost(&sub, &ty, n, depth + 1)?
            } else {
                1.0 + self.cost(&sub, &ty, 0.0, depth + 1)?
            };
        }
        Ok(total)
    }

    /// `first` or `last` of a connection field: required, 0..=250.
    fn page_size(&self, f: &ast::Field) -> Result<f64, Value> {
        let args = self.args(f);
        let name = f.name.as_str();
        let mut n: Option<i64> = None;
        for key in ["first", "last"] {
            match args.get(key) {
                None | Some(Value::Null) => {}
                Some(v) => match v.as_i64() {
                    Some(k) if (0..=MAX_PAGE).contains(&k) => n = Some(n.unwrap_or(0).max(k)),
                    Some(k) if k > MAX_PAGE => {
                        return Err(gql_error(
                            format!(
                                "The '{key}' argument on field '{name}' cannot exceed {MAX_PAGE} (it was {k})."
                            ),
                            "BAD_REQUEST",
                        ));
                    }
                    _ => {
                        return Err(gql_error(
                            format!(
                                "Argument '{key}' on Field '{name}' has an invalid value ({v}). Expected a non-negative Int."
                            ),
                            "argumentLiteralsIncompatible",
                        ));
                    }
                },
            }
        }
        match n {
            Some(k) => Ok(k as f64),
            None => Err(gql_error(
                format!("you must provide one of first or last (field '{name}')"),
                "BAD_REQUEST",
            )),
        }
    }

    /// Checks and coerces the arguments of a root field.
    fn root_args(
        &self,
        f: &ast::Field,
        spec: Spec,
        var_types: &HashMap<String, String>,
    ) -> Result<Map<String, Value>, Value> {
        let fname = f.name.as_str();
        if let Some(a) = f
            .arguments
            .iter()
            .find(|a| !spec.iter().any(|(n, _, _)| *n == a.name.as_str()))
        {
            let an = a.name.as_str();
            return Err(json!({
                "message": format!("Field '{fname}' doesn't accept argument '{an}'"),
                "extensions": {"code": "argumentNotAccepted", "name": fname, "typeName": "Field", "argumentName": an},
            }));
        }
        let mut out = Map::new();
        let mut missing: Vec<&str> = Vec::new();
        for &(n, t, req) in spec {
            let Some(a) = f.arguments.iter().find(|a| a.name.as_str() == n) else {
                if req {
                    missing.push(n);
                }
                continue;
            };
            let raw = match &*a.value {
                ast::Value::Variable(v) => match self.vars.get(v.as_str()) {
                    Some(x) => x.clone(),
                    None => {
                        if req {
                            missing.push(n);
                        }
                        continue;
                    }
                },
                other => to_json(other, &self.vars),
            };
            if raw.is_null() {
                if req {
                    missing.push(n);
                } else {
                    out.insert(n.to_owned(), Value::Null);
                }
                continue;
            }
            match coerce(&raw, t, &[]) {
                Ok(c) => {
                    if n == "id"
                        && let Some(s) = c.as_str()
                        && gid_parts(s).is_none()
                    {
                        return Err(json!({
                            "message": format!("Invalid global id '{s}'"),
                            "extensions": {"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
                        }));
                    }
                    out.insert(n.to_owned(), c);
                }
                Err(p) => {
                    return Err(invalid_arg(
                        fname,
                        n,
                        &a.value,
                        type_name(t, req),
                        &raw,
                        p,
                        var_types,
                    ));
                }
            }
        }
        if !missing.is_empty() {
            let list = missing.join(", ");
            return Err(json!({
                "message": format!("Field '{fname}' is missing required arguments: {list}"),
                "extensions": {"code": "missingRequiredArguments", "className": "Field", "name": fname, "arguments": list},
            }));
        }
        Ok(out)
    }

    /// Answers `sels` over a stored value of declared type `ty`.
    fn project(&mut self, v: &Value, ty: &str, sels: &[&'a ast::Selection]) -> Value {
        match v {
            Value::Array(items) => {
                Value::Array(items.iter().map(|x| self.project(x, ty, sels)).collect())
            }
            Value::Object(obj) => {
                let concrete = concrete_type(ty, obj);
                if !(ty.ends_with("Connection") || ty.ends_with("Edge") || ty == "PageInfo") {
                    self.actual += 1.0;
                }
                let mut fields: Grouped<'a> = Vec::new();
                self.collect(sels, &concrete, &mut fields, 0);
                let mut out = Map::new();
                for (key, fs) in fields {
                    let sub: Vec<&'a ast::Selection> =
                        fs.iter().flat_map(|&f| f.selection_set.iter()).collect();
                    let val = self.field(obj, &concrete, fs[0], &sub);
                    out.insert(key.to_owned(), val);
                }
                Value::Object(out)
            }
            _ => Value::Null,
        }
    }

    fn field(
        &mut self,
        obj: &Map<String, Value>,
        parent: &str,
        f: &'a ast::Field,
        sub: &[&'a ast::Selection],
    ) -> Value {
        let name = f.name.as_str();
        if name == "__typename" {
            return Value::String(parent.to_owned());
        }
        let ty = field_type(parent, name);
        if name == "metafield" && matches!(parent, "DiscountCodeNode" | "DiscountNode") {
            let args = self.args(f);
            let ns = args
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(APP_NAMESPACE);
            let key = args.get("key").and_then(Value::as_str).unwrap_or_default();
            let found = metafield_list(obj)
                .into_iter()
                .find(|m| m["namespace"] == ns && m["key"] == key)
                .cloned()
                .unwrap_or(Value::Null);
            return self.project(&found, &ty, sub);
        }
        let raw = obj.get(name).unwrap_or(&NULL);
        if ty.ends_with("Connection") {
            let args = self.args(f);
            let mut items = connection_items(raw);
            if ty == "MetafieldConnection" {
                if let Some(ns) = args.get("namespace").and_then(Value::as_str) {
                    items.retain(|m| m["namespace"] == ns);
                }
                if let Some(keys) = args.get("keys").and_then(Value::as_array) {
                    let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
                    items.retain(|m| {
                        let full = format!(
                            "{}.{}",
                            m["namespace"].as_str().unwrap_or_default(),
                            m["key"].as_str().unwrap_or_default()
                        );
                        keys.contains(&full.as_str())
                    });
                }
            }
            return self.connection(items, &ty, &args, sub);
        }
        if sub.is_empty() {
            return raw.clone();
        }
        self.project(raw, &ty, sub)
    }

    /// A Relay connection over `items`: `after`/`before` cursors, `first`/`last`.
    fn connection(
        &mut self,
        items: Vec<Value>,
        ty: &str,
        args: &Map<String, Value>,
        sels: &[&'a ast::Selection],
    ) -> Value {
        self.actual += 2.0;
        let n = items.len();
        let mut start = 0usize;
        let mut end = n;
        for (key, is_after) in [("after", true), ("before", false)] {
            let Some(c) = args.get(key).and_then(Value::as_str) else {
                continue;
            };
            let Some((i, id)) = decode_cursor(c) else {
                self.errors.push(gql_error(
                    format!("Invalid cursor for current pagination sort: '{c}'"),
                    "BAD_REQUEST",
                ));
                return Value::Null;
            };
            // (position, whether it is the cursor's own item)
            let (pos, itself) = match &id {
                Some(id) => items
                    .iter()
                    .position(|x| x["id"] == id.as_str())
                    .map_or((i, false), |p| (p, true)),
                None => (i, true),
            };
            if is_after {
                start = (if itself { pos + 1 } else { pos }).min(n);
            } else {
                end = pos.min(n);
            }
        }
        end = end.max(start).min(n);
        start = start.min(end);
        if let Some(k) = args.get("first").and_then(Value::as_i64) {
            end = end.min(start + k.max(0) as usize);
        }
        if let Some(k) = args.get("last").and_then(Value::as_i64) {
            start = start.max(end.saturating_sub(k.max(0) as usize));
        }
        let cursors: Vec<String> = (start..end).map(|i| encode_cursor(i, &items[i])).collect();
        let window: Vec<Value> = items[start..end].to_vec();
        let edges: Vec<Value> = window
            .iter()
            .zip(&cursors)
            .map(|(node, c)| json!({"cursor": c, "node": node}))
            .collect();
        let conn = json!({
            "nodes": window,
            "edges": edges,
            "pageInfo": {
                "hasNextPage": end < n,
                "hasPreviousPage": start > 0,
                "startCursor": cursors.first(),
                "endCursor": cursors.last(),
            },
        });
        self.project(&conn, ty, sels)
    }
}

fn encode_cursor(i: usize, item: &Value) -> String {
    B64.encode(
        json!({"last_index": i, "last_id": item.get("id").and_then(Value::as_str)}).to_string(),
    )
}

fn decode_cursor(c: &str) -> Option<(usize, Option<String>)> {
    let bytes = B64.decode(c.as_bytes()).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let i = usize::try_from(v.get("last_index")?.as_u64()?).ok()?;
    Some((
        i,
        v.get("last_id").and_then(Value::as_str).map(str::to_owned),
    ))
}

/// The items of a stored connection (`{nodes}`, `{edges{node}}`) or list.
fn connection_items(raw: &Value) -> Vec<Value> {
    match raw {
        Value::Array(a) => a.clone(),
        Value::Object(o) => {
            if let Some(a) = o.get("nodes").and_then(Value::as_array) {
                a.clone()
            } else if let Some(a) = o.get("edges").and_then(Value::as_array) {
                a.iter().map(|e| e["node"].clone()).collect()
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

fn metafield_list(obj: &Map<String, Value>) -> Vec<&Value> {
    match obj.get("metafields") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(o)) => o
            .get("nodes")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// execution of the root fields

fn exec_root<'a>(
    d: &mut Data,
    ex: &mut Exec<'a>,
    name: &str,
    args: &Map<String, Value>,
    sub: &[&'a ast::Selection],
) -> Value {
    let arg = |k: &str| args.get(k).unwrap_or(&NULL);
    let id = args
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match name {
        "discountCodeBasicCreate" => {
            let p = create(d, arg("basicCodeDiscount"));
            ex.project(&p, "DiscountCodeBasicCreatePayload", sub)
        }
        "discountCodeBasicUpdate" => {
            let p = update(d, &id, arg("basicCodeDiscount"));
            ex.project(&p, "DiscountCodeBasicUpdatePayload", sub)
        }
        "discountCodeDelete" => {
            let p = delete(d, &id);
            ex.project(&p, "DiscountCodeDeletePayload", sub)
        }
        "discountCodeActivate" => {
            let p = set_active(d, &id, true);
            ex.project(&p, "DiscountCodeActivatePayload", sub)
        }
        "discountCodeDeactivate" => {
            let p = set_active(d, &id, false);
            ex.project(&p, "DiscountCodeDeactivatePayload", sub)
        }
        "metafieldsSet" => {
            let p = metafields_set(d, arg("metafields"));
            ex.project(&p, "MetafieldsSetPayload", sub)
        }
        "codeDiscountNodeByCode" => {
            let code = arg("code").as_str().unwrap_or_default();
            let n = find_code(d, code).map_or(Value::Null, |i| d.nodes[i].clone());
            ex.project(&n, "DiscountCodeNode", sub)
        }
        "codeDiscountNode" => {
            let n = find_idx(d, &id).map_or(Value::Null, |i| d.nodes[i].clone());
            ex.project(&n, "DiscountCodeNode", sub)
        }
        "discountNode" => {
            let n = find_idx(d, &id).map_or(Value::Null, |i| as_discount_node(&d.nodes[i]));
            ex.project(&n, "DiscountNode", sub)
        }
        "discountNodes" => {
            let items: Vec<Value> = list_nodes(d, args)
                .into_iter()
                .map(as_discount_node)
                .collect();
            ex.connection(items, "DiscountNodeConnection", args, sub)
        }
        "codeDiscountNodes" => {
            let items: Vec<Value> = list_nodes(d, args).into_iter().cloned().collect();
            ex.connection(items, "DiscountCodeNodeConnection", args, sub)
        }
        "discountCodesCount" => {
            let n: usize = list_nodes(d, args)
                .iter()
                .map(|n| codes_of(&n["codeDiscount"]).len())
                .sum();
            let limit = args
                .get("limit")
                .and_then(Value::as_i64)
                .unwrap_or(10_000)
                .max(0) as usize;
            let precision = if n > limit { "AT_LEAST" } else { "EXACT" };
            let v = json!({"count": n.min(limit), "precision": precision});
            ex.project(&v, "Count", sub)
        }
        _ => Value::Null,
    }
}

/// A stored `DiscountCodeNode` as a `DiscountNode`.
fn as_discount_node(n: &Value) -> Value {
    json!({
        "id": gid("DiscountNode", node_num(n)),
        "discount": n["codeDiscount"],
        "metafields": n["metafields"],
    })
}

fn not_found() -> Value {
    json!({"field": ["id"], "code": null, "message": "Discount does not exist", "extraInfo": null})
}

/// A `DiscountUserError` on `basicCodeDiscount.<path>`.
fn ue(path: &[&str], code: &str, message: impl Into<String>) -> Value {
    let message: String = message.into();
    let mut field = vec!["basicCodeDiscount"];
    field.extend_from_slice(path);
    json!({"field": field, "code": code, "message": message, "extraInfo": null})
}

/// A new `DiscountCodeBasic` before its input is applied.
fn skeleton(currency: &str, at: DateTime<Utc>) -> Value {
    json!({
        "__typename": "DiscountCodeBasic",
        "appliesOncePerCustomer": false,
        "asyncUsageCount": 0,
        "codes": {"nodes": []},
        "codesCount": {"count": 0, "precision": "EXACT"},
        "combinesWith": {"orderDiscounts": false, "productDiscounts": false,
            "productDiscountsWithTagsOnSameCartLine": null, "shippingDiscounts": false},
        "context": null,
        "createdAt": ts(at),
        "customerGets": {"appliesOnOneTimePurchase": true, "appliesOnSubscription": false,
            "items": null, "value": null},
        "customerSelection": null,
        "discountClass": "ORDER",
        "discountClasses": ["ORDER"],
        "endsAt": null,
        "hasTimelineComment": false,
        "minimumRequirement": null,
        "recurringCycleLimit": null,
        "shareableUrls": [],
        "shortSummary": "",
        "startsAt": null,
        "status": "ACTIVE",
        "summary": "",
        "tags": [],
        "title": "",
        "totalSales": {"amount": "0.0", "currencyCode": currency},
        "updatedAt": ts(at),
        "usageLimit": null,
    })
}

fn set_code(cd: &mut Value, code: &str) {
    let has = cd["codes"]["nodes"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if has {
        cd["codes"]["nodes"][0]["code"] = json!(code);
    } else {
        cd["codes"] =
            json!({"nodes": [{"id": null, "code": code, "asyncUsageCount": 0, "createdBy": null}]});
    }
}

fn assign_code_ids(d: &mut Data, cd: &mut Value) {
    let Some(list) = cd["codes"]["nodes"].as_array_mut() else {
        return;
    };
    for c in list.iter_mut() {
        if !c.is_object() {
            continue;
        }
        if c["id"].as_str().is_none() {
            d.next += 1;
            c["id"] = json!(gid("DiscountRedeemCode", d.next));
        }
        if c.get("asyncUsageCount").is_none() {
            c["asyncUsageCount"] = json!(0);
        }
        if c.get("createdBy").is_none() {
            c["createdBy"] = Value::Null;
        }
    }
}

/// Applies an id list delta (`add`, `remove`); `None` (with a user error) for malformed gids.
fn id_delta(
    current: &Value,
    delta: &Map<String, Value>,
    add: &str,
    remove: &str,
    gid_type: &str,
    path: &[&str],
    errs: &mut Vec<Value>,
) -> Option<Vec<String>> {
    let mut ids = ids_of(current);
    let adds = strings(delta.get(add).unwrap_or(&NULL));
    let bad: Vec<&str> = adds
        .iter()
        .map(String::as_str)
        .filter(|s| !is_gid(s, gid_type))
        .collect();
    if !bad.is_empty() {
        errs.push(ue(
            path,
            "INVALID",
            format!(
                "Invalid {gid_type} ids (expected gid://shopify/{gid_type}/<id>): {}",
                bad.join(", ")
            ),
        ));
        return None;
    }
    for a in adds {
        if !ids.contains(&a) {
            ids.push(a);
        }
    }
    let rm = strings(delta.get(remove).unwrap_or(&NULL));
    ids.retain(|x| !rm.contains(x));
    Some(ids)
}

/// The deprecated `customerSelection` mirror of a `context`.
fn mirror(ctx: &Value) -> Value {
    match ctx["__typename"].as_str() {
        Some("DiscountBuyerSelectionAll") => {
            json!({"__typename": "DiscountCustomerAll", "allCustomers": true})
        }
        Some("DiscountCustomers" | "DiscountCustomerSegments") => ctx.clone(),
        _ => {
            json!({"__typename": "DiscountCustomerSelectionUnknown", "customerSelectionType": "MARKETS"})
        }
    }
}

/// `context` (a `DiscountContextInput`) or the deprecated `customerSelection`.
fn apply_context(cd: &mut Value, c: &Map<String, Value>, root: &str, errs: &mut Vec<Value>) {
    let present: Vec<&str> = ["all", "customers", "customerSegments", "markets"]
        .into_iter()
        .filter(|k| {
            c.get(*k)
                .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
        })
        .collect();
    if present.len() != 1 {
        let code = if present.is_empty() {
            "MISSING_ARGUMENT"
        } else {
            "TOO_MANY_ARGUMENTS"
        };
        errs.push(ue(
            &[root],
            code,
            "Exactly one of all, customers, customerSegments or markets must be given",
        ));
        return;
    }
    let empty = Map::new();
    let cur = cd["context"].clone();
    let same = |t: &str| cur["__typename"] == t;
    let new = match present[0] {
        "all" => Some(json!({"__typename": "DiscountBuyerSelectionAll", "all": "ALL"})),
        "customers" => {
            let current = if same("DiscountCustomers") {
                cur["customers"].clone()
            } else {
                Value::Null
            };
            let delta = c
                .get("customers")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            id_delta(
                &current,
                delta,
                "add",
                "remove",
                "Customer",
                &[root, "customers", "add"],
                errs,
            )
            .map(|ids| json!({"__typename": "DiscountCustomers", "customers": id_objs(&ids)}))
        }
        "customerSegments" => {
            let current = if same("DiscountCustomerSegments") {
                cur["segments"].clone()
            } else {
                Value::Null
            };
            let delta = c
                .get("customerSegments")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            id_delta(
                &current,
                delta,
                "add",
                "remove",
                "Segment",
                &[root, "customerSegments", "add"],
                errs,
            )
            .map(|ids| json!({"__typename": "DiscountCustomerSegments", "segments": id_objs(&ids)}))
        }
        _ => {
            let current = if same("DiscountMarkets") {
                cur["markets"].clone()
            } else {
                Value::Null
            };
            let delta = c
                .get("markets")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            id_delta(
                &current,
                delta,
                "add",
                "remove",
                "Market",
                &[root, "markets", "add"],
                errs,
            )
            .map(|ids| {
                json!({"__typename": "DiscountMarkets", "markets": {"nodes": id_objs(&ids)}, "marketsCount": ids.len()})
            })
        }
    };
    if let Some(ctx) = new {
        cd["customerSelection"] = mirror(&ctx);
        cd["context"] = ctx;
    }
}

/// `customerGets` (value, items, purchase types).
fn apply_gets(
    cd: &mut Value,
    g: &Map<String, Value>,
    create: bool,
    currency: &str,
    errs: &mut Vec<Value>,
) {
    match g.get("value") {
        Some(Value::Object(v)) => {
            let given: Vec<&str> = ["percentage", "discountAmount", "discountOnQuantity"]
                .into_iter()
                .filter(|k| v.get(*k).is_some_and(|x| !x.is_null()))
                .collect();
            match given.as_slice() {
                [] => errs.push(ue(
                    &["customerGets", "value"],
                    "MISSING_ARGUMENT",
                    "One of percentage, discountAmount or discountOnQuantity is required",
                )),
                ["percentage"] => {
                    let p = v.get("percentage").and_then(Value::as_f64).unwrap_or(-1.0);
                    if (0.0..=1.0).contains(&p) {
                        cd["customerGets"]["value"] =
                            json!({"__typename": "DiscountPercentage", "percentage": p});
                    } else {
                        errs.push(ue(
                            &["customerGets", "value", "percentage"],
                            "VALUE_OUTSIDE_RANGE",
                            "Value must be between 0.0 and 1.0",
                        ));
                    }
                }
                ["discountAmount"] => {
                    let a = v.get("discountAmount").unwrap_or(&NULL);
                    let path = ["customerGets", "value", "discountAmount", "amount"];
                    match a.get("amount").and_then(parse_decimal) {
                        None => errs.push(ue(&path, "BLANK", "Amount can't be blank")),
                        Some(x) if x <= Decimal::ZERO => {
                            errs.push(ue(&path, "GREATER_THAN", "Value must be greater than 0"))
                        }
                        Some(x) => {
                            let each = a
                                .get("appliesOnEachItem")
                                .and_then(Value::as_bool)
                                .unwrap_or(false);
                            cd["customerGets"]["value"] = json!({
                                "__typename": "DiscountAmount",
                                "amount": money(x, currency),
                                "appliesOnEachItem": each,
                            });
                        }
                    }
                }
                ["discountOnQuantity"] => {
                    let q = v.get("discountOnQuantity").unwrap_or(&NULL);
                    let qty = q.get("quantity").and_then(Value::as_u64);
                    let eff = q.get("effect").and_then(Value::as_object);
                    let pct = eff
                        .and_then(|e| e.get("percentage"))
                        .and_then(Value::as_f64);
                    let amt = eff.and_then(|e| e.get("amount")).and_then(parse_decimal);
                    match (qty, pct, amt) {
                        (None, _, _) => errs.push(ue(
                            &["customerGets", "value", "discountOnQuantity", "quantity"],
                            "BLANK",
                            "Quantity can't be blank",
                        )),
                        (Some(0), _, _) => errs.push(ue(
                            &["customerGets", "value", "discountOnQuantity", "quantity"],
                            "GREATER_THAN",
                            "Quantity must be greater than 0",
                        )),
                        (_, Some(_), Some(_)) => errs.push(ue(
                            &["customerGets", "value", "discountOnQuantity", "effect"],
                            "TOO_MANY_ARGUMENTS",
                            "Only one of percentage or amount can be specified",
                        )),
                        (_, None, None) => errs.push(ue(
                            &["customerGets", "value", "discountOnQuantity", "effect"],
                            "MISSING_ARGUMENT",
                            "One of percentage or amount is required",
                        )),
                        (_, Some(p), None) if !(0.0..=1.0).contains(&p) => errs.push(ue(
                            &[
                                "customerGets",
                                "value",
                                "discountOnQuantity",
                                "effect",
                                "percentage",
                            ],
                            "VALUE_OUTSIDE_RANGE",
                            "Value must be between 0.0 and 1.0",
                        )),
                        (_, None, Some(a)) if a <= Decimal::ZERO => errs.push(ue(
                            &[
                                "customerGets",
                                "value",
                                "discountOnQuantity",
                                "effect",
                                "amount",
                            ],
                            "GREATER_THAN",
                            "Value must be greater than 0",
                        )),
                        (Some(n), p, a) => {
                            let effect = match (p, a) {
                                (Some(p), _) => {
                                    json!({"__typename": "DiscountPercentage", "percentage": p})
                                }
                                (None, a) => json!({
                                    "__typename": "DiscountAmount",
                                    "amount": money(a.unwrap_or_default(), currency),
                                    "appliesOnEachItem": false,
                                }),
                            };
                            cd["customerGets"]["value"] = json!({
                                "__typename": "DiscountOnQuantity",
                                "quantity": {"quantity": n.to_string()},
                                "effect": effect,
                            });
                        }
                    }
                }
                _ => errs.push(ue(
                    &["customerGets", "value"],
                    "TOO_MANY_ARGUMENTS",
                    "Only one of percentage, discountAmount or discountOnQuantity can be specified",
                )),
            }
        }
        _ if create => errs.push(ue(
            &["customerGets", "value"],
            "MISSING_ARGUMENT",
            "Value is required",
        )),
        _ => {}
    }
    match g.get("items") {
        Some(Value::Object(items)) => {
            let all = items.get("all").and_then(Value::as_bool) == Some(true);
            let products = items.get("products").and_then(Value::as_object);
            let collections = items.get("collections").and_then(Value::as_object);
            let n = usize::from(all)
                + usize::from(products.is_some())
                + usize::from(collections.is_some());
            if n > 1 {
                errs.push(ue(
                    &["customerGets", "items"],
                    "TOO_MANY_ARGUMENTS",
                    "Only one of all, products or collections can be specified",
                ));
            } else if all {
                cd["customerGets"]["items"] =
                    json!({"__typename": "AllDiscountItems", "allItems": true});
            } else if let Some(p) = products {
                let cur = &cd["customerGets"]["items"];
                let (cp, cv) = if cur["__typename"] == "DiscountProducts" {
                    (cur["products"].clone(), cur["productVariants"].clone())
                } else {
                    (Value::Null, Value::Null)
                };
                let prods = id_delta(
                    &cp,
                    p,
                    "productsToAdd",
                    "productsToRemove",
                    "Product",
                    &["customerGets", "items", "products", "productsToAdd"],
                    errs,
                );
                let variants = id_delta(
                    &cv,
                    p,
                    "productVariantsToAdd",
                    "productVariantsToRemove",
                    "ProductVariant",
                    &["customerGets", "items", "products", "productVariantsToAdd"],
                    errs,
                );
                if let (Some(a), Some(b)) = (prods, variants) {
                    cd["customerGets"]["items"] = json!({
                        "__typename": "DiscountProducts",
                        "products": {"nodes": id_objs(&a)},
                        "productVariants": {"nodes": id_objs(&b)},
                    });
                }
            } else if let Some(c) = collections {
                let cur = &cd["customerGets"]["items"];
                let cc = if cur["__typename"] == "DiscountCollections" {
                    cur["collections"].clone()
                } else {
                    Value::Null
                };
                if let Some(ids) = id_delta(
                    &cc,
                    c,
                    "add",
                    "remove",
                    "Collection",
                    &["customerGets", "items", "collections", "add"],
                    errs,
                ) {
                    cd["customerGets"]["items"] = json!({
                        "__typename": "DiscountCollections",
                        "collections": {"nodes": id_objs(&ids)},
                    });
                }
            } else {
                errs.push(ue(
                    &["customerGets", "items"],
                    "MISSING_ARGUMENT",
                    "Items must specify all, products or collections",
                ));
            }
        }
        _ if create => errs.push(ue(
            &["customerGets", "items"],
            "MISSING_ARGUMENT",
            "Items is required",
        )),
        _ => {}
    }
    for k in ["appliesOnOneTimePurchase", "appliesOnSubscription"] {
        if let Some(Value::Bool(b)) = g.get(k) {
            cd["customerGets"][k] = json!(b);
        }
    }
}

/// Applies a (coerced) `DiscountCodeBasicInput` to `cd`: every field on create, only the given
/// ones on update. Problems become user errors.
fn apply_basic(
    cd: &mut Value,
    inp: &Map<String, Value>,
    create: bool,
    currency: &str,
    errs: &mut Vec<Value>,
) {
    match inp.get("title") {
        Some(Value::String(t)) if t.trim().is_empty() => {
            errs.push(ue(&["title"], "BLANK", "Title can't be blank"))
        }
        Some(Value::String(t)) if t.chars().count() > 255 => errs.push(ue(
            &["title"],
            "TOO_LONG",
            "Title is too long (maximum is 255 characters)",
        )),
        Some(Value::String(t)) => cd["title"] = json!(t),
        _ if create => errs.push(ue(&["title"], "BLANK", "Title can't be blank")),
        _ => {}
    }
    match inp.get("code") {
        Some(Value::String(c)) if c.trim().is_empty() => {
            errs.push(ue(&["code"], "BLANK", "Code can't be blank"))
        }
        Some(Value::String(c)) if c.chars().count() > 255 => errs.push(ue(
            &["code"],
            "TOO_LONG",
            "Code is too long (maximum is 255 characters)",
        )),
        Some(Value::String(c)) if c.contains(['\n', '\r']) => errs.push(ue(
            &["code"],
            "INVALID",
            "Code can't contain newline characters",
        )),
        Some(Value::String(c)) => set_code(cd, c),
        _ if create => errs.push(ue(&["code"], "BLANK", "Code can't be blank")),
        _ => {}
    }
    match inp.get("startsAt") {
        Some(Value::String(s)) => cd["startsAt"] = json!(s),
        _ if create => errs.push(ue(&["startsAt"], "BLANK", "Starts at can't be blank")),
        _ => {}
    }
    match inp.get("endsAt") {
        Some(Value::String(s)) => cd["endsAt"] = json!(s),
        Some(Value::Null) => cd["endsAt"] = Value::Null,
        _ => {}
    }
    match inp.get("usageLimit") {
        None => {}
        Some(Value::Null) => cd["usageLimit"] = Value::Null,
        Some(v) => match v.as_i64() {
            Some(n) if n > 0 => cd["usageLimit"] = json!(n),
            _ => errs.push(ue(
                &["usageLimit"],
                "GREATER_THAN",
                "Usage limit must be greater than 0",
            )),
        },
    }
    if let Some(Value::Bool(b)) = inp.get("appliesOncePerCustomer") {
        cd["appliesOncePerCustomer"] = json!(b);
    }
    match inp.get("recurringCycleLimit") {
        None => {}
        Some(Value::Null) => cd["recurringCycleLimit"] = Value::Null,
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => cd["recurringCycleLimit"] = json!(n),
            _ => errs.push(ue(
                &["recurringCycleLimit"],
                "GREATER_THAN_OR_EQUAL_TO",
                "Recurring cycle limit must be greater than or equal to 0",
            )),
        },
    }
    match inp.get("tags") {
        Some(Value::Null) => cd["tags"] = json!([]),
        Some(Value::Array(a)) => {
            let mut tags: Vec<String> = Vec::new();
            for t in a
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                if !tags.iter().any(|x| x.eq_ignore_ascii_case(t)) {
                    tags.push(t.to_owned());
                }
            }
            if a.len() > 250 {
                errs.push(ue(
                    &["tags"],
                    "TOO_MANY_TAGS",
                    "A discount can have at most 250 tags",
                ));
            } else if tags.iter().any(|t| t.chars().count() > 255) {
                errs.push(ue(
                    &["tags"],
                    "INVALID_TAG_LENGTH",
                    "Tags can be at most 255 characters long",
                ));
            } else {
                cd["tags"] = json!(tags);
            }
        }
        _ => {}
    }
    if let Some(Value::Object(c)) = inp.get("combinesWith") {
        // absent fields take their schema default (false)
        for k in ["orderDiscounts", "productDiscounts", "shippingDiscounts"] {
            cd["combinesWith"][k] = json!(c.get(k).and_then(Value::as_bool).unwrap_or(false));
        }
        if let Some(Value::Object(t)) = c.get("productDiscountsWithTagsOnSameCartLine") {
            let mut tags = strings(&cd["combinesWith"]["productDiscountsWithTagsOnSameCartLine"]);
            for a in strings(t.get("add").unwrap_or(&NULL)) {
                if !tags.contains(&a) {
                    tags.push(a);
                }
            }
            let rm = strings(t.get("remove").unwrap_or(&NULL));
            tags.retain(|x| !rm.contains(x));
            cd["combinesWith"]["productDiscountsWithTagsOnSameCartLine"] = json!(tags);
        }
    }
    match inp.get("customerGets") {
        Some(Value::Object(g)) => apply_gets(cd, g, create, currency, errs),
        _ if create => errs.push(ue(
            &["customerGets"],
            "MISSING_ARGUMENT",
            "Customer gets is required",
        )),
        _ => {}
    }
    match inp.get("minimumRequirement") {
        Some(Value::Null) => cd["minimumRequirement"] = Value::Null,
        Some(Value::Object(m)) => {
            let sub = m
                .get("subtotal")
                .and_then(|s| s.get("greaterThanOrEqualToSubtotal"))
                .filter(|x| !x.is_null());
            let qty = m
                .get("quantity")
                .and_then(|s| s.get("greaterThanOrEqualToQuantity"))
                .filter(|x| !x.is_null());
            match (sub, qty) {
                (Some(_), Some(_)) => errs.push(ue(
                    &["minimumRequirement"],
                    "MINIMUM_SUBTOTAL_AND_QUANTITY_RANGE_BOTH_PRESENT",
                    "Minimum subtotal and minimum quantity can't both be present",
                )),
                (Some(s), None) => match parse_decimal(s) {
                    Some(x) if x >= Decimal::ZERO => {
                        cd["minimumRequirement"] = json!({
                            "__typename": "DiscountMinimumSubtotal",
                            "greaterThanOrEqualToSubtotal": money(x, currency),
                        });
                    }
                    _ => errs.push(ue(
                        &[
                            "minimumRequirement",
                            "subtotal",
                            "greaterThanOrEqualToSubtotal",
                        ],
                        "GREATER_THAN_OR_EQUAL_TO",
                        "Minimum subtotal must be greater than or equal to 0",
                    )),
                },
                (None, Some(q)) => match q.as_u64() {
                    Some(n) if n >= 1 => {
                        cd["minimumRequirement"] = json!({
                            "__typename": "DiscountMinimumQuantity",
                            "greaterThanOrEqualToQuantity": n.to_string(),
                        });
                    }
                    _ => errs.push(ue(
                        &[
                            "minimumRequirement",
                            "quantity",
                            "greaterThanOrEqualToQuantity",
                        ],
                        "GREATER_THAN",
                        "Minimum quantity must be greater than 0",
                    )),
                },
                (None, None) => cd["minimumRequirement"] = Value::Null,
            }
        }
        _ => {}
    }
    let ctx = inp.get("context").filter(|v| !v.is_null());
    let sel = inp.get("customerSelection").filter(|v| !v.is_null());
    match (ctx, sel) {
        (Some(_), Some(_)) => errs.push(ue(
            &["context"],
            "TOO_MANY_ARGUMENTS",
            "Only one of context or customerSelection can be specified",
        )),
        (Some(Value::Object(c)), None) => apply_context(cd, c, "context", errs),
        (None, Some(Value::Object(s))) => apply_context(cd, s, "customerSelection", errs),
        (None, None) if create => {
            errs.push(ue(&["context"], "MISSING_ARGUMENT", "Context is required"))
        }
        _ => {}
    }

    // rules over the whole discount
    let starts = cd["startsAt"].as_str().and_then(parse_ts);
    let ends = cd["endsAt"].as_str().and_then(parse_ts);
    if let (Some(s), Some(e)) = (starts, ends)
        && e < s
    {
        errs.push(ue(
            &["endsAt"],
            "END_DATE_BEFORE_START_DATE",
            "Ends at needs to be after starts_at",
        ));
    }
    let one_time = cd["customerGets"]["appliesOnOneTimePurchase"]
        .as_bool()
        .unwrap_or(true);
    let subscription = cd["customerGets"]["appliesOnSubscription"]
        .as_bool()
        .unwrap_or(false);
    if !one_time && !subscription {
        errs.push(ue(
            &["customerGets"],
            "APPLIES_ON_NOTHING",
            "The discount must apply on one-time purchases, subscriptions, or both",
        ));
    }
    if !subscription && cd["recurringCycleLimit"].as_i64().is_some_and(|n| n > 1) {
        errs.push(ue(
            &["recurringCycleLimit"],
            "MULTIPLE_RECURRING_CYCLE_LIMIT_FOR_NON_SUBSCRIPTION_ITEMS",
            "A recurring cycle limit above 1 needs the discount to apply on subscriptions",
        ));
    }
}

fn status_of(cd: &Value, at: DateTime<Utc>) -> &'static str {
    let ends = cd["endsAt"].as_str().and_then(parse_ts);
    let starts = cd["startsAt"].as_str().and_then(parse_ts);
    if ends.is_some_and(|e| e <= at) {
        "EXPIRED"
    } else if starts.is_some_and(|s| s > at) {
        "SCHEDULED"
    } else {
        "ACTIVE"
    }
}

/// Statuses follow the clock: every stored status was computed when its node last changed, and
/// stays right until one of the node's `startsAt`/`endsAt` instants noted then (`changes`)
/// comes, so only the nodes with an instant now past are recomputed.
fn refresh_all(d: &mut Data) {
    let at = Utc::now();
    while let Some(&Reverse((t, seq))) = d.changes.peek() {
        if t > at {
            break;
        }
        d.changes.pop();
        let Some(pos) = pos_of(d, seq) else {
            continue;
        };
        let n = &mut d.nodes[pos];
        if n.is_object() && n["codeDiscount"].is_object() {
            let s = status_of(&n["codeDiscount"], at);
            n["codeDiscount"]["status"] = json!(s);
        }
    }
}

fn pct_text(p: f64) -> String {
    let s = format!("{:.2}", p * 100.0);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn money_text(m: &Value) -> String {
    let amount = parse_decimal(&m["amount"]).unwrap_or_default();
    let mut r = amount.round_dp(2);
    r.rescale(2);
    match m["currencyCode"].as_str().unwrap_or("USD") {
        "USD" | "CAD" | "AUD" | "NZD" => format!("${r}"),
        "EUR" => format!("€{r}"),
        "GBP" => format!("£{r}"),
        "JPY" => format!("¥{r}"),
        c => format!("{r} {c}"),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "?".to_owned(),
        other => other.to_string(),
    }
}

/// (summary, shortSummary), in the style of the Shopify admin.
fn summarize(cd: &Value) -> (String, String) {
    let gets = &cd["customerGets"];
    let target = match gets["items"]["__typename"].as_str() {
        Some("DiscountProducts") => "specific products",
        Some("DiscountCollections") => "specific collections",
        _ => "entire order",
    };
    let v = &gets["value"];
    let short = match v["__typename"].as_str() {
        Some("DiscountPercentage") => format!(
            "{}% off {target}",
            pct_text(v["percentage"].as_f64().unwrap_or(0.0))
        ),
        Some("DiscountAmount") => format!("{} off {target}", money_text(&v["amount"])),
        Some("DiscountOnQuantity") => format!(
            "Buy {} items, get a discount",
            scalar_text(&v["quantity"]["quantity"])
        ),
        _ => String::new(),
    };
    let mut parts = vec![short.clone()];
    let m = &cd["minimumRequirement"];
    match m["__typename"].as_str() {
        Some("DiscountMinimumSubtotal") => parts.push(format!(
            "Minimum purchase of {}",
            money_text(&m["greaterThanOrEqualToSubtotal"])
        )),
        Some("DiscountMinimumQuantity") => parts.push(format!(
            "Minimum quantity of {} items",
            scalar_text(&m["greaterThanOrEqualToQuantity"])
        )),
        _ => {}
    }
    if cd["appliesOncePerCustomer"] == true {
        parts.push("One use per customer".to_owned());
    }
    if let Some(n) = cd["usageLimit"].as_i64() {
        parts.push(format!("Limited to {n} uses"));
    }
    let summary = parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" • ");
    (summary, short)
}

/// Derived fields after a change.
fn finalize(cd: &mut Value, at: DateTime<Utc>) {
    let class = match cd["customerGets"]["items"]["__typename"].as_str() {
        Some("DiscountProducts" | "DiscountCollections") => "PRODUCT",
        _ => "ORDER",
    };
    cd["discountClass"] = json!(class);
    cd["discountClasses"] = json!([class]);
    let (summary, short) = summarize(cd);
    cd["summary"] = json!(summary);
    cd["shortSummary"] = json!(short);
    let n = cd["codes"]["nodes"].as_array().map_or(0, Vec::len);
    cd["codesCount"] = json!({"count": n, "precision": "EXACT"});
    cd["updatedAt"] = json!(ts(at));
    cd["status"] = json!(status_of(cd, at));
}

fn create(d: &mut Data, input: &Value) -> Value {
    let empty = Map::new();
    let inp = input.as_object().unwrap_or(&empty);
    let at = Utc::now();
    let currency = d.currency.clone();
    let mut cd = skeleton(&currency, at);
    let mut errs = Vec::new();
    apply_basic(&mut cd, inp, true, &currency, &mut errs);
    if let Some(code) = inp.get("code").and_then(Value::as_str)
        && code_taken(d, code, None)
    {
        errs.push(ue(
            &["code"],
            "TAKEN",
            "Code must be unique. Please try a different code.",
        ));
    }
    if !errs.is_empty() {
        return json!({"codeDiscountNode": null, "userErrors": errs});
    }
    assign_code_ids(d, &mut cd);
    finalize(&mut cd, at);
    d.next += 1;
    let node = json!({
        "id": gid("DiscountCodeNode", d.next),
        "codeDiscount": cd,
        "metafields": {"nodes": []},
    });
    push_node(d, node.clone(), at);
    json!({"codeDiscountNode": node, "userErrors": []})
}

fn update(d: &mut Data, id: &str, input: &Value) -> Value {
    let Some(idx) = find_idx(d, id) else {
        return json!({"codeDiscountNode": null, "userErrors": [not_found()]});
    };
    let empty = Map::new();
    let inp = input.as_object().unwrap_or(&empty);
    let at = Utc::now();
    let currency = d.currency.clone();
    let mut cd = d.nodes[idx]["codeDiscount"].clone();
    if !cd.is_object() {
        cd = skeleton(&currency, at);
    }
    let mut errs = Vec::new();
    apply_basic(&mut cd, inp, false, &currency, &mut errs);
    if let Some(code) = inp.get("code").and_then(Value::as_str)
        && code_taken(d, code, Some(idx))
    {
        errs.push(ue(
            &["code"],
            "TAKEN",
            "Code must be unique. Please try a different code.",
        ));
    }
    if !errs.is_empty() {
        return json!({"codeDiscountNode": null, "userErrors": errs});
    }
    assign_code_ids(d, &mut cd);
    finalize(&mut cd, at);
    unindex_node(d, idx);
    d.nodes[idx]["codeDiscount"] = cd;
    index_node(d, idx);
    note_changes(d, idx, at);
    json!({"codeDiscountNode": d.nodes[idx], "userErrors": []})
}

fn delete(d: &mut Data, id: &str) -> Value {
    match find_idx(d, id) {
        Some(idx) => {
            let node = remove_node(d, idx);
            json!({"deletedCodeDiscountId": node["id"], "userErrors": []})
        }
        None => json!({"deletedCodeDiscountId": null, "userErrors": [not_found()]}),
    }
}

/// Activate: an `endsAt` in the past is cleared. Deactivate: `endsAt` becomes now (EXPIRED).
fn set_active(d: &mut Data, id: &str, on: bool) -> Value {
    let Some(idx) = find_idx(d, id) else {
        return json!({"codeDiscountNode": null, "userErrors": [not_found()]});
    };
    let at = Utc::now();
    {
        let cd = &mut d.nodes[idx]["codeDiscount"];
        let ends = cd["endsAt"].as_str().and_then(parse_ts);
        if on {
            if ends.is_some_and(|e| e <= at) {
                cd["endsAt"] = Value::Null;
            }
        } else if ends.is_none_or(|e| e > at) {
            cd["endsAt"] = json!(ts(at));
        }
        finalize(cd, at);
    }
    note_changes(d, idx, at);
    json!({"codeDiscountNode": d.nodes[idx], "userErrors": []})
}

/// `(field, code, message)` when a metafield value does not fit its type.
fn check_metafield(ty: &str, value: &str) -> Option<(&'static str, &'static str, String)> {
    let (base, list) = match ty.strip_prefix("list.") {
        Some(b) => (b, true),
        None => (ty, false),
    };
    let listable = !matches!(
        base,
        "json" | "boolean" | "multi_line_text_field" | "rich_text_field" | "money"
    );
    if !METAFIELD_TYPES.contains(&base) || (list && !listable) {
        return Some((
            "type",
            "INVALID_TYPE",
            format!("Type '{ty}' is not a valid metafield type"),
        ));
    }
    if value.is_empty() {
        return Some(("value", "BLANK", "Value can't be blank".to_owned()));
    }
    let ok = if list {
        matches!(serde_json::from_str::<Value>(value), Ok(Value::Array(_)))
    } else {
        match base {
            "json" => serde_json::from_str::<Value>(value).is_ok(),
            "boolean" => value == "true" || value == "false",
            "number_integer" => value.trim().parse::<i64>().is_ok(),
            "number_decimal" => value.trim().parse::<Decimal>().is_ok(),
            "date" => NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
            "date_time" => parse_ts(value).is_some(),
            "single_line_text_field" => !value.contains('\n'),
            "url" => ["https://", "http://", "mailto:", "sms:", "tel:"]
                .iter()
                .any(|p| value.starts_with(p)),
            "color" => {
                value.len() == 7
                    && value.starts_with('#')
                    && value[1..].bytes().all(|b| b.is_ascii_hexdigit())
            }
            _ => true,
        }
    };
    (!ok).then(|| {
        (
            "value",
            "INVALID_VALUE",
            format!("Value is not a valid {ty}"),
        )
    })
}

fn metafield_json_value(ty: &str, value: &str) -> Value {
    if ty == "json" || ty.starts_with("list.") {
        return serde_json::from_str(value).unwrap_or(Value::Null);
    }
    match ty {
        "boolean" => json!(value == "true"),
        "number_integer" => value.trim().parse::<i64>().map_or(Value::Null, Value::from),
        _ => json!(value),
    }
}

/// `metafieldsSet`: validates every input first (atomic), then upserts by (owner, namespace, key).
fn metafields_set(d: &mut Data, input: &Value) -> Value {
    let items: &[Value] = input.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mf_err = |i: Option<usize>, field: &str, code: &str, message: String| {
        let mut path = vec!["metafields".to_owned()];
        if let Some(i) = i {
            path.push(i.to_string());
            path.push(field.to_owned());
        }
        json!({"field": path, "code": code, "message": message, "elementIndex": i})
    };
    if items.len() > MAX_METAFIELDS {
        let e = mf_err(
            None,
            "",
            "LESS_THAN_OR_EQUAL_TO",
            format!("Exceeded the maximum metafields input limit of {MAX_METAFIELDS}."),
        );
        return json!({"metafields": [], "userErrors": [e]});
    }
    let key_chars = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let mut errs: Vec<Value> = Vec::new();
    let mut plan: Vec<(usize, String, String, String, String)> = Vec::new();
    for (i, m) in items.iter().enumerate() {
        let before = errs.len();
        let owner = m["ownerId"].as_str().unwrap_or_default();
        let idx = find_idx(d, owner);
        if idx.is_none() {
            errs.push(mf_err(
                Some(i),
                "ownerId",
                "INVALID",
                format!("Owner '{owner}' does not exist."),
            ));
        }
        let ns = m["namespace"].as_str().unwrap_or(APP_NAMESPACE);
        if ns != APP_NAMESPACE {
            let len = ns.chars().count();
            let body = ns.strip_prefix("$app:").unwrap_or(ns);
            if len < 3 {
                errs.push(mf_err(
                    Some(i),
                    "namespace",
                    "TOO_SHORT",
                    "Namespace is too short (minimum is 3 characters)".to_owned(),
                ));
            } else if len > 255 {
                errs.push(mf_err(
                    Some(i),
                    "namespace",
                    "TOO_LONG",
                    "Namespace is too long (maximum is 255 characters)".to_owned(),
                ));
            } else if !key_chars(body) {
                errs.push(mf_err(
                    Some(i),
                    "namespace",
                    "INVALID",
                    "Namespace contains one or more invalid characters.".to_owned(),
                ));
            }
        }
        let key = m["key"].as_str().unwrap_or_default();
        let klen = key.chars().count();
        if klen < 2 {
            errs.push(mf_err(
                Some(i),
                "key",
                "TOO_SHORT",
                "Key is too short (minimum is 2 characters)".to_owned(),
            ));
        } else if klen > 64 {
            errs.push(mf_err(
                Some(i),
                "key",
                "TOO_LONG",
                "Key is too long (maximum is 64 characters)".to_owned(),
            ));
        } else if !key_chars(key) {
            errs.push(mf_err(
                Some(i),
                "key",
                "INVALID",
                "Key contains one or more invalid characters.".to_owned(),
            ));
        }
        let existing: Option<Value> = idx.and_then(|x| {
            d.nodes[x]
                .as_object()
                .map(metafield_list)
                .unwrap_or_default()
                .into_iter()
                .find(|e| e["namespace"] == ns && e["key"] == key)
                .cloned()
        });
        let ty = m["type"].as_str().map(str::to_owned).or_else(|| {
            existing
                .as_ref()
                .and_then(|e| e["type"].as_str().map(str::to_owned))
        });
        let value = m["value"].as_str().unwrap_or_default();
        match &ty {
            None => errs.push(mf_err(
                Some(i),
                "type",
                "BLANK",
                "Type can't be blank".to_owned(),
            )),
            Some(t) => {
                if let Some((field, code, msg)) = check_metafield(t, value) {
                    errs.push(mf_err(Some(i), field, code, msg));
                }
            }
        }
        if let Some(dg) = m["compareDigest"].as_str()
            && existing.as_ref().and_then(|e| e["compareDigest"].as_str()) != Some(dg)
        {
            errs.push(mf_err(
                Some(i),
                "compareDigest",
                "STALE_OBJECT",
                "The resource has been updated since it was loaded. Try again with an updated `compareDigest` value.".to_owned(),
            ));
        }
        if errs.len() == before
            && let (Some(x), Some(t)) = (idx, ty)
        {
            plan.push((x, ns.to_owned(), key.to_owned(), t, value.to_owned()));
        }
    }
    if !errs.is_empty() {
        return json!({"metafields": [], "userErrors": errs});
    }
    let at = ts(Utc::now());
    let mut out = Vec::new();
    for (idx, ns, key, ty, value) in plan {
        d.next += 1;
        let version = d.next;
        let digest = hex::encode(Sha256::digest(
            format!("{ns}\u{0}{key}\u{0}{value}\u{0}{version}").as_bytes(),
        ));
        let json_value = metafield_json_value(&ty, &value);
        let node = &mut d.nodes[idx];
        if !node["metafields"]["nodes"].is_array() {
            node["metafields"] = json!({"nodes": []});
        }
        let Some(list) = node["metafields"]["nodes"].as_array_mut() else {
            continue;
        };
        match list
            .iter()
            .position(|m| m["namespace"] == ns.as_str() && m["key"] == key.as_str())
        {
            Some(p) => {
                let m = &mut list[p];
                m["type"] = json!(ty);
                m["value"] = json!(value);
                m["jsonValue"] = json_value;
                m["compareDigest"] = json!(digest);
                m["updatedAt"] = json!(at);
                out.push(m.clone());
            }
            None => {
                let m = json!({
                    "id": gid("Metafield", version),
                    "namespace": ns,
                    "key": key,
                    "type": ty,
                    "value": value,
                    "jsonValue": json_value,
                    "ownerType": "DISCOUNT",
                    "compareDigest": digest,
                    "createdAt": at,
                    "updatedAt": at,
                });
                list.push(m.clone());
                out.push(m);
            }
        }
    }
    json!({"metafields": out, "userErrors": []})
}

/// A node added from outside, completed to the stored shape.
fn normalize_node(d: &mut Data, mut node: Value) -> Value {
    if !node.is_object() {
        node = json!({});
    }
    let at = Utc::now();
    let currency = d.currency.clone();
    let mut cd = if node["codeDiscount"].is_object() {
        node["codeDiscount"].take()
    } else {
        json!({})
    };
    if let (Some(o), Value::Object(defaults)) = (cd.as_object_mut(), skeleton(&currency, at)) {
        for (k, v) in defaults {
            o.entry(k).or_insert(v);
        }
    }
    if cd["codes"].is_array() {
        let a = cd["codes"].take();
        cd["codes"] = json!({ "nodes": a });
    } else if !cd["codes"]["nodes"].is_array() {
        cd["codes"] = json!({"nodes": []});
    }
    assign_code_ids(d, &mut cd);
    let n = cd["codes"]["nodes"].as_array().map_or(0, Vec::len);
    cd["codesCount"] = json!({"count": n, "precision": "EXACT"});
    if cd["summary"].as_str().is_none_or(str::is_empty) {
        let (summary, short) = summarize(&cd);
        cd["summary"] = json!(summary);
        cd["shortSummary"] = json!(short);
    }
    cd["status"] = json!(status_of(&cd, at));
    node["codeDiscount"] = cd;
    let metafields = node["metafields"].take();
    match metafields {
        Value::Array(a) => node["metafields"] = json!({ "nodes": a }),
        Value::Object(o) if o.get("nodes").is_some_and(Value::is_array) => {
            node["metafields"] = Value::Object(o)
        }
        _ => node["metafields"] = json!({"nodes": []}),
    }
    let num = match node["id"].as_str().and_then(gid_parts) {
        Some(("DiscountCodeNode", n)) if !id_used(d, n) => n,
        _ => {
            d.next += 1;
            d.next
        }
    };
    d.next = d.next.max(num);
    node["id"] = json!(gid("DiscountCodeNode", num));
    node
}

// ---------------------------------------------------------------------------------------------
// listing: search syntax and sort keys

/// One term of a search query (`key:value`, `key:>value`, `-key:value`, bare words).
struct Term {
    neg: bool,
    key: String,
    op: &'static str,
    values: Vec<String>,
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches(|c| c == '\'' || c == '"').to_owned()
}

/// Terms are ANDed (`OR` is read as `AND`); comma-separated values are alternatives.
fn parse_query(q: &str) -> Vec<Term> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for ch in q.chars() {
        match quote {
            Some(qc) => {
                if ch == qc {
                    quote = None;
                }
                cur.push(ch);
            }
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                cur.push(ch);
            }
            None if ch.is_whitespace() => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    let mut terms = Vec::new();
    let mut negate_next = false;
    for t in tokens {
        match t.as_str() {
            "AND" | "OR" => continue,
            "NOT" => {
                negate_next = true;
                continue;
            }
            _ => {}
        }
        let (neg, body) = match t.strip_prefix('-') {
            Some(b) if !b.is_empty() => (true, b.to_owned()),
            _ => (false, t.clone()),
        };
        let neg = neg ^ std::mem::take(&mut negate_next);
        let (key, rest) = match body.split_once(':') {
            Some((k, r)) if !k.is_empty() && !k.starts_with(['\'', '"']) => {
                (k.to_ascii_lowercase(), r.to_owned())
            }
            _ => (String::new(), body.clone()),
        };
        let (op, val) = if let Some(v) = rest.strip_prefix(">=") {
            (">=", v)
        } else if let Some(v) = rest.strip_prefix("<=") {
            ("<=", v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (">", v)
        } else if let Some(v) = rest.strip_prefix('<') {
            ("<", v)
        } else {
            (":", rest.as_str())
        };
        let values: Vec<String> = val
            .split(',')
            .map(unquote)
            .filter(|s| !s.is_empty())
            .collect();
        terms.push(Term {
            neg,
            key,
            op,
            values,
        });
    }
    terms
}

fn cmp_op(op: &str, ord: Ordering) -> bool {
    match op {
        ">" => ord == Ordering::Greater,
        ">=" => ord != Ordering::Less,
        "<" => ord == Ordering::Less,
        "<=" => ord != Ordering::Greater,
        _ => ord == Ordering::Equal,
    }
}

/// `*` at the end of a value is a prefix match; otherwise equality ignoring case.
fn wild_eq(have: &str, want: &str) -> bool {
    let have = have.to_lowercase();
    let want = want.to_lowercase();
    match want.strip_suffix('*') {
        Some(prefix) => have.starts_with(prefix),
        None => have == want,
    }
}

fn term_matches(t: &Term, node: &Value) -> bool {
    let cd = &node["codeDiscount"];
    let any = |f: &dyn Fn(&str) -> bool| t.values.iter().any(|v| f(v.as_str()));
    let title = cd["title"].as_str().unwrap_or_default().to_lowercase();
    let hit = match t.key.as_str() {
        "" => any(&|v| {
            let v = v.to_lowercase();
            title.contains(&v) || codes_of(cd).iter().any(|c| c.to_lowercase().contains(&v))
        }),
        "method" => any(&|v| v.eq_ignore_ascii_case("code")),
        "tag" | "tags" => any(&|v| {
            cd["tags"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(v)))
            })
        }),
        "tag_not" => !any(&|v| {
            cd["tags"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(v)))
            })
        }),
        "status" => any(&|v| {
            cd["status"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(v))
        }),
        "code" => any(&|v| codes_of(cd).iter().any(|c| wild_eq(c, v))),
        "title" => any(&|v| wild_eq(&title, v) || title.contains(&v.to_lowercase())),
        "id" => any(&|v| {
            let want = v.rsplit('/').next().and_then(|n| n.parse::<u64>().ok());
            want.is_some_and(|n| cmp_op(t.op, node_num(node).cmp(&n)))
        }),
        "type" => any(&|v| match v.to_ascii_lowercase().as_str() {
            "percentage" => cd["customerGets"]["value"]["__typename"] == "DiscountPercentage",
            "fixed_amount" => cd["customerGets"]["value"]["__typename"] == "DiscountAmount",
            "bogo" | "bxgy" | "free_shipping" | "app" => false,
            _ => true,
        }),
        "discount_class" => any(&|v| {
            cd["discountClasses"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(v)))
            })
        }),
        "created_at" | "updated_at" | "starts_at" | "ends_at" => {
            let field = match t.key.as_str() {
                "created_at" => "createdAt",
                "updated_at" => "updatedAt",
                "starts_at" => "startsAt",
                _ => "endsAt",
            };
            match cd[field].as_str().and_then(parse_ts) {
                Some(have) => any(&|v| {
                    let want = if v.eq_ignore_ascii_case("now") {
                        Some(Utc::now())
                    } else {
                        parse_ts(v)
                    };
                    want.is_some_and(|w| cmp_op(t.op, have.cmp(&w)))
                }),
                None => false,
            }
        }
        "times_used" => any(&|v| {
            v.parse::<i64>()
                .ok()
                .is_some_and(|n| cmp_op(t.op, cd["asyncUsageCount"].as_i64().unwrap_or(0).cmp(&n)))
        }),
        // unknown filters are ignored
        _ => return true,
    };
    hit != t.neg
}

fn compare_nodes(a: &Value, b: &Value, key: &str) -> Ordering {
    let (ca, cb) = (&a["codeDiscount"], &b["codeDiscount"]);
    let by_time = |f: &str| {
        ca[f]
            .as_str()
            .and_then(parse_ts)
            .cmp(&cb[f].as_str().and_then(parse_ts))
    };
    let primary = match key {
        "CREATED_AT" => by_time("createdAt"),
        "UPDATED_AT" => by_time("updatedAt"),
        "STARTS_AT" => by_time("startsAt"),
        "ENDS_AT" => by_time("endsAt"),
        "TITLE" => ca["title"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .cmp(&cb["title"].as_str().unwrap_or_default().to_lowercase()),
        _ => Ordering::Equal,
    };
    primary.then_with(|| node_num(a).cmp(&node_num(b)))
}

/// The discounts matching `query`, in `sortKey` order (`reverse`d when asked).
fn list_nodes<'d>(d: &'d Data, args: &Map<String, Value>) -> Vec<&'d Value> {
    let terms = parse_query(
        args.get("query")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    let mut out: Vec<&Value> = d
        .nodes
        .iter()
        .filter(|n| terms.iter().all(|t| term_matches(t, n)))
        .collect();
    let key = args.get("sortKey").and_then(Value::as_str).unwrap_or("ID");
    out.sort_by(|a, b| compare_nodes(a, b, key));
    if args.get("reverse").and_then(Value::as_bool) == Some(true) {
        out.reverse();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// `GET /_sim/state`: what the simulator holds (no auth; for people trying `--demo`).
async fn state(State(sim): State<Arc<ShopifySim>>) -> axum::Json<Value> {
    axum::Json(json!({"discounts": sim.discounts()}))
}

fn json_response(
    status: StatusCode,
    body: &Value,
    version: &str,
    retry_after: Option<u64>,
) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header("X-Shopify-API-Version", version)
        .header("X-Request-Id", "sim-shopify");
    if let Some(r) = retry_after {
        b = b.header(header::RETRY_AFTER, r.to_string());
    }
    b.body(Body::from(body.to_string())).expect("response")
}

async fn handle(
    State(sim): State<Arc<ShopifySim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let (status, resp) = answer(&sim, &method, &uri, &headers, &body_text).await;
    sim.common.record(Recorded {
        method,
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
    sim: &ShopifySim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &str,
) -> (u16, Response<Body>) {
    sim.common.delay().await;
    let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let requested = match segs.as_slice() {
        ["admin", "api", v, "graphql.json"] => Some(*v),
        _ => None,
    };
    let known = requested.filter(|v| VERSIONS.contains(v));
    let version = known.unwrap_or(API_VERSION);
    let reply = |s: StatusCode, v: Value, retry_after: Option<u64>| {
        (s.as_u16(), json_response(s, &v, version, retry_after))
    };
    if requested.is_none() || *method != Method::POST {
        return reply(StatusCode::NOT_FOUND, json!({"errors": "Not Found"}), None);
    }
    let token = sim.token.lock().unwrap().clone();
    let given = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok());
    if given != Some(token.as_str()) {
        return reply(StatusCode::UNAUTHORIZED, json!({"errors": BAD_TOKEN}), None);
    }
    if known.is_none() {
        return reply(StatusCode::NOT_FOUND, json!({"errors": "Not Found"}), None);
    }
    let shop = *sim.shop_state.lock().unwrap();
    match shop {
        Some(402) => {
            return reply(
                StatusCode::PAYMENT_REQUIRED,
                json!({"errors": "Unavailable Shop"}),
                None,
            );
        }
        Some(423) => return reply(StatusCode::LOCKED, json!({"errors": "Locked"}), None),
        Some(s) => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let text = status.canonical_reason().unwrap_or("Error");
            return reply(status, json!({ "errors": text }), None);
        }
        None => {}
    }
    if let Err(retry_after) = sim.common.admit() {
        return reply(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"errors": CALL_LIMIT}),
            retry_after,
        );
    }
    let fault = sim.common.after_effects();
    if fault == Fault::ServerError {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errors": "Internal Server Error"}),
            None,
        );
    }
    let raw_document = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/graphql"));
    let r = sim.graphql(body, raw_document);
    if fault == Fault::Drop {
        return (0, dropped());
    }
    reply(r.status, r.body, r.retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "shpat_test";

    const CREATE: &str = "mutation C($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode { id codeDiscount { __typename ... on DiscountCodeBasic {
      t: title status startsAt codes(first: 1) { nodes { code } }
      customerGets { value { __typename ... on DiscountPercentage { percentage } } }
    } } }
    userErrors { field code message }
  }
}";

    fn input(code: &str) -> Value {
        json!({
            "title": "Ten", "code": code, "startsAt": "2026-01-01T00:00:00.123456Z",
            "context": {"all": "ALL"},
            "customerGets": {"value": {"percentage": 0.1}, "items": {"all": true}},
            "tags": ["coupond"],
        })
    }

    fn run(sim: &ShopifySim, q: &str, vars: Value) -> Value {
        let vars = vars.as_object().cloned().unwrap_or_default();
        sim.run(q, &vars, None).body
    }

    #[test]
    fn create_answers_the_selection_and_codes_are_unique_ignoring_case() {
        let sim = ShopifySim::new(TOKEN);
        let v = run(&sim, CREATE, json!({"input": input("SUMMER")}));
        let p = &v["data"]["discountCodeBasicCreate"];
        assert_eq!(p["userErrors"], json!([]), "{v}");
        let cd = &p["codeDiscountNode"]["codeDiscount"];
        assert_eq!(cd["__typename"], "DiscountCodeBasic");
        assert_eq!(cd["t"], "Ten");
        assert_eq!(cd["status"], "ACTIVE");
        assert_eq!(cd["startsAt"], "2026-01-01T00:00:00Z", "seconds only");
        assert_eq!(cd["codes"]["nodes"][0]["code"], "SUMMER");
        assert_eq!(cd["customerGets"]["value"]["percentage"], 0.1);
        assert!(cd.get("title").is_none(), "only the selection: {cd}");
        assert_eq!(v["extensions"]["cost"]["actualQueryCost"], 10);

        let v = run(&sim, CREATE, json!({"input": input("summer")}));
        let p = &v["data"]["discountCodeBasicCreate"];
        assert_eq!(p["codeDiscountNode"], Value::Null);
        assert_eq!(p["userErrors"][0]["code"], "TAKEN");
        assert_eq!(
            p["userErrors"][0]["field"],
            json!(["basicCodeDiscount", "code"])
        );
        assert!(sim.by_code("Summer").is_some());
        assert_eq!(sim.discounts().len(), 1);
    }

    #[test]
    fn inputs_are_checked() {
        let sim = ShopifySim::new(TOKEN);
        let mut i = input("X1");
        i["customerGets"]["value"]["percentage"] = json!(10);
        let v = run(&sim, CREATE, json!({"input": i}));
        assert_eq!(
            v["data"]["discountCodeBasicCreate"]["userErrors"][0]["code"],
            "VALUE_OUTSIDE_RANGE"
        );
        let mut i = input("X2");
        i["nonsense"] = json!(1);
        let v = run(&sim, CREATE, json!({"input": i}));
        assert_eq!(
            v["errors"][0]["extensions"]["code"], "INVALID_VARIABLE",
            "{v}"
        );
        let mut i = input("X3");
        i["context"] = json!({"all": "ALL", "customers": {"add": ["gid://shopify/Customer/1"]}});
        let v = run(&sim, CREATE, json!({"input": i}));
        assert!(
            v["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("OneOf"),
            "{v}"
        );
        let v = run(&sim, "mutation { nope { id } }", json!({}));
        assert_eq!(v["errors"][0]["extensions"]["code"], "undefinedField");
        assert_eq!(sim.validation_failures(), 3);
        assert!(sim.discounts().is_empty());
    }

    #[test]
    fn updates_are_partial_and_listing_pages() {
        let sim = ShopifySim::new(TOKEN);
        for k in 0..3 {
            run(&sim, CREATE, json!({"input": input(&format!("P{k}"))}));
        }
        let id = sim.by_code("P1").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let upd = "mutation U($id: ID!, $input: DiscountCodeBasicInput!) {
  discountCodeBasicUpdate(id: $id, basicCodeDiscount: $input) { userErrors { code } }
}";
        let v = run(
            &sim,
            upd,
            json!({"id": id, "input": {"context": {"customers": {"add": ["gid://shopify/Customer/7"]}}}}),
        );
        assert_eq!(
            v["data"]["discountCodeBasicUpdate"]["userErrors"],
            json!([]),
            "{v}"
        );
        let n = sim.by_code("p1").unwrap();
        assert_eq!(n["codeDiscount"]["title"], "Ten");
        assert_eq!(
            n["codeDiscount"]["context"]["customers"],
            json!([{"id": "gid://shopify/Customer/7"}])
        );
        let list = "query L($after: String) { discountNodes(first: 2, after: $after, query: \"method:code tag:coupond\") {
  pageInfo { hasNextPage endCursor } nodes { id discount { ... on DiscountCodeBasic { title } } } } }";
        let v = run(&sim, list, json!({}));
        let c = &v["data"]["discountNodes"];
        assert_eq!(c["nodes"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(c["pageInfo"]["hasNextPage"], true);
        let v = run(&sim, list, json!({"after": c["pageInfo"]["endCursor"]}));
        let c = &v["data"]["discountNodes"];
        assert_eq!(c["nodes"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(c["pageInfo"]["hasNextPage"], false);
        let v = run(
            &sim,
            "{ discountNodes(first: 251) { nodes { id } } }",
            json!({}),
        );
        assert!(v["errors"].is_array() && v.get("data").is_none(), "{v}");
    }

    #[test]
    fn the_bucket_throttles() {
        let sim = ShopifySim::new(TOKEN);
        sim.set_bucket(25.0, 0.0);
        run(&sim, CREATE, json!({"input": input("B1")}));
        run(&sim, CREATE, json!({"input": input("B2")}));
        let v = run(&sim, CREATE, json!({"input": input("B3")}));
        assert_eq!(v["errors"][0]["extensions"]["code"], "THROTTLED", "{v}");
        assert_eq!(
            v["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"],
            5
        );
        assert_eq!(sim.throttled(), 1);
        assert_eq!(sim.discounts().len(), 2);
    }

    #[test]
    fn the_reference_schema_validates_the_adapter_documents() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/shopify-admin-discounts.graphql"
        );
        let Ok(sdl) = std::fs::read_to_string(path) else {
            return;
        };
        let sim = ShopifySim::new(TOKEN);
        sim.set_schema(&sdl).expect("schema");
        for (name, doc) in crate::providers::shopify::documents::ALL {
            let v = run(&sim, doc, json!({}));
            assert_ne!(
                v["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
                "{name}: {v}"
            );
        }
        assert_eq!(sim.validation_failures(), 0);
        let v = run(
            &sim,
            "{ discountNodes(first: 1) { nodes { bogus } } }",
            json!({}),
        );
        assert_eq!(
            v["errors"][0]["extensions"]["code"],
            "GRAPHQL_VALIDATION_FAILED"
        );
        assert_eq!(sim.validation_failures(), 1);
    }
}
