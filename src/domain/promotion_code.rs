//! Promotion codes: the customer-facing codes of a coupon and their own restrictions.

use super::coupon::{
    MAX_TRANSACTION_KEY_LEN, Redeem, read_metadata, read_metadata_patch, read_promo_code,
    read_redeem, switched_count, switched_date,
};
use super::errors::{FieldErrors, attr, msg};
use super::ident::PromoCode;
use super::input::Fields;
use super::metadata::{Metadata, MetadataPatch};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub const MAX_PARTY_NAME_LEN: usize = 255;
pub const MAX_MINIMUM_ORDER: i64 = 99_999_999;

/// Whose restriction list a [`Party`] belongs to; decides the name key on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyKind {
    Partner,
    Customer,
    Subscriber,
}

impl PartyKind {
    pub fn name_key(self) -> &'static str {
        match self {
            Self::Partner => "full_name",
            Self::Customer => "customer_full_name",
            Self::Subscriber => "subscriber_full_name",
        }
    }
    fn list_key(self) -> &'static str {
        match self {
            Self::Partner => "coupon_specific_partners",
            Self::Customer => "coupon_specific_customers",
            Self::Subscriber => "coupon_specific_subscribers",
        }
    }
    fn switch_key(self) -> &'static str {
        match self {
            Self::Partner => "limit_to_specific_partner",
            Self::Customer => "limit_to_specific_customer",
            Self::Subscriber => "limit_to_specific_subscriber",
        }
    }
}

/// One entry of a restriction list: `id` (string or integer, verbatim) and an optional name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub id: Value,
    pub name: Option<String>,
}

impl Party {
    fn parse(v: &Value, kind: PartyKind, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        let Some(obj) = v.as_object() else {
            errors.add(path, msg::object(path));
            return None;
        };
        let id_path = format!("{path}.id");
        let id = match obj.get("id") {
            Some(v @ Value::String(s)) if !s.is_empty() && s.len() <= 255 => v.clone(),
            Some(v @ Value::Number(n)) if n.is_i64() || n.is_u64() => v.clone(),
            None | Some(Value::Null) => {
                errors.add(&id_path, msg::required(&id_path));
                return None;
            }
            Some(_) => {
                errors.add(
                    &id_path,
                    format!(
                        "The {} field must be a string or an integer.",
                        attr(&id_path)
                    ),
                );
                return None;
            }
        };
        let f = Fields::nested(obj, path);
        let name = f.string(kind.name_key(), MAX_PARTY_NAME_LEN, errors);
        Some(Self { id, name })
    }

    /// The stored / emitted form, e.g. `{"id": 1, "full_name": "Ann"}`.
    pub fn to_json(&self, kind: PartyKind) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone());
        m.insert(
            kind.name_key().into(),
            self.name.clone().map(Value::String).unwrap_or(Value::Null),
        );
        Value::Object(m)
    }

    pub fn from_json(v: &Value, kind: PartyKind) -> Option<Self> {
        let o = v.as_object()?;
        Some(Self {
            id: o.get("id")?.clone(),
            name: o
                .get(kind.name_key())
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// Reads a restriction list: one object or a list of objects, at least one entry.
fn read_parties(f: &Fields, kind: PartyKind, errors: &mut FieldErrors) -> Option<Vec<Party>> {
    let key = kind.list_key();
    let path = f.path(key);
    let raw = f.raw(key)?;
    let items: Vec<&Value> = match raw {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) if o.is_empty() => Vec::new(),
        Value::Object(_) => vec![raw],
        _ => {
            errors.add(
                &path,
                format!("The {} field must be an object or an array.", attr(&path)),
            );
            return None;
        }
    };
    let single = matches!(raw, Value::Object(_));
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let p = if single {
            path.clone()
        } else {
            format!("{path}.{i}")
        };
        out.push(Party::parse(item, kind, &p, errors)?);
    }
    Some(out)
}

/// A switch with its list: `None` when off; when on, at least one entry is required.
fn switched_parties(f: &Fields, kind: PartyKind, errors: &mut FieldErrors) -> Option<Vec<Party>> {
    let on = f.boolean(kind.switch_key(), errors).unwrap_or(false);
    let list = read_parties(f, kind, errors);
    if !on {
        return None;
    }
    let path = f.path(kind.list_key());
    match list {
        Some(l) if !l.is_empty() => Some(l),
        _ if errors.has(&path) || errors.fields().any(|p| p.starts_with(&format!("{path}."))) => {
            None
        }
        _ => {
            errors.add(&path, msg::required_when(&path, kind.switch_key()));
            None
        }
    }
}

/// The restrictions a code adds to its coupon's terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CodeRestrictions {
    pub first_time_order: bool,
    pub partners: Option<Vec<Party>>,
    pub customers: Option<Vec<Party>>,
    pub subscribers: Option<Vec<Party>>,
    /// `minimum_order_value`, in major units of the program currency.
    pub minimum_order: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<i64>,
}

