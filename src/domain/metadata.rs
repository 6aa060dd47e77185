//! `metadata`: a flat object of at most 50 keys (B8).

use super::errors::{FieldErrors, attr};
use serde_json::{Map, Value};

pub const MAX_KEYS: usize = 50;
pub const MAX_KEY_LEN: usize = 40;
pub const MAX_VALUE_LEN: usize = 500;

/// Validated metadata. Values are strings, numbers or booleans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata(Map<String, Value>);

/// A metadata change from a PUT: `Some(v)` sets, `None` (JSON null) removes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataPatch(Vec<(String, Option<Value>)>);

fn check_entries(obj: &Map<String, Value>, path: &str, errors: &mut FieldErrors) -> bool {
    let before = errors.clone();
    for (k, v) in obj {
        if k.chars().count() > MAX_KEY_LEN {
            errors.add(
                path,
                format!(
                    "The {} keys must not be greater than {MAX_KEY_LEN} characters.",
                    attr(path)
                ),
            );
        }
        match v {
            Value::String(s) if s.chars().count() > MAX_VALUE_LEN => errors.add(
                format!("{path}.{k}"),
                format!(
                    "The {} field must not be greater than {MAX_VALUE_LEN} characters.",
                    attr(&format!("{path}.{k}"))
                ),
            ),
            Value::Array(_) | Value::Object(_) => errors.add(
                format!("{path}.{k}"),
                format!(
                    "The {} field must be a string, number, boolean or null.",
                    attr(&format!("{path}.{k}"))
                ),
            ),
            _ => {}
        }
    }
    *errors == before
}

fn too_many(path: &str) -> String {
    format!(
        "The {} field must not have more than {MAX_KEYS} keys.",
        attr(path)
    )
}

impl Metadata {
    /// For create: stored as given; `null` values are dropped.
    pub fn parse(obj: &Map<String, Value>, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        if !check_entries(obj, path, errors) {
            return None;
        }
        let map: Map<String, Value> = obj
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if map.len() > MAX_KEYS {
            errors.add(path, too_many(path));
            return None;
        }
        Some(Self(map))
    }

    pub fn from_stored(map: Map<String, Value>) -> Self {
        Self(map)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies a patch key by key; fails when the result would exceed the key limit.
    pub fn merged(&self, patch: &MetadataPatch, path: &str) -> Result<Self, FieldErrors> {
        let mut map = self.0.clone();
        for (k, v) in &patch.0 {
            match v {
                Some(v) => {
                    map.insert(k.clone(), v.clone());
                }
                None => {
                    map.shift_remove(k);
                }
            }
        }
        if map.len() > MAX_KEYS {
            return Err(FieldErrors::single(path, too_many(path)));
        }
        Ok(Self(map))
    }
}

impl MetadataPatch {
    pub fn parse(obj: &Map<String, Value>, path: &str, errors: &mut FieldErrors) -> Option<Self> {
        if !check_entries(obj, path, errors) {
            return None;
        }
        Some(Self(
            obj.iter()
                .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| v.clone())))
                .collect(),
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn merge_overwrites_keeps_and_removes() {
        let mut e = FieldErrors::new();
        let m = Metadata::parse(
            &obj(json!({"a": 1, "b": "x", "c": true})),
            "metadata",
            &mut e,
        )
        .unwrap();
        let p = MetadataPatch::parse(
            &obj(json!({"a": 2, "c": null, "d": "new"})),
            "metadata",
            &mut e,
        )
        .unwrap();
        let merged = m.merged(&p, "metadata").unwrap();
        assert_eq!(
            Value::Object(merged.as_map().clone()),
            json!({"a": 2, "b": "x", "d": "new"})
        );
        assert!(e.is_empty());
    }

    #[test]
    fn limits_are_enforced_with_field_paths() {
        let mut e = FieldErrors::new();
        assert!(Metadata::parse(&obj(json!({"nested": {"x": 1}})), "metadata", &mut e).is_none());
        assert!(e.has("metadata.nested"));
        let mut e = FieldErrors::new();
        let long = "k".repeat(41);
        assert!(Metadata::parse(&obj(json!({ long: 1 })), "metadata", &mut e).is_none());
        assert!(e.has("metadata"));
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        let mut e = FieldErrors::new();
        assert!(Metadata::parse(&many, "metadata", &mut e).is_none());
        let mut e = FieldErrors::new();
        assert!(Metadata::parse(&obj(json!({"v": "x".repeat(501)})), "metadata", &mut e).is_none());
        assert!(e.has("metadata.v"));
    }
}
