//! Mirror mode: follow an upstream Partnero-compatible API by polling `GET /v1/coupons`
//! (Partnero has no coupon webhooks). Each pass pages through every upstream coupon and writes it
//! to the store as a local write would (same transaction rule, same outbox marks); only a complete
//! pass may delete what it did not see.

use crate::config::{Secret, UpstreamSettings};
use crate::domain::{NewCoupon, ProviderKind};
use crate::providers::ProviderError;
use crate::providers::http::{Limiter, Transport, retry_after};
use crate::store::Store;
use crate::store::mirror::PassCounts;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why a pass did not complete.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("upstream: {0}")]
    Upstream(#[from] ProviderError),
    #[error("upstream answered something that is not a coupon list: {0}")]
    BadAnswer(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// What one complete pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub pages: i64,
    pub requests: i64,
    pub seen: i64,
    pub created: i64,
    pub changed: i64,
    pub deleted: i64,
    /// Upstream items that could not be read as coupons (logged, skipped).
    pub invalid: i64,
}

/// The poller of one program.
pub struct Mirror {
    program: String,
    base: String,
    key: Secret,
    provider: Option<ProviderKind>,
    page_limit: u32,
    pub interval: Duration,
    transport: Transport,
    store: Store,
    wake: Arc<Notify>,
}

/// An upstream coupon read as a local create, with the counters upstream reports.
pub struct UpstreamCoupon {
    pub new: NewCoupon,
    pub times_redeemed: i64,
    /// `times_redeemed` of each code.
    pub code_counts: Vec<(String, i64)>,
}

/// An upstream list item (the GET variant of a coupon) as a coupon create, plus its counters.
fn to_new_coupon(item: &Value, provider: Option<ProviderKind>) -> Result<UpstreamCoupon, String> {
    let mut body = item.as_object().cloned().ok_or("not an object")?;
    let codes: Vec<Value> = item["promotion_codes"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let counts = codes
        .iter()
        .filter_map(|c| {
            Some((
                c["code"].as_str()?.to_owned(),
                c["times_redeemed"].as_i64().unwrap_or(0),
            ))
        })
        .collect();
    body.insert("promotion_codes".into(), Value::Array(codes));
    // an upstream coupon's own sync setting wins where present
    let wanted = item
        .get("sync")
        .and_then(|s| s.get("provider"))
        .and_then(Value::as_str)
        .and_then(ProviderKind::parse)
        .or(provider);
    body.insert(
        "sync".into(),
        wanted
            .map(|p| json!({"provider": p.as_str()}))
            .unwrap_or(Value::Null),
    );
    if body
        .get("uuid_code")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("no uuid_code".into());
    }
    // upstream already validated it: past expiry dates are fine here
    let new = NewCoupon::parse(&body, DateTime::<Utc>::MIN_UTC).map_err(|e| e.message())?;
    Ok(UpstreamCoupon {
        new,
        times_redeemed: item["times_redeemed"].as_i64().unwrap_or(0),
        code_counts: counts,
    })
}

impl Mirror {
    pub fn new(
        program: &str,
        s: &UpstreamSettings,
        client: reqwest::Client,
        store: Store,
        wake: Arc<Notify>,
        max_pause: Duration,
    ) -> Self {
        let limiter = Arc::new(Limiter::new(s.rate_per_second, Duration::from_secs(1)));
        Self {
            program: program.to_owned(),
            base: s.base_url.trim_end_matches('/').to_owned(),
            key: s.api_key.clone().expect("validated"),
            provider: s.provider.as_deref().and_then(ProviderKind::parse),
            page_limit: s.page_limit,
            interval: Duration::from_millis(s.poll_interval_ms),
            transport: Transport::new("upstream", client, limiter, max_pause),
            store,
            wake,
        }
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    async fn page(&self, page: i64) -> Result<Value, MirrorError> {
        let url = format!(
            "{}/v1/coupons?limit={}&page={page}",
            self.base, self.page_limit
        );
        let ans = self
            .transport
            .send("list_coupons", || {
                self.transport
                    .client()
                    .get(&url)
                    .bearer_auth(self.key.expose())
            })
            .await?;
        let detail = || {
            String::from_utf8_lossy(&ans.body)
                .chars()
                .take(200)
                .collect::<String>()
        };
        match ans.status {
            200 => {}
            401 | 403 => {
                return Err(ProviderError::Credentials {
                    provider: "upstream",
                    status: ans.status,
                    detail: detail(),
                }
                .into());
            }
            429 => {
                return Err(ProviderError::RateLimited {
                    provider: "upstream",
                    retry_after: retry_after(&ans.headers),
                    detail: detail(),
                }
                .into());
            }
            s if s >= 500 || s == 408 => {
                return Err(ProviderError::Transient {
                    provider: "upstream",
                    status: Some(s),
                    detail: detail(),
                }
                .into());
            }
            s => {
                return Err(ProviderError::Rejected {
                    provider: "upstream",
                    status: s,
                    code: None,
                    param: None,
                    detail: detail(),
                }
                .into());
            }
        }
        let v = ans.json();
        if !v["data"].is_array() {
            return Err(MirrorError::BadAnswer(detail()));
        }
        Ok(v)
    }

    /// One upstream coupon (`None` when the upstream answers 404).
    async fn one(&self, uuid: &str) -> Result<Option<Value>, MirrorError> {
        let url = format!(
            "{}/v1/coupons/{}",
            self.base,
            form_urlencoded::byte_serialize(uuid.as_bytes()).collect::<String>()
        );
        let ans = self
            .transport
            .send("get_coupon", || {
                self.transport
                    .client()
                    .get(&url)
                    .bearer_auth(self.key.expose())
            })
            .await?;
        match ans.status {
            200 => Ok(Some(ans.json()["data"].clone()).filter(|d| d.is_object())),
            404 => Ok(None),
            s => Err(ProviderError::Transient {
                provider: "upstream",
                status: Some(s),
                detail: format!("GET {url}"),
            }
            .into()),
        }
    }

    /// One pass over every upstream coupon. Deletions happen only when it completes; a pass that
    /// fails is recorded (shown by `/status`) and deletes nothing.
    pub async fn pass(&self) -> Result<PassReport, MirrorError> {
        let result = self.try_pass().await;
        if let Err(e) = &result
            && let Err(se) = self
                .store
                .fail_pass(&self.program, &e.to_string(), Utc::now())
                .await
        {
            tracing::error!(error = %se, "recording the failed pass failed");
        }
        result
    }

    async fn try_pass(&self) -> Result<PassReport, MirrorError> {
        let started = Utc::now();
        let pass = self.store.begin_pass(&self.program, started).await?;
        let mut report = PassReport::default();
        let mut page = 1;
        loop {
            let v = self.page(page).await?;
            report.pages += 1;
            report.requests += 1;
            let mut unchanged: Vec<String> = Vec::new();
            for item in v["data"].as_array().into_iter().flatten() {
                report.seen += 1;
                match to_new_coupon(item, self.provider) {
                    Ok(UpstreamCoupon {
                        new,
                        times_redeemed: redeemed,
                        code_counts: counts,
                    }) if self
                        .store
                        .upstream_unchanged(&self.program, &new, redeemed, &counts)
                        .await? =>
                    {
                        unchanged.push(
                            new.uuid_code
                                .as_ref()
                                .map(|c| c.as_str().to_owned())
                                .unwrap_or_default(),
                        );
                    }
                    Ok(UpstreamCoupon {
                        new,
                        times_redeemed: redeemed,
                        code_counts: counts,
                    }) => {
                        match self
                            .store
                            .apply_upstream(
                                &self.program,
                                pass,
                                &new,
                                redeemed,
                                &counts,
                                Utc::now(),
                            )
                            .await
                        {
                            Ok(a) => {
                                report.created += i64::from(a.created);
                                report.changed += i64::from(a.changed && !a.created);
                            }
                            Err(crate::store::StoreError::Invalid(e)) => {
                                report.invalid += 1;
                                // seen upstream: never deleted here because we could not read it
                                unchanged.extend(item["uuid_code"].as_str().map(str::to_owned));
                                tracing::warn!(program = %self.program, uuid_code = %item["uuid_code"], provider = ?self.provider, error = %e, "upstream coupon not mirrored");
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(e) => {
                        report.invalid += 1;
                        unchanged.extend(item["uuid_code"].as_str().map(str::to_owned));
                        tracing::warn!(program = %self.program, uuid_code = %item["uuid_code"], provider = ?self.provider, error = %e, "upstream coupon not mirrored");
                    }
                }
            }
            self.store
                .stamp_pass(&self.program, pass, &unchanged)
                .await?;
            match v["links"].get("next") {
                Some(Value::Null) => break,
                Some(_) => {}
                None => return Err(MirrorError::BadAnswer("a page without links.next".into())),
            }
            page += 1;
        }
        // Deletion candidates are confirmed one by one: an item deleted upstream during the pass
        // shifts later items to earlier pages, so "not seen" alone is not proof.
        let mut gone = Vec::new();
        for uuid in self.store.unseen(&self.program, pass).await? {
            report.requests += 1;
            match self.one(&uuid).await? {
                None => gone.push(uuid),
                Some(item) => match to_new_coupon(&item, self.provider) {
                    Ok(u) => {
                        let a = self
                            .store
                            .apply_upstream(
                                &self.program,
                                pass,
                                &u.new,
                                u.times_redeemed,
                                &u.code_counts,
                                Utc::now(),
                            )
                            .await?;
                        report.changed += i64::from(a.changed);
                    }
                    Err(_) => {
                        self.store
                            .stamp_pass(&self.program, pass, std::slice::from_ref(&uuid))
                            .await?
                    }
                },
            }
        }
        let counts = PassCounts {
            pages: report.pages,
            seen: report.seen,
            changed: report.created + report.changed,
        };
        report.deleted = self
            .store
            .finish_pass(&self.program, pass, counts, &gone, started, Utc::now())
            .await?;
        if report.created + report.changed + report.deleted > 0 {
            self.wake.notify_one();
        }
        Ok(report)
    }

    /// Polls every interval until cancelled; a failed pass is recorded and retried next interval.
    pub async fn run(self: Arc<Self>, token: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            let outcome = tokio::select! {
                _ = token.cancelled() => return,
                r = self.pass() => r,
            };
            match outcome {
                Ok(r) => {
                    failures = 0;
                    tracing::info!(program = %self.program, pages = r.pages, seen = r.seen, created = r.created, changed = r.changed, deleted = r.deleted, invalid = r.invalid, "mirror pass complete")
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(program = %self.program, error = %e, failures, "mirror pass incomplete; nothing deleted")
                }
            }
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(backoff(self.interval, failures)) => {}
            }
        }
    }
}

/// The wait before the next pass: the poll interval, doubled per consecutive failed pass (up to 16×).
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    interval.saturating_mul(1 << failures.min(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_upstream_is_polled_less_often() {
        let i = Duration::from_secs(60);
        assert_eq!(backoff(i, 0), i);
        assert_eq!(backoff(i, 1), i * 2);
        assert_eq!(backoff(i, 3), i * 8);
        assert_eq!(backoff(i, 30), i * 16);
    }

    #[test]
    fn upstream_items_read_as_coupon_creates() {
        let item = json!({"name": "N", "uuid_code": "U1", "active": true, "coupon_discount_type": "percent",
            "coupon_discount_amount": 25, "coupon_duration_type": "once", "coupon_duration_value": null,
            "redemption_specific_date_status": true, "redemption_specific_date_value": "2001-01-01T00:00:00.000000Z",
            "redemption_times_status": false, "redemption_times_value": null,
            "promotion_codes": {"data": [{"code": "C1", "times_redeemed": 3, "metadata": []}]},
            "metadata": [], "additional_info": [], "times_redeemed": 7});
        let u = to_new_coupon(&item, Some(ProviderKind::Stripe)).unwrap();
        assert_eq!(u.new.sync, Some(ProviderKind::Stripe));
        assert!(
            u.new.terms.redeem_by.is_some(),
            "a past expiry from upstream is kept"
        );
        assert_eq!(
            (u.times_redeemed, u.code_counts.clone()),
            (7, vec![("C1".to_owned(), 3)])
        );
        assert!(to_new_coupon(&json!({"name": "no uuid"}), None).is_err());
    }
}
