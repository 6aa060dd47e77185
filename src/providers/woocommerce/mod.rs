//! WooCommerce (REST API v3): each promotion code becomes one WooCommerce coupon carrying its
//! coupon's terms and its own restrictions, with our marker in `meta_data`. Basic auth over
//! https, OAuth 1.0a one-legged signing over plain http. Bulk creates and updates go through
//! `/coupons/batch` (at most 100 items, errors per item).

pub mod mapping;
pub mod oauth;

use super::http::{Answer, Transport, retry_after};
use super::{ProviderError, PushInput, PushNote};
use crate::config::{BillingInterval, Secret, WooAuth, WooDeleteMode};
use crate::domain::PromotionCode;
use crate::store::outbox::Link;
use mapping::{Shop, WooSpec, map_code, owned_by};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PROVIDER: &str = "WooCommerce";
const API: &str = "/wp-json/wc/v3";
/// WooCommerce's default `woocommerce_rest_batch_items_limit`.
pub const BATCH_LIMIT: usize = 100;
/// How long the site's UTC offset is trusted before it is read again (DST changes it).
const OFFSET_TTL: Duration = Duration::from_secs(3600);
pub const DUPLICATE: &str = "woocommerce_rest_coupon_code_already_exists";

/// What we last pushed for a code, kept in its link.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pushed {
    spec: Option<WooSpec>,
    /// A create went out and its id is not recorded yet (`remote_id` is empty): the coupon may
    /// exist under this code, and is ours if its meta says so.
    #[serde(default)]
    pending: bool,
}

fn pushed(l: &Link) -> Pushed {
    serde_json::from_value(l.remote.clone()).unwrap_or(Pushed {
        spec: None,
        pending: false,
    })
}

fn code_link(code: &str, id: &str, p: &Pushed) -> Link {
    Link {
        kind: "code".into(),
        local_key: code.to_owned(),
        remote_id: id.to_owned(),
        fingerprint: String::new(),
        remote: serde_json::to_value(p).unwrap_or_default(),
    }
}

/// The intent recorded before a create.
fn intent(code: &str, s: &WooSpec) -> Link {
    code_link(
        code,
        "",
        &Pushed {
            spec: Some(s.clone()),
            pending: true,
        },
    )
}

/// The link JSON of a code whose coupon holds `spec` (reconcile writes what it found, so the next
/// push sends ours back).
pub fn link_remote(spec: &WooSpec) -> Value {
    serde_json::to_value(Pushed {
        spec: Some(spec.clone()),
        pending: false,
    })
    .unwrap_or_default()
}

/// `date_expires` of a paused coupon: in the past, so it cannot be used, while the coupon and its
/// usage count stay (WooCommerce accepts past dates; it has no "disabled" flag).
pub const PAUSED: &str = "2000-01-01T00:00:00";

fn set_link(links: &mut Vec<Link>, link: Link) {
    links.retain(|l| !(l.kind == link.kind && l.local_key.eq_ignore_ascii_case(&link.local_key)));
    links.push(link);
}

fn find_link<'a>(links: &'a [Link], code: &str) -> Option<&'a Link> {
    links
        .iter()
        .find(|l| l.kind == "code" && l.local_key.eq_ignore_ascii_case(code))
}

/// How this client signs requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Basic,
    OAuth1,
}

/// The shop settings of a program's WooCommerce connection.
pub struct WooOptions {
    pub auth: WooAuth,
    pub delete_mode: WooDeleteMode,
    pub subscriptions: bool,
    pub billing_interval: BillingInterval,
}

/// One WooCommerce shop.
pub struct WooClient {
    /// The site root (`https://shop.example`).
    base: String,
    key: Secret,
    secret: Secret,
    auth: Auth,
    options: WooOptions,
    transport: Transport,
    offset: Mutex<Option<(f64, Instant)>>,
}

