//! Shopify (GraphQL Admin API, pinned version): each promotion code becomes one
//! `DiscountCodeBasic` carrying its coupon's terms and its own restrictions, tagged `coupond`
//! plus owner tags, with a `coupond.owner` metafield. Business errors arrive as `userErrors`
//! with HTTP 200, throttling as `THROTTLED` (usually HTTP 200) or 429; the request pacing
//! follows the cost bucket Shopify reports in `extensions.cost.throttleStatus`.

pub mod documents;
pub mod mapping;

use super::http::{Transport, retry_after};
use super::{ProviderError, PushInput, PushNote};
use crate::config::{BillingInterval, Secret};
use crate::domain::PromotionCode;
use crate::store::outbox::Link;
use mapping::{METAFIELD_KEY, METAFIELD_NAMESPACE, ShopifySpec, map_code, owned_by};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PROVIDER: &str = "Shopify";
/// What a mutation costs (Shopify's documented flat price).
pub const MUTATION_COST: f64 = 10.0;
/// A `THROTTLED` answer needing a wait shorter than this is waited out inside the call.
const WAIT_OUT: Duration = Duration::from_secs(10);

/// The cost bucket as Shopify last reported it (nothing is assumed before the first answer).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    maximum: f64,
    /// Points left at `at`, after every reservation (negative: reservations wait for refill).
    available: f64,
    restore_rate: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct PacerState {
    bucket: Option<Bucket>,
    /// Points reserved by requests sent and not yet answered: Shopify may not have charged them
    /// when it reports the bucket, so they are kept off what it reports.
    in_flight: f64,
    /// Reservations handed out so far (their order is the order requests are sent in).
    reserved: u64,
    /// The reservation whose answer last set `bucket`: an answer to an earlier request that
    /// arrives later is older news and is not taken.
    reported_by: Option<u64>,
}

/// A request's claim on the bucket, given back with its answer.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    cost: f64,
    seq: u64,
}

/// Paces requests by the calculated-cost leaky bucket Shopify reports.
#[derive(Default)]
pub struct CostPacer {
    state: Mutex<PacerState>,
}

impl CostPacer {
    /// Reserves `cost` points and says how long to wait before sending.
    pub fn reserve(&self, cost: f64) -> (Duration, Reservation) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.in_flight += cost;
        g.reserved += 1;
        let r = Reservation {
            cost,
            seq: g.reserved,
        };
        let Some(b) = g.bucket.as_mut() else {
            return (Duration::ZERO, r);
        };
        let now = Instant::now();
        let avail =
            (b.available + now.duration_since(b.at).as_secs_f64() * b.restore_rate).min(b.maximum);
        b.available = avail - cost;
        b.at = now;
        // one mutation's worth stays in the bucket for the estimate's error (the clocks, the
        // whole points Shopify reports): it lowers the level the bucket is drained to, not the
        // rate, which is the restore rate either way
        let short = MUTATION_COST - b.available;
        let wait = if short <= 0.0 || b.restore_rate <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(short / b.restore_rate)
        };
        (wait, r)
    }

    /// The request got an answer: Shopify's word for the bucket
    /// (`extensions.cost.throttleStatus`), when it gave one, replaces our estimate, unless a
    /// request sent after this one has reported already.
    pub fn settle(&self, r: Reservation, reported: Option<&Value>) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.in_flight = (g.in_flight - r.cost).max(0.0);
        let Some(t) = reported.map(|c| &c["throttleStatus"]) else {
            return;
        };
        if g.reported_by.is_some_and(|last| last > r.seq) {
            return;
        }
        let (Some(maximum), Some(available), Some(restore_rate)) = (
            t["maximumAvailable"].as_f64(),
            t["currentlyAvailable"].as_f64(),
            t["restoreRate"].as_f64(),
        ) else {
            return;
        };
        let in_flight = g.in_flight;
        g.reported_by = Some(r.seq);
        g.bucket = Some(Bucket {
            maximum,
            available: available - in_flight,
            restore_rate,
            at: Instant::now(),
        });
    }

    /// The last reported state: (available now, maximum, restore rate per second).
    pub fn state(&self) -> Option<(f64, f64, f64)> {
        let g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.bucket.map(|b| {
            let avail =
                (b.available + b.at.elapsed().as_secs_f64() * b.restore_rate).min(b.maximum);
            (avail, b.maximum, b.restore_rate)
        })
    }
}

