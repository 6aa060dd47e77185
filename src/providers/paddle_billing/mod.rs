//! Paddle Billing: a coupon becomes a discount group, each promotion code one discount in it
//! (carrying the coupon's terms and the code's restrictions), our marker in `custom_data`.
//! JSON over Bearer auth with `Paddle-Version: 1`; deleting archives (Paddle has no delete).

pub mod mapping;

use super::http::{Answer, Transport, retry_after};
use super::{ProviderError, PushInput, PushNote};
use crate::config::{BillingInterval, Secret};
use crate::domain::PromotionCode;
use crate::store::outbox::Link;
use mapping::{DiscountSpec, group_name, map_code, owned_by};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const PROVIDER: &str = "Paddle Billing";
pub const API_VERSION: &str = "1";
pub const CONFLICT: &str = "discount_code_conflict";
const GROUP_CONFLICT: &str = "discount_group_name_conflict";

/// What we last pushed for a code, kept in its link.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pushed {
    spec: DiscountSpec,
    group: String,
}

fn set_link(links: &mut Vec<Link>, link: Link) {
    links.retain(|l| !(l.kind == link.kind && l.local_key.eq_ignore_ascii_case(&link.local_key)));
    links.push(link);
}

/// The link JSON of a code whose discount holds `spec` in `group` (reconcile writes what it found,
/// so the next push sends ours back).
pub fn link_remote(spec: &DiscountSpec, group: &str) -> Value {
    serde_json::to_value(Pushed {
        spec: spec.clone(),
        group: group.to_owned(),
    })
    .unwrap_or_default()
}

/// One Paddle Billing account.
pub struct PaddleBillingClient {
    base: String,
    key: Secret,
    interval: BillingInterval,
    transport: Transport,
}

