//! Reconcile of the providers that hold one object per promotion code (Shopify, WooCommerce,
//! Paddle Billing, Paddle Classic). Memory is bounded by a page: the provider's objects are read
//! one page at a time, their links are looked up for that page only, and missing objects are found
//! by paging through the store's links against the ids the run recorded in `reconcile_seen`.

use super::{ConnectionReport, DesiredCache, Finding, Scan};
use crate::domain::{PromotionCode, ProviderKind};
use crate::providers::paddle_billing::{self, PaddleBillingClient, mapping::DiscountSpec};
use crate::providers::paddle_classic::{
    self, PaddleClassicClient,
    mapping::{ClassicSpec, owned_by_program},
};
use crate::providers::shopify::{self, ShopifyClient, mapping::ShopifySpec};
use crate::providers::stripe::reconcile::FieldDrift;
use crate::providers::woocommerce::{self, WooClient, mapping::WooSpec};
use crate::providers::{ProviderError, woocommerce::mapping::Shop};
use crate::store::Store;
use crate::store::outbox::{DesiredState, Link, LinkChange};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// A provider whose objects are one per code.
pub enum Source<'a> {
    Shopify(&'a ShopifyClient),
    WooCommerce(&'a WooClient),
    PaddleBilling(&'a PaddleBillingClient),
    PaddleClassic(&'a PaddleClassicClient),
}

/// What every comparison of a scan shares.
struct Ctx<'a> {
    program: &'a str,
    currency: &'a str,
    shop: Option<&'a Shop>,
    now: DateTime<Utc>,
}

/// One remote object as reconcile classifies it.
struct Remote {
    id: String,
    code: String,
    /// Carries our marker for this program.
    ours: bool,
    uuid: Option<String>,
    /// Usable: an unlinked object of ours is an orphan only when it is.
    live: bool,
    /// The provider's redemption count.
    used: Option<i64>,
    raw: Value,
}

fn fields(d: Vec<(String, String, String)>) -> Vec<FieldDrift> {
    d.into_iter()
        .map(|(field, ours, theirs)| FieldDrift {
            field,
            ours,
            theirs,
        })
        .collect()
}

/// Shopify ids come as `DiscountNode/N` from the listing and `DiscountCodeNode/N` from mutations.
fn shopify_id(id: &str) -> String {
    id.replace(
        "gid://shopify/DiscountNode/",
        "gid://shopify/DiscountCodeNode/",
    )
}

impl Source<'_> {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Source::Shopify(_) => ProviderKind::Shopify,
            Source::WooCommerce(_) => ProviderKind::WooCommerce,
            Source::PaddleBilling(_) | Source::PaddleClassic(_) => ProviderKind::Paddle,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Source::Shopify(_) => "Shopify",
            Source::WooCommerce(_) => "WooCommerce",
            Source::PaddleBilling(_) => "Paddle Billing",
            Source::PaddleClassic(_) => "Paddle Classic",
        }
    }

    /// One page of objects after `cursor`, and the next cursor.
    async fn page(
        &self,
        program: &str,
        cursor: Option<String>,
    ) -> Result<(Vec<Remote>, Option<String>), ProviderError> {
        match self {
            Source::Shopify(c) => {
                let (nodes, next) = c.managed_page(cursor.as_deref()).await?;
                let tag = format!("{}-program:{program}", shopify::mapping::TAG);
                let items = nodes
                    .into_iter()
                    .map(|n| {
                        let d = n["discount"].clone();
                        let tags = shopify::tags_of(&d);
                        let uuid = tags.iter().find_map(|t| {
                            t.strip_prefix(&format!("{}-coupon:", shopify::mapping::TAG))
                                .map(str::to_owned)
                        });
                        Remote {
                            id: shopify_id(n["id"].as_str().unwrap_or_default()),
                            code: d["codes"]["nodes"][0]["code"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            ours: tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)),
                            uuid,
                            live: true,
                            used: d["asyncUsageCount"].as_i64(),
                            raw: d,
                        }
                    })
                    .collect();
                Ok((items, next))
            }
            Source::WooCommerce(c) => {
                let page: u32 = cursor.as_deref().and_then(|p| p.parse().ok()).unwrap_or(1);
                let (items, pages) = c.list_page(page, 100).await?;
                let next = (page < pages).then(|| (page + 1).to_string());
                let items = items
                    .into_iter()
                    .map(|v| {
                        let meta = WooSpec::from_remote(&v).meta;
                        Remote {
                            id: v["id"].as_i64().unwrap_or_default().to_string(),
                            code: v["code"].as_str().unwrap_or_default().to_owned(),
                            ours: woocommerce::mapping::owned_by_program(&v, program),
                            uuid: meta.get(woocommerce::mapping::MARKER_COUPON).cloned(),
                            live: v["status"] == "publish",
                            used: v["usage_count"].as_i64(),
                            raw: v,
                        }
                    })
                    .collect();
                Ok((items, next))
            }
            Source::PaddleBilling(c) => {
                let (items, next) = c.page(cursor.as_deref()).await?;
                let items = items
                    .into_iter()
                    .map(|v| {
                        let cd = &v["custom_data"];
                        Remote {
                            id: v["id"].as_str().unwrap_or_default().to_owned(),
                            code: v["code"].as_str().unwrap_or_default().to_owned(),
                            ours: cd[paddle_billing::mapping::MARKER] == "1"
                                && cd["program"] == program,
                            uuid: cd["coupon"].as_str().map(str::to_owned),
                            live: v["status"] == "active",
                            used: v["times_used"].as_i64(),
                            raw: v,
                        }
                    })
                    .collect();
                Ok((items, next))
            }
            Source::PaddleClassic(c) => {
                let Some(product) = c.lookup_product() else {
                    return Err(ProviderError::Refused(
                        "Paddle Classic lists coupons per product only: set paddle.lookup_product_id to reconcile".into(),
                    ));
                };
                let offset: u64 = cursor.as_deref().and_then(|o| o.parse().ok()).unwrap_or(1);
                let (items, total) = c.list(product, offset).await?;
                let n = items.len() as u64;
                let next = (n > 0 && offset - 1 + n < total).then(|| (offset + n).to_string());
                let items = items
                    .into_iter()
                    .map(|v| {
                        let description = v["description"].as_str().unwrap_or_default();
                        Remote {
                            id: v["coupon"].as_str().unwrap_or_default().to_owned(),
                            code: v["coupon"].as_str().unwrap_or_default().to_owned(),
                            ours: owned_by_program(description, program),
                            uuid: description
                                .strip_prefix(&format!(
                                    "{}{program}:",
                                    paddle_classic::mapping::MARKER
                                ))
                                .map(str::to_owned),
                            live: true,
                            used: v["times_used"].as_i64(),
                            raw: v,
                        }
                    })
                    .collect();
                Ok((items, next))
            }
        }
    }

    /// What a linked object should hold and how it differs: `None` when the mapping refuses the
    /// code (the sync reports that; reconcile has nothing to compare), and the link JSON to write
    /// so that the next push sends ours back.
    async fn drift(
        &self,
        ctx: &Ctx<'_>,
        desired: &DesiredState,
        code: &PromotionCode,
        r: &Remote,
    ) -> Option<(Vec<FieldDrift>, Value)> {
        let (program, currency, shop, now) = (ctx.program, ctx.currency, ctx.shop, ctx.now);
        let c = &desired.coupon;
        match self {
            Source::Shopify(cl) => {
                let want =
                    shopify::mapping::map_code(program, cl.billing_interval(), c, code).ok()?;
                let theirs = ShopifySpec::from_remote(&want.code, &r.raw, &want.owner);
                Some((fields(want.drift(&theirs)), shopify::link_remote(&theirs)))
            }
            Source::WooCommerce(_) => {
                let mut want = woocommerce::mapping::map_code(program, shop?, c, code).ok()?;
                if !c.terms.active {
                    want.date_expires = woocommerce::PAUSED.into();
                }
                let theirs = WooSpec::from_remote(&r.raw);
                Some((
                    fields(want.drift(&theirs)),
                    woocommerce::link_remote(&theirs),
                ))
            }
            Source::PaddleBilling(cl) => {
                let want = paddle_billing::mapping::map_code(
                    program,
                    currency,
                    cl.billing_interval(),
                    c,
                    code,
                )
                .ok()?;
                let theirs = DiscountSpec::from_remote(&r.raw);
                let group = r.raw["discount_group_id"].as_str().unwrap_or_default();
                Some((
                    fields(want.drift(&theirs)),
                    paddle_billing::link_remote(&theirs, group),
                ))
            }
            Source::PaddleClassic(_) => {
                let want =
                    paddle_classic::mapping::map_code(program, currency, c, code, now).ok()??;
                let theirs = classic_theirs(&want, &r.raw);
                let mut out = Vec::new();
                for (f, a, b) in [
                    (
                        "discount_amount",
                        &want.discount_amount,
                        &theirs.discount_amount,
                    ),
                    (
                        "allowed_uses",
                        &want.allowed_uses.to_string(),
                        &theirs.allowed_uses.to_string(),
                    ),
                    (
                        "expires",
                        &want.expires.clone().unwrap_or_default(),
                        &theirs.expires.clone().unwrap_or_default(),
                    ),
                    (
                        "recurring",
                        &want.recurring.to_string(),
                        &theirs.recurring.to_string(),
                    ),
                ] {
                    if normal(a) != normal(b) {
                        out.push(FieldDrift {
                            field: f.into(),
                            ours: a.clone(),
                            theirs: b.clone(),
                        });
                    }
                }
                Some((out, paddle_classic::link_remote(&theirs)))
            }
        }
    }

    /// Retires an orphan the strongest way the provider allows.
    pub async fn retire(&self, id: &str) -> Result<(), ProviderError> {
        match self {
            Source::Shopify(c) => c.delete_discount(id).await,
            Source::WooCommerce(c) => c.retire(id).await,
            Source::PaddleBilling(c) => c.archive(id).await,
            Source::PaddleClassic(c) => c.delete(id).await,
        }
    }
}

