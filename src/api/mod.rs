//! The HTTP surface: the Partnero-compatible `/v1` API, `/healthz`, `/openapi.json`.

mod auth;
mod coupons;
pub mod dto;
pub mod error;
pub mod extract;
mod openapi;
pub mod pagination;
mod promotion_codes;
pub mod status;
mod sync_admin;
mod transactions;

pub use auth::{Program, ProgramInfo, Programs};
pub use openapi::ApiDoc;

use crate::store::Store;
use crate::sync::Dispatcher;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use error::ApiError;
use std::sync::Arc;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub programs: Arc<Programs>,
    pub sync: Dispatcher,
    pub public_url: Option<Arc<str>>,
    pub thresholds: Arc<crate::config::StatusThresholds>,
    /// When the scheduled reconcile runs next (`None`: no schedule).
    pub reconcile_next: Arc<std::sync::Mutex<Option<String>>>,
    /// Programs in mirror mode, with their pollers.
    pub mirrors: Arc<Vec<Arc<crate::mirror::Mirror>>>,
}

/// The authenticated program (set by the `/v1` middleware).
pub struct Caller(pub Program);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Program>()
            .cloned()
            .map(Caller)
            .ok_or(ApiError::Unauthenticated)
    }
}

/// The absolute base URL for links: `server.public_url`, else `http://<Host>`.
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(u) = &s.public_url {
            return Ok(BaseUrl(u.trim_end_matches('/').to_owned()));
        }
        Ok(BaseUrl(format!("http://{}", host(&parts.headers))))
    }
}

fn host(h: &HeaderMap) -> String {
    h.get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost")
        .to_owned()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn healthz() -> &'static str {
    "ok"
}

async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    let doc = <ApiDoc as utoipa::OpenApi>::openapi();
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_json().unwrap_or_default(),
    )
        .into_response()
}

/// The `/v1` routes (behind the key middleware).
fn v1(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/coupons",
            post(coupons::create)
                .get(coupons::list)
                .put(coupons::update)
                .delete(coupons::delete_by_body),
        )
        .route(
            "/coupons/{uuid_code}",
            get(coupons::get).delete(coupons::delete),
        )
        .route(
            "/promotion-codes",
            post(promotion_codes::create)
                .get(promotion_codes::list)
                .put(promotion_codes::update)
                .delete(promotion_codes::delete),
        )
        .route("/promotion-code", post(promotion_codes::create))
        .route("/promotion-codes/{code}", get(promotion_codes::get))
        .route(
            "/transactions",
            post(transactions::create)
                .get(transactions::list)
                .delete(transactions::delete_by_body),
        )
        .route(
            "/transactions/{key}",
            get(transactions::get).delete(transactions::delete),
        )
        .route("/sync/failed", get(sync_admin::failed))
        .route("/sync/coupons/{uuid_code}", get(sync_admin::history))
        .route(
            "/sync/coupons/{uuid_code}/retry",
            post(sync_admin::retry_one),
        )
        .route("/sync/retry-dead", post(sync_admin::retry_all))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
}

/// The whole router.
pub fn router(state: AppState, body_limit: usize, request_timeout: Duration) -> Router {
    Router::new()
        .nest("/v1", v1(&state))
        .route("/healthz", get(healthz))
        .route("/status", get(status::status))
        .route("/metrics", get(status::metrics_text))
        .route("/openapi.json", get(openapi_json))
        .route_layer(axum::middleware::from_fn(status::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
