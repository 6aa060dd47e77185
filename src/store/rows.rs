//! Row ↔ domain conversions.

use super::{StoreError, from_micros};
use crate::domain::{
    CodeRestrictions, Coupon, CouponTerms, Discount, DiscountKind, Duration, DurationKind,
    Metadata, Party, PartyKind, PromotionCode, ProviderKind,
};
use serde_json::Value;

#[derive(sqlx::FromRow)]
pub(super) struct CouponRow {
    pub id: i64,
    pub uuid_code: String,
    pub name: String,
    pub active: bool,
    pub discount_type: String,
    pub discount_hundredths: i64,
    pub duration_type: String,
    pub duration_value: Option<i64>,
    pub redeem_by: Option<i64>,
    pub max_redemptions: Option<i64>,
    pub metadata: String,
    pub times_redeemed: i64,
    pub sync_provider: Option<String>,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(super) const COUPON_COLUMNS: &str = "id, uuid_code, name, active, discount_type, discount_hundredths, duration_type, \
     duration_value, redeem_by, max_redemptions, metadata, times_redeemed, sync_provider, revision, created_at, updated_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(super) fn metadata_from(s: &str) -> Result<Metadata, StoreError> {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) => Ok(Metadata::from_stored(m)),
        _ => Err(corrupt("metadata")),
    }
}

pub(super) fn metadata_to(m: &Metadata) -> String {
    Value::Object(m.as_map().clone()).to_string()
}

impl CouponRow {
    pub fn into_domain(self) -> Result<(i64, Coupon), StoreError> {
        let kind =
            DiscountKind::parse(&self.discount_type).ok_or_else(|| corrupt("discount_type"))?;
        let dkind =
            DurationKind::parse(&self.duration_type).ok_or_else(|| corrupt("duration_type"))?;
        let duration =
            Duration::new(dkind, self.duration_value).ok_or_else(|| corrupt("duration_value"))?;
        let sync_provider = match self.sync_provider.as_deref() {
            None => None,
            Some(p) => Some(ProviderKind::parse(p).ok_or_else(|| corrupt("sync_provider"))?),
        };
        Ok((
            self.id,
            Coupon {
                uuid_code: self.uuid_code,
                name: self.name,
                terms: CouponTerms {
                    active: self.active,
                    discount: Discount::from_parts(kind, self.discount_hundredths),
                    duration,
                    redeem_by: self.redeem_by.map(from_micros),
                    max_redemptions: self.max_redemptions,
                },
                metadata: metadata_from(&self.metadata)?,
                times_redeemed: self.times_redeemed,
                sync_provider,
                revision: self.revision,
                created_at: from_micros(self.created_at),
                updated_at: from_micros(self.updated_at),
            },
        ))
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CodeRow {
    pub id: i64,
    pub coupon_id: i64,
    pub code: String,
    pub first_time_order: bool,
    pub partners: Option<String>,
    pub customers: Option<String>,
    pub subscribers: Option<String>,
    pub minimum_order: Option<i64>,
    pub expires_at: Option<i64>,
    pub max_redemptions: Option<i64>,
    pub metadata: String,
    pub times_redeemed: i64,
}

pub(super) const CODE_COLUMNS: &str = "id, coupon_id, code, first_time_order, partners, customers, subscribers, \
     minimum_order, expires_at, max_redemptions, metadata, times_redeemed";

pub(super) fn parties_to(p: &Option<Vec<Party>>, kind: PartyKind) -> Option<String> {
    p.as_ref()
        .map(|l| Value::Array(l.iter().map(|x| x.to_json(kind)).collect()).to_string())
}

fn parties_from(s: &Option<String>, kind: PartyKind) -> Result<Option<Vec<Party>>, StoreError> {
    let Some(s) = s else { return Ok(None) };
    let v: Value = serde_json::from_str(s).map_err(|_| corrupt("restriction list"))?;
    let list = v.as_array().ok_or_else(|| corrupt("restriction list"))?;
    list.iter()
        .map(|x| Party::from_json(x, kind).ok_or_else(|| corrupt("restriction entry")))
        .collect::<Result<_, _>>()
        .map(Some)
}

impl CodeRow {
    pub fn into_domain(self) -> Result<(i64, i64, PromotionCode), StoreError> {
        Ok((
            self.id,
            self.coupon_id,
            PromotionCode {
                code: self.code,
                restrictions: CodeRestrictions {
                    first_time_order: self.first_time_order,
                    partners: parties_from(&self.partners, PartyKind::Partner)?,
                    customers: parties_from(&self.customers, PartyKind::Customer)?,
                    subscribers: parties_from(&self.subscribers, PartyKind::Subscriber)?,
                    minimum_order: self.minimum_order,
                    expires_at: self.expires_at.map(from_micros),
                    max_redemptions: self.max_redemptions,
                },
                metadata: metadata_from(&self.metadata)?,
                times_redeemed: self.times_redeemed,
            },
        ))
    }
}

/// `[1,2,3]` for `json_each(?)` look-ups.
pub(super) fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    Value::Array(ids.into_iter().map(Value::from).collect()).to_string()
}
