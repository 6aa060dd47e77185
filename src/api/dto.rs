//! Wire types. Responses are these structs serialized as they are (field order = wire order);
//! `/openapi.json` is derived from the same types, so the description cannot drift.

use crate::domain::time::format_ts;
use crate::domain::{Coupon, Metadata, Party, PartyKind, PromotionCode};
use crate::store::{CodeView, CouponView, Redemption, TransactionRow};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// An object that serializes as `[]` when empty (the upstream's PHP quirk, spec §1.7).
#[derive(Debug, Clone, Default, ToSchema)]
#[schema(value_type = Object)]
pub struct EmptyableMap(pub Map<String, Value>);

impl Serialize for EmptyableMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            Vec::<()>::new().serialize(s)
        } else {
            self.0.serialize(s)
        }
    }
}

fn metadata(m: &Metadata) -> EmptyableMap {
    EmptyableMap(m.as_map().clone())
}

fn additional_info(log: &[Redemption]) -> EmptyableMap {
    let mut m = Map::new();
    if !log.is_empty() {
        let entries: Vec<Value> = log
            .iter()
            .map(|r| json!({"redeemed_at": format_ts(&r.redeemed_at), "transaction_key": r.transaction_key}))
            .collect();
        m.insert("redemptions".into(), Value::Array(entries));
    }
    EmptyableMap(m)
}

/// A coupon (spec §2.1). `promotion_codes` only on GET one and list items.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponOut {
    pub name: String,
    pub uuid_code: String,
    pub active: bool,
    /// `percent` or `static`.
    pub coupon_discount_type: &'static str,
    #[schema(value_type = f64)]
    pub coupon_discount_amount: Value,
    /// `once`, `hours`, `days`, `months`, `years` or `lifetime`.
    pub coupon_duration_type: &'static str,
    pub coupon_duration_value: Option<u32>,
    pub redemption_specific_date_status: bool,
    pub redemption_specific_date_value: Option<String>,
    pub redemption_times_status: bool,
    pub redemption_times_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_codes: Option<CodeList>,
    pub metadata: EmptyableMap,
    /// `{"redemptions": [{"redeemed_at", "transaction_key"}]}`, or `[]`.
    pub additional_info: EmptyableMap,
    pub times_redeemed: i64,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

/// `{"data": [...]}` around a coupon's codes.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeList {
    pub data: Vec<PromotionCodeOut>,
}

impl CouponOut {
    /// The POST/PUT variant (17 keys).
    pub fn write(v: &CouponView) -> Self {
        Self::build(&v.coupon, &v.redemptions, None)
    }

    /// The GET variant, with the coupon's codes.
    pub fn read(v: &CouponView) -> Self {
        Self::build(
            &v.coupon,
            &v.redemptions,
            Some(CodeList {
                data: v
                    .codes
                    .iter()
                    .map(|c| PromotionCodeOut::new(c, None))
                    .collect(),
            }),
        )
    }

    fn build(c: &Coupon, log: &[Redemption], codes: Option<CodeList>) -> Self {
        let t = &c.terms;
        Self {
            name: c.name.clone(),
            uuid_code: c.uuid_code.clone(),
            active: t.active,
            coupon_discount_type: t.discount.kind().as_str(),
            coupon_discount_amount: t.discount.amount_json(),
            coupon_duration_type: t.duration.kind().as_str(),
            coupon_duration_value: t.duration.value(),
            redemption_specific_date_status: t.redeem_by.is_some(),
            redemption_specific_date_value: t.redeem_by.as_ref().map(format_ts),
            redemption_times_status: t.max_redemptions.is_some(),
            redemption_times_value: t.max_redemptions,
            promotion_codes: codes,
            metadata: metadata(&c.metadata),
            additional_info: additional_info(log),
            times_redeemed: c.times_redeemed,
            created_at: format_ts(&c.created_at),
            updated_at: format_ts(&c.updated_at),
            deleted_at: None,
        }
    }
}

/// The coupon summary on `GET /v1/promotion-codes/{code}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponSummary {
    pub name: String,
    pub uuid_code: String,
    pub active: bool,
    pub coupon_discount_type: &'static str,
    #[schema(value_type = f64)]
    pub coupon_discount_amount: Value,
    pub coupon_duration_type: &'static str,
    pub coupon_duration_value: Option<u32>,
    pub created_at: String,
    pub updated_at: String,
}

impl CouponSummary {
    pub fn new(c: &Coupon) -> Self {
        Self {
            name: c.name.clone(),
            uuid_code: c.uuid_code.clone(),
            active: c.terms.active,
            coupon_discount_type: c.terms.discount.kind().as_str(),
            coupon_discount_amount: c.terms.discount.amount_json(),
            coupon_duration_type: c.terms.duration.kind().as_str(),
            coupon_duration_value: c.terms.duration.value(),
            created_at: format_ts(&c.created_at),
            updated_at: format_ts(&c.updated_at),
        }
    }
}

