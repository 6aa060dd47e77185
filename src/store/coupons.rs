//! Coupons: create (with nested codes), read, list, update, soft delete.

use super::codes::{CodeView, insert_code, load_codes};
use super::outbox::{self, SyncState};
use super::rows::{COUPON_COLUMNS, CouponRow, id_list, metadata_to};
use super::{Result, Store, StoreError, from_micros, is_unique_violation, micros};
use crate::domain::errors::msg;
use crate::domain::{
    Coupon, CouponChange, CouponCode, CouponPatch, CouponTerms, Decision, FieldErrors, KeyCheck,
    NewCoupon, ProviderKind,
};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use std::collections::HashMap;

/// One entry of a redemption log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub redeemed_at: DateTime<Utc>,
    pub transaction_key: Option<String>,
}

/// A coupon with everything the API shows of it.
#[derive(Debug, Clone)]
pub struct CouponView {
    pub id: i64,
    pub coupon: Coupon,
    pub redemptions: Vec<Redemption>,
    pub codes: Vec<CodeView>,
    pub sync: Option<SyncState>,
}

pub(super) fn bind_terms<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    t: &CouponTerms,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    q.bind(t.active)
        .bind(t.discount.kind().as_str())
        .bind(t.discount.hundredths())
        .bind(t.duration.kind().as_str())
        .bind(t.duration.value().map(i64::from))
        .bind(t.redeem_by.map(micros))
        .bind(t.max_redemptions)
}