/// A classified error of one batch item or one call.
fn error_from_body(
    status: u16,
    headers: Option<&reqwest::header::HeaderMap>,
    body: &Value,
) -> ProviderError {
    let code = body["code"].as_str().map(str::to_owned);
    let detail = body["message"].as_str().unwrap_or("no message").to_owned();
    let param = body["data"]["params"]
        .as_object()
        .and_then(|p| p.keys().next().cloned());
    match status {
        401 | 403 => ProviderError::Credentials {
            provider: PROVIDER,
            status,
            detail: format!("{}: {detail}", code.as_deref().unwrap_or("error")),
        },
        429 => ProviderError::RateLimited {
            provider: PROVIDER,
            retry_after: headers.and_then(retry_after),
            detail,
        },
        408 | 409 | 423 => ProviderError::Transient {
            provider: PROVIDER,
            status: Some(status),
            detail,
        },
        s if s >= 500 => ProviderError::Transient {
            provider: PROVIDER,
            status: Some(s),
            detail,
        },
        s => ProviderError::Rejected {
            provider: PROVIDER,
            status: s,
            code,
            param,
            detail,
        },
    }
}

impl WooClient {
    pub fn new(
        base: &str,
        key: Secret,
        secret: Secret,
        options: WooOptions,
        transport: Transport,
    ) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        let auth = match options.auth {
            WooAuth::Basic => Auth::Basic,
            WooAuth::Oauth1 => Auth::OAuth1,
            WooAuth::Auto if base.starts_with("https://") => Auth::Basic,
            WooAuth::Auto => Auth::OAuth1,
        };
        Self {
            base,
            key,
            secret,
            auth,
            options,
            transport,
            offset: Mutex::new(None),
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    fn classify(ans: Answer) -> Result<(Value, Answer), ProviderError> {
        if (200..300).contains(&ans.status) {
            return Ok((ans.json(), ans));
        }
        Err(error_from_body(ans.status, Some(&ans.headers), &ans.json()))
    }

    /// One authenticated call to `/wp-json/wc/v3{path}`.
    async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(Value, Answer), ProviderError> {
        let url = format!("{}{API}{path}", self.base);
        let ans = self
            .transport
            .send(op, || {
                let query: Vec<(String, String)> = query
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect();
                let client = self.transport.client();
                let mut r = match self.auth {
                    Auth::Basic => {
                        let qs = oauth::encode_pairs(&query);
                        let full = if qs.is_empty() {
                            url.clone()
                        } else {
                            format!("{url}?{qs}")
                        };
                        client
                            .request(method.clone(), full)
                            .basic_auth(self.key.expose(), Some(self.secret.expose()))
                    }
                    Auth::OAuth1 => {
                        // signed afresh for every try: a nonce is good once
                        let qs = oauth::signed_query(
                            method.as_str(),
                            &url,
                            &query,
                            self.key.expose(),
                            self.secret.expose(),
                        );
                        client.request(method.clone(), format!("{url}?{qs}"))
                    }
                };
                if let Some(b) = body {
                    r = r.json(b);
                }
                r
            })
            .await?;
        Self::classify(ans)
    }

    /// The site's UTC offset in hours (`GET /wp-json/`), read at most hourly.
    async fn gmt_offset(&self) -> Result<f64, ProviderError> {
        if let Some((o, at)) = *self.offset.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < OFFSET_TTL
        {
            return Ok(o);
        }
        let url = format!("{}/wp-json/", self.base);
        let ans = self
            .transport
            .send("site_index", || self.transport.client().get(&url))
            .await?;
        let (v, _) = Self::classify(ans)?;
        let o = match &v["gmt_offset"] {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|o| o.is_finite() && o.abs() <= 14.0)
        .ok_or_else(|| ProviderError::Transient {
            provider: PROVIDER,
            status: None,
            detail: "the site index (/wp-json/) has no usable gmt_offset".into(),
        })?;
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) = Some((o, Instant::now()));
        Ok(o)
    }

    pub async fn shop(&self) -> Result<Shop, ProviderError> {
        Ok(Shop {
            subscriptions: self.options.subscriptions,
            billing_interval: self.options.billing_interval,
            gmt_offset: self.gmt_offset().await?,
        })
    }