/// A restriction list: `[]` when the switch is off.
fn parties(p: &Option<Vec<Party>>, kind: PartyKind) -> Vec<Value> {
    p.as_ref()
        .map(|l| l.iter().map(|x| x.to_json(kind)).collect())
        .unwrap_or_default()
}

/// A promotion code (spec §2.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionCodeOut {
    pub code: String,
    pub first_time_order: bool,
    pub limit_to_specific_partner: bool,
    /// `[{id, full_name}]`
    #[schema(value_type = Vec<Object>)]
    pub coupon_specific_partners: Vec<Value>,
    pub limit_to_specific_customer: bool,
    /// `[{id, customer_full_name}]`
    #[schema(value_type = Vec<Object>)]
    pub coupon_specific_customers: Vec<Value>,
    pub minimum_order_status: bool,
    pub minimum_order_value: Option<i64>,
    pub expiration_date_status: bool,
    pub expiration_date_value: Option<String>,
    pub redemption_times_status: bool,
    pub redemption_times_value: Option<i64>,
    pub metadata: EmptyableMap,
    pub additional_info: EmptyableMap,
    pub times_redeemed: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coupon: Option<CouponSummary>,
}

impl PromotionCodeOut {
    pub fn new(v: &CodeView, coupon: Option<&Coupon>) -> Self {
        let c: &PromotionCode = &v.code;
        let r = &c.restrictions;
        Self {
            code: c.code.clone(),
            first_time_order: r.first_time_order,
            limit_to_specific_partner: r.partners.is_some(),
            coupon_specific_partners: parties(&r.partners, PartyKind::Partner),
            limit_to_specific_customer: r.customers.is_some(),
            coupon_specific_customers: parties(&r.customers, PartyKind::Customer),
            minimum_order_status: r.minimum_order.is_some(),
            minimum_order_value: r.minimum_order,
            expiration_date_status: r.expires_at.is_some(),
            expiration_date_value: r.expires_at.as_ref().map(format_ts),
            redemption_times_status: r.max_redemptions.is_some(),
            redemption_times_value: r.max_redemptions,
            metadata: metadata(&c.metadata),
            additional_info: additional_info(&v.redemptions),
            times_redeemed: c.times_redeemed,
            coupon: coupon.map(CouponSummary::new),
        }
    }
}

/// A transaction (spec §2.3).
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionOut {
    pub key: Option<String>,
    pub action: String,
    #[schema(value_type = Option<f64>)]
    pub amount: Value,
    pub partner: Option<String>,
    pub customer: Option<String>,
    pub credit: bool,
    pub is_currency: bool,
    pub amount_units: Option<String>,
    pub created_at: String,
    pub deleted_at: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub rewards: Vec<Value>,
}

impl TransactionOut {
    pub fn new(t: &TransactionRow) -> Self {
        Self {
            key: t.key.clone(),
            action: t.action.clone(),
            amount: t
                .amount()
                .map(crate::domain::money::decimal_json)
                .unwrap_or(Value::Null),
            partner: t.partner.clone(),
            customer: Some(t.customer.clone()),
            credit: false,
            is_currency: true,
            amount_units: t.amount_units.clone(),
            created_at: format_ts(&t.created_at()),
            deleted_at: None,
            rewards: Vec::new(),
        }
    }
}

/// POST/PUT `/v1/coupons`: the coupon and this request's sync outcome (spec §1.4).
#[derive(Debug, Serialize, ToSchema)]
pub struct CouponWriteResponse {
    pub data: CouponOut,
    pub status: i32,
    pub message: &'static str,
    pub synchronization_enabled: bool,
    pub synchronization_successful: bool,
    pub synchronization_message: String,
}

/// `{"data": ..., "status": 1}`
#[derive(Debug, Serialize, ToSchema)]
pub struct DataStatus<T> {
    pub data: T,
    pub status: i32,
}

/// `{"data": ..., "status": 1, "message": ...}`
#[derive(Debug, Serialize, ToSchema)]
pub struct DataStatusMessage<T> {
    pub data: T,
    pub status: i32,
    pub message: &'static str,
}

/// `{"status": 1}`
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusOnly {
    pub status: i32,
}

/// `{"status": ..., "message": ...}`
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusMessage {
    pub status: i32,
    pub message: String,
}

/// The promotion-code DELETE envelope: `{"data": {"status", "message"}}` (B31).
#[derive(Debug, Serialize, ToSchema)]
pub struct NestedStatus {
    pub data: StatusMessage,
}

/// A 422 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    pub message: String,
    /// Field path → messages.
    #[schema(value_type = Object)]
    pub errors: Value,
}

/// Simple-paginator links (spec §1.6).
#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    pub first: String,
    pub last: Option<String>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// Simple-paginator meta.
