//! Laravel's simple paginator (spec §1.6): `limit` 1–250 (default 15), `page` ≥ 1, clamped, never an error.

use super::dto::{Links, Meta, Page};
use crate::domain::input::parse_integer;
use serde_json::{Map, Value};

pub const DEFAULT_LIMIT: i64 = 15;
pub const MAX_LIMIT: i64 = 250;

/// The paging part of a list request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    pub page: i64,
    limit_given: bool,
    /// Recognised filters carried into the links, in order.
    carried: Vec<(String, String)>,
}

impl PageRequest {
    pub fn from_input(input: &Map<String, Value>) -> Self {
        let limit = match input.get("limit") {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(v) => parse_integer(v)
                .map(|l| l.clamp(1, MAX_LIMIT))
                .unwrap_or(DEFAULT_LIMIT),
        };
        let page = input
            .get("page")
            .and_then(parse_integer)
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        let limit_given = !matches!(input.get("limit"), None | Some(Value::Null));
        Self {
            limit,
            page,
            limit_given,
            carried: Vec::new(),
        }
    }

    /// Carries a filter into the links (after `limit`, before `page`).
    pub fn carry(mut self, key: &str, value: Option<&str>) -> Self {
        if let Some(v) = value {
            self.carried.push((key.to_owned(), v.to_owned()));
        }
        self
    }

    pub fn offset(&self) -> i64 {
        self.limit.saturating_mul(self.page - 1).min(i64::MAX / 2)
    }

    /// How many rows to fetch: one more than the page, to know whether a next page exists.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    fn link(&self, path: &str, page: i64) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if self.limit_given {
            q.append_pair("limit", &self.limit.to_string());
        }
        for (k, v) in &self.carried {
            q.append_pair(k, v);
        }
        q.append_pair("page", &page.to_string());
        format!("{path}?{}", q.finish())
    }

    /// Builds the page from up to `fetch()` rows.
    pub fn page<T>(&self, mut rows: Vec<T>, path: String) -> Page<T> {
        let has_next = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let n = rows.len() as i64;
        let from = (n > 0).then(|| self.offset() + 1);
        Page {
            links: Links {
                first: self.link(&path, 1),
                last: None,
                prev: (self.page > 1).then(|| self.link(&path, self.page - 1)),
                next: has_next.then(|| self.link(&path, self.page + 1)),
            },
            meta: Meta {
                current_page: self.page,
                from,
                path,
                per_page: self.limit,
                to: from.map(|f| f + n - 1),
            },
            data: rows,
            status: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> PageRequest {
        PageRequest::from_input(v.as_object().unwrap())
    }

    #[test]
    fn clamps_and_defaults() {
        assert_eq!(req(json!({})).limit, 15);
        assert_eq!(req(json!({"limit": "0"})).limit, 1);
        assert_eq!(req(json!({"limit": 999})).limit, 250);
        assert_eq!(req(json!({"limit": "abc"})).limit, 15);
        assert_eq!(req(json!({"page": -3})).page, 1);
        assert_eq!(req(json!({"page": "x"})).page, 1);
    }

    #[test]
    fn links_and_meta() {
        let r = req(json!({"limit": 2, "page": 2}));
        let p = r.page(vec![1, 2, 3], "http://h/v1/coupons".into());
        assert_eq!(p.data, vec![1, 2]);
        assert_eq!(
            p.links.next.as_deref(),
            Some("http://h/v1/coupons?limit=2&page=3")
        );
        assert_eq!(
            p.links.prev.as_deref(),
            Some("http://h/v1/coupons?limit=2&page=1")
        );
        assert_eq!((p.meta.from, p.meta.to), (Some(3), Some(4)));
        let empty = req(json!({"page": 9})).page(Vec::<i32>::new(), "http://h/x".into());
        assert_eq!(
            (empty.meta.from, empty.meta.to, empty.links.next),
            (None, None, None)
        );
        assert_eq!(empty.links.first, "http://h/x?page=1");
    }
}
