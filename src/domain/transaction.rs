//! Transactions: stored so that `transaction_key` checks work (spec §5).

use super::errors::{FieldErrors, msg};
use super::input::Fields;
use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

pub const MAX_KEY_LEN: usize = 255;

/// A validated transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTransaction {
    pub key: Option<String>,
    pub action: String,
    pub amount: Option<Decimal>,
    pub reward: Option<Decimal>,
    pub amount_units: Option<String>,
    pub customer: String,
    pub partner: Option<String>,
    pub product_id: Option<String>,
    pub product_type: Option<String>,
    pub rewarded: bool,
    pub rewardable: bool,
    pub created_at: Option<DateTime<Utc>>,
}

fn nested_key(f: &Fields, obj: &str, key: &str, errors: &mut FieldErrors) -> Option<String> {
    let o = f.object(obj, errors)?;
    let inner = Fields::nested(o, f.path(obj));
    inner.non_empty_string(key, 255, errors)
}

impl NewTransaction {
    fn parse_one(
        item: &Map<String, Value>,
        prefix: &str,
        shared_customer: Option<&str>,
        errors: &mut FieldErrors,
    ) -> Option<Self> {
        let before = errors.clone();
        let f = Fields::nested(item, prefix);
        let key = f.non_empty_string("key", MAX_KEY_LEN, errors);
        let action = f
            .non_empty_string("action", 255, errors)
            .unwrap_or_else(|| "sale".to_owned());
        let amount = f.decimal("amount", errors);
        let reward = f.decimal("reward", errors);
        if amount.is_none()
            && reward.is_none()
            && !errors.has(&f.path("amount"))
            && !errors.has(&f.path("reward"))
        {
            let p = f.path("amount");
            errors.add(
                &p,
                format!(
                    "The {} field is required when reward is not present.",
                    super::errors::attr(&p)
                ),
            );
        }
        let amount_units = f
            .non_empty_string("amount_units", 16, errors)
            .map(|s| s.to_ascii_uppercase());
        let customer = nested_key(&f, "customer", "key", errors)
            .or_else(|| nested_key(&f, "customer", "email", errors))
            .or_else(|| shared_customer.map(str::to_owned));
        if customer.is_none() {
            let p = f.path("customer.key");
            if !errors.has(&p) && !errors.has(&f.path("customer")) {
                errors.add(
                    &p,
                    format!(
                        "The {} field is required when customer.email is not present.",
                        super::errors::attr(&p)
                    ),
                );
            }
        }
        let partner = nested_key(&f, "partner", "key", errors);
        let product_id = f.raw("product_id").map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        });
        let product_type = f.non_empty_string("product_type", 255, errors);
        let rewarded = f.boolean("rewarded", errors).unwrap_or(false);
        let rewardable = f.boolean("rewardable", errors).unwrap_or(true);
        let created_at = f.integer("created_at", errors).and_then(|s| {
            let t = Utc.timestamp_opt(s, 0).single();
            if t.is_none() {
                let p = f.path("created_at");
                errors.add(&p, msg::date(&p));
            }
            t
        });
        if *errors != before {
            return None;
        }
        Some(Self {
            key,
            action,
            amount,
            reward,
            amount_units,
            customer: customer?,
            partner,
            product_id,
            product_type,
            rewarded,
            rewardable,
            created_at,
        })
    }

    /// One transaction, or the batch form (`transactions: [...]`, sharing the top-level customer).
    pub fn parse(body: &Map<String, Value>) -> Result<(Vec<Self>, bool), FieldErrors> {
        let mut errors = FieldErrors::new();
        let f = Fields::new(body);
        if let Some(items) = f.array("transactions", &mut errors) {
            let shared = nested_key(&f, "customer", "key", &mut errors)
                .or_else(|| nested_key(&f, "customer", "email", &mut errors));
            if items.is_empty() {
                errors.add("transactions", msg::required("transactions"));
            }
            let mut out = Vec::new();
            let mut keys: Vec<String> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let prefix = format!("transactions.{i}");
                let Some(obj) = item.as_object() else {
                    errors.add(&prefix, msg::object(&prefix));
                    continue;
                };
                if let Some(t) = Self::parse_one(obj, &prefix, shared.as_deref(), &mut errors) {
                    if let Some(k) = &t.key {
                        if keys.contains(k) {
                            let p = format!("{prefix}.key");
                            errors.add(&p, msg::taken(&p));
                        }
                        keys.push(k.clone());
                    }
                    out.push(t);
                }
            }
            return errors.into_result((out, true));
        }
        if errors.has("transactions") {
            return Err(errors);
        }
        let one = Self::parse_one(body, "", None, &mut errors);
        match one {
            Some(t) if errors.is_empty() => Ok((vec![t], false)),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<(Vec<NewTransaction>, bool), FieldErrors> {
        NewTransaction::parse(v.as_object().unwrap())
    }

    #[test]
    fn single_transaction() {
        let (t, batch) = parse(json!({"key": "order_1", "amount": "99.5", "amount_units": "usd", "customer": {"key": "cust"}})).unwrap();
        assert!(!batch);
        assert_eq!(t[0].amount.unwrap().to_string(), "99.5");
        assert_eq!(t[0].amount_units.as_deref(), Some("USD"));
        assert_eq!(t[0].action, "sale");
    }

    #[test]
    fn amount_or_reward_and_customer_required() {
        let e = parse(json!({"key": "k"})).unwrap_err();
        assert!(e.has("amount"));
        assert!(e.has("customer.key"));
        assert!(parse(json!({"reward": 5, "customer": {"email": "a@b.c"}})).is_ok());
    }

    #[test]
    fn batch_shares_customer_and_names_items() {
        let (t, batch) = parse(json!({"customer": {"key": "c"}, "transactions": [{"key": "a", "amount": 1}, {"key": "b", "amount": 2}]})).unwrap();
        assert!(batch);
        assert_eq!(t.len(), 2);
        let e = parse(json!({"customer": {"key": "c"}, "transactions": [{"key": "a", "amount": 1}, {"key": "a", "amount": "x"}]})).unwrap_err();
        assert!(e.has("transactions.1.amount"));
    }
}