#[derive(Debug, Serialize, ToSchema)]
pub struct Meta {
    pub current_page: i64,
    pub from: Option<i64>,
    pub path: String,
    pub per_page: i64,
    pub to: Option<i64>,
}

/// A page of a list endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub links: Links,
    pub meta: Meta,
    pub status: i32,
}

// ---- request bodies, for the OpenAPI document (the handlers parse leniently, spec §1.2) ----

/// `sync` on create/update.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SyncRequest {
    /// `stripe`, `shopify`, `woocommerce` or `paddle`; must be connected to the program.
    pub provider: String,
}

/// `POST /v1/promotion-codes` (nested in a coupon create without `coupon_uuid`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PromotionCodeCreateRequest {
    /// The parent coupon's `uuid_code` (top-level create only).
    pub coupon_uuid: Option<String>,
    /// `[A-Za-z0-9_-]`, at most 100; generated when absent.
    pub code: Option<String>,
    pub first_time_order: Option<bool>,
    pub limit_to_specific_partner: Option<bool>,
    /// `{id, full_name}` or a list of them.
    #[schema(value_type = Option<Object>)]
    pub coupon_specific_partners: Option<Value>,
    pub limit_to_specific_customer: Option<bool>,
    /// `{id, customer_full_name}` or a list of them.
    #[schema(value_type = Option<Object>)]
    pub coupon_specific_customers: Option<Value>,
    pub limit_to_specific_subscriber: Option<bool>,
    /// `{id, subscriber_full_name}` or a list of them.
    #[schema(value_type = Option<Object>)]
    pub coupon_specific_subscribers: Option<Value>,
    pub minimum_order_status: Option<bool>,
    pub minimum_order_value: Option<i64>,
    pub expiration_date_status: Option<bool>,
    /// `YYYY-MM-DD` (end of day UTC) or RFC 3339.
    pub expiration_date_value: Option<String>,
    pub redemption_times_status: Option<bool>,
    pub redemption_times_value: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `POST /v1/coupons`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CouponCreateRequest {
    pub name: Option<String>,
    /// `[A-Za-z0-9_-]`, at most 255; generated when absent.
    pub uuid_code: Option<String>,
    pub active: Option<bool>,
    /// `percent` or `static`.
    pub coupon_discount_type: String,
    /// 0 < x ≤ 100 for percent; > 0 (major units, 2 decimals) for static.
    pub coupon_discount_amount: f64,
    /// `once`, `hours`, `days`, `months`, `years`, `lifetime`.
    pub coupon_duration_type: String,
    pub coupon_duration_value: Option<i64>,
    pub redemption_specific_date_status: Option<bool>,
    pub redemption_specific_date_value: Option<String>,
    pub redemption_times_status: Option<bool>,
    pub redemption_times_value: Option<i64>,
    pub promotion_codes: Option<Vec<PromotionCodeCreateRequest>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    pub sync: Option<SyncRequest>,
}

/// `PUT /v1/coupons` (current and legacy fields).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CouponUpdateRequest {
    pub uuid_code: String,
    pub name: Option<String>,
    /// Merged key by key; `null` removes a key.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    pub redeem: Option<bool>,
    pub transaction_key: Option<String>,
    pub sync: Option<SyncRequest>,
    pub active: Option<bool>,
    pub coupon_discount_type: Option<String>,
    pub coupon_discount_amount: Option<f64>,
    pub coupon_duration_type: Option<String>,
    pub coupon_duration_value: Option<i64>,
    pub redemption_specific_date_status: Option<bool>,
    pub redemption_specific_date_value: Option<String>,
    pub redemption_times_status: Option<bool>,
    pub redemption_times_value: Option<i64>,
}

/// `PUT /v1/promotion-codes`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PromotionCodeUpdateRequest {
    pub code: String,
    pub limit_to_specific_partner: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub coupon_specific_partners: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    pub redeem: Option<bool>,
    pub transaction_key: Option<String>,
}

/// `coupon` of the promotion-code DELETE.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CouponRef {
    pub uuid_code: String,
}

/// `DELETE /v1/promotion-codes` (body or PHP-style query).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PromotionCodeDeleteRequest {
    pub code: String,
    pub coupon: CouponRef,
}

/// `customer` / `partner` of a transaction.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PartyRef {
    pub key: Option<String>,
    pub email: Option<String>,
}

/// `POST /v1/transactions` (or the batch form with `transactions`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TransactionCreateRequest {
    pub key: Option<String>,
    pub amount: Option<f64>,
    pub reward: Option<f64>,
    pub amount_units: Option<String>,
    pub action: Option<String>,
    pub product_id: Option<String>,
    pub product_type: Option<String>,
    pub rewarded: Option<bool>,
    pub rewardable: Option<bool>,
    /// Unix seconds.
    pub created_at: Option<i64>,
    pub customer: Option<PartyRef>,
    pub partner: Option<PartyRef>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub transactions: Option<Vec<Value>>,
}
