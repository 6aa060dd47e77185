//! Promotion codes: create, read, list, update, hard delete.

use super::coupons::{
    Redemption, find_by_id, find_live, key_check, redemptions_of, touch_for_provider,
};
use super::rows::{CODE_COLUMNS, CodeRow, id_list, metadata_to, parties_to};
use super::{Result, Store, StoreError, is_unique_violation, micros};
use crate::domain::errors::msg;
use crate::domain::{
    CodeChange, Coupon, CreatePromotionCode, Decision, FieldErrors, NewPromotionCode, PartyKind,
    PromoCode, PromotionCode, PromotionCodePatch,
};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use std::collections::HashMap;

/// A promotion code with its redemption log.
#[derive(Debug, Clone)]
pub struct CodeView {
    pub id: i64,
    pub coupon_id: i64,
    pub code: PromotionCode,
    pub redemptions: Vec<Redemption>,
}

async fn code_taken(conn: &mut SqliteConnection, program: &str, code: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<_, i64>(
            "SELECT 1 FROM promotion_codes WHERE program = ? AND code = ?",
        )
        .bind(program)
        .bind(code)
        .fetch_optional(conn)
        .await?
        .is_some(),
    )
}

/// Inserts one code; a taken code is a field error on `path`.
pub(super) async fn insert_code(
    conn: &mut SqliteConnection,
    program: &str,
    coupon_id: i64,
    new: &NewPromotionCode,
    path: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let taken = || StoreError::Invalid(FieldErrors::single(path, msg::taken(path)));
    let code = match &new.code {
        // a taken code fails the insert on UNIQUE (program, code): no lookup first
        Some(c) => c.as_str().to_owned(),
        None => loop {
            let c = PromoCode::generate();
            if !code_taken(conn, program, c.as_str()).await? {
                break c.into_string();
            }
        },
    };
    let r = &new.restrictions;
    let res = sqlx::query(
        "INSERT INTO promotion_codes (program, coupon_id, code, first_time_order, partners, customers, subscribers, \
         minimum_order, expires_at, max_redemptions, metadata, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(program)
    .bind(coupon_id)
    .bind(&code)
    .bind(r.first_time_order)
    .bind(parties_to(&r.partners, PartyKind::Partner))
    .bind(parties_to(&r.customers, PartyKind::Customer))
    .bind(parties_to(&r.subscribers, PartyKind::Subscriber))
    .bind(r.minimum_order)
    .bind(r.expires_at.map(micros))
    .bind(r.max_redemptions)
    .bind(metadata_to(&new.metadata))
    .bind(micros(now))
    .bind(micros(now))
    .execute(conn)
    .await;
    match res {
        Ok(r) => Ok(r.last_insert_rowid()),
        Err(e) if is_unique_violation(&e) => Err(taken()),
        Err(e) => Err(e.into()),
    }
}

async fn complete(conn: &mut SqliteConnection, rows: Vec<CodeRow>) -> Result<Vec<CodeView>> {
    let codes = rows
        .into_iter()
        .map(CodeRow::into_domain)
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<i64> = codes.iter().map(|(id, _, _)| *id).collect();
    let mut reds = redemptions_of(conn, "promotion_code_id", &ids).await?;
    Ok(codes
        .into_iter()
        .map(|(id, coupon_id, code)| CodeView {
            id,
            coupon_id,
            code,
            redemptions: reds.remove(&id).unwrap_or_default(),
        })
        .collect())
}

/// The codes of these coupons, grouped by coupon, in creation order.
pub(super) async fn load_codes(
    conn: &mut SqliteConnection,
    coupon_ids: &[i64],
) -> Result<HashMap<i64, Vec<CodeView>>> {
    let sql = format!(
        "SELECT {CODE_COLUMNS} FROM promotion_codes WHERE coupon_id IN (SELECT value FROM json_each(?)) ORDER BY id"
    );
    let rows: Vec<CodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id_list(coupon_ids.iter().copied()))
        .fetch_all(&mut *conn)
        .await?;
    let mut out: HashMap<i64, Vec<CodeView>> = HashMap::new();
    for v in complete(conn, rows).await? {
        out.entry(v.coupon_id).or_default().push(v);
    }
    Ok(out)
}

