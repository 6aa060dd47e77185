//! `/v1/transactions`: stored so that redeem `transaction_key` checks work.

use super::dto::{
    DataStatus, Page, StatusOnly, TransactionCreateRequest, TransactionOut, ValidationErrorBody,
};
use super::error::ApiError;
use super::extract::Input;
use super::pagination::PageRequest;
use super::{AppState, BaseUrl, Caller};
use crate::domain::errors::msg;
use crate::domain::{FieldErrors, NewTransaction};
use crate::store::TransactionFilter;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::{Map, Value};

/// Create a transaction, or several with `transactions: [...]` (all or nothing).
#[utoipa::path(post, path = "/v1/transactions", tag = "transactions", request_body = TransactionCreateRequest,
    responses((status = 201, body = DataStatus<TransactionOut>), (status = 422, body = ValidationErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(body): Input,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (items, batch) = NewTransaction::parse(&body)?;
    let rows = s
        .store
        .create_transactions(&p.info.name, &items, batch, Utc::now())
        .await?;
    let out: Vec<TransactionOut> = rows.iter().map(TransactionOut::new).collect();
    let data = if batch {
        serde_json::to_value(&out)
    } else {
        serde_json::to_value(&out[0])
    }
    .map_err(anyhow::Error::from)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"data": data, "status": 1})),
    ))
}

fn nested_key(q: &Map<String, Value>, obj: &str) -> Option<String> {
    q.get(obj)
        .and_then(|o| o.get("key"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// List transactions; `key`, `partner[key]` and `customer[key]` filter exactly.
#[utoipa::path(get, path = "/v1/transactions", tag = "transactions",
    params(("limit" = Option<i64>, Query), ("page" = Option<i64>, Query), ("key" = Option<String>, Query)),
    responses((status = 200, body = Page<TransactionOut>)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    base: BaseUrl,
    Input(q): Input,
) -> Result<Json<Page<TransactionOut>>, ApiError> {
    let key = q.get("key").and_then(Value::as_str).map(str::to_owned);
    let filter = TransactionFilter {
        key: key.clone(),
        partner: nested_key(&q, "partner"),
        customer: nested_key(&q, "customer"),
    };
    let req = PageRequest::from_input(&q).carry("key", key.as_deref());
    let rows = s
        .store
        .list_transactions(&p.info.name, &filter, req.fetch(), req.offset())
        .await?;
    Ok(Json(req.page(
        rows.iter().map(TransactionOut::new).collect(),
        base.join("/v1/transactions"),
    )))
}

/// Fetch one transaction by key.
#[utoipa::path(get, path = "/v1/transactions/{key}", tag = "transactions", params(("key" = String, Path)),
    responses((status = 200, body = DataStatus<TransactionOut>), (status = 404, body = super::dto::StatusMessage)), security(("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> Result<Json<DataStatus<TransactionOut>>, ApiError> {
    let row = s
        .store
        .get_transaction(&p.info.name, &key)
        .await?
        .ok_or(ApiError::NotFound("Transaction"))?;
    Ok(Json(DataStatus {
        data: TransactionOut::new(&row),
        status: 1,
    }))
}

async fn delete_by(s: &AppState, program: &str, key: &str) -> Result<Json<StatusOnly>, ApiError> {
    s.store
        .delete_transaction(program, key)
        .await
        .map_err(|e| ApiError::from_store(e, "Transaction"))?;
    Ok(Json(StatusOnly { status: 1 }))
}

/// Delete a transaction for good.
#[utoipa::path(delete, path = "/v1/transactions/{key}", tag = "transactions", params(("key" = String, Path)),
    responses((status = 200, body = StatusOnly), (status = 404, body = super::dto::StatusMessage)), security(("bearer" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(key): Path<String>,
) -> Result<Json<StatusOnly>, ApiError> {
    delete_by(&s, &p.info.name, &key).await
}

/// Delete a transaction named by `key` in the body or query.
#[utoipa::path(delete, path = "/v1/transactions", tag = "transactions", params(("key" = String, Query)),
    responses((status = 200, body = StatusOnly), (status = 404, body = super::dto::StatusMessage), (status = 422, body = ValidationErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_by_body(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(q): Input,
) -> Result<Json<StatusOnly>, ApiError> {
    let key = q
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty());
    let key =
        key.ok_or_else(|| ApiError::Validation(FieldErrors::single("key", msg::required("key"))))?;
    delete_by(&s, &p.info.name, key).await
}
