//! Lenient readers over a JSON object, as the Partnero wire format needs them:
//! `null` means absent, booleans come as `true`/`1`/`"on"`, numbers as strings, `[]` as `{}`.
//! Every reader records a field-named error instead of failing.

use super::errors::{FieldErrors, msg};
use super::time::parse_date_input;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::str::FromStr;

/// A value that may be absent, explicitly `null`, or given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Tri<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Tri<T> {
    pub fn value(self) -> Option<T> {
        match self {
            Tri::Value(v) => Some(v),
            _ => None,
        }
    }
    pub fn is_absent(&self) -> bool {
        matches!(self, Tri::Absent)
    }
}

/// Reads the fields of one JSON object, recording errors under `prefix`.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Self {
            obj,
            prefix: String::new(),
        }
    }

    pub fn nested(obj: &'a Map<String, Value>, prefix: impl Into<String>) -> Self {
        Self {
            obj,
            prefix: prefix.into(),
        }
    }

    pub fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// The raw value, with `null` read as absent.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    /// Whether the key was sent with an explicit `null`.
    pub fn is_null(&self, key: &str) -> bool {
        matches!(self.obj.get(key), Some(Value::Null))
    }

    pub fn present(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    fn tri<T>(&self, key: &str, f: impl FnOnce(&'a Value) -> Option<T>) -> Tri<T> {
        match self.obj.get(key) {
            None => Tri::Absent,
            Some(Value::Null) => Tri::Null,
            Some(v) => f(v).map(Tri::Value).unwrap_or(Tri::Absent),
        }
    }

    /// A string; numbers are refused (Laravel's `string` rule). Empty strings are returned as-is.
    pub fn string(&self, key: &str, max: usize, errors: &mut FieldErrors) -> Option<String> {
        let v = self.raw(key)?;
        let path = self.path(key);
        match v {
            Value::String(s) => {
                if s.chars().count() > max {
                    errors.add(&path, msg::max_len(&path, max));
                    None
                } else {
                    Some(s.clone())
                }
            }
            _ => {
                errors.add(&path, msg::string(&path));
                None
            }
        }
    }

    /// A non-empty string, or `None` for absent / null / `""`.
    pub fn non_empty_string(
        &self,
        key: &str,
        max: usize,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        self.string(key, max, errors).filter(|s| !s.is_empty())
    }

    pub fn boolean(&self, key: &str, errors: &mut FieldErrors) -> Option<bool> {
        let v = self.raw(key)?;
        let parsed = parse_bool(v);
        if parsed.is_none() {
            let path = self.path(key);
            errors.add(&path, msg::boolean(&path));
        }
        parsed
    }

    pub fn integer(&self, key: &str, errors: &mut FieldErrors) -> Option<i64> {
        self.integer_tri(key, errors).value()
    }

    pub fn integer_tri(&self, key: &str, errors: &mut FieldErrors) -> Tri<i64> {
        self.tri(key, |v| {
            let parsed = parse_integer(v);
            if parsed.is_none() {
                let path = self.path(key);
                errors.add(&path, msg::integer(&path));
            }
            parsed
        })
    }

    pub fn decimal(&self, key: &str, errors: &mut FieldErrors) -> Option<Decimal> {
        let v = self.raw(key)?;
        let parsed = parse_decimal(v);
        if parsed.is_none() {
            let path = self.path(key);
            errors.add(&path, msg::number(&path));
        }
        parsed
    }

    /// A date or datetime; a date-only value means the end of that day (UTC).
    pub fn date_tri(&self, key: &str, errors: &mut FieldErrors) -> Tri<DateTime<Utc>> {
        self.tri(key, |v| {
            let parsed = v.as_str().and_then(parse_date_input);
            if parsed.is_none() {
                let path = self.path(key);
                errors.add(&path, msg::date(&path));
            }
            parsed
        })
    }

    /// An object; `[]` counts as `{}`.
    pub fn object(&self, key: &str, errors: &mut FieldErrors) -> Option<&'a Map<String, Value>> {
        let v = self.raw(key)?;
        match v {
            Value::Object(m) => Some(m),
            Value::Array(a) if a.is_empty() => Some(&EMPTY),
            _ => {
                let path = self.path(key);
                errors.add(&path, msg::object(&path));
                None
            }
        }
    }

    /// An array; `{}` counts as `[]`.
    pub fn array(&self, key: &str, errors: &mut FieldErrors) -> Option<&'a [Value]> {
        let v = self.raw(key)?;
        match v {
            Value::Array(a) => Some(a.as_slice()),
            Value::Object(m) if m.is_empty() => Some(&[]),
            _ => {
                let path = self.path(key);
                errors.add(&path, msg::array(&path));
                None
            }
        }
    }
}

/// `true/false`, `1/0`, `"1"/"0"`, `"true"/"false"`, `"on"/"off"`.
pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "true" | "on" => Some(true),
            "0" | "false" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An integral JSON number or numeric string (`"12"`, `12`, `12.0`).
pub fn parse_integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            parse_decimal(v)
                .filter(|d| d.fract().is_zero())
                .and_then(|d| i64::try_from(d).ok())
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// A JSON number or numeric string, read exactly (never through `f64` arithmetic).
pub fn parse_decimal(v: &Value) -> Option<Decimal> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    if text.is_empty() {
        return None;
    }
    Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .or_else(|_| Decimal::from_str(&text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans_accept_the_documented_spellings_only() {
        for v in [
            json!(true),
            json!(1),
            json!("1"),
            json!("true"),
            json!("on"),
            json!("ON"),
        ] {
            assert_eq!(parse_bool(&v), Some(true), "{v}");
        }
        for v in [
            json!(false),
            json!(0),
            json!("0"),
            json!("false"),
            json!("off"),
        ] {
            assert_eq!(parse_bool(&v), Some(false), "{v}");
        }
        for v in [json!(2), json!("yes"), json!([]), json!({}), json!(1.5)] {
            assert_eq!(parse_bool(&v), None, "{v}");
        }
    }

    #[test]
    fn integers_accept_numeric_strings_and_integral_floats() {
        assert_eq!(parse_integer(&json!("12")), Some(12));
        assert_eq!(parse_integer(&json!(12.0)), Some(12));
        assert_eq!(parse_integer(&json!(12.5)), None);
        assert_eq!(parse_integer(&json!("x")), None);
        assert_eq!(parse_integer(&json!(1e300)), None);
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal(&json!("19.99")).unwrap().to_string(), "19.99");
        assert_eq!(parse_decimal(&json!(0.1)).unwrap().to_string(), "0.1");
        assert_eq!(parse_decimal(&json!("abc")), None);
        assert_eq!(parse_decimal(&json!(true)), None);
    }

    #[test]
    fn empty_array_is_an_empty_object() {
        let obj = json!({"metadata": [], "bad": [1]});
        let f = Fields::new(obj.as_object().unwrap());
        let mut e = FieldErrors::new();
        assert!(f.object("metadata", &mut e).unwrap().is_empty());
        assert!(f.object("bad", &mut e).is_none());
        assert!(e.has("bad"));
    }

    #[test]
    fn null_is_absent_but_detectable() {
        let obj = json!({"a": null});
        let f = Fields::new(obj.as_object().unwrap());
        let mut e = FieldErrors::new();
        assert_eq!(f.integer_tri("a", &mut e), Tri::Null);
        assert_eq!(f.integer_tri("b", &mut e), Tri::Absent);
        assert!(e.is_empty());
    }
}
