//! Paddle Classic (vendors API, seed 004): a coupon becomes a coupon `group`, each promotion code
//! a Classic coupon in it. Always POST with `vendor_id` + `vendor_auth_code` in a form body;
//! failures arrive as HTTP 200 with `success: false` and a numeric code. A change to the
//! coupon's terms is one `update_coupon` by group; a change to one code an update by
//! `coupon_code`; a renamed code is renamed (`new_coupon_code`), a code moved to another coupon
//! is moved (`new_group`); deleting deletes (Classic has no deactivate).

pub mod mapping;

use super::http::{Answer, Transport, retry_after};
use super::{ProviderError, PushInput, PushNote};
use crate::config::Secret;
use crate::store::outbox::Link;
use mapping::{ClassicSpec, map_code, owned_by_program};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const PROVIDER: &str = "Paddle Classic";
/// Error codes (providers/paddle.md §1.4).
pub const E_BAD_KEY: i64 = 102;
pub const E_NO_PERMISSION: i64 = 107;
pub const E_INTERNAL: i64 = 120;
pub const E_DUPLICATE: i64 = 132;
pub const E_NOT_FOUND: i64 = 135;
pub const E_BELOW_USED: i64 = 136;
pub const E_RATE: i64 = 189;

/// What we know of a code's Classic coupon, kept in its link.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pushed {
    spec: ClassicSpec,
    /// `sent`: a create went out and its answer is not recorded (ours if the code is taken);
    /// `created`: Classic holds `spec`.
    state: String,
}

fn pushed(l: &Link) -> Option<Pushed> {
    serde_json::from_value(l.remote.clone()).ok()
}

fn code_link(spec: &ClassicSpec, state: &str) -> Link {
    Link {
        kind: "code".into(),
        local_key: spec.coupon_code.clone(),
        remote_id: spec.coupon_code.clone(),
        fingerprint: String::new(),
        remote: serde_json::to_value(Pushed {
            spec: spec.clone(),
            state: state.into(),
        })
        .unwrap_or_default(),
    }
}

fn set_link(links: &mut Vec<Link>, link: Link) {
    links.retain(|l| !(l.kind == link.kind && l.local_key.eq_ignore_ascii_case(&link.local_key)));
    links.push(link);
}

fn drop_link(links: &mut Vec<Link>, code: &str) {
    links.retain(|l| !(l.kind == "code" && l.local_key.eq_ignore_ascii_case(code)));
}

/// The Classic error code of a failure, if it was one.
fn classic_code(e: &ProviderError) -> Option<i64> {
    e.code().and_then(|c| c.parse().ok())
}

/// The link JSON of a code whose Classic coupon holds `spec` (reconcile writes what it found, so
/// the next push sends ours back).
pub fn link_remote(spec: &ClassicSpec) -> Value {
    serde_json::to_value(Pushed {
        spec: spec.clone(),
        state: "created".into(),
    })
    .unwrap_or_default()
}

/// One Paddle Classic vendor account.
pub struct PaddleClassicClient {
    base: String,
    vendor_id: u64,
    auth_code: Secret,
    lookup_product: Option<u64>,
    transport: Transport,
}

impl PaddleClassicClient {
    pub fn new(
        base: &str,
        vendor_id: u64,
        auth_code: Secret,
        lookup_product: Option<u64>,
        transport: Transport,
    ) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            vendor_id,
            auth_code,
            lookup_product,
            transport,
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The product whose coupon list reconcile and lookups page through.
    pub fn lookup_product(&self) -> Option<u64> {
        self.lookup_product
    }