/// What we last pushed for a code, kept in its link.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pushed {
    spec: ShopifySpec,
    /// The `coupond.owner` metafield holds `spec.owner`.
    #[serde(default)]
    owner_set: bool,
    /// A create went out and its id is not recorded yet (`remote_id` is empty).
    #[serde(default)]
    pending: bool,
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

fn set_link(links: &mut Vec<Link>, link: Link) {
    links.retain(|l| !(l.kind == link.kind && l.local_key.eq_ignore_ascii_case(&link.local_key)));
    links.push(link);
}

/// A `userErrors` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct UserError {
    pub field: Option<Vec<String>>,
    pub code: Option<String>,
    pub message: String,
}

fn user_errors(payload: &Value) -> Vec<UserError> {
    serde_json::from_value(payload["userErrors"].clone()).unwrap_or_default()
}

fn rejected(e: &UserError) -> ProviderError {
    ProviderError::Rejected {
        provider: PROVIDER,
        status: 200,
        code: e.code.clone(),
        param: e.field.as_ref().map(|f| f.join(".")),
        detail: e.message.clone(),
    }
}

/// One Shopify shop.
pub struct ShopifyClient {
    endpoint: String,
    token: Secret,
    interval: BillingInterval,
    transport: Transport,
    pacer: CostPacer,
}

