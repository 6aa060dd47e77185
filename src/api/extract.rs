//! Request input: a JSON object from the body, merged over the query string for GET and DELETE
//! (PHP bracket notation, as the official SDK sends it). The body wins on conflicts.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use serde_json::{Map, Value};

/// The request's parameters as one JSON object.
#[derive(Debug, Default)]
pub struct Input(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Input {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let merge_query = matches!(*req.method(), Method::GET | Method::DELETE | Method::HEAD);
        let mut params = match (merge_query, req.uri().query()) {
            (true, Some(q)) => parse_php_query(q),
            _ => Map::new(),
        };
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::TooLarge)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Input(params));
        }
        let body: Value = serde_json::from_slice(&bytes).map_err(|_| ApiError::Malformed)?;
        match body {
            Value::Object(m) => {
                for (k, v) in m {
                    params.insert(k, v);
                }
                Ok(Input(params))
            }
            // `[]` is accepted wherever an object is expected (spec §1.2).
            Value::Array(a) if a.is_empty() => Ok(Input(params)),
            _ => Err(ApiError::Validation(crate::domain::FieldErrors::single(
                "body",
                "The request body must be a JSON object.",
            ))),
        }
    }
}

/// Parses `a=1&coupon[uuid_code]=X&list[]=1&list[]=2` into nested JSON (values stay strings).
pub fn parse_php_query(q: &str) -> Map<String, Value> {
    let mut root = Value::Object(Map::new());
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let mut segments: Vec<String> = Vec::new();
        let (head, mut rest) = match k.find('[') {
            Some(i) => (&k[..i], &k[i..]),
            None => (&k[..], ""),
        };
        if head.is_empty() {
            continue;
        }
        segments.push(head.to_owned());
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            segments.push(stripped[..end].to_owned());
            rest = &stripped[end + 1..];
        }
        insert_path(&mut root, &segments, Value::String(v.into_owned()));
    }
    match root {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn insert_path(node: &mut Value, segments: &[String], value: Value) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    if first.is_empty() {
        // `list[]=x`: append
        if !node.is_array() {
            *node = Value::Array(Vec::new());
        }
        let arr = node.as_array_mut().expect("array");
        if rest.is_empty() {
            arr.push(value);
        } else {
            arr.push(Value::Null);
            let last = arr.last_mut().expect("pushed");
            insert_path(last, rest, value);
        }
        return;
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let obj = node.as_object_mut().expect("object");
    if rest.is_empty() {
        obj.insert(first.clone(), value);
    } else {
        let child = obj.entry(first.clone()).or_insert(Value::Null);
        insert_path(child, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn php_brackets_nest() {
        let m = parse_php_query(
            "code=P1&coupon%5Buuid_code%5D=C1&coupon[name]=x+y&tags[]=a&tags[]=b&limit=5",
        );
        assert_eq!(
            Value::Object(m),
            json!({"code": "P1", "coupon": {"uuid_code": "C1", "name": "x y"}, "tags": ["a", "b"], "limit": "5"})
        );
    }

    #[test]
    fn odd_keys_do_not_panic() {
        let m = parse_php_query("[x]=1&a[b=2&a[]]=3&=4&c[d][e]=5");
        assert_eq!(m["c"], json!({"d": {"e": "5"}}));
    }
}