async fn coupon_code_taken(conn: &mut SqliteConnection, program: &str, code: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT 1 FROM coupons WHERE program = ? AND uuid_code = ?")
            .bind(program)
            .bind(code)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

pub(super) async fn find_live(
    conn: &mut SqliteConnection,
    program: &str,
    uuid_code: &str,
) -> Result<Option<(i64, Coupon)>> {
    let sql = const_format(
        COUPON_COLUMNS,
        "WHERE program = ? AND uuid_code = ? AND deleted_at IS NULL",
    );
    let row: Option<CouponRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(program)
        .bind(uuid_code)
        .fetch_optional(conn)
        .await?;
    row.map(CouponRow::into_domain).transpose()
}

pub(super) async fn find_by_id(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<Option<(i64, Coupon)>> {
    let sql = const_format(COUPON_COLUMNS, "WHERE id = ?");
    let row: Option<CouponRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(CouponRow::into_domain).transpose()
}

fn const_format(cols: &str, tail: &str) -> String {
    format!("SELECT {cols} FROM coupons {tail}")
}

pub(super) async fn redemptions_of(
    conn: &mut SqliteConnection,
    column: &'static str,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<Redemption>>> {
    let sql = match column {
        "coupon_id" => {
            "SELECT coupon_id AS owner, transaction_key, redeemed_at FROM redemptions \
                        WHERE coupon_id IN (SELECT value FROM json_each(?)) ORDER BY id"
        }
        _ => {
            "SELECT promotion_code_id AS owner, transaction_key, redeemed_at FROM redemptions \
              WHERE promotion_code_id IN (SELECT value FROM json_each(?)) ORDER BY id"
        }
    };
    let rows: Vec<(i64, Option<String>, i64)> = sqlx::query_as(sql)
        .bind(id_list(ids.iter().copied()))
        .fetch_all(conn)
        .await?;
    let mut out: HashMap<i64, Vec<Redemption>> = HashMap::new();
    for (owner, key, at) in rows {
        out.entry(owner).or_default().push(Redemption {
            redeemed_at: from_micros(at),
            transaction_key: key,
        });
    }
    Ok(out)
}

/// Completes coupons into views: redemption logs, codes (if asked) and sync state, in three queries.
async fn views(
    conn: &mut SqliteConnection,
    coupons: Vec<(i64, Coupon)>,
    with_codes: bool,
) -> Result<Vec<CouponView>> {
    let ids: Vec<i64> = coupons.iter().map(|(id, _)| *id).collect();
    let mut reds = redemptions_of(conn, "coupon_id", &ids).await?;
    let mut codes = if with_codes {
        load_codes(conn, &ids).await?
    } else {
        HashMap::new()
    };
    let mut sync = outbox::states(conn, &ids).await?;
    Ok(coupons
        .into_iter()
        .map(|(id, coupon)| CouponView {
            id,
            redemptions: reds.remove(&id).unwrap_or_default(),
            codes: codes.remove(&id).unwrap_or_default(),
            sync: coupon.sync_provider.and_then(|p| sync.remove(&(id, p))),
            coupon,
        })
        .collect())
}

pub(super) async fn view_of(
    conn: &mut SqliteConnection,
    id: i64,
    with_codes: bool,
) -> Result<CouponView> {
    let c = find_by_id(conn, id).await?.ok_or(StoreError::NotFound)?;
    views(conn, vec![c], with_codes)
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// Bumps the coupon's revision and marks it for its provider, in the caller's transaction.
pub(super) async fn touch_for_provider(
    conn: &mut SqliteConnection,
    program: &str,
    coupon_id: i64,
    provider: Option<ProviderKind>,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(provider) = provider else {
        return Ok(());
    };
    let revision: i64 = sqlx::query_scalar(
        "UPDATE coupons SET revision = revision + 1 WHERE id = ? RETURNING revision",
    )
    .bind(coupon_id)
    .fetch_one(&mut *conn)
    .await?;
    outbox::mark(conn, program, coupon_id, provider, revision, now).await
}

impl Store {
    /// Stores a coupon, its codes and (with `sync`) its outbox mark in one transaction.
    pub async fn create_coupon(
        &self,
        program: &str,
        new: &NewCoupon,
        now: DateTime<Utc>,
    ) -> Result<CouponView> {
        let mut tx = self.begin().await?;
        let uuid_code = match &new.uuid_code {
            // a taken code fails the insert on UNIQUE (program, uuid_code): no lookup first
            Some(c) => c.as_str().to_owned(),
            None => loop {
                let c = CouponCode::generate();
                if !coupon_code_taken(&mut tx, program, c.as_str()).await? {
                    break c.into_string();
                }
            },
        };
        let name = new.name.clone().unwrap_or_else(|| uuid_code.clone());
        let t = micros(now);
        let q = sqlx::query(
            "INSERT INTO coupons (program, uuid_code, name, active, discount_type, discount_hundredths, duration_type, \
             duration_value, redeem_by, max_redemptions, metadata, sync_provider, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(program)
        .bind(&uuid_code)
        .bind(&name);
        let res = bind_terms(q, &new.terms)
            .bind(metadata_to(&new.metadata))
            .bind(new.sync.map(|p| p.as_str()))
            .bind(t)
            .bind(t)
            .execute(&mut *tx)
            .await;
        let id = match res {
            Ok(r) => r.last_insert_rowid(),
            Err(e) if is_unique_violation(&e) => {
                return Err(FieldErrors::single("uuid_code", msg::taken("uuid_code")).into());
            }
            Err(e) => return Err(e.into()),
        };
        for (i, code) in new.promotion_codes.iter().enumerate() {
            insert_code(
                &mut tx,
                program,
                id,
                code,
                &format!("promotion_codes.{i}.code"),
                now,
            )
            .await?;
        }
        if let Some(p) = new.sync {
            outbox::mark(&mut tx, program, id, p, 1, now).await?;
        }
        // read back what SQLite filled in; a new coupon has no redemptions to look up
        let (_, coupon) = find_by_id(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let sync = match coupon.sync_provider {
            Some(p) => outbox::states(&mut tx, &[id]).await?.remove(&(id, p)),
            None => None,
        };
        tx.commit().await?;
        Ok(CouponView {
            id,
            redemptions: Vec::new(),
            codes: Vec::new(),
            sync,
            coupon,
        })
    }

    /// A live coupon with its codes.
    pub async fn get_coupon(&self, program: &str, uuid_code: &str) -> Result<Option<CouponView>> {
        let mut conn = self.read.acquire().await?;
        let Some(c) = find_live(&mut conn, program, uuid_code).await? else {
            return Ok(None);
        };
        Ok(views(&mut conn, vec![c], true).await?.pop())
    }

    /// Live coupons in creation order, `limit` from `offset`, with their codes.
    pub async fn list_coupons(
        &self,
        program: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CouponView>> {
        let mut conn = self.read.acquire().await?;
        let sql = const_format(
            COUPON_COLUMNS,
            "WHERE program = ? AND deleted_at IS NULL ORDER BY id LIMIT ? OFFSET ?",
        );
        let rows: Vec<CouponRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(program)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *conn)
            .await?;
        let coupons = rows
            .into_iter()
            .map(CouponRow::into_domain)
            .collect::<Result<Vec<_>>>()?;
        views(&mut conn, coupons, true).await
    }

    /// Applies a PUT: loads the coupon under the write lock, lets `patch.plan` decide, writes the
    /// result (and the outbox mark when the provider must be told). Returns the view and whether
    /// anything was written.
    pub async fn update_coupon(
        &self,
        program: &str,
        patch: &CouponPatch,
        now: DateTime<Utc>,
    ) -> Result<(CouponView, Option<CouponChange>)> {
        let mut tx = self.begin().await?;
        let (id, current) = find_live(&mut tx, program, patch.uuid_code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        let check = match &patch.redeem.transaction_key {
            Some(key) if patch.redeem.requested => {
                Some(key_check(&mut tx, program, "coupon_id", id, key).await?)
            }
            _ => None,
        };
        let change = match patch.plan(&current, check, now)? {
            Decision::NoOp => {
                let view = view_of(&mut tx, id, false).await?;
                tx.rollback().await?;
                return Ok((view, None));
            }
            Decision::Apply(c) => c,
        };
        let provider = change.assigned.or(current.sync_provider);
        // the provider must be told: the revision is bumped in the same statement
        let mark_for = provider.filter(|_| change.provider_relevant);
        let q = sqlx::query(
            "UPDATE coupons SET name = ?, active = ?, discount_type = ?, discount_hundredths = ?, duration_type = ?, \
             duration_value = ?, redeem_by = ?, max_redemptions = ?, metadata = ?, \
             times_redeemed = times_redeemed + ?, sync_provider = ?, updated_at = ?, revision = revision + ? \
             WHERE id = ? RETURNING revision",
        )
        .bind(&change.name);
        let row = bind_terms(q, &change.terms)
            .bind(metadata_to(&change.metadata))
            .bind(i64::from(change.redemption.is_some()))
            .bind(provider.map(|p| p.as_str()))
            .bind(micros(now))
            .bind(i64::from(mark_for.is_some()))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let revision: i64 = sqlx::Row::try_get(&row, 0)?;
        if let Some(key) = &change.redemption {
            sqlx::query("INSERT INTO redemptions (coupon_id, transaction_key, redeemed_at) VALUES (?, ?, ?)")
                .bind(id)
                .bind(key)
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
        }
        if let Some(p) = mark_for {
            outbox::mark(&mut tx, program, id, p, revision, now).await?;
        }
        let view = view_of(&mut tx, id, false).await?;
        tx.commit().await?;
        Ok((view, Some(change)))
    }

    /// Soft-deletes a coupon, force-deletes its codes, and tells its provider (B28, B29).
    pub async fn delete_coupon(
        &self,
        program: &str,
        uuid_code: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let (id, current) = find_live(&mut tx, program, uuid_code)
            .await?
            .ok_or(StoreError::NotFound)?;
        soft_delete(&mut tx, program, id, current.sync_provider, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Deletes a coupon as `DELETE` does: its codes for good, the coupon softly (its `uuid_code`
/// stays taken), and its provider is told — in the caller's transaction.
pub(super) async fn soft_delete(
    conn: &mut SqliteConnection,
    program: &str,
    id: i64,
    provider: Option<ProviderKind>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("DELETE FROM promotion_codes WHERE coupon_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE coupons SET deleted_at = ?, updated_at = ? WHERE id = ?")
        .bind(micros(now))
        .bind(micros(now))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    touch_for_provider(conn, program, id, provider, now).await
}

/// Answers B14/B15 for a redeem with `key` on the target `owner_column = owner`.
pub(super) async fn key_check(
    conn: &mut SqliteConnection,
    program: &str,
    owner_column: &'static str,
    owner: i64,
    key: &str,
) -> Result<KeyCheck> {
    let known =
        sqlx::query_scalar::<_, i64>("SELECT 1 FROM transactions WHERE program = ? AND key = ?")
            .bind(program)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
    let sql = match owner_column {
        "coupon_id" => "SELECT 1 FROM redemptions WHERE coupon_id = ? AND transaction_key = ?",
        _ => "SELECT 1 FROM redemptions WHERE promotion_code_id = ? AND transaction_key = ?",
    };
    let already_logged = sqlx::query_scalar::<_, i64>(sql)
        .bind(owner)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    Ok(KeyCheck {
        known,
        already_logged,
    })
}