    /// One page (≤ 500) of a product's coupons from `offset` (1-based): entries and the total.
    pub async fn list(
        &self,
        product: u64,
        offset: u64,
    ) -> Result<(Vec<Value>, u64), ProviderError> {
        let url = format!("{}/2.0/product/list_coupons", self.base);
        let body = {
            let mut f = form_urlencoded::Serializer::new(String::new());
            f.append_pair("vendor_id", &self.vendor_id.to_string())
                .append_pair("vendor_auth_code", self.auth_code.expose())
                .append_pair("product_id", &product.to_string())
                .append_pair("limit", "500")
                .append_pair("offset", &offset.to_string());
            f.finish()
        };
        let ans = self
            .transport
            .send("list_coupons", || {
                self.transport
                    .client()
                    .post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body.clone())
            })
            .await?;
        let total = ans.json()["total"].as_u64();
        let items = Self::classify(ans)?.as_array().cloned().unwrap_or_default();
        Ok((items.clone(), total.unwrap_or(items.len() as u64)))
    }

    fn classify(ans: Answer) -> Result<Value, ProviderError> {
        let body = ans.json();
        match ans.status {
            200..=299 => {}
            401 | 403 => {
                return Err(ProviderError::Credentials {
                    provider: PROVIDER,
                    status: ans.status,
                    detail: format!("HTTP {}", ans.status),
                });
            }
            429 => {
                return Err(ProviderError::RateLimited {
                    provider: PROVIDER,
                    retry_after: retry_after(&ans.headers),
                    detail: body["error"]["message"]
                        .as_str()
                        .unwrap_or("HTTP 429")
                        .to_owned(),
                });
            }
            s if s == 408 || s >= 500 => {
                return Err(ProviderError::Transient {
                    provider: PROVIDER,
                    status: Some(s),
                    detail: String::from_utf8_lossy(&ans.body)
                        .chars()
                        .take(200)
                        .collect(),
                });
            }
            s => {
                return Err(ProviderError::Rejected {
                    provider: PROVIDER,
                    status: s,
                    code: None,
                    param: None,
                    detail: String::from_utf8_lossy(&ans.body)
                        .chars()
                        .take(200)
                        .collect(),
                });
            }
        }
        if body["success"] == true {
            return Ok(body["response"].clone());
        }
        let code = body["error"]["code"].as_i64();
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_owned();
        let detail = format!("error {}: {message}", code.unwrap_or(0));
        Err(match code {
            // HTTP 200 with success false: the answer of a body that is not the envelope
            None => ProviderError::Transient {
                provider: PROVIDER,
                status: Some(200),
                detail: "answer without success or error".into(),
            },
            Some(E_BAD_KEY | E_NO_PERMISSION) => ProviderError::Credentials {
                provider: PROVIDER,
                status: 200,
                detail,
            },
            Some(E_RATE) => ProviderError::RateLimited {
                provider: PROVIDER,
                retry_after: None,
                detail,
            },
            Some(E_INTERNAL) => ProviderError::Transient {
                provider: PROVIDER,
                status: Some(200),
                detail,
            },
            Some(c) => ProviderError::Rejected {
                provider: PROVIDER,
                status: 200,
                code: Some(c.to_string()),
                param: None,
                detail,
            },
        })
    }

    /// One call: POST, credentials in the form body with the parameters.
    pub async fn call(
        &self,
        op: &'static str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, ProviderError> {
        let url = format!("{}{path}", self.base);
        let body = {
            let mut f = form_urlencoded::Serializer::new(String::new());
            f.append_pair("vendor_id", &self.vendor_id.to_string())
                .append_pair("vendor_auth_code", self.auth_code.expose());
            for (k, v) in params {
                f.append_pair(k, v);
            }
            f.finish()
        };
        let ans = self
            .transport
            .send(op, || {
                self.transport
                    .client()
                    .post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body.clone())
            })
            .await?;
        Self::classify(ans)
    }

    async fn update(&self, params: Vec<(&str, String)>) -> Result<i64, ProviderError> {
        let v = self
            .call("update_coupon", "/2.1/product/update_coupon", &params)
            .await
            .map_err(|e| match classic_code(&e) {
                Some(E_BELOW_USED) => ProviderError::Refused(format!(
                    "Paddle Classic cannot hold allowed_uses {}: a coupon cannot allow fewer uses than it already had (error 136)",
                    params
                        .iter()
                        .find(|(k, _)| *k == "allowed_uses")
                        .map(|(_, v)| v.as_str())
                        .unwrap_or("?")
                )),
                _ => e,
            })?;
        Ok(v["updated"].as_i64().unwrap_or(0))
    }

    pub async fn delete(&self, code: &str) -> Result<(), ProviderError> {
        match self
            .call(
                "delete_coupon",
                "/2.0/product/delete_coupon",
                &[("coupon_code", code.to_owned())],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if classic_code(&e) == Some(E_NOT_FOUND) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A coupon by code, through a product's coupon list (Classic has no account-wide list).
    pub async fn find(&self, code: &str, product: u64) -> Result<Option<Value>, ProviderError> {
        let v = self
            .call(
                "list_coupons",
                "/2.0/product/list_coupons",
                &[
                    ("product_id", product.to_string()),
                    ("coupon", code.to_owned()),
                ],
            )
            .await?;
        Ok(v.as_array().and_then(|a| {
            a.iter()
                .find(|c| {
                    c["coupon"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(code))
                })
                .cloned()
        }))
    }

    /// Makes Classic hold the desired coupons: live codes of an active coupon exist in its group,
    /// everything else is deleted.
    pub async fn push(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
    ) -> Result<PushNote, ProviderError> {
        let d = input.desired;
        let mut note = PushNote::default();
        if !d.deleted {
            mapping::coupon_terms(input.currency, &d.coupon).map_err(ProviderError::Refused)?;
        }
        let mut wanted: Vec<ClassicSpec> = Vec::new();
        if !d.deleted && d.coupon.terms.active {
            for c in &d.codes {
                if let Some(s) = map_code(input.program, input.currency, &d.coupon, c, input.now)
                    .map_err(ProviderError::Refused)?
                {
                    wanted.push(s);
                }
            }
        }
        note.created = !d.deleted && !links.iter().any(|l| l.kind == "code") && !wanted.is_empty();
        note.retired = d.deleted;
        let linked = |links: &[Link], code: &str| {
            links
                .iter()
                .find(|l| l.kind == "code" && l.local_key.eq_ignore_ascii_case(code))
                .cloned()
        };
        // 1. codes no longer held here: moved to another coupon (its push moves them), or gone
        let mut removed: Vec<Link> = Vec::new();
        for l in links
            .iter()
            .filter(|l| l.kind == "code")
            .cloned()
            .collect::<Vec<_>>()
        {
            if wanted
                .iter()
                .any(|s| s.coupon_code.eq_ignore_ascii_case(&l.local_key))
            {
                continue;
            }
            if !d.deleted
                && input
                    .journal
                    .code_live_elsewhere(&l.local_key)
                    .await
                    .map_err(|e| ProviderError::Transient {
                        provider: PROVIDER,
                        status: None,
                        detail: format!("store: {e}"),
                    })?
            {
                drop_link(links, &l.local_key);
                input.record(links, PROVIDER).await?;
            } else {
                removed.push(l);
            }
        }
        // 2. new codes, and codes whose unchangeable terms changed (deleted, then created)
        let mut added: Vec<ClassicSpec> = Vec::new();
        for s in &wanted {
            match linked(links, &s.coupon_code).and_then(|l| pushed(&l)) {
                Some(p) if p.state == "created" && p.spec.immutable() != s.immutable() => {
                    self.delete(&p.spec.coupon_code).await?;
                    drop_link(links, &s.coupon_code);
                    input.record(links, PROVIDER).await?;
                    added.push(s.clone());
                }
                Some(p) if p.state == "created" => {}
                _ => added.push(s.clone()),
            }
        }
        // 3. a code removed and one added in the same change: renamed (seed 004 new_coupon_code)
        let mut renamable: Vec<Link> = removed
            .iter()
            .filter(|l| pushed(l).is_some_and(|p| p.state == "created"))
            .cloned()
            .collect();
        let mut still_added = Vec::new();
        for s in added {
            let fresh = linked(links, &s.coupon_code).is_none();
            let pos = renamable
                .iter()
                .position(|l| pushed(l).is_some_and(|p| p.spec.immutable() == s.immutable()));
            match pos.filter(|_| fresh) {
                Some(i) => {
                    let old = renamable.remove(i);
                    let from = pushed(&old).map(|p| p.spec).unwrap_or_else(|| s.clone());
                    let mut params = vec![
                        ("coupon_code", old.local_key.clone()),
                        ("new_coupon_code", s.coupon_code.clone()),
                    ];
                    params.extend(s.update_params(&from));
                    // the new code's intent first: if the answer is lost, the retry finds NEW
                    // taken and, with the intent, adopts it
                    set_link(links, code_link(&s, "sent"));
                    input.record(links, PROVIDER).await?;
                    match self.update(params).await {
                        Ok(_) => {
                            removed.retain(|l| l.local_key != old.local_key);
                            drop_link(links, &old.local_key);
                            set_link(links, code_link(&s, "created"));
                            input.record(links, PROVIDER).await?;
                        }
                        // the old one vanished, or the new code is taken: delete and create instead
                        Err(e) if matches!(classic_code(&e), Some(E_NOT_FOUND | E_DUPLICATE)) => {
                            still_added.push(s)
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => still_added.push(s),
            }
        }
        for l in removed {
            self.delete(&l.local_key).await?;
            drop_link(links, &l.local_key);
            input.record(links, PROVIDER).await?;
        }
        // 4. changes to codes Classic holds: one update by group when every code changes alike
        let held: Vec<(ClassicSpec, ClassicSpec)> = wanted
            .iter()
            .filter_map(|s| {
                let p = pushed(&linked(links, &s.coupon_code)?)?;
                (p.state == "created" && p.spec != *s).then(|| (s.clone(), p.spec))
            })
            .collect();
        let all_held = wanted
            .iter()
            .filter(|s| {
                linked(links, &s.coupon_code)
                    .and_then(|l| pushed(&l))
                    .is_some_and(|p| p.state == "created")
            })
            .count();
        let first = held.first().map(|(s, p)| s.update_params(p));
        let alike = held.len() >= 2
            && held.len() == all_held
            && held.iter().all(|(s, p)| Some(s.update_params(p)) == first)
            && first
                .as_ref()
                .is_some_and(|f| f.iter().all(|(k, _)| *k != "new_group"));
        let mut by_code = held.clone();
        if alike {
            let mut params = vec![("group", held[0].0.group.clone())];
            params.extend(first.unwrap_or_default());
            match self.update(params).await {
                Ok(n) if n as usize == held.len() => {
                    for (s, _) in &held {
                        set_link(links, code_link(s, "created"));
                    }
                    input.record(links, PROVIDER).await?;
                    by_code.clear();
                }
                // the group does not hold what we think (edited by hand): code by code
                Ok(_) => {}
                Err(e) if classic_code(&e) == Some(E_NOT_FOUND) => {}
                Err(e) => return Err(e),
            }
        }
        for (s, p) in by_code {
            let mut params = vec![("coupon_code", s.coupon_code.clone())];
            params.extend(s.update_params(&p));
            match self.update(params).await {
                Ok(_) => set_link(links, code_link(&s, "created")),
                // deleted by hand: created again
                Err(e) if classic_code(&e) == Some(E_NOT_FOUND) => {
                    drop_link(links, &s.coupon_code);
                    still_added.push(s);
                }
                Err(e) => return Err(e),
            }
            input.record(links, PROVIDER).await?;
        }
        // 5. creates: the intent is recorded before the request, so a code found taken after a
        // lost answer is known to be ours
        for s in still_added {
            // an intent from an earlier attempt whose answer was lost (what it asked for)
            let prior = linked(links, &s.coupon_code)
                .and_then(|l| pushed(&l))
                .filter(|p| p.state == "sent")
                .map(|p| p.spec);
            set_link(links, code_link(&s, "sent"));
            input.record(links, PROVIDER).await?;
            match self
                .call(
                    "create_coupon",
                    "/2.1/product/create_coupon",
                    &s.create_params(),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if classic_code(&e) == Some(E_DUPLICATE) => {
                    if prior.is_none() {
                        // a definite answer: this attempt created nothing, so no intent stays
                        drop_link(links, &s.coupon_code);
                        input.record(links, PROVIDER).await?;
                    }
                    self.adopt(input, &s, prior.as_ref()).await?;
                }
                // a definite refusal: nothing was created
                Err(e)
                    if matches!(
                        e,
                        ProviderError::Rejected { .. } | ProviderError::Refused(_)
                    ) =>
                {
                    drop_link(links, &s.coupon_code);
                    input.record(links, PROVIDER).await?;
                    return Err(e);
                }
                // the answer may have been lost after Classic created it: the intent stays
                Err(e) => return Err(e),
            }
            set_link(links, code_link(&s, "created"));
            input.record(links, PROVIDER).await?;
        }
        Ok(note)
    }

    /// The code exists: ours (an earlier create whose answer was lost, or a code that moved here
    /// from another coupon of the program) is brought to `s`, moved into our group; anything else
    /// is refused.
    async fn adopt(
        &self,
        input: &PushInput<'_>,
        s: &ClassicSpec,
        prior: Option<&ClassicSpec>,
    ) -> Result<(), ProviderError> {
        let taken = |why: &str| ProviderError::Rejected {
            provider: PROVIDER,
            status: 200,
            code: Some(E_DUPLICATE.to_string()),
            param: Some("coupon_code".into()),
            detail: format!(
                "code '{}' is taken by a Paddle Classic coupon {why}",
                s.coupon_code
            ),
        };
        // what our lost create asked for: a different discount or coupon type cannot be updated
        if let Some(p) = prior
            && p.immutable() != s.immutable()
        {
            self.delete(&s.coupon_code).await?;
            self.call(
                "create_coupon",
                "/2.1/product/create_coupon",
                &s.create_params(),
            )
            .await?;
            return Ok(());
        }
        let mut theirs = None;
        if prior.is_none() {
            let Some(product) = s.product_ids.first().copied().or(self.lookup_product) else {
                return Err(taken(
                    "that coupond cannot look up (set paddle.lookup_product_id to list checkout coupons)",
                ));
            };
            let found = self.find(&s.coupon_code, product).await?;
            match &found {
                Some(c)
                    if c["description"]
                        .as_str()
                        .is_some_and(|d| owned_by_program(d, input.program)) => {}
                _ => return Err(taken("that coupond does not manage")),
            }
            theirs = found;
        }
        // a different discount type cannot be updated: delete it and create ours (the list does
        // not show the coupon type; a moved code keeps its own, see docs/providers/paddle-classic.md)
        if theirs
            .as_ref()
            .is_some_and(|t| t["discount_type"].as_str() != Some(s.discount_type.as_str()))
        {
            self.delete(&s.coupon_code).await?;
            self.call(
                "create_coupon",
                "/2.1/product/create_coupon",
                &s.create_params(),
            )
            .await?;
            return Ok(());
        }
        // we cannot read a Classic coupon whole: send every field we manage
        let blank = ClassicSpec {
            discount_amount: String::new(),
            currency: None,
            recurring: !s.recurring,
            product_ids: if s.product_ids.is_empty() {
                vec![0]
            } else {
                Vec::new()
            },
            expires: Some(String::new()),
            allowed_uses: -1,
            minimum_threshold: None,
            group: String::new(),
            ..s.clone()
        };
        let mut params = vec![("coupon_code", s.coupon_code.clone())];
        params.extend(s.update_params(&blank));
        self.update(params).await.map(|_| ())
    }
}
