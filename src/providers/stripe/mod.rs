//! Stripe: a coupon → a Stripe Coupon (deterministic id per terms), each code → a Promotion Code
//! on it (`promotion[type]=coupon`, API version 2026-07-29.dahlia). Form bodies with bracket keys,
//! an `Idempotency-Key` on every POST, our marker in metadata.

pub mod mapping;
pub mod reconcile;

use super::http::{Answer, Transport, retry_after};
use super::{ProviderError, PushInput, PushNote};
use crate::config::Secret;
use crate::store::outbox::Link;
use mapping::{
    CodeSpec, CouponSpec, MARKER, MARKER_COUPON, MARKER_PROGRAM, coupon_id, map_code, map_coupon,
};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const API_VERSION: &str = "2026-07-29.dahlia";
const PROVIDER: &str = "Stripe";
const FORM: &str = "application/x-www-form-urlencoded";

#[derive(Serialize)]
struct CreateCoupon<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    percent_off: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_off: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
    duration: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_in_months: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_redemptions: Option<i64>,
    name: &'a str,
    metadata: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct UpdateCoupon<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Promotion<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    coupon: &'a str,
}

#[derive(Serialize)]
struct Restrictions<'a> {
    first_time_transaction: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum_amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum_amount_currency: Option<&'a str>,
}

#[derive(Serialize)]
struct CreateCode<'a> {
    promotion: Promotion<'a>,
    code: &'a str,
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_redemptions: Option<i64>,
    restrictions: Restrictions<'a>,
    metadata: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct UpdateCode {
    active: bool,
    /// Never sent empty: `metadata=` would clear every key (our markers included).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
}

/// Metadata to send on an update: Stripe merges, so removed keys are sent as `""`.
fn metadata_update(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut m = new.clone();
    for k in old.keys() {
        if !new.contains_key(k) {
            m.insert(k.clone(), String::new());
        }
    }
    m
}

/// A flat query string (`code=X&active=true`).
fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn form<T: Serialize>(v: &T) -> String {
    serde_qs::to_string(v).unwrap_or_default()
}

/// Our view of a remote promotion code, to compare with what we want.
pub fn code_spec_from_remote(v: &Value) -> CodeSpec {
    let r = &v["restrictions"];
    CodeSpec {
        code: v["code"].as_str().unwrap_or_default().to_owned(),
        active: v["active"].as_bool().unwrap_or(false),
        expires_at: v["expires_at"].as_i64(),
        max_redemptions: v["max_redemptions"].as_i64(),
        first_time_transaction: r["first_time_transaction"].as_bool().unwrap_or(false),
        minimum_amount: r["minimum_amount"].as_i64(),
        minimum_amount_currency: r["minimum_amount_currency"].as_str().map(str::to_owned),
        customer: v["customer"].as_str().map(str::to_owned),
        metadata: metadata_of(v),
    }
}