fn normal(s: &str) -> String {
    s.parse::<rust_decimal::Decimal>()
        .map(|d| d.normalize().to_string())
        .unwrap_or_else(|_| s.to_owned())
}

/// What Classic's list shows of a coupon, over what we want for the fields it does not show
/// (group, coupon type, products, threshold cannot be read back). Percentages come back as
/// fractions, expiries as `YYYY-MM-DD 00:00:00`.
fn classic_theirs(want: &ClassicSpec, v: &Value) -> ClassicSpec {
    let amount = v["discount_amount"].as_f64().unwrap_or(0.0);
    let amount = if v["discount_type"] == "percentage" {
        amount * 100.0
    } else {
        amount
    };
    let amount = rust_decimal::Decimal::from_f64_retain(amount)
        .map(|d| d.round_dp(2).normalize().to_string())
        .unwrap_or_default();
    ClassicSpec {
        discount_amount: if want.discount_type == "flat" {
            format!("{:.2}", amount.parse::<f64>().unwrap_or(0.0))
        } else {
            amount
        },
        allowed_uses: v["allowed_uses"].as_i64().unwrap_or(want.allowed_uses),
        expires: v["expires"]
            .as_str()
            .map(|e| e.split(' ').next().unwrap_or(e).to_owned()),
        recurring: v["is_recurring"].as_bool().unwrap_or(want.recurring),
        ..want.clone()
    }
}