    /// Makes WooCommerce hold the desired codes: one coupon per code, paused (expiry in the past)
    /// while the coupon is inactive, trashed or deleted when the code or the coupon is.
    pub async fn push(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
    ) -> Result<PushNote, ProviderError> {
        let d = input.desired;
        let mut note = PushNote::default();
        if d.deleted {
            self.retire_all(input, links).await?;
            note.retired = true;
            return Ok(note);
        }
        let shop = self.shop().await?;
        // the coupon's own terms are checked even when it has no codes yet
        mapping::check_coupon(&shop, &d.coupon).map_err(ProviderError::Refused)?;
        let specs = d
            .codes
            .iter()
            .map(|c| {
                map_code(input.program, &shop, &d.coupon, c).map(|mut s| {
                    if !d.coupon.terms.active {
                        s.date_expires = PAUSED.into();
                    }
                    (c, s)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProviderError::Refused)?;
        note.created = !links.iter().any(|l| l.kind == "code") && !specs.is_empty();
        // codes deleted here
        let gone: Vec<Link> = links
            .iter()
            .filter(|l| {
                l.kind == "code"
                    && !specs
                        .iter()
                        .any(|(c, _)| c.code.eq_ignore_ascii_case(&l.local_key))
            })
            .cloned()
            .collect();
        let force = self.options.delete_mode == WooDeleteMode::Force;
        for l in gone {
            self.retire_link(input, &l, force).await?;
            links.retain(|x| !(x.kind == "code" && x.local_key == l.local_key));
            input.record(links, PROVIDER).await?;
        }
        self.make_live(input, links, &specs).await?;
        Ok(note)
    }

    /// Trashes (or deletes) the coupon of a link; a create that was never recorded is looked up.
    async fn retire_link(
        &self,
        input: &PushInput<'_>,
        l: &Link,
        force: bool,
    ) -> Result<(), ProviderError> {
        if !l.remote_id.is_empty() {
            return self.delete(&l.remote_id, force).await;
        }
        if pushed(l).pending
            && let Some(v) = self.lookup(&l.local_key).await?
            && owned_by(&v, input.program, &input.desired.coupon.uuid_code)
            && let Some(id) = v["id"].as_i64()
        {
            self.delete(&id.to_string(), force).await?;
        }
        Ok(())
    }

    /// Every code a WooCommerce coupon with the wanted fields (created, or updated in place).
    async fn make_live(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
        specs: &[(&PromotionCode, WooSpec)],
    ) -> Result<(), ProviderError> {
        let mut creates: Vec<(&PromotionCode, &WooSpec)> = Vec::new();
        let mut updates: Vec<(&PromotionCode, &WooSpec, String, Option<WooSpec>)> = Vec::new();
        for (c, spec) in specs {
            match find_link(links, &c.code).cloned() {
                Some(l) if !l.remote_id.is_empty() => {
                    let p = pushed(&l);
                    if p.spec.as_ref() != Some(spec) {
                        updates.push((c, spec, l.remote_id.clone(), p.spec));
                    }
                }
                // new, or a create whose answer was lost (adopted on the duplicate answer)
                _ => creates.push((c, spec)),
            }
        }
        let mut first_error = None;
        if updates.len() >= 2 {
            for chunk in updates.chunks(BATCH_LIMIT) {
                let items: Vec<Value> = chunk
                    .iter()
                    .map(|(_, s, id, prev)| {
                        let mut b = s.body(prev.as_ref());
                        b["id"] = json!(id.parse::<i64>().unwrap_or(0));
                        b
                    })
                    .collect();
                let res = self.batch(json!({"update": items})).await?;
                let results: Vec<&Value> = res["update"].as_array().into_iter().flatten().collect();
                for (i, (c, s, id, _)) in chunk.iter().enumerate() {
                    let Some(item) = results.get(i) else {
                        first_error.get_or_insert(bad_answer("batch update answered fewer items"));
                        continue;
                    };
                    match item_error(item) {
                        None => set_link(links, code_link(&c.code, id, &live(s))),
                        // gone meanwhile (deleted by hand): create it again
                        Some(e) if e.code() == Some("woocommerce_rest_shop_coupon_invalid_id") => {
                            links.retain(|x| {
                                !(x.kind == "code" && x.local_key.eq_ignore_ascii_case(&c.code))
                            });
                            creates.push((c, s));
                        }
                        Some(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                input.record(links, PROVIDER).await?;
            }
        } else {
            for (c, s, id, prev) in updates {
                match self
                    .call(
                        "update_coupon",
                        Method::PUT,
                        &format!("/coupons/{id}"),
                        &[],
                        Some(&s.body(prev.as_ref())),
                    )
                    .await
                {
                    Ok(_) => {
                        set_link(links, code_link(&c.code, &id, &live(s)));
                        input.record(links, PROVIDER).await?;
                    }
                    Err(e) if e.status() == Some(404) => {
                        links.retain(|x| {
                            !(x.kind == "code" && x.local_key.eq_ignore_ascii_case(&c.code))
                        });
                        creates.push((c, s));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if !creates.is_empty() {
            // intents first: a create whose answer is lost is then found and adopted, or deleted
            for (c, s) in &creates {
                set_link(links, intent(&c.code, s));
            }
            input.record(links, PROVIDER).await?;
        }
        if creates.len() >= 2 {
            for chunk in creates.chunks(BATCH_LIMIT) {
                let items: Vec<Value> = chunk.iter().map(|(_, s)| s.body(None)).collect();
                let res = self.batch(json!({"create": items})).await?;
                let results: Vec<&Value> = res["create"].as_array().into_iter().flatten().collect();
                for (i, (c, s)) in chunk.iter().enumerate() {
                    let item = results.get(i).copied().unwrap_or(&Value::Null);
                    match item_error(item) {
                        None => match item["id"].as_i64() {
                            Some(id) => {
                                set_link(links, code_link(&c.code, &id.to_string(), &live(s)))
                            }
                            None => {
                                first_error.get_or_insert(bad_answer("batch create without an id"));
                            }
                        },
                        Some(e) if e.code() == Some(DUPLICATE) => {
                            // created by an attempt whose answer was lost, or taken: decide alone
                            input.record(links, PROVIDER).await?;
                            match self.create_or_adopt(input, s).await {
                                Ok(id) => set_link(links, code_link(&c.code, &id, &live(s))),
                                Err(e) => {
                                    first_error.get_or_insert(e);
                                }
                            }
                        }
                        Some(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                input.record(links, PROVIDER).await?;
            }
        } else {
            for (c, s) in creates {
                let id = self.create_or_adopt(input, s).await?;
                set_link(links, code_link(&c.code, &id, &live(s)));
                input.record(links, PROVIDER).await?;
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Deleted coupon: every code's WooCommerce coupon trashed or deleted (`delete_mode`).
    async fn retire_all(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
    ) -> Result<(), ProviderError> {
        let force = self.options.delete_mode == WooDeleteMode::Force;
        for c in &input.desired.codes {
            if find_link(links, &c.code).is_none()
                && let Some(v) = self.lookup(&c.code).await?
                && owned_by(&v, input.program, &input.desired.coupon.uuid_code)
                && let Some(id) = v["id"].as_i64()
            {
                self.delete(&id.to_string(), force).await?;
            }
        }
        for l in links.clone().iter().filter(|l| l.kind == "code") {
            self.retire_link(input, l, force).await?;
            links.retain(|x| !(x.kind == "code" && x.local_key == l.local_key));
            input.record(links, PROVIDER).await?;
        }
        Ok(())
    }

    /// `DELETE /coupons/{id}`: to the trash, or for good with `force`. Gone already is fine.
    async fn delete(&self, id: &str, force: bool) -> Result<(), ProviderError> {
        let q: Vec<(&str, String)> = if force {
            vec![("force", "true".into())]
        } else {
            vec![]
        };
        match self
            .call(
                if force {
                    "delete_coupon"
                } else {
                    "trash_coupon"
                },
                Method::DELETE,
                &format!("/coupons/{id}"),
                &q,
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            // trashed already (an earlier attempt whose answer was lost)
            Err(e) if !force && e.status() == Some(410) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The published coupon with this code (`?code=` is exact and ignores case), if any.
    pub async fn lookup(&self, code: &str) -> Result<Option<Value>, ProviderError> {
        let (v, _) = self
            .call(
                "find_coupon",
                Method::GET,
                "/coupons",
                &[("code", code.to_owned())],
                None,
            )
            .await?;
        Ok(v.as_array().and_then(|a| a.first()).cloned())
    }

    async fn batch(&self, body: Value) -> Result<Value, ProviderError> {
        self.call(
            "batch_coupons",
            Method::POST,
            "/coupons/batch",
            &[],
            Some(&body),
        )
        .await
        .map(|(v, _)| v)
    }

    /// Creates the coupon, or adopts ours when the code is taken by it (a lost answer).
    async fn create_or_adopt(
        &self,
        input: &PushInput<'_>,
        spec: &WooSpec,
    ) -> Result<String, ProviderError> {
        for _ in 0..2 {
            match self
                .call(
                    "create_coupon",
                    Method::POST,
                    "/coupons",
                    &[],
                    Some(&spec.body(None)),
                )
                .await
            {
                Ok((v, _)) => {
                    return v["id"]
                        .as_i64()
                        .map(|i| i.to_string())
                        .ok_or_else(|| bad_answer("coupon without id"));
                }
                Err(e) if e.code() == Some(DUPLICATE) => {
                    let Some(remote) = self.lookup(&spec.code).await? else {
                        continue; // trashed meanwhile: the code is free again
                    };
                    let id = remote["id"].as_i64().unwrap_or_default().to_string();
                    if mapping::owned_by_program(&remote, input.program)
                        && !owned_by(&remote, input.program, &input.desired.coupon.uuid_code)
                    {
                        // moved here from another coupon of the program: that coupon's push
                        // releases it
                        return Err(ProviderError::Transient {
                            provider: PROVIDER,
                            status: Some(400),
                            detail: format!(
                                "code '{}' is still held by WooCommerce coupon {id} of another coupon; waiting for it to be released",
                                spec.code
                            ),
                        });
                    }
                    if !owned_by(&remote, input.program, &input.desired.coupon.uuid_code) {
                        return Err(ProviderError::Rejected {
                            provider: PROVIDER,
                            status: 400,
                            code: Some(DUPLICATE.into()),
                            param: Some("code".into()),
                            detail: format!(
                                "code '{}' is taken by WooCommerce coupon {id}, which coupond does not manage",
                                spec.code
                            ),
                        });
                    }
                    let theirs = WooSpec::from_remote(&remote);
                    if !spec.drift(&theirs).is_empty() {
                        self.call(
                            "update_coupon",
                            Method::PUT,
                            &format!("/coupons/{id}"),
                            &[],
                            Some(&spec.body(Some(&theirs))),
                        )
                        .await?;
                    }
                    return Ok(id);
                }
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::Transient {
            provider: PROVIDER,
            status: Some(400),
            detail: format!("code '{}' is still taken; will retry", spec.code),
        })
    }

    /// One page of coupons (`per_page` ≤ 100), with the total page count.
    pub async fn list_page(
        &self,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Value>, u32), ProviderError> {
        let (v, ans) = self
            .call(
                "list_coupons",
                Method::GET,
                "/coupons",
                &[
                    ("page", page.to_string()),
                    ("per_page", per_page.min(100).to_string()),
                    ("orderby", "id".into()),
                    ("order", "asc".into()),
                ],
                None,
            )
            .await?;
        let pages = ans
            .headers
            .get("x-wp-totalpages")
            .and_then(|h| h.to_str().ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((v.as_array().cloned().unwrap_or_default(), pages))
    }

    /// Deletes a coupon (reconcile retiring an orphan): trash or force per `delete_mode`.
    pub async fn retire(&self, id: &str) -> Result<(), ProviderError> {
        self.delete(id, self.options.delete_mode == WooDeleteMode::Force)
            .await
    }
}

fn live(s: &WooSpec) -> Pushed {
    Pushed {
        spec: Some(s.clone()),
        pending: false,
    }
}

/// The error of one batch entry, if it failed.
fn item_error(item: &Value) -> Option<ProviderError> {
    let e = item.get("error")?;
    let status = e["data"]["status"].as_u64().unwrap_or(400) as u16;
    Some(error_from_body(status, None, e))
}

fn bad_answer(what: &str) -> ProviderError {
    ProviderError::Transient {
        provider: PROVIDER,
        status: None,
        detail: what.into(),
    }
}