impl ShopifyClient {
    pub fn new(
        base: &str,
        version: &str,
        token: Secret,
        interval: BillingInterval,
        transport: Transport,
    ) -> Self {
        Self {
            endpoint: format!(
                "{}/admin/api/{version}/graphql.json",
                base.trim_end_matches('/')
            ),
            token,
            interval,
            transport,
            pacer: CostPacer::default(),
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn pacer(&self) -> &CostPacer {
        &self.pacer
    }

    pub fn billing_interval(&self) -> BillingInterval {
        self.interval
    }

    /// Runs one document; returns `data`. Waits for the cost bucket first, and waits out short
    /// `THROTTLED` answers (whatever their HTTP status) before trying again.
    pub async fn graphql(
        &self,
        op: &'static str,
        query: &str,
        variables: Value,
        cost: f64,
    ) -> Result<Value, ProviderError> {
        let body = json!({"query": query, "variables": variables});
        for _ in 0..5 {
            let (wait, reservation) = self.pacer.reserve(cost);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let sent = self
                .transport
                .send(op, || {
                    self.transport
                        .client()
                        .post(&self.endpoint)
                        .header("X-Shopify-Access-Token", self.token.expose())
                        .json(&body)
                })
                .await;
            let ans = match sent {
                Ok(a) => a,
                Err(e) => {
                    self.pacer.settle(reservation, None);
                    return Err(e);
                }
            };
            let v = ans.json();
            self.pacer.settle(reservation, v["extensions"].get("cost"));
            let detail = || match &v["errors"] {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|e| e["message"].as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => String::from_utf8_lossy(&ans.body)
                    .chars()
                    .take(200)
                    .collect(),
            };
            let throttled = v["errors"]
                .as_array()
                .is_some_and(|a| a.iter().any(|e| e["extensions"]["code"] == "THROTTLED"));
            match ans.status {
                200 if throttled => {
                    metrics::counter!("coupond_provider_throttled_total", "provider" => PROVIDER)
                        .increment(1);
                    let (avail, _, rate) = self.pacer.state().unwrap_or((0.0, 0.0, 0.0));
                    let need = v["extensions"]["cost"]["requestedQueryCost"]
                        .as_f64()
                        .unwrap_or(cost);
                    let wait = if rate > 0.0 {
                        Duration::from_secs_f64(((need - avail) / rate).max(0.0))
                    } else {
                        Duration::from_secs(1)
                    };
                    if wait > WAIT_OUT {
                        return Err(ProviderError::RateLimited {
                            provider: PROVIDER,
                            retry_after: Some(wait),
                            detail: "THROTTLED".into(),
                        });
                    }
                    if v["extensions"].get("cost").is_none() {
                        // no bucket state to wait on: wait what the answer implied
                        tokio::time::sleep(wait).await;
                    }
                    // the bucket state now says when `cost` fits: the next reserve waits for it
                    continue;
                }
                200 => {}
                401 | 403 => {
                    return Err(ProviderError::Credentials {
                        provider: PROVIDER,
                        status: ans.status,
                        detail: detail(),
                    });
                }
                429 => {
                    return Err(ProviderError::RateLimited {
                        provider: PROVIDER,
                        retry_after: retry_after(&ans.headers),
                        detail: detail(),
                    });
                }
                // 402: shop frozen (unpaid), 423: shop locked: a merchant matter; retried later
                s if s == 402 || s == 423 || s == 408 || s >= 500 => {
                    return Err(ProviderError::Transient {
                        provider: PROVIDER,
                        status: Some(s),
                        detail: match s {
                            402 => format!("the shop is frozen ({})", detail()),
                            423 => format!("the shop is locked ({})", detail()),
                            _ => detail(),
                        },
                    });
                }
                s => {
                    return Err(ProviderError::Rejected {
                        provider: PROVIDER,
                        status: s,
                        code: None,
                        param: None,
                        detail: detail(),
                    });
                }
            }
            if let Some(errs) = v["errors"].as_array().filter(|a| !a.is_empty()) {
                let code = errs[0]["extensions"]["code"].as_str().unwrap_or("");
                return Err(match code {
                    "ACCESS_DENIED" => ProviderError::Credentials {
                        provider: PROVIDER,
                        status: 403,
                        detail: detail(),
                    },
                    "INTERNAL_SERVER_ERROR" => ProviderError::Transient {
                        provider: PROVIDER,
                        status: Some(500),
                        detail: detail(),
                    },
                    c => ProviderError::Rejected {
                        provider: PROVIDER,
                        status: 200,
                        code: Some(c.to_owned()).filter(|c| !c.is_empty()),
                        param: None,
                        detail: detail(),
                    },
                });
            }
            return Ok(v["data"].clone());
        }
        Err(ProviderError::RateLimited {
            provider: PROVIDER,
            retry_after: None,
            detail: "THROTTLED five times in a row".into(),
        })
    }

    /// A mutation's payload; its first `userErrors` entry becomes the error.
    async fn mutate(
        &self,
        op: &'static str,
        doc: &str,
        root: &str,
        variables: Value,
    ) -> Result<Value, ProviderError> {
        let data = self.graphql(op, doc, variables, MUTATION_COST).await?;
        let payload = data[root].clone();
        match user_errors(&payload).first() {
            Some(e) => Err(rejected(e)),
            None => Ok(payload),
        }
    }

    /// The discount holding this code (case-insensitive), if any: (node id, DiscountCodeBasic).
    pub async fn by_code(&self, code: &str) -> Result<Option<(String, Value)>, ProviderError> {
        let data = self
            .graphql(
                "find_discount",
                documents::BY_CODE,
                json!({"code": code}),
                documents::BY_CODE_COST,
            )
            .await?;
        let node = &data["codeDiscountNodeByCode"];
        Ok(node["id"]
            .as_str()
            .map(|id| (id.to_owned(), node["codeDiscount"].clone())))
    }

    /// One page of the shop's code discounts (ours carry the `coupond` tags; the others are
    /// counted as foreign): nodes and the next cursor.
    pub async fn managed_page(
        &self,
        after: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), ProviderError> {
        let data = self
            .graphql(
                "list_discounts",
                documents::MANAGED,
                json!({"after": after, "query": "method:code"}),
                documents::MANAGED_COST,
            )
            .await?;
        let c = &data["discountNodes"];
        let next = (c["pageInfo"]["hasNextPage"] == true)
            .then(|| c["pageInfo"]["endCursor"].as_str().map(str::to_owned))
            .flatten();
        Ok((c["nodes"].as_array().cloned().unwrap_or_default(), next))
    }

    pub async fn delete_discount(&self, id: &str) -> Result<(), ProviderError> {
        match self
            .mutate(
                "delete_discount",
                documents::DELETE,
                "discountCodeDelete",
                json!({"id": id}),
            )
            .await
        {
            Ok(_) => Ok(()),
            // gone already (deleted by hand, or by an attempt whose answer was lost)
            Err(e) if e.param() == Some("id") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn set_active(&self, id: &str, active: bool) -> Result<(), ProviderError> {
        let (op, doc, root) = if active {
            (
                "activate_discount",
                documents::ACTIVATE,
                "discountCodeActivate",
            )
        } else {
            (
                "deactivate_discount",
                documents::DEACTIVATE,
                "discountCodeDeactivate",
            )
        };
        self.mutate(op, doc, root, json!({"id": id}))
            .await
            .map(|_| ())
    }

    async fn set_owner(&self, id: &str, spec: &ShopifySpec) -> Result<(), ProviderError> {
        self.mutate(
            "set_metafield",
            documents::METAFIELDS_SET,
            "metafieldsSet",
            json!({"metafields": [{
                "ownerId": id,
                "namespace": METAFIELD_NAMESPACE,
                "key": METAFIELD_KEY,
                "type": "json",
                "value": spec.owner,
            }]}),
        )
        .await
        .map(|_| ())
    }

    /// Makes Shopify hold the desired codes: one discount per code, deleted with the code.
    pub async fn push(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
    ) -> Result<PushNote, ProviderError> {
        let d = input.desired;
        let mut note = PushNote::default();
        if !d.deleted {
            // the coupon's own terms are checked even when it has no codes yet
            mapping::check_coupon(self.interval, &d.coupon).map_err(ProviderError::Refused)?;
        }
        let specs: Vec<(&PromotionCode, ShopifySpec)> = if d.deleted {
            Vec::new()
        } else {
            d.codes
                .iter()
                .map(|c| map_code(input.program, self.interval, &d.coupon, c).map(|s| (c, s)))
                .collect::<Result<_, _>>()
                .map_err(ProviderError::Refused)?
        };
        note.created = !d.deleted && !links.iter().any(|l| l.kind == "code");
        note.retired = d.deleted;
        // codes deleted here (or the whole coupon)
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
        for l in gone {
            if l.remote_id.is_empty() {
                // a create whose answer was lost: ours if its tags say so
                if let Some((id, basic)) = self.by_code(&l.local_key).await?
                    && owned_by(&tags_of(&basic), input.program, &d.coupon.uuid_code)
                {
                    self.delete_discount(&id).await?;
                }
            } else {
                self.delete_discount(&l.remote_id).await?;
            }
            links.retain(|x| !(x.kind == "code" && x.local_key == l.local_key));
            input.record(links, PROVIDER).await?;
        }
        if d.deleted {
            // a create whose answer was lost left a discount we never recorded
            for c in &d.codes {
                if let Some((id, basic)) = self.by_code(&c.code).await?
                    && owned_by(&tags_of(&basic), input.program, &d.coupon.uuid_code)
                {
                    self.delete_discount(&id).await?;
                }
            }
            return Ok(note);
        }
        let record =
            |links: &mut Vec<Link>, code: &str, id: &str, spec: &ShopifySpec, owner_set: bool| {
                set_link(
                    links,
                    code_link(
                        code,
                        id,
                        &Pushed {
                            spec: spec.clone(),
                            owner_set,
                            pending: false,
                        },
                    ),
                );
            };
        for (c, spec) in &specs {
            let link = links
                .iter()
                .find(|l| {
                    l.kind == "code"
                        && l.local_key.eq_ignore_ascii_case(&c.code)
                        && !l.remote_id.is_empty()
                })
                .cloned();
            let before: Option<Pushed> = link
                .as_ref()
                .and_then(|l| serde_json::from_value(l.remote.clone()).ok());
            let mut fresh = None;
            let id = match (&link, &before) {
                (Some(_), Some(p)) if p.spec == *spec && p.owner_set => continue,
                (Some(l), prev) => {
                    match self
                        .update(&l.remote_id, spec, prev.as_ref().map(|p| &p.spec))
                        .await
                    {
                        Ok(()) => l.remote_id.clone(),
                        // deleted by hand: created again
                        Err(e) if e.param() == Some("id") => {
                            let (id, held) =
                                self.create_recorded(input, links, &c.code, spec).await?;
                            fresh = Some(held);
                            id
                        }
                        Err(e) => return Err(e),
                    }
                }
                (None, _) => {
                    let (id, held) = self.create_recorded(input, links, &c.code, spec).await?;
                    fresh = Some(held);
                    id
                }
            };
            if let Some(held) = fresh
                && held != *spec
            {
                // created active for an inactive coupon: recorded first, then paused
                self.update(&id, spec, Some(&held)).await?;
            }
            // recorded before the metafield: a crash here leaves a known discount
            record(links, &c.code, &id, spec, false);
            input.record(links, PROVIDER).await?;
            if before
                .as_ref()
                .is_none_or(|p| p.spec.owner != spec.owner || !p.owner_set)
            {
                self.set_owner(&id, spec).await?;
            }
            record(links, &c.code, &id, spec, true);
            input.record(links, PROVIDER).await?;
        }
        Ok(note)
    }

    /// Updates a discount to `spec` (status through activate/deactivate).
    async fn update(
        &self,
        id: &str,
        spec: &ShopifySpec,
        previous: Option<&ShopifySpec>,
    ) -> Result<(), ProviderError> {
        let was_active = previous.is_none_or(|p| p.active);
        if spec.active && !was_active {
            // activate first: our endsAt then wins over the one deactivation set
            self.set_active(id, true).await?;
        }
        if !spec.active && (was_active || previous.is_none()) {
            // pause first: whatever the update below meets, the discount is no longer usable
            self.set_active(id, false).await?;
        }
        let mut input = spec.input(Some(previous.unwrap_or(spec)));
        if previous.is_none() {
            // unknown prior customers: replace through the full list
            input["context"] = spec.input(None)["context"].clone();
        }
        if !spec.active {
            // deactivation sets endsAt; leave it alone
            input.as_object_mut().map(|o| o.remove("endsAt"));
        }
        self.mutate(
            "update_discount",
            documents::UPDATE,
            "discountCodeBasicUpdate",
            json!({"id": id, "input": input}),
        )
        .await?;
        Ok(())
    }

    /// Records the intent, creates (or adopts) the discount, and records what it now holds.
    async fn create_recorded(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
        code: &str,
        spec: &ShopifySpec,
    ) -> Result<(String, ShopifySpec), ProviderError> {
        set_link(
            links,
            code_link(
                code,
                "",
                &Pushed {
                    spec: spec.clone(),
                    owner_set: false,
                    pending: true,
                },
            ),
        );
        input.record(links, PROVIDER).await?;
        let (id, held) = self.create_or_adopt(input, spec).await?;
        set_link(
            links,
            code_link(
                code,
                &id,
                &Pushed {
                    spec: held.clone(),
                    owner_set: false,
                    pending: false,
                },
            ),
        );
        input.record(links, PROVIDER).await?;
        Ok((id, held))
    }

    /// Creates the discount, or adopts ours when the code is taken by it (a lost answer).
    /// Returns its id and what it now holds (a new discount is active).
    async fn create_or_adopt(
        &self,
        input: &PushInput<'_>,
        spec: &ShopifySpec,
    ) -> Result<(String, ShopifySpec), ProviderError> {
        let created = self
            .mutate(
                "create_discount",
                documents::CREATE,
                "discountCodeBasicCreate",
                json!({"input": spec.input(None)}),
            )
            .await;
        match created {
            Ok(payload) => {
                let id = payload["codeDiscountNode"]["id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ProviderError::Transient {
                        provider: PROVIDER,
                        status: None,
                        detail: "discount created without an id".into(),
                    })?;
                Ok((
                    id,
                    ShopifySpec {
                        active: true,
                        ..spec.clone()
                    },
                ))
            }
            Err(e) if e.code() == Some("TAKEN") => {
                let Some((id, basic)) = self.by_code(&spec.code).await? else {
                    return Err(ProviderError::Transient {
                        provider: PROVIDER,
                        status: Some(200),
                        detail: format!(
                            "code '{}' was taken and is free again; will retry",
                            spec.code
                        ),
                    });
                };
                if !owned_by(
                    &tags_of(&basic),
                    input.program,
                    &input.desired.coupon.uuid_code,
                ) {
                    return Err(ProviderError::Rejected {
                        provider: PROVIDER,
                        status: 200,
                        code: Some("TAKEN".into()),
                        param: Some("basicCodeDiscount.code".into()),
                        detail: format!(
                            "code '{}' belongs to Shopify discount {id}, which coupond does not manage",
                            spec.code
                        ),
                    });
                }
                let theirs = ShopifySpec::from_remote(&spec.code, &basic, &spec.owner);
                if !spec.drift(&theirs).is_empty() {
                    self.update(&id, spec, Some(&theirs)).await?;
                }
                Ok((id, spec.clone()))
            }
            Err(e) => Err(e),
        }
    }
}

/// The link JSON of a code whose discount holds `spec` (reconcile writes what it found, so the next
/// push sends ours back).
pub fn link_remote(spec: &ShopifySpec) -> Value {
    serde_json::to_value(Pushed {
        spec: spec.clone(),
        owner_set: true,
        pending: false,
    })
    .unwrap_or_default()
}

/// The tags of a `DiscountCodeBasic` answer.
pub fn tags_of(basic: &Value) -> Vec<String> {
    basic["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_waits_only_for_what_the_bucket_lacks() {
        let p = CostPacer::default();
        let (w, first) = p.reserve(10.0);
        assert_eq!(w, Duration::ZERO, "nothing known yet");
        p.settle(first, Some(&json!({"throttleStatus": {"maximumAvailable": 100.0, "currentlyAvailable": 25.0, "restoreRate": 50.0}})));
        // 25 points, of which 10 are kept in reserve: the first goes at once
        assert_eq!(p.reserve(10.0).0, Duration::ZERO);
        // 5 left after the second: it waits until 10 are back, (10 - 5) / 50 = 0.1 s
        let (w, _) = p.reserve(10.0);
        assert!(
            w > Duration::from_millis(90) && w <= Duration::from_millis(100),
            "{w:?}"
        );
        // a third queues behind it
        let (w, _) = p.reserve(10.0);
        assert!(
            w > Duration::from_millis(290) && w <= Duration::from_millis(300),
            "{w:?}"
        );

        // a report that arrives while another request is in flight keeps that one's points off
        let p = CostPacer::default();
        let (_, a) = p.reserve(10.0);
        let (_, b) = p.reserve(10.0);
        p.settle(a, Some(&json!({"throttleStatus": {"maximumAvailable": 100.0, "currentlyAvailable": 15.0, "restoreRate": 50.0}})));
        // 15 - 10 in flight = 5; after this one -5, and 10 are kept: (10 + 5) / 50 = 0.3 s
        let (w, d) = p.reserve(10.0);
        assert!(
            w > Duration::from_millis(290) && w <= Duration::from_millis(300),
            "{w:?}"
        );
        // a failed send releases its points
        p.settle(b, None);
        p.settle(d, None);
        assert_eq!(p.state.lock().unwrap().in_flight, 0.0);
    }

    #[test]
    fn an_answer_overtaken_by_a_later_request_does_not_reset_the_estimate() {
        let p = CostPacer::default();
        let (_, early) = p.reserve(10.0);
        let (_, late) = p.reserve(10.0);
        // the later request's answer comes first: 20 points left
        p.settle(late, Some(&json!({"throttleStatus": {"maximumAvailable": 100.0, "currentlyAvailable": 20.0, "restoreRate": 50.0}})));
        // the earlier one's answer, computed before the later request was charged, says 30
        p.settle(early, Some(&json!({"throttleStatus": {"maximumAvailable": 100.0, "currentlyAvailable": 30.0, "restoreRate": 50.0}})));
        let (avail, _, _) = p.state().unwrap();
        assert!(avail < 21.0, "the older report was taken: {avail}");
    }
}