pub fn metadata_of(v: &Value) -> BTreeMap<String, String> {
    v["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Does a remote coupon hold the terms Stripe cannot change (so it can be adopted)?
fn same_terms(spec: &CouponSpec, remote: &Value) -> bool {
    reconcile::coupon_drift(spec, remote)
        .iter()
        .all(|d| d.field == "name" || d.field.starts_with("metadata."))
}

/// Is this remote object ours, for this program and coupon?
fn owned_by(v: &Value, program: &str, uuid: &str) -> bool {
    let m = &v["metadata"];
    m[MARKER] == "1"
        && m[MARKER_PROGRAM] == program
        && m[MARKER_COUPON]
            .as_str()
            .is_some_and(|c| c.eq_ignore_ascii_case(uuid))
}

/// Whether `remote_id` is not (yet) the recorded object of this code.
fn kept_id_changed(links: &[Link], code: &str, remote_id: &str) -> bool {
    !links.iter().any(|l| {
        l.kind == "code" && l.local_key.eq_ignore_ascii_case(code) && l.remote_id == remote_id
    })
}

fn set_link(links: &mut Vec<Link>, link: Link) {
    links.retain(|l| !(l.kind == link.kind && l.local_key.eq_ignore_ascii_case(&link.local_key)));
    links.push(link);
}

/// One Stripe account.
pub struct StripeClient {
    base: String,
    key: Secret,
    transport: Transport,
}

impl StripeClient {
    pub fn new(base: &str, key: Secret, transport: Transport) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            key,
            transport,
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Turns a non-2xx answer into a classified error.
    fn classify(ans: Answer) -> Result<Value, ProviderError> {
        if (200..300).contains(&ans.status) {
            return Ok(ans.json());
        }
        let body = ans.json();
        let err = &body["error"];
        let code = err["code"].as_str().map(str::to_owned);
        let param = err["param"].as_str().map(str::to_owned);
        let detail = err["message"].as_str().unwrap_or("no message").to_owned();
        let should_retry = ans
            .headers
            .get("stripe-should-retry")
            .and_then(|v| v.to_str().ok())
            .map(|v| v == "true");
        Err(match ans.status {
            401 | 403 => ProviderError::Credentials {
                provider: PROVIDER,
                status: ans.status,
                detail,
            },
            429 => ProviderError::RateLimited {
                provider: PROVIDER,
                retry_after: retry_after(&ans.headers),
                detail,
            },
            s if should_retry == Some(false) => ProviderError::Rejected {
                provider: PROVIDER,
                status: s,
                code,
                param,
                detail,
            },
            s if should_retry == Some(true) || s == 408 || s == 409 || s == 424 || s >= 500 => {
                ProviderError::Transient {
                    provider: PROVIDER,
                    status: Some(s),
                    detail,
                }
            }
            s => ProviderError::Rejected {
                provider: PROVIDER,
                status: s,
                code,
                param,
                detail,
            },
        })
    }

    async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<String>,
        idem: Option<String>,
    ) -> Result<Value, ProviderError> {
        let url = format!("{}{path}", self.base);
        let ans = self
            .transport
            .send(op, || {
                let mut r = self
                    .transport
                    .client()
                    .request(method.clone(), &url)
                    .bearer_auth(self.key.expose())
                    .header("Stripe-Version", API_VERSION);
                if let Some(b) = &body {
                    r = r
                        .header(reqwest::header::CONTENT_TYPE, FORM)
                        .body(b.clone());
                }
                if let Some(k) = &idem {
                    r = r.header("Idempotency-Key", k);
                }
                r
            })
            .await?;
        Self::classify(ans)
    }

    /// A POST with an idempotency key derived from what it does and the claim of this attempt: in-attempt
    /// transport retries replay; a later attempt (after e.g. a replayed 500) gets a fresh key, and
    /// duplicates are then prevented by deterministic ids and adopt-on-duplicate.
    async fn post(
        &self,
        input: &PushInput<'_>,
        op: &'static str,
        path: &str,
        body: String,
    ) -> Result<Value, ProviderError> {
        // The claim token is unique per attempt and stable within it: transport retries inside the
        // attempt replay, while no later attempt (a new revision, a retried dead sync, a restart)
        // can ever replay an earlier answer.
        let c = &input.desired.coupon;
        let key_src = format!(
            "{}|{}|{}|{op}|{path}|{body}",
            input.program, c.uuid_code, input.claim_token
        );
        let key = hex::encode(Sha256::digest(key_src.as_bytes()));
        self.call(op, Method::POST, path, Some(body), Some(key))
            .await
    }

    pub async fn get(&self, op: &'static str, path: &str) -> Result<Value, ProviderError> {
        self.call(op, Method::GET, path, None, None).await
    }

    /// Makes Stripe hold the desired coupon and codes.
    pub async fn push(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
    ) -> Result<PushNote, ProviderError> {
        let d = input.desired;
        if d.deleted {
            return self.retire(input, links).await;
        }
        let spec =
            map_coupon(input.program, input.currency, &d.coupon).map_err(ProviderError::Refused)?;
        let codes = d
            .codes
            .iter()
            .map(|c| map_code(input.program, input.currency, &d.coupon, c, input.now))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProviderError::Refused)?;
        let mut note = PushNote::default();
        let want_id = coupon_id(input.program, &d.coupon.uuid_code, &spec);
        let current = links.iter().find(|l| l.kind == "coupon").cloned();
        // Same terms: edit name and metadata in place. A 404 means the coupon is gone (deleted by
        // hand, or before a crash): it is created again below.
        let mut in_place = None;
        if let Some(l) = current
            .as_ref()
            .filter(|l| l.fingerprint == spec.immutable())
        {
            let pushed: Option<CouponSpec> = serde_json::from_value(l.remote.clone()).ok();
            if pushed
                .as_ref()
                .is_none_or(|p| p.name != spec.name || p.metadata != spec.metadata)
            {
                let old_meta = pushed.map(|p| p.metadata).unwrap_or_default();
                let body = form(&UpdateCoupon {
                    name: &spec.name,
                    metadata: metadata_update(&old_meta, &spec.metadata),
                });
                match self
                    .post(
                        input,
                        "update_coupon",
                        &format!("/v1/coupons/{}", l.remote_id),
                        body,
                    )
                    .await
                {
                    Ok(_) => in_place = Some(l.remote_id.clone()),
                    Err(e) if e.status() == Some(404) => links.retain(|x| x.kind != "coupon"),
                    Err(e) => return Err(e),
                }
            } else {
                in_place = Some(l.remote_id.clone());
            }
        }
        let id = match in_place {
            Some(id) => id,
            None => {
                if let Some(old) = links.iter().find(|l| l.kind == "coupon").cloned() {
                    // keep the old coupon known until its codes have moved and it is deleted
                    links.retain(|x| x.kind != "coupon");
                    set_link(
                        links,
                        Link {
                            kind: "retire".into(),
                            local_key: old.remote_id.clone(),
                            ..old
                        },
                    );
                    note.replaced = Some("discount terms cannot be edited in place".into());
                } else if current.is_none() {
                    note.created = true;
                }
                // Intent before the side effect: if we crash after Stripe created it, the next
                // push finds this link and retires the coupon unless it is still the one wanted.
                set_link(
                    links,
                    Link {
                        kind: "retire".into(),
                        local_key: want_id.clone(),
                        remote_id: want_id.clone(),
                        fingerprint: spec.immutable(),
                        remote: Value::Null,
                    },
                );
                input.record(links, PROVIDER).await?;
                let id = self.create_or_adopt_coupon(input, &want_id, &spec).await?;
                // the object now in use is no longer to be retired (a different `want_id` stays:
                // it was deleted already, or holds other terms and must go)
                links.retain(|x| !(x.kind == "retire" && x.remote_id == id));
                id
            }
        };
        set_link(
            links,
            Link {
                kind: "coupon".into(),
                local_key: String::new(),
                remote_id: id.clone(),
                fingerprint: spec.immutable(),
                remote: serde_json::to_value(&spec).unwrap_or_default(),
            },
        );
        input.record(links, PROVIDER).await?;
        for cs in &codes {
            let fp = cs.immutable(&id);
            let existing = links
                .iter()
                .find(|l| l.kind == "code" && l.local_key.eq_ignore_ascii_case(&cs.code))
                .cloned();
            let kept = match existing {
                Some(l) if l.fingerprint == fp => {
                    let pushed: Option<CodeSpec> = serde_json::from_value(l.remote.clone()).ok();
                    if pushed
                        .as_ref()
                        .is_none_or(|p| p.active != cs.active || p.metadata != cs.metadata)
                    {
                        let old_meta = pushed.map(|p| p.metadata).unwrap_or_default();
                        let body = form(&UpdateCode {
                            active: cs.active,
                            metadata: metadata_update(&old_meta, &cs.metadata),
                        });
                        match self
                            .post(
                                input,
                                "update_promotion_code",
                                &format!("/v1/promotion_codes/{}", l.remote_id),
                                body,
                            )
                            .await
                        {
                            Ok(_) => Some(l.remote_id),
                            // gone: create it again
                            Err(e) if e.status() == Some(404) => None,
                            Err(e) => return Err(e),
                        }
                    } else {
                        Some(l.remote_id)
                    }
                }
                Some(l) => {
                    self.deactivate(input, &l.remote_id).await?;
                    links.retain(|x| {
                        !(x.kind == "code" && x.local_key.eq_ignore_ascii_case(&cs.code))
                    });
                    if note.replaced.is_none() {
                        note.replaced = Some(
                            "promotion-code expiry and limits cannot be edited in place".into(),
                        );
                    }
                    None
                }
                None => None,
            };
            let remote_id = match kept {
                Some(r) => r,
                None => match self.create_or_adopt_code(input, cs, &id).await {
                    Ok(r) => r,
                    // the Stripe coupon disappeared under us: forget it so the next attempt recreates it
                    Err(e)
                        if e.code() == Some("resource_missing")
                            && e.param() == Some("promotion[coupon]") =>
                    {
                        links.retain(|x| x.kind != "coupon");
                        input.record(links, PROVIDER).await?;
                        return Err(ProviderError::Transient {
                            provider: PROVIDER,
                            status: Some(400),
                            detail: format!("Stripe coupon {id} is gone; it will be created again"),
                        });
                    }
                    Err(e) => return Err(e),
                },
            };
            let created = kept_id_changed(links, &cs.code, &remote_id);
            set_link(
                links,
                Link {
                    kind: "code".into(),
                    local_key: cs.code.clone(),
                    remote_id,
                    fingerprint: fp,
                    remote: serde_json::to_value(cs).unwrap_or_default(),
                },
            );
            if created {
                // a new provider object is recorded at once, so a crash cannot leave it unmanaged
                input.record(links, PROVIDER).await?;
            }
        }
        // codes deleted here: Stripe has no delete, so deactivate
        let gone: Vec<Link> = links
            .iter()
            .filter(|l| {
                l.kind == "code"
                    && !codes
                        .iter()
                        .any(|c| c.code.eq_ignore_ascii_case(&l.local_key))
            })
            .cloned()
            .collect();
        for l in gone {
            self.deactivate(input, &l.remote_id).await?;
            links.retain(|x| !(x.kind == "code" && x.local_key == l.local_key));
        }
        self.delete_retired(links).await?;
        Ok(note)
    }

    /// Deleted coupon: deactivate its codes, delete the Stripe coupon(s).
    async fn retire(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
    ) -> Result<PushNote, ProviderError> {
        for l in links.clone().iter().filter(|l| l.kind == "code") {
            self.deactivate(input, &l.remote_id).await?;
            links.retain(|x| !(x.kind == "code" && x.local_key == l.local_key));
        }
        for l in links.iter_mut().filter(|l| l.kind == "coupon") {
            l.kind = "retire".into();
            l.local_key = l.remote_id.clone();
        }
        self.delete_retired(links).await?;
        Ok(PushNote {
            retired: true,
            ..Default::default()
        })
    }

    async fn delete_retired(&self, links: &mut Vec<Link>) -> Result<(), ProviderError> {
        for l in links.clone().iter().filter(|l| l.kind == "retire") {
            match self
                .call(
                    "delete_coupon",
                    Method::DELETE,
                    &format!("/v1/coupons/{}", l.remote_id),
                    None,
                    None,
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e),
            }
            links.retain(|x| !(x.kind == "retire" && x.local_key == l.local_key));
        }
        Ok(())
    }

    async fn deactivate(
        &self,
        input: &PushInput<'_>,
        remote_id: &str,
    ) -> Result<(), ProviderError> {
        let body = form(&UpdateCode {
            active: false,
            metadata: BTreeMap::new(),
        });
        match self
            .post(
                input,
                "deactivate_promotion_code",
                &format!("/v1/promotion_codes/{remote_id}"),
                body,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates the coupon, or adopts ours when the id exists (a retry after a crash).
    async fn create_or_adopt_coupon(
        &self,
        input: &PushInput<'_>,
        id: &str,
        spec: &CouponSpec,
    ) -> Result<String, ProviderError> {
        let uuid = &input.desired.coupon.uuid_code;
        let mut id = id.to_owned();
        for _ in 0..2 {
            let body = form(&CreateCoupon {
                id: &id,
                percent_off: spec.percent_off.as_deref(),
                amount_off: spec.amount_off,
                currency: spec.currency.as_deref(),
                duration: &spec.duration,
                duration_in_months: spec.duration_in_months,
                max_redemptions: spec.max_redemptions,
                name: &spec.name,
                metadata: &spec.metadata,
            });
            match self.post(input, "create_coupon", "/v1/coupons", body).await {
                Ok(_) => return Ok(id),
                Err(e) if e.code() == Some("resource_already_exists") => match self
                    .get("get_coupon", &format!("/v1/coupons/{id}"))
                    .await
                {
                    // ours, with the terms wanted: adopt it (a create whose answer was lost)
                    Ok(remote)
                        if owned_by(&remote, input.program, uuid) && same_terms(spec, &remote) =>
                    {
                        let meta = metadata_of(&remote);
                        if remote["name"].as_str() != Some(spec.name.as_str())
                            || meta != spec.metadata
                        {
                            let body = form(&UpdateCoupon {
                                name: &spec.name,
                                metadata: metadata_update(&meta, &spec.metadata),
                            });
                            self.post(input, "update_coupon", &format!("/v1/coupons/{id}"), body)
                                .await?;
                        }
                        return Ok(id);
                    }
                    // ours but with other terms (changed by hand): use a fresh id; the old object
                    // stays linked for retirement
                    Ok(remote) if owned_by(&remote, input.program, uuid) => {
                        id = format!("{id}_r{}", input.desired.coupon.revision)
                    }
                    Ok(_) => {
                        return Err(ProviderError::Rejected {
                            provider: PROVIDER,
                            status: 400,
                            code: Some("resource_already_exists".into()),
                            param: None,
                            detail: format!(
                                "a Stripe coupon with id {id} exists and is not managed by coupond"
                            ),
                        });
                    }
                    // the id belonged to a coupon we deleted; Stripe does not reuse it
                    Err(g) if g.status() == Some(404) => {
                        id = format!("{id}_r{}", input.desired.coupon.revision)
                    }
                    Err(g) => return Err(g),
                },
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::Rejected {
            provider: PROVIDER,
            status: 400,
            code: None,
            param: None,
            detail: format!("no free coupon id for {uuid}"),
        })
    }

    /// Creates a promotion code, or adopts ours when the code is already active there.
    async fn create_or_adopt_code(
        &self,
        input: &PushInput<'_>,
        cs: &CodeSpec,
        coupon: &str,
    ) -> Result<String, ProviderError> {
        let body = form(&CreateCode {
            promotion: Promotion {
                kind: "coupon",
                coupon,
            },
            code: &cs.code,
            active: cs.active,
            customer: cs.customer.as_deref(),
            expires_at: cs.expires_at,
            max_redemptions: cs.max_redemptions,
            restrictions: Restrictions {
                first_time_transaction: cs.first_time_transaction,
                minimum_amount: cs.minimum_amount,
                minimum_amount_currency: cs.minimum_amount_currency.as_deref(),
            },
            metadata: &cs.metadata,
        });
        for _ in 0..2 {
            match self
                .post(
                    input,
                    "create_promotion_code",
                    "/v1/promotion_codes",
                    body.clone(),
                )
                .await
            {
                Ok(v) => {
                    return v["id"]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| self.bad_answer("promotion code without id"));
                }
                Err(e) if e.code() == Some("resource_already_exists") => {
                    let q = query(&[
                        ("code", cs.code.as_str()),
                        ("active", "true"),
                        ("limit", "10"),
                    ]);
                    let list = self
                        .get("list_promotion_codes", &format!("/v1/promotion_codes?{q}"))
                        .await?;
                    let found = list["data"]
                        .as_array()
                        .and_then(|a| {
                            a.iter().find(|c| {
                                c["code"]
                                    .as_str()
                                    .is_some_and(|x| x.eq_ignore_ascii_case(&cs.code))
                            })
                        })
                        .cloned();
                    let Some(remote) = found else { continue };
                    let rid = remote["id"].as_str().unwrap_or_default().to_owned();
                    if !owned_by(&remote, input.program, &input.desired.coupon.uuid_code) {
                        return Err(ProviderError::Rejected {
                            provider: PROVIDER,
                            status: 400,
                            code: Some("resource_already_exists".into()),
                            param: None,
                            detail: format!(
                                "code '{}' is taken by an active Stripe promotion code coupond does not manage ({rid})",
                                cs.code
                            ),
                        });
                    }
                    let theirs = code_spec_from_remote(&remote);
                    let on_coupon = remote["promotion"]["coupon"].as_str() == Some(coupon);
                    if on_coupon && theirs.immutable(coupon) == cs.immutable(coupon) {
                        if theirs.active != cs.active || theirs.metadata != cs.metadata {
                            let body = form(&UpdateCode {
                                active: cs.active,
                                metadata: metadata_update(&theirs.metadata, &cs.metadata),
                            });
                            self.post(
                                input,
                                "update_promotion_code",
                                &format!("/v1/promotion_codes/{rid}"),
                                body,
                            )
                            .await?;
                        }
                        return Ok(rid);
                    }
                    // ours but stale (older terms or coupon): retire it and create again
                    self.deactivate(input, &rid).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::Transient {
            provider: PROVIDER,
            status: Some(400),
            detail: format!("code '{}' is still taken; will retry", cs.code),
        })
    }

    /// Deletes a Stripe coupon (reconcile retiring an orphan).
    pub async fn delete_coupon(&self, id: &str) -> Result<(), ProviderError> {
        self.call(
            "delete_coupon",
            Method::DELETE,
            &format!("/v1/coupons/{id}"),
            None,
            None,
        )
        .await
        .map(|_| ())
    }

    /// Deactivates a promotion code (reconcile retiring an orphan), with a fresh idempotency key.
    pub async fn deactivate_code(&self, id: &str) -> Result<(), ProviderError> {
        let body = form(&UpdateCode {
            active: false,
            metadata: BTreeMap::new(),
        });
        let key = uuid::Uuid::new_v4().to_string();
        self.call(
            "deactivate_promotion_code",
            Method::POST,
            &format!("/v1/promotion_codes/{id}"),
            Some(body),
            Some(key),
        )
        .await
        .map(|_| ())
    }

    fn bad_answer(&self, what: &str) -> ProviderError {
        ProviderError::Transient {
            provider: PROVIDER,
            status: None,
            detail: what.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn form_bodies_are_exact() {
        let m = meta(&[("coupond", "1"), ("note", "a&b=c")]);
        let create = form(&CreateCoupon {
            id: "cpd_x",
            percent_off: Some("12.5"),
            amount_off: None,
            currency: None,
            duration: "repeating",
            duration_in_months: Some(3),
            max_redemptions: None,
            name: "Summer",
            metadata: &m,
        });
        assert_eq!(
            create,
            "id=cpd_x&percent_off=12.5&duration=repeating&duration_in_months=3&name=Summer&metadata[coupond]=1&metadata[note]=a%26b%3Dc"
        );
        let code = form(&CreateCode {
            promotion: Promotion {
                kind: "coupon",
                coupon: "cpd_x",
            },
            code: "SUMMER-1",
            active: true,
            customer: None,
            expires_at: Some(1_900_000_000),
            max_redemptions: None,
            restrictions: Restrictions {
                first_time_transaction: true,
                minimum_amount: Some(5000),
                minimum_amount_currency: Some("usd"),
            },
            metadata: &meta(&[("coupond", "1")]),
        });
        assert_eq!(
            code,
            "promotion[type]=coupon&promotion[coupon]=cpd_x&code=SUMMER-1&active=true&expires_at=1900000000&\
             restrictions[first_time_transaction]=true&restrictions[minimum_amount]=5000&restrictions[minimum_amount_currency]=usd&metadata[coupond]=1"
        );
    }

    #[test]
    fn deactivation_never_clears_metadata() {
        assert_eq!(
            form(&UpdateCode {
                active: false,
                metadata: BTreeMap::new()
            }),
            "active=false"
        );
        let removed = metadata_update(&meta(&[("a", "1"), ("b", "2")]), &meta(&[("a", "1")]));
        assert_eq!(
            form(&UpdateCode {
                active: true,
                metadata: removed
            }),
            "active=true&metadata[a]=1&metadata[b]="
        );
    }

    #[test]
    fn lookup_query_is_flat() {
        assert_eq!(
            query(&[("code", "A B"), ("active", "true")]),
            "code=A+B&active=true"
        );
    }
}