impl PaddleBillingClient {
    pub fn new(base: &str, key: Secret, interval: BillingInterval, transport: Transport) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            key,
            interval,
            transport,
        }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn billing_interval(&self) -> BillingInterval {
        self.interval
    }

    fn classify(ans: Answer) -> Result<Value, ProviderError> {
        if (200..300).contains(&ans.status) {
            return Ok(ans.json());
        }
        let body = ans.json();
        let e = &body["error"];
        let code = e["code"].as_str().map(str::to_owned);
        let mut detail = e["detail"]
            .as_str()
            .map(str::to_owned)
            // a non-JSON error page (an HTML 502, say)
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&ans.body)
                    .chars()
                    .take(200)
                    .collect()
            });
        let fields: Vec<String> = e["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                format!(
                    "{}: {}",
                    x["field"].as_str().unwrap_or("?"),
                    x["message"].as_str().unwrap_or("")
                )
            })
            .collect();
        if !fields.is_empty() {
            detail = format!("{detail} ({})", fields.join("; "));
        }
        if let Some(id) = body["meta"]["request_id"].as_str() {
            detail = format!("{detail} [request {id}]");
        }
        let param = e["errors"][0]["field"].as_str().map(str::to_owned);
        Err(match ans.status {
            401 | 403 => ProviderError::Credentials {
                provider: PROVIDER,
                status: ans.status,
                detail: format!("{}: {detail}", code.as_deref().unwrap_or("error")),
            },
            429 => ProviderError::RateLimited {
                provider: PROVIDER,
                retry_after: retry_after(&ans.headers),
                detail,
            },
            408 | 423 => ProviderError::Transient {
                provider: PROVIDER,
                status: Some(ans.status),
                detail,
            },
            // a conflict other than a code or name conflict is a concurrent change: try again
            409 if !matches!(code.as_deref(), Some(CONFLICT | GROUP_CONFLICT)) => {
                ProviderError::Transient {
                    provider: PROVIDER,
                    status: Some(409),
                    detail,
                }
            }
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
        })
    }

    pub async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
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
                    .header("Paddle-Version", API_VERSION);
                if let Some(b) = body {
                    r = r.json(b);
                }
                r
            })
            .await?;
        Self::classify(ans)
    }

    /// Discounts with this code, whatever their status (codes are unique ignoring case).
    pub async fn by_code(&self, code: &str) -> Result<Option<Value>, ProviderError> {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", code)
            .append_pair("status", "active,archived,expired,used")
            .finish();
        let v = self
            .call(
                "find_discount",
                Method::GET,
                &format!("/discounts?{q}"),
                None,
            )
            .await?;
        Ok(v["data"].as_array().and_then(|a| {
            a.iter()
                .find(|d| {
                    d["code"]
                        .as_str()
                        .is_some_and(|c| c.eq_ignore_ascii_case(code))
                })
                .cloned()
        }))
    }

    /// One page of discounts (any status), after a cursor: items and the next cursor.
    pub async fn page(
        &self,
        after: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), ProviderError> {
        let qs = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("per_page", "200")
                .append_pair("order_by", "id[ASC]")
                .append_pair("status", "active,archived,expired,used");
            if let Some(a) = after {
                q.append_pair("after", a);
            }
            q.finish()
        };
        let v = self
            .call(
                "list_discounts",
                Method::GET,
                &format!("/discounts?{qs}"),
                None,
            )
            .await?;
        let items = v["data"].as_array().cloned().unwrap_or_default();
        let next = (v["meta"]["pagination"]["has_more"] == true)
            .then(|| {
                items
                    .last()
                    .and_then(|d| d["id"].as_str())
                    .map(str::to_owned)
            })
            .flatten();
        Ok((items, next))
    }

    /// The discount group of the coupon: recorded, found by name, or created.
    async fn group(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
    ) -> Result<String, ProviderError> {
        if let Some(l) = links.iter().find(|l| l.kind == "group") {
            return Ok(l.remote_id.clone());
        }
        let name = group_name(input.program, &input.desired.coupon.uuid_code);
        let id = match self
            .call(
                "create_discount_group",
                Method::POST,
                "/discount-groups",
                Some(&json!({"name": name})),
            )
            .await
        {
            Ok(v) => v["data"]["id"].as_str().map(str::to_owned),
            // created by an attempt whose answer was lost: find it by name
            Err(e) if e.code() == Some(GROUP_CONFLICT) => self.find_group(&name).await?,
            Err(e) => return Err(e),
        }
        .ok_or_else(|| ProviderError::Transient {
            provider: PROVIDER,
            status: None,
            detail: format!("discount group '{name}' was neither created nor found"),
        })?;
        set_link(
            links,
            Link {
                kind: "group".into(),
                local_key: String::new(),
                remote_id: id.clone(),
                fingerprint: String::new(),
                remote: json!({"name": name}),
            },
        );
        input.record(links, PROVIDER).await?;
        Ok(id)
    }

    async fn find_group(&self, name: &str) -> Result<Option<String>, ProviderError> {
        let mut after: Option<String> = None;
        loop {
            let qs = {
                let mut q = form_urlencoded::Serializer::new(String::new());
                q.append_pair("per_page", "200")
                    .append_pair("status", "active,archived");
                if let Some(a) = &after {
                    q.append_pair("after", a);
                }
                q.finish()
            };
            let v = self
                .call(
                    "list_discount_groups",
                    Method::GET,
                    &format!("/discount-groups?{qs}"),
                    None,
                )
                .await?;
            let items = v["data"].as_array().cloned().unwrap_or_default();
            if let Some(g) = items.iter().find(|g| g["name"] == name) {
                return Ok(g["id"].as_str().map(str::to_owned));
            }
            if v["meta"]["pagination"]["has_more"] != true || items.is_empty() {
                return Ok(None);
            }
            after = items
                .last()
                .and_then(|g| g["id"].as_str())
                .map(str::to_owned);
        }
    }

    pub async fn archive(&self, id: &str) -> Result<(), ProviderError> {
        match self
            .call(
                "archive_discount",
                Method::PATCH,
                &format!("/discounts/{id}"),
                Some(&json!({"status": "archived"})),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes Paddle Billing hold the desired discounts.
    pub async fn push(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
    ) -> Result<PushNote, ProviderError> {
        let d = input.desired;
        let mut note = PushNote::default();
        let specs: Vec<(&PromotionCode, DiscountSpec)> = if d.deleted {
            Vec::new()
        } else {
            mapping::coupon_terms(input.currency, self.interval, &d.coupon)
                .map_err(ProviderError::Refused)?;
            d.codes
                .iter()
                .map(|c| {
                    map_code(input.program, input.currency, self.interval, &d.coupon, c)
                        .map(|s| (c, s))
                })
                .collect::<Result<_, _>>()
                .map_err(ProviderError::Refused)?
        };
        note.created = !d.deleted && !links.iter().any(|l| l.kind == "code");
        note.retired = d.deleted;
        // codes deleted here, or the whole coupon: archived (Paddle has no delete)
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
            let moved = input
                .journal
                .code_live_elsewhere(&l.local_key)
                .await
                .map_err(|e| ProviderError::Transient {
                    provider: PROVIDER,
                    status: None,
                    detail: format!("store: {e}"),
                })?;
            if moved {
                // now a code of another coupon of the program: that coupon's push adopts it
            } else if l.remote_id.is_empty() {
                // a create whose answer was lost: ours if its custom_data says so
                if let Some(v) = self.by_code(&l.local_key).await?
                    && owned_by(&v, input.program, &d.coupon.uuid_code)
                    && let Some(id) = v["id"].as_str()
                {
                    self.archive(id).await?;
                }
            } else {
                self.archive(&l.remote_id).await?;
            }
            links.retain(|x| !(x.kind == "code" && x.local_key == l.local_key));
            input.record(links, PROVIDER).await?;
        }
        if d.deleted {
            for c in &d.codes {
                if let Some(v) = self.by_code(&c.code).await?
                    && owned_by(&v, input.program, &d.coupon.uuid_code)
                    && v["status"] != "archived"
                    && let Some(id) = v["id"].as_str()
                {
                    self.archive(id).await?;
                }
            }
            if let Some(g) = links.iter().find(|l| l.kind == "group").cloned() {
                match self
                    .call(
                        "archive_discount_group",
                        Method::PATCH,
                        &format!("/discount-groups/{}", g.remote_id),
                        Some(&json!({"status": "archived"})),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(e),
                }
                links.retain(|x| x.kind != "group");
                input.record(links, PROVIDER).await?;
            }
            return Ok(note);
        }
        if specs.is_empty() {
            return Ok(note);
        }
        let group = self.group(input, links).await?;
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
            let id = match &link {
                Some(l)
                    if before
                        .as_ref()
                        .is_some_and(|p| p.spec == *spec && p.group == group) =>
                {
                    let _ = l;
                    continue;
                }
                Some(l) => match self
                    .call(
                        "update_discount",
                        Method::PATCH,
                        &format!("/discounts/{}", l.remote_id),
                        Some(&spec.patch_body(&group)),
                    )
                    .await
                {
                    Ok(_) => l.remote_id.clone(),
                    // gone (removed by hand): created again
                    Err(e) if e.status() == Some(404) => {
                        self.create_or_adopt(input, links, spec, &group).await?
                    }
                    Err(e) => return Err(e),
                },
                None => self.create_or_adopt(input, links, spec, &group).await?,
            };
            set_link(
                links,
                Link {
                    kind: "code".into(),
                    local_key: c.code.clone(),
                    remote_id: id,
                    fingerprint: String::new(),
                    remote: serde_json::to_value(Pushed {
                        spec: spec.clone(),
                        group: group.clone(),
                    })
                    .unwrap_or_default(),
                },
            );
            input.record(links, PROVIDER).await?;
        }
        Ok(note)
    }

    /// Creates the discount (archived right after when the coupon is inactive), or adopts ours
    /// when the code is taken by it (a create whose answer was lost, or a code that moved here from
    /// another coupon of the program). An intent (no id yet) is recorded first, so a lost answer
    /// followed by the code's removal is still found and archived.
    async fn create_or_adopt(
        &self,
        input: &PushInput<'_>,
        links: &mut Vec<Link>,
        spec: &DiscountSpec,
        group: &str,
    ) -> Result<String, ProviderError> {
        set_link(
            links,
            Link {
                kind: "code".into(),
                local_key: spec.code.clone(),
                remote_id: String::new(),
                fingerprint: String::new(),
                remote: json!({"pending": true}),
            },
        );
        input.record(links, PROVIDER).await?;
        let id = match self
            .call(
                "create_discount",
                Method::POST,
                "/discounts",
                Some(&spec.create_body(group)),
            )
            .await
        {
            Ok(v) => v["data"]["id"].as_str().map(str::to_owned).ok_or_else(|| {
                ProviderError::Transient {
                    provider: PROVIDER,
                    status: None,
                    detail: "discount created without an id".into(),
                }
            })?,
            Err(e) if e.code() == Some(CONFLICT) => {
                let found = self.by_code(&spec.code).await?;
                let Some(remote) = found else {
                    return Err(ProviderError::Transient {
                        provider: PROVIDER,
                        status: Some(409),
                        detail: format!(
                            "code '{}' conflicts but was not found; will retry",
                            spec.code
                        ),
                    });
                };
                let id = remote["id"].as_str().unwrap_or_default().to_owned();
                let cd = &remote["custom_data"];
                let same_program = cd[mapping::MARKER] == "1" && cd["program"] == input.program;
                if !same_program {
                    return Err(ProviderError::Rejected {
                        provider: PROVIDER,
                        status: 409,
                        code: Some(CONFLICT.into()),
                        param: Some("code".into()),
                        detail: format!(
                            "code '{}' belongs to Paddle discount {id}, which coupond does not manage",
                            spec.code
                        ),
                    });
                }
                // ours (a lost create), or moved here from another coupon of the program: brought
                // to what this coupon wants, custom_data and group included
                let theirs = DiscountSpec::from_remote(&remote);
                if !spec.drift(&theirs).is_empty()
                    || remote["discount_group_id"] != group
                    || remote["status"] != "active" && spec.active
                {
                    self.call(
                        "update_discount",
                        Method::PATCH,
                        &format!("/discounts/{id}"),
                        Some(&spec.patch_body(group)),
                    )
                    .await?;
                }
                return Ok(id);
            }
            Err(e) => return Err(e),
        };
        if !spec.active {
            self.archive(&id).await?;
        }
        Ok(id)
    }
}