async fn find_code(
    conn: &mut SqliteConnection,
    program: &str,
    code: &str,
) -> Result<Option<(CodeView, Coupon)>> {
    let sql = format!(
        "SELECT {CODE_COLUMNS} FROM promotion_codes p WHERE program = ? AND code = ? \
         AND EXISTS (SELECT 1 FROM coupons c WHERE c.id = p.coupon_id AND c.deleted_at IS NULL)"
    );
    let row: Option<CodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(program)
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let view = complete(conn, vec![row])
        .await?
        .pop()
        .ok_or(StoreError::NotFound)?;
    let (_, coupon) = find_by_id(conn, view.coupon_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(Some((view, coupon)))
}

impl Store {
    /// Creates a code on a live coupon; tells the coupon's provider.
    pub async fn create_code(
        &self,
        program: &str,
        req: &CreatePromotionCode,
        now: DateTime<Utc>,
    ) -> Result<(CodeView, Coupon)> {
        let mut tx = self.begin().await?;
        let Some((coupon_id, coupon)) = find_live(&mut tx, program, &req.coupon_uuid).await? else {
            return Err(FieldErrors::single("coupon_uuid", msg::invalid("coupon_uuid")).into());
        };
        let id = insert_code(&mut tx, program, coupon_id, &req.code, "code", now).await?;
        touch_for_provider(&mut tx, program, coupon_id, coupon.sync_provider, now).await?;
        let sql = format!("SELECT {CODE_COLUMNS} FROM promotion_codes WHERE id = ?");
        let row: CodeRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let view = complete(&mut tx, vec![row])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok((view, coupon))
    }

    /// A code of a live coupon, with that coupon.
    pub async fn get_code(&self, program: &str, code: &str) -> Result<Option<(CodeView, Coupon)>> {
        let mut conn = self.read.acquire().await?;
        find_code(&mut conn, program, code).await
    }

    /// Codes of live coupons, in creation order.
    pub async fn list_codes(
        &self,
        program: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CodeView>> {
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {CODE_COLUMNS} FROM promotion_codes p WHERE program = ? \
             AND EXISTS (SELECT 1 FROM coupons c WHERE c.id = p.coupon_id AND c.deleted_at IS NULL) \
             ORDER BY id LIMIT ? OFFSET ?"
        );
        let rows: Vec<CodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(program)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *conn)
            .await?;
        complete(&mut conn, rows).await
    }

    /// Applies a promotion-code PUT under the write lock.
    pub async fn update_code(
        &self,
        program: &str,
        patch: &PromotionCodePatch,
        now: DateTime<Utc>,
    ) -> Result<(CodeView, Option<CodeChange>)> {
        let mut tx = self.begin().await?;
        let (view, coupon) = find_code(&mut tx, program, patch.code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        let check = match &patch.redeem.transaction_key {
            Some(key) if patch.redeem.requested => {
                Some(key_check(&mut tx, program, "promotion_code_id", view.id, key).await?)
            }
            _ => None,
        };
        let change = match patch.plan(&view.code, &coupon, check, now)? {
            Decision::NoOp => {
                tx.rollback().await?;
                return Ok((view, None));
            }
            Decision::Apply(c) => c,
        };
        sqlx::query(
            "UPDATE promotion_codes SET partners = ?, metadata = ?, times_redeemed = times_redeemed + ?, updated_at = ? WHERE id = ?",
        )
        .bind(parties_to(&change.restrictions.partners, PartyKind::Partner))
        .bind(metadata_to(&change.metadata))
        .bind(i64::from(change.redemption.is_some()))
        .bind(micros(now))
        .bind(view.id)
        .execute(&mut *tx)
        .await?;
        if let Some(key) = &change.redemption {
            sqlx::query("INSERT INTO redemptions (promotion_code_id, transaction_key, redeemed_at) VALUES (?, ?, ?)")
                .bind(view.id)
                .bind(key)
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
        }
        if change.content_changed {
            touch_for_provider(&mut tx, program, view.coupon_id, coupon.sync_provider, now).await?;
        }
        let (view, _) = find_code(&mut tx, program, patch.code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok((view, Some(change)))
    }

    /// Deletes a code of the given coupon for good (B30); tells the provider.
    pub async fn delete_code(
        &self,
        program: &str,
        code: &str,
        coupon_uuid: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let (view, coupon) = find_code(&mut tx, program, code)
            .await?
            .ok_or(StoreError::NotFound)?;
        if !coupon.uuid_code.eq_ignore_ascii_case(coupon_uuid) {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM promotion_codes WHERE id = ?")
            .bind(view.id)
            .execute(&mut *tx)
            .await?;
        touch_for_provider(&mut tx, program, view.coupon_id, coupon.sync_provider, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
