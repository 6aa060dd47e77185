//! Field-level validation errors, shaped like Laravel's 422 bodies.

use serde::Serialize;
use serde_json::{Map, Value};

/// Field path → messages, in the order the errors were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    entries: Vec<(String, Vec<String>)>,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// A single error on one field.
    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.add(path, message);
        e
    }

    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let message = message.into();
        match self.entries.iter_mut().find(|(p, _)| *p == path) {
            Some((_, msgs)) => msgs.push(message),
            None => self.entries.push((path, vec![message])),
        }
    }

    pub fn has(&self, path: &str) -> bool {
        self.entries.iter().any(|(p, _)| p == path)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn extend(&mut self, other: FieldErrors) {
        for (p, msgs) in other.entries {
            for m in msgs {
                self.add(p.clone(), m);
            }
        }
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(p, _)| p.as_str())
    }

    /// `Ok(value)` when no error was recorded.
    pub fn into_result<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// The top-level `message`: the first error, plus ` (and N more error[s])`.
    pub fn message(&self) -> String {
        let total: usize = self.entries.iter().map(|(_, m)| m.len()).sum();
        let first = self
            .entries
            .first()
            .and_then(|(_, m)| m.first())
            .cloned()
            .unwrap_or_else(|| "The given data was invalid.".to_owned());
        match total.saturating_sub(1) {
            0 => first,
            1 => format!("{first} (and 1 more error)"),
            n => format!("{first} (and {n} more errors)"),
        }
    }

    /// The `errors` object of the 422 body.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (p, msgs) in &self.entries {
            map.insert(p.clone(), Value::from(msgs.clone()));
        }
        Value::Object(map)
    }
}

impl Serialize for FieldErrors {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for FieldErrors {}

/// Laravel's attribute name: the path with `_` read as a space.
pub fn attr(path: &str) -> String {
    path.replace('_', " ")
}

/// The message catalogue of spec §7.
pub mod msg {
    use super::attr;

    pub fn required(path: &str) -> String {
        format!("The {} field is required.", attr(path))
    }
    pub fn required_when(path: &str, switch: &str) -> String {
        format!(
            "The {} field is required when {} is true.",
            attr(path),
            attr(switch)
        )
    }
    pub fn invalid(path: &str) -> String {
        format!("The selected {} is invalid.", attr(path))
    }
    pub fn charset(path: &str) -> String {
        format!(
            "The {} field must only contain letters, numbers, dashes, and underscores.",
            attr(path)
        )
    }
    pub fn max_len(path: &str, n: usize) -> String {
        format!(
            "The {} field must not be greater than {n} characters.",
            attr(path)
        )
    }
    pub fn taken(path: &str) -> String {
        format!("The {} has already been taken.", attr(path))
    }
    pub fn string(path: &str) -> String {
        format!("The {} field must be a string.", attr(path))
    }
    pub fn integer(path: &str) -> String {
        format!("The {} field must be an integer.", attr(path))
    }
    pub fn number(path: &str) -> String {
        format!("The {} field must be a number.", attr(path))
    }
    pub fn boolean(path: &str) -> String {
        format!("The {} field must be true or false.", attr(path))
    }
    pub fn object(path: &str) -> String {
        format!("The {} field must be an object.", attr(path))
    }
    pub fn array(path: &str) -> String {
        format!("The {} field must be an array.", attr(path))
    }
    pub fn gt_zero(path: &str) -> String {
        format!("The {} field must be greater than 0.", attr(path))
    }
    pub fn at_least(path: &str, n: i64) -> String {
        format!("The {} field must be at least {n}.", attr(path))
    }
    pub fn max_value(path: &str, n: impl std::fmt::Display) -> String {
        format!("The {} field must not be greater than {n}.", attr(path))
    }
    pub fn decimals(path: &str, n: u32) -> String {
        format!(
            "The {} field must have at most {n} decimal places.",
            attr(path)
        )
    }
    pub fn date(path: &str) -> String {
        format!("The {} field must be a valid date.", attr(path))
    }
    pub fn date_future(path: &str) -> String {
        format!("The {} field must be a date after now.", attr(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_further_errors_like_laravel() {
        let mut e = FieldErrors::new();
        e.add("name", "first");
        assert_eq!(e.message(), "first");
        e.add("name", "second");
        assert_eq!(e.message(), "first (and 1 more error)");
        e.add("code", "third");
        assert_eq!(e.message(), "first (and 2 more errors)");
        assert_eq!(e.to_json()["name"], serde_json::json!(["first", "second"]));
    }

    #[test]
    fn attr_replaces_underscores() {
        assert_eq!(
            msg::required("promotion_codes.0.code"),
            "The promotion codes.0.code field is required."
        );
    }
}
