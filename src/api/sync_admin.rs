//! `/v1/sync/...`: failed and dead syncs of the caller's program, a coupon's attempt history,
//! and retrying dead syncs.

use super::error::ApiError;
use super::extract::Input;
use super::{AppState, Caller};
use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use serde_json::{Value, json};

/// Marks that are retrying or dead (`?status=dead` for dead only).
#[utoipa::path(get, path = "/v1/sync/failed", tag = "sync", params(("status" = Option<String>, Query, description = "`dead` for dead marks only")),
    responses((status = 200, description = "Failed and dead syncs")), security(("bearer" = [])))]
pub async fn failed(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(q): Input,
) -> Result<Json<Value>, ApiError> {
    let dead_only = q.get("status").and_then(Value::as_str) == Some("dead");
    let marks = s.store.failed_marks(&p.info.name, dead_only).await?;
    Ok(Json(json!({"data": marks, "status": 1})))
}

/// A coupon's sync marks and attempt history (oldest first).
#[utoipa::path(get, path = "/v1/sync/coupons/{uuid_code}", tag = "sync", params(("uuid_code" = String, Path)),
    responses((status = 200, description = "Sync state and attempts"), (status = 404, body = super::dto::StatusMessage)), security(("bearer" = [])))]
pub async fn history(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (marks, attempts) = s
        .store
        .sync_history(&p.info.name, &uuid)
        .await?
        .ok_or(ApiError::NotFound("Coupon"))?;
    // what the providers count (read by reconcile): times_redeemed, usage_count, asyncUsageCount, times_used
    let redemptions = s.store.provider_redemptions(&p.info.name, &uuid).await?;
    Ok(Json(
        json!({"data": {"uuid_code": uuid, "syncs": marks, "attempts": attempts, "provider_redemptions": redemptions}, "status": 1}),
    ))
}

/// Retries a coupon's dead sync.
#[utoipa::path(post, path = "/v1/sync/coupons/{uuid_code}/retry", tag = "sync", params(("uuid_code" = String, Path)),
    responses((status = 200, description = "How many marks were requeued")), security(("bearer" = [])))]
pub async fn retry_one(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let n = s
        .store
        .retry_dead(&p.info.name, Some(&uuid), Utc::now())
        .await?;
    s.sync.wake();
    Ok(Json(json!({"data": {"requeued": n}, "status": 1})))
}

/// Retries every dead sync of the program.
#[utoipa::path(post, path = "/v1/sync/retry-dead", tag = "sync", responses((status = 200, description = "How many marks were requeued")), security(("bearer" = [])))]
pub async fn retry_all(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Value>, ApiError> {
    let n = s.store.retry_dead(&p.info.name, None, Utc::now()).await?;
    s.sync.wake();
    Ok(Json(json!({"data": {"requeued": n}, "status": 1})))
}