/// Scans one connection: every object of ours classified, every link checked.
pub async fn scan(
    store: &Store,
    src: &Source<'_>,
    program: &str,
    currency: &str,
) -> anyhow::Result<ConnectionReport> {
    let provider = src.kind();
    let mut report = ConnectionReport::new(program, provider);
    let shop = match src {
        Source::WooCommerce(c) => Some(c.shop().await?),
        _ => None,
    };
    let scan = Scan::begin(store, program, provider).await?;
    let pages = scan_pages(
        store,
        src,
        program,
        currency,
        shop.as_ref(),
        &scan.run,
        &mut report,
    )
    .await;
    scan.finish(store, &["code"], pages, report).await
}

/// Reads every object of the connection, a page at a time, and classifies it.
async fn scan_pages(
    store: &Store,
    src: &Source<'_>,
    program: &str,
    currency: &str,
    shop: Option<&Shop>,
    run: &str,
    report: &mut ConnectionReport,
) -> anyhow::Result<()> {
    let provider = src.kind();
    let mut cursor: Option<String> = None;
    let mut desired = DesiredCache::default();
    loop {
        let (items, next) = src.page(program, cursor.take()).await?;
        report.requests += 1;
        let ids: Vec<String> = items
            .iter()
            .filter(|r| r.ours)
            .map(|r| r.id.clone())
            .collect();
        let links: HashMap<String, (i64, Link)> = store
            .links_by_remote(program, provider, &ids)
            .await?
            .into_iter()
            .filter(|(_, l)| l.kind == "code")
            .map(|(id, l)| (l.remote_id.clone(), (id, l)))
            .collect();
        store.seen_add(run, &ids, Utc::now()).await?;
        let mut used = Vec::new();
        let now = Utc::now();
        for r in &items {
            if !r.ours {
                report.counts.foreign += 1;
                continue;
            }
            let orphan = |r: &Remote| Finding {
                class: "orphan",
                kind: "code",
                remote_id: r.id.clone(),
                uuid_code: r.uuid.clone(),
                code: Some(r.code.clone()),
                fields: vec![],
                coupon_id: None,
                change: None,
            };
            let Some((cid, link)) = links.get(&r.id) else {
                if r.live {
                    report.findings.push(orphan(r));
                }
                continue;
            };
            let d = desired.get(store, *cid).await?;
            let want = d
                .codes
                .iter()
                .find(|c| c.code.eq_ignore_ascii_case(&link.local_key))
                .filter(|_| !d.deleted);
            let Some(code) = want else {
                if r.live {
                    report.findings.push(orphan(r));
                }
                continue;
            };
            if let Some(n) = r.used {
                used.push((*cid, code.code.clone(), n));
            }
            let ctx = Ctx {
                program,
                currency,
                shop,
                now,
            };
            let Some((drift, theirs)) = src.drift(&ctx, d, code, r).await else {
                continue;
            };
            if drift.is_empty() {
                report.counts.in_sync += 1;
            } else {
                report.findings.push(Finding {
                    class: "drifted",
                    kind: "code",
                    remote_id: r.id.clone(),
                    uuid_code: Some(d.coupon.uuid_code.clone()),
                    code: Some(code.code.clone()),
                    fields: drift,
                    coupon_id: Some(*cid),
                    change: Some(LinkChange::Theirs {
                        kind: "code".into(),
                        local_key: link.local_key.clone(),
                        remote: theirs,
                        keep_fingerprint: true,
                    }),
                });
            }
        }
        store.record_redemptions(provider, &used, now).await?;
        desired.page_done();
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
}

/// The message of a repaired finding.
pub fn what(src: &Source<'_>, f: &Finding) -> String {
    let name = src.name();
    match f.class {
        "missing" => format!(
            "{name} object {} of code {} was missing and is created again",
            f.remote_id,
            f.code.as_deref().unwrap_or("")
        ),
        _ => format!(
            "{name} object {} of code {} was changed by hand ({}); coupond's values are written back",
            f.remote_id,
            f.code.as_deref().unwrap_or(""),
            f.fields
                .iter()
                .map(|d| format!("{}: {:?} overwritten with {:?}", d.field, d.theirs, d.ours))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