/// A validated promotion code create (top-level, or nested in a coupon create).
#[derive(Debug, Clone)]
pub struct NewPromotionCode {
    pub code: Option<PromoCode>,
    pub restrictions: CodeRestrictions,
    pub metadata: Metadata,
}

impl NewPromotionCode {
    /// Parses the §4.1 fields (minus `coupon_uuid`), recording errors under `prefix`.
    pub fn parse(
        obj: &Map<String, Value>,
        prefix: &str,
        now: DateTime<Utc>,
        errors: &mut FieldErrors,
    ) -> Option<Self> {
        let before = errors.clone();
        let f = Fields::nested(obj, prefix);
        let code = read_promo_code(&f, errors);
        let first_time_order = f.boolean("first_time_order", errors).unwrap_or(false);
        let partners = switched_parties(&f, PartyKind::Partner, errors);
        let customers = switched_parties(&f, PartyKind::Customer, errors);
        let subscribers = switched_parties(&f, PartyKind::Subscriber, errors);
        let min_status = f.boolean("minimum_order_status", errors).unwrap_or(false);
        let min_value = f.integer("minimum_order_value", errors);
        let minimum_order = if min_status {
            let p = f.path("minimum_order_value");
            match min_value {
                Some(v) if v > MAX_MINIMUM_ORDER => {
                    errors.add(&p, msg::max_value(&p, MAX_MINIMUM_ORDER));
                    None
                }
                v => switched_count(true, v, &p, &f.path("minimum_order_status"), errors),
            }
        } else {
            None
        };
        let exp_status = f.boolean("expiration_date_status", errors).unwrap_or(false);
        let exp_value = f.date_tri("expiration_date_value", errors);
        let expires_at = switched_date(
            exp_status,
            exp_value.clone().value(),
            !exp_value.is_absent(),
            &f.path("expiration_date_value"),
            &f.path("expiration_date_status"),
            now,
            errors,
        );
        let times_status = f
            .boolean("redemption_times_status", errors)
            .unwrap_or(false);
        let times_value = f.integer("redemption_times_value", errors);
        let max_redemptions = switched_count(
            times_status,
            times_value,
            &f.path("redemption_times_value"),
            &f.path("redemption_times_status"),
            errors,
        );
        let metadata = read_metadata(&f, errors);
        if *errors != before {
            return None;
        }
        Some(Self {
            code,
            restrictions: CodeRestrictions {
                first_time_order,
                partners,
                customers,
                subscribers,
                minimum_order,
                expires_at,
                max_redemptions,
            },
            metadata,
        })
    }
}

/// A validated `POST /v1/promotion-codes`.
#[derive(Debug, Clone)]
pub struct CreatePromotionCode {
    pub coupon_uuid: String,
    pub code: NewPromotionCode,
}

impl CreatePromotionCode {
    pub fn parse(body: &Map<String, Value>, now: DateTime<Utc>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let f = Fields::new(body);
        let coupon_uuid = f.non_empty_string("coupon_uuid", 255, &mut errors);
        if coupon_uuid.is_none() && !errors.has("coupon_uuid") {
            errors.add("coupon_uuid", msg::required("coupon_uuid"));
        }
        let code = NewPromotionCode::parse(body, "", now, &mut errors);
        match (coupon_uuid, code) {
            (Some(coupon_uuid), Some(code)) if errors.is_empty() => Ok(Self { coupon_uuid, code }),
            _ => Err(errors),
        }
    }
}

/// A validated `PUT /v1/promotion-codes` (§4.4): only these fields can change.
#[derive(Debug, Clone)]
pub struct PromotionCodePatch {
    pub code: PromoCode,
    limit_to_partner: Option<bool>,
    partners: Option<Vec<Party>>,
    pub metadata: Option<MetadataPatch>,
    pub redeem: Redeem,
}

