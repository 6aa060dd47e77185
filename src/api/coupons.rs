//! `/v1/coupons`.

use super::dto::{
    CouponCreateRequest, CouponOut, CouponUpdateRequest, CouponWriteResponse, DataStatus, Page,
    StatusOnly, ValidationErrorBody,
};
use super::error::ApiError;
use super::extract::Input;
use super::pagination::PageRequest;
use super::{AppState, BaseUrl, Caller};
use crate::domain::errors::msg;
use crate::domain::{CouponPatch, FieldErrors, NewCoupon, ProviderKind};
use crate::sync::PushKind;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;

/// B21: the exact 422 for a provider the program has not connected.
pub(super) fn not_connected(p: ProviderKind) -> ApiError {
    ApiError::Validation(FieldErrors::single(
        "sync.provider",
        format!("{} is not connected for this program.", p.as_str()),
    ))
}

/// Create a coupon (with nested promotion codes and an optional provider push).
#[utoipa::path(post, path = "/v1/coupons", tag = "coupons", request_body = CouponCreateRequest,
    responses((status = 201, body = CouponWriteResponse), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(body): Input,
) -> Result<(StatusCode, Json<CouponWriteResponse>), ApiError> {
    p.info.ensure_writable()?;
    let now = Utc::now();
    let new = NewCoupon::parse(&body, now)?;
    if let Some(provider) = new.sync.filter(|x| !p.info.is_connected(*x)) {
        return Err(not_connected(provider));
    }
    let view = s
        .store
        .create_coupon(&p.info.name, &new, now)
        .await
        .map_err(|e| ApiError::from_store(e, "Coupon"))?;
    let report = s
        .sync
        .report(&p.info, &view, new.sync.map(|_| PushKind::Create))
        .await;
    Ok((
        StatusCode::CREATED,
        Json(CouponWriteResponse {
            data: CouponOut::write(&view),
            status: 1,
            message: "Coupon created in the app successfully.",
            synchronization_enabled: report.enabled,
            synchronization_successful: report.successful,
            synchronization_message: report.message,
        }),
    ))
}

/// Update a coupon: name, metadata (merged), redeem, sync assignment, and the legacy term fields.
#[utoipa::path(put, path = "/v1/coupons", tag = "coupons", request_body = CouponUpdateRequest,
    responses((status = 200, body = CouponWriteResponse), (status = 404, body = super::dto::StatusMessage), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(body): Input,
) -> Result<Json<CouponWriteResponse>, ApiError> {
    p.info.ensure_writable()?;
    let now = Utc::now();
    let patch = CouponPatch::parse(&body)?;
    if let Some(provider) = patch.sync.filter(|x| !p.info.is_connected(*x)) {
        return Err(not_connected(provider));
    }
    let (view, change) = s
        .store
        .update_coupon(&p.info.name, &patch, now)
        .await
        .map_err(|e| ApiError::from_store(e, "Coupon"))?;
    let push = match &change {
        Some(c) if c.assigned.is_some() => Some(PushKind::Create),
        Some(c) if c.provider_relevant => Some(PushKind::Update),
        _ => None,
    };
    let report = s.sync.report(&p.info, &view, push).await;
    Ok(Json(CouponWriteResponse {
        data: CouponOut::write(&view),
        status: 1,
        message: "Coupon updated in the app successfully.",
        synchronization_enabled: report.enabled,
        synchronization_successful: report.successful,
        synchronization_message: report.message,
    }))
}

/// List coupons, each with its promotion codes.
#[utoipa::path(get, path = "/v1/coupons", tag = "coupons",
    params(("limit" = Option<i64>, Query, description = "1–250, default 15"), ("page" = Option<i64>, Query, description = "≥ 1, default 1")),
    responses((status = 200, body = Page<CouponOut>)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    base: BaseUrl,
    Input(q): Input,
) -> Result<Json<Page<CouponOut>>, ApiError> {
    let req = PageRequest::from_input(&q);
    let rows = s
        .store
        .list_coupons(&p.info.name, req.fetch(), req.offset())
        .await?;
    let out = rows.iter().map(CouponOut::read).collect();
    Ok(Json(req.page(out, base.join("/v1/coupons"))))
}

/// Fetch one coupon with its promotion codes.
#[utoipa::path(get, path = "/v1/coupons/{uuid_code}", tag = "coupons", params(("uuid_code" = String, Path)),
    responses((status = 200, body = DataStatus<CouponOut>), (status = 404, body = super::dto::StatusMessage)), security(("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(uuid_code): Path<String>,
) -> Result<Json<DataStatus<CouponOut>>, ApiError> {
    let view = s
        .store
        .get_coupon(&p.info.name, &uuid_code)
        .await?
        .ok_or(ApiError::NotFound("Coupon"))?;
    Ok(Json(DataStatus {
        data: CouponOut::read(&view),
        status: 1,
    }))
}

async fn delete_by(
    s: &AppState,
    p: &Caller,
    uuid_code: &str,
) -> Result<Json<StatusOnly>, ApiError> {
    s.store
        .delete_coupon(&p.0.info.name, uuid_code, Utc::now())
        .await
        .map_err(|e| ApiError::from_store(e, "Coupon"))?;
    s.sync.wake();
    Ok(Json(StatusOnly { status: 1 }))
}

/// Delete a coupon (soft delete; its codes are deleted and the provider is told).
#[utoipa::path(delete, path = "/v1/coupons/{uuid_code}", tag = "coupons", params(("uuid_code" = String, Path)),
    responses((status = 200, body = StatusOnly), (status = 404, body = super::dto::StatusMessage)), security(("bearer" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    p: Caller,
    Path(uuid_code): Path<String>,
) -> Result<Json<StatusOnly>, ApiError> {
    p.0.info.ensure_writable()?;
    delete_by(&s, &p, &uuid_code).await
}

/// Delete a coupon named by `uuid_code` in the body or query.
#[utoipa::path(delete, path = "/v1/coupons", tag = "coupons", params(("uuid_code" = String, Query)),
    responses((status = 200, body = StatusOnly), (status = 404, body = super::dto::StatusMessage), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_by_body(
    State(s): State<AppState>,
    p: Caller,
    Input(q): Input,
) -> Result<Json<StatusOnly>, ApiError> {
    p.0.info.ensure_writable()?;
    let uuid = q
        .get("uuid_code")
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty());
    let uuid = uuid.ok_or_else(|| {
        ApiError::Validation(FieldErrors::single("uuid_code", msg::required("uuid_code")))
    })?;
    delete_by(&s, &p, uuid).await
}
