//! Drift between what the mapping wants and what Stripe holds (pure).

use super::mapping::{CodeSpec, CouponSpec};
use serde_json::Value;
use std::collections::BTreeMap;

/// One field that differs: what coupond wants, what the provider has.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldDrift {
    pub field: String,
    pub ours: String,
    pub theirs: String,
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "null".into())
}

fn cmp(out: &mut Vec<FieldDrift>, field: &str, ours: String, theirs: String) {
    if ours != theirs {
        out.push(FieldDrift {
            field: field.into(),
            ours,
            theirs,
        });
    }
}

fn metadata(out: &mut Vec<FieldDrift>, ours: &BTreeMap<String, String>, theirs: &Value) {
    let theirs: BTreeMap<String, String> = theirs
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), show(v))).collect())
        .unwrap_or_default();
    for k in ours
        .keys()
        .chain(theirs.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        cmp(
            out,
            &format!("metadata.{k}"),
            opt(&ours.get(k)),
            opt(&theirs.get(k)),
        );
    }
}

/// Percentages compare as decimals (`25` and `25.0` are the same).
fn percent(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        other => other
            .to_string()
            .parse::<rust_decimal::Decimal>()
            .map(|d| d.normalize().to_string())
            .unwrap_or_else(|_| other.to_string()),
    }
}

pub fn coupon_drift(want: &CouponSpec, theirs: &Value) -> Vec<FieldDrift> {
    let mut out = Vec::new();
    cmp(&mut out, "name", want.name.clone(), show(&theirs["name"]));
    cmp(
        &mut out,
        "percent_off",
        opt(&want.percent_off),
        percent(&theirs["percent_off"]),
    );
    cmp(
        &mut out,
        "amount_off",
        opt(&want.amount_off),
        show(&theirs["amount_off"]),
    );
    cmp(
        &mut out,
        "currency",
        opt(&want.currency),
        show(&theirs["currency"]),
    );
    cmp(
        &mut out,
        "duration",
        want.duration.clone(),
        show(&theirs["duration"]),
    );
    cmp(
        &mut out,
        "duration_in_months",
        opt(&want.duration_in_months),
        show(&theirs["duration_in_months"]),
    );
    cmp(
        &mut out,
        "max_redemptions",
        opt(&want.max_redemptions),
        show(&theirs["max_redemptions"]),
    );
    metadata(&mut out, &want.metadata, &theirs["metadata"]);
    out
}

pub fn code_drift(want: &CodeSpec, theirs: &Value) -> Vec<FieldDrift> {
    let mut out = Vec::new();
    let r = &theirs["restrictions"];
    cmp(
        &mut out,
        "code",
        want.code.to_ascii_lowercase(),
        show(&theirs["code"]).to_ascii_lowercase(),
    );
    cmp(
        &mut out,
        "active",
        want.active.to_string(),
        show(&theirs["active"]),
    );
    cmp(
        &mut out,
        "expires_at",
        opt(&want.expires_at),
        show(&theirs["expires_at"]),
    );
    cmp(
        &mut out,
        "max_redemptions",
        opt(&want.max_redemptions),
        show(&theirs["max_redemptions"]),
    );
    cmp(
        &mut out,
        "restrictions.first_time_transaction",
        want.first_time_transaction.to_string(),
        show(&r["first_time_transaction"]),
    );
    cmp(
        &mut out,
        "restrictions.minimum_amount",
        opt(&want.minimum_amount),
        show(&r["minimum_amount"]),
    );
    cmp(
        &mut out,
        "restrictions.minimum_amount_currency",
        opt(&want.minimum_amount_currency),
        show(&r["minimum_amount_currency"]),
    );
    cmp(
        &mut out,
        "customer",
        opt(&want.customer),
        show(&theirs["customer"]),
    );
    metadata(&mut out, &want.metadata, &theirs["metadata"]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> CouponSpec {
        CouponSpec {
            percent_off: Some("25".into()),
            amount_off: None,
            currency: None,
            duration: "once".into(),
            duration_in_months: None,
            max_redemptions: None,
            name: "Summer".into(),
            metadata: [("coupond".to_owned(), "1".to_owned())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn equal_objects_have_no_drift_and_numbers_compare_as_decimals() {
        let theirs = json!({"name": "Summer", "percent_off": 25.0, "amount_off": null, "currency": null, "duration": "once",
                            "duration_in_months": null, "max_redemptions": null, "metadata": {"coupond": "1"}});
        assert_eq!(coupon_drift(&spec(), &theirs), vec![]);
    }

    #[test]
    fn each_changed_field_is_named_with_both_values() {
        let theirs = json!({"name": "Hacked", "percent_off": 30.0, "duration": "once", "metadata": {"coupond": "1", "extra": "x"}});
        let d = coupon_drift(&spec(), &theirs);
        let fields: Vec<&str> = d.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name", "percent_off", "metadata.extra"]);
        assert_eq!(
            (d[0].ours.as_str(), d[0].theirs.as_str()),
            ("Summer", "Hacked")
        );
        assert_eq!((d[2].ours.as_str(), d[2].theirs.as_str()), ("null", "x"));
    }
}