impl PromotionCodePatch {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let f = Fields::new(body);
        let code = read_promo_code(&f, &mut errors);
        if code.is_none() && !errors.has("code") {
            errors.add("code", msg::required("code"));
        }
        let limit_to_partner = f.boolean("limit_to_specific_partner", &mut errors);
        let partners = read_parties(&f, PartyKind::Partner, &mut errors);
        let metadata = read_metadata_patch(&f, &mut errors);
        let redeem = read_redeem(&f, &mut errors);
        let _ = MAX_TRANSACTION_KEY_LEN;
        match code {
            Some(code) if errors.is_empty() => Ok(Self {
                code,
                limit_to_partner,
                partners,
                metadata,
                redeem,
            }),
            _ => Err(errors),
        }
    }

    /// Whether the request changes the partner restriction at all.
    pub fn touches_partners(&self) -> bool {
        self.limit_to_partner.is_some() || self.partners.is_some()
    }

    /// The partner restriction after this request (merged switch and list).
    pub fn apply_partners(
        &self,
        current: Option<&Vec<Party>>,
    ) -> Result<Option<Vec<Party>>, FieldErrors> {
        let on = self.limit_to_partner.unwrap_or(current.is_some());
        if !on {
            return Ok(None);
        }
        match self.partners.as_ref().filter(|p| !p.is_empty()).or(current) {
            Some(p) => Ok(Some(p.clone())),
            None => Err(FieldErrors::single(
                "coupon_specific_partners",
                msg::required_when("coupon_specific_partners", "limit_to_specific_partner"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn parse(v: Value) -> Result<CreatePromotionCode, FieldErrors> {
        CreatePromotionCode::parse(v.as_object().unwrap(), now())
    }

    #[test]
    fn minimal_code() {
        let c = parse(json!({"coupon_uuid": "c1"})).unwrap();
        assert!(c.code.code.is_none());
        assert_eq!(c.code.restrictions, CodeRestrictions::default());
    }

    #[test]
    fn coupon_uuid_required_and_coupon_id_not_an_alias() {
        let e = parse(json!({"coupon_id": 5})).unwrap_err();
        assert!(e.has("coupon_uuid"));
    }

    #[test]
    fn partners_accept_one_object_or_a_list() {
        let c = parse(json!({"coupon_uuid": "c", "limit_to_specific_partner": true, "coupon_specific_partners": {"id": 7, "full_name": "Ann"}})).unwrap();
        assert_eq!(
            c.code.restrictions.partners.unwrap(),
            vec![Party {
                id: json!(7),
                name: Some("Ann".into())
            }]
        );
        let c = parse(json!({"coupon_uuid": "c", "limit_to_specific_partner": "on", "coupon_specific_partners": [{"id": "p1"}, {"id": 2}]})).unwrap();
        assert_eq!(c.code.restrictions.partners.unwrap().len(), 2);
        let e = parse(json!({"coupon_uuid": "c", "limit_to_specific_partner": true})).unwrap_err();
        assert!(e.has("coupon_specific_partners"));
        let e = parse(json!({"coupon_uuid": "c", "limit_to_specific_partner": true, "coupon_specific_partners": [{"full_name": "x"}]})).unwrap_err();
        assert!(e.has("coupon_specific_partners.0.id"));
        // switch off: list dropped
        let c = parse(json!({"coupon_uuid": "c", "coupon_specific_partners": {"id": 1}})).unwrap();
        assert_eq!(c.code.restrictions.partners, None);
    }

    #[test]
    fn minimum_order_and_expiry() {
        let e = parse(
            json!({"coupon_uuid": "c", "minimum_order_status": true, "minimum_order_value": 0}),
        )
        .unwrap_err();
        assert!(e.has("minimum_order_value"));
        let e = parse(json!({"coupon_uuid": "c", "expiration_date_status": true, "expiration_date_value": "2000-01-01"})).unwrap_err();
        assert!(e.has("expiration_date_value"));
        let c = parse(
            json!({"coupon_uuid": "c", "minimum_order_status": true, "minimum_order_value": "22"}),
        )
        .unwrap();
        assert_eq!(c.code.restrictions.minimum_order, Some(22));
    }

    #[test]
    fn patch_partner_merge() {
        let current = vec![Party {
            id: json!(1),
            name: None,
        }];
        let p = PromotionCodePatch::parse(
            json!({"code": "X", "limit_to_specific_partner": false})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(p.apply_partners(Some(&current)).unwrap(), None);
        let p = PromotionCodePatch::parse(
            json!({"code": "X", "limit_to_specific_partner": true})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert!(
            p.apply_partners(None)
                .unwrap_err()
                .has("coupon_specific_partners")
        );
        assert_eq!(
            p.apply_partners(Some(&current)).unwrap(),
            Some(current.clone())
        );
        let p = PromotionCodePatch::parse(
            json!({"code": "X", "metadata": {"a": 1}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert!(!p.touches_partners());
    }
}
