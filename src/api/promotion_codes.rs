//! `/v1/promotion-codes`.

use super::dto::{
    DataStatus, DataStatusMessage, NestedStatus, Page, PromotionCodeCreateRequest,
    PromotionCodeDeleteRequest, PromotionCodeOut, PromotionCodeUpdateRequest, StatusMessage,
    ValidationErrorBody,
};
use super::error::ApiError;
use super::extract::Input;
use super::pagination::PageRequest;
use super::{AppState, BaseUrl, Caller};
use crate::domain::errors::msg;
use crate::domain::{CreatePromotionCode, FieldErrors, PromotionCodePatch};
use crate::store::StoreError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::Value;

/// Create a promotion code on a coupon.
#[utoipa::path(post, path = "/v1/promotion-codes", tag = "promotion-codes", request_body = PromotionCodeCreateRequest,
    responses((status = 201, body = DataStatusMessage<PromotionCodeOut>), (status = 422, body = ValidationErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(body): Input,
) -> Result<(StatusCode, Json<DataStatusMessage<PromotionCodeOut>>), ApiError> {
    p.info.ensure_writable()?;
    let now = Utc::now();
    let req = CreatePromotionCode::parse(&body, now)?;
    let (view, _) = s.store.create_code(&p.info.name, &req, now).await?;
    s.sync.wake();
    Ok((
        StatusCode::CREATED,
        Json(DataStatusMessage {
            data: PromotionCodeOut::new(&view, None),
            status: 1,
            message: "Promotion code created in the app successfully.",
        }),
    ))
}

/// List the promotion codes of the program's live coupons.
#[utoipa::path(get, path = "/v1/promotion-codes", tag = "promotion-codes",
    params(("limit" = Option<i64>, Query), ("page" = Option<i64>, Query)),
    responses((status = 200, body = Page<PromotionCodeOut>)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    base: BaseUrl,
    Input(q): Input,
) -> Result<Json<Page<PromotionCodeOut>>, ApiError> {
    let req = PageRequest::from_input(&q);
    let rows = s
        .store
        .list_codes(&p.info.name, req.fetch(), req.offset())
        .await?;
    let out = rows
        .iter()
        .map(|v| PromotionCodeOut::new(v, None))
        .collect();
    Ok(Json(req.page(out, base.join("/v1/promotion-codes"))))
}

/// Fetch one promotion code with a summary of its coupon.
#[utoipa::path(get, path = "/v1/promotion-codes/{code}", tag = "promotion-codes", params(("code" = String, Path)),
    responses((status = 200, body = DataStatus<PromotionCodeOut>), (status = 404, body = StatusMessage)), security(("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(code): Path<String>,
) -> Result<Json<DataStatus<PromotionCodeOut>>, ApiError> {
    let (view, coupon) = s
        .store
        .get_code(&p.info.name, &code)
        .await?
        .ok_or(ApiError::NotFound("Promotion code"))?;
    Ok(Json(DataStatus {
        data: PromotionCodeOut::new(&view, Some(&coupon)),
        status: 1,
    }))
}

/// Update a promotion code: partner restriction, metadata (merged), redeem.
#[utoipa::path(put, path = "/v1/promotion-codes", tag = "promotion-codes", request_body = PromotionCodeUpdateRequest,
    responses((status = 200, body = DataStatusMessage<PromotionCodeOut>), (status = 404, body = StatusMessage), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(body): Input,
) -> Result<Json<DataStatusMessage<PromotionCodeOut>>, ApiError> {
    p.info.ensure_writable()?;
    let patch = PromotionCodePatch::parse(&body)?;
    let (view, change) = s
        .store
        .update_code(&p.info.name, &patch, Utc::now())
        .await
        .map_err(|e| ApiError::from_store(e, "Promotion code"))?;
    if change.is_some_and(|c| c.content_changed) {
        s.sync.wake();
    }
    Ok(Json(DataStatusMessage {
        data: PromotionCodeOut::new(&view, None),
        status: 1,
        message: "Promotion code updated in the app successfully.",
    }))
}

/// Delete a promotion code for good (body or PHP-style query: `code`, `coupon[uuid_code]`).
#[utoipa::path(delete, path = "/v1/promotion-codes", tag = "promotion-codes", request_body = PromotionCodeDeleteRequest,
    responses((status = 200, body = NestedStatus), (status = 404, body = NestedStatus), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(q): Input,
) -> Result<Json<NestedStatus>, ApiError> {
    p.info.ensure_writable()?;
    let mut errors = FieldErrors::new();
    let code = q
        .get("code")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    if code.is_none() {
        errors.add("code", msg::required("code"));
    }
    let coupon_uuid = q
        .get("coupon")
        .and_then(|c| c.get("uuid_code"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    if coupon_uuid.is_none() {
        errors.add("coupon.uuid_code", msg::required("coupon.uuid_code"));
    }
    let (Some(code), Some(coupon_uuid)) = (code, coupon_uuid) else {
        return Err(errors.into());
    };
    match s
        .store
        .delete_code(&p.info.name, code, coupon_uuid, Utc::now())
        .await
    {
        Ok(()) => {
            s.sync.wake();
            Ok(Json(NestedStatus {
                data: StatusMessage {
                    status: 1,
                    message: "Promotion code deleted in the app successfully".into(),
                },
            }))
        }
        Err(StoreError::NotFound) => Err(ApiError::NotFoundNested("Promotion code")),
        Err(e) => Err(e.into()),
    }
}
