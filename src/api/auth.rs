//! Bearer keys: each belongs to one program; compared in constant time.

use super::AppState;
use super::error::ApiError;
use crate::config::{ProgramSettings, Settings};
use crate::domain::ProviderKind;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// One program as the API sees it.
#[derive(Debug)]
pub struct ProgramInfo {
    pub name: String,
    pub currency: String,
    pub connected: Vec<ProviderKind>,
    pub rate_limit_per_minute: Option<u32>,
    /// Mirror mode: the upstream this program follows (its coupon data is read-only here).
    pub mirror_of: Option<String>,
}

impl ProgramInfo {
    fn from_settings(name: &str, p: &ProgramSettings) -> Self {
        let mut connected = Vec::new();
        if p.stripe.as_ref().is_some_and(|s| s.enabled) {
            connected.push(ProviderKind::Stripe);
        }
        if p.shopify.as_ref().is_some_and(|s| s.enabled) {
            connected.push(ProviderKind::Shopify);
        }
        if p.woocommerce.as_ref().is_some_and(|s| s.enabled) {
            connected.push(ProviderKind::WooCommerce);
        }
        if p.paddle.as_ref().is_some_and(|s| s.enabled) {
            connected.push(ProviderKind::Paddle);
        }
        Self {
            name: name.to_owned(),
            currency: p.currency.clone(),
            connected,
            rate_limit_per_minute: p.rate_limit_per_minute,
            mirror_of: p.upstream.as_ref().map(|u| u.base_url.clone()),
        }
    }

    /// Coupon data of a mirrored program is changed upstream, never here (409).
    pub fn ensure_writable(&self) -> Result<(), ApiError> {
        match &self.mirror_of {
            None => Ok(()),
            Some(up) => Err(ApiError::Conflict(format!(
                "This program mirrors {up}: its coupons and promotion codes are read-only here; change them upstream."
            ))),
        }
    }

    pub fn is_connected(&self, p: ProviderKind) -> bool {
        self.connected.contains(&p)
    }
}

struct KeyEntry {
    key: Vec<u8>,
    program: usize,
    disabled: bool,
}

/// Every program and its keys.
pub struct Programs {
    programs: Vec<Arc<ProgramInfo>>,
    keys: Vec<KeyEntry>,
    windows: Mutex<HashMap<usize, (Instant, u32)>>,
}

impl Programs {
    pub fn from_settings(s: &Settings) -> Self {
        let mut programs = Vec::new();
        let mut keys = Vec::new();
        for (i, (name, p)) in s.programs.iter().enumerate() {
            programs.push(Arc::new(ProgramInfo::from_settings(name, p)));
            for k in &p.api_keys {
                keys.push(KeyEntry {
                    key: k.expose().as_bytes().to_vec(),
                    program: i,
                    disabled: false,
                });
            }
            for k in &p.disabled_api_keys {
                keys.push(KeyEntry {
                    key: k.expose().as_bytes().to_vec(),
                    program: i,
                    disabled: true,
                });
            }
        }
        Self {
            programs,
            keys,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<ProgramInfo>> {
        self.programs.iter().find(|p| p.name == name).cloned()
    }

    pub fn all(&self) -> &[Arc<ProgramInfo>] {
        &self.programs
    }

    /// Looks a key up without revealing through timing which key matched.
    fn lookup(&self, presented: &[u8]) -> Option<(usize, &KeyEntry)> {
        let mut found = None;
        for (i, e) in self.keys.iter().enumerate() {
            let eq: bool = e.key.ct_eq(presented).into();
            if eq && found.is_none() {
                found = Some((i, e));
            }
        }
        found
    }

    /// Fixed one-minute window per key; `Err(seconds until the window ends)` when exhausted.
    fn admit(&self, key_index: usize, limit: u32) -> Result<u32, u64> {
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let entry = w.entry(key_index).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            let left = Duration::from_secs(60).saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(limit - entry.1)
    }
}

/// The authenticated program of a request.
#[derive(Clone)]
pub struct Program {
    pub info: Arc<ProgramInfo>,
}

fn authenticate(
    state: &AppState,
    parts: &Parts,
) -> Result<(Program, Option<(u32, u32)>), ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or(ApiError::Unauthenticated)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    let (index, entry) = state
        .programs
        .lookup(token.as_bytes())
        .ok_or(ApiError::Unauthenticated)?;
    if entry.disabled {
        return Err(ApiError::Forbidden);
    }
    let info = state.programs.programs[entry.program].clone();
    let rate = match info.rate_limit_per_minute {
        None => None,
        Some(limit) => match state.programs.admit(index, limit) {
            Ok(remaining) => Some((limit, remaining)),
            Err(retry_after_secs) => {
                return Err(ApiError::RateLimited {
                    retry_after_secs,
                    limit,
                });
            }
        },
    };
    Ok((Program { info }, rate))
}

/// Middleware on `/v1`: resolves the Bearer key to its program, applies the optional
/// per-key request limit and adds `X-RateLimit-*` headers when it is on.
pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let (program, rate) = match authenticate(&state, &parts) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    parts.extensions.insert(program);
    let mut resp = next.run(Request::from_parts(parts, body)).await;
    if let Some((limit, remaining)) = rate {
        let h = resp.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    }
    resp
}
