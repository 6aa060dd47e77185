//! Mirror mode: coupons written from an upstream's list, pass by pass.

use super::codes::insert_code;
use super::coupons::{bind_terms, soft_delete, touch_for_provider};
use super::rows::{CODE_COLUMNS, COUPON_COLUMNS, CodeRow, CouponRow, metadata_to, parties_to};
use super::{Result, Store, from_micros, micros};
use crate::domain::{NewCoupon, PartyKind, ProviderKind};
use chrono::{DateTime, Utc};

/// What applying one upstream coupon did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub created: bool,
    /// Something a provider holds changed (a revision bump and an outbox mark were written).
    pub provider_change: bool,
    /// Anything was written.
    pub changed: bool,
}

/// The poller's state for `/status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MirrorState {
    pub pass: i64,
    pub pass_started_at: Option<String>,
    pub last_complete_started_at: Option<String>,
    pub last_complete_at: Option<String>,
    pub complete_passes: i64,
    pub last_pages: Option<i64>,
    pub last_seen: Option<i64>,
    pub last_changed: Option<i64>,
    pub last_deleted: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// Seconds since the start of the last complete pass.
    pub lag_secs: Option<i64>,
}

/// Counts of a complete pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassCounts {
    pub pages: i64,
    pub seen: i64,
    pub changed: i64,
}

impl Store {
    /// Starts a pass: returns its id.
    pub async fn begin_pass(&self, program: &str, now: DateTime<Utc>) -> Result<i64> {
        let mut tx = self.begin().await?;
        let pass: i64 = sqlx::query_scalar(
            "INSERT INTO mirror_state (program, pass, pass_started_at) VALUES (?, 1, ?) \
             ON CONFLICT (program) DO UPDATE SET pass = pass + 1, pass_started_at = excluded.pass_started_at RETURNING pass",
        )
        .bind(program)
        .bind(micros(now))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(pass)
    }

    /// Writes one upstream coupon (and its codes) as it is upstream, in one transaction.
    pub async fn apply_upstream(
        &self,
        program: &str,
        pass: i64,
        new: &NewCoupon,
        times_redeemed: i64,
        code_counts: &[(String, i64)],
        now: DateTime<Utc>,
    ) -> Result<Applied> {
        let uuid = new
            .uuid_code
            .as_ref()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        let name = new.name.clone().unwrap_or_else(|| uuid.clone());
        let mut tx = self.begin().await?;
        let sql =
            format!("SELECT {COUPON_COLUMNS} FROM coupons WHERE program = ? AND uuid_code = ?");
        let row: Option<CouponRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(program)
            .bind(&uuid)
            .fetch_optional(&mut *tx)
            .await?;
        let deleted: Option<i64> = sqlx::query_scalar(
            "SELECT deleted_at FROM coupons WHERE program = ? AND uuid_code = ?",
        )
        .bind(program)
        .bind(&uuid)
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        let mut applied = Applied::default();
        let (id, provider) = match row {
            None => {
                let q = sqlx::query(
                    "INSERT INTO coupons (program, uuid_code, name, active, discount_type, discount_hundredths, duration_type, \
                     duration_value, redeem_by, max_redemptions, metadata, sync_provider, times_redeemed, mirror_pass, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(program)
                .bind(&uuid)
                .bind(&name);
                let id = bind_terms(q, &new.terms)
                    .bind(metadata_to(&new.metadata))
                    .bind(new.sync.map(ProviderKind::as_str))
                    .bind(times_redeemed)
                    .bind(pass)
                    .bind(micros(now))
                    .bind(micros(now))
                    .execute(&mut *tx)
                    .await?
                    .last_insert_rowid();
                for (i, code) in new.promotion_codes.iter().enumerate() {
                    let cid = insert_code(
                        &mut tx,
                        program,
                        id,
                        code,
                        &format!("promotion_codes.{i}.code"),
                        now,
                    )
                    .await?;
                    let count = code_counts
                        .iter()
                        .find(|(c, _)| {
                            code.code
                                .as_ref()
                                .is_some_and(|x| x.as_str().eq_ignore_ascii_case(c))
                        })
                        .map(|x| x.1);
                    sqlx::query("UPDATE promotion_codes SET times_redeemed = ? WHERE id = ?")
                        .bind(count.unwrap_or(0))
                        .bind(cid)
                        .execute(&mut *tx)
                        .await?;
                }
                applied = Applied {
                    created: true,
                    provider_change: new.sync.is_some(),
                    changed: true,
                };
                if let Some(p) = new.sync {
                    super::outbox::mark(&mut tx, program, id, p, 1, now).await?;
                }
                tx.commit().await?;
                return Ok(applied);
            }
            Some(r) => {
                let (id, current) = r.into_domain()?;
                let provider = current.sync_provider.or(new.sync);
                let content = current.name != name
                    || current.terms != new.terms
                    || current.metadata != new.metadata;
                let assign = current.sync_provider.is_none() && new.sync.is_some();
                if content
                    || assign
                    || deleted.is_some()
                    || current.times_redeemed != times_redeemed
                {
                    let q = sqlx::query(
                        "UPDATE coupons SET name = ?, active = ?, discount_type = ?, discount_hundredths = ?, duration_type = ?, \
                         duration_value = ?, redeem_by = ?, max_redemptions = ?, metadata = ?, sync_provider = ?, times_redeemed = ?, \
                         deleted_at = NULL, updated_at = ? WHERE id = ?",
                    )
                    .bind(&name);
                    bind_terms(q, &new.terms)
                        .bind(metadata_to(&new.metadata))
                        .bind(provider.map(ProviderKind::as_str))
                        .bind(times_redeemed)
                        .bind(micros(now))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    applied.changed = true;
                    applied.provider_change |= content || assign || deleted.is_some();
                }
                (id, provider)
            }
        };
        // codes: as upstream has them
        let sql =
            format!("SELECT {CODE_COLUMNS} FROM promotion_codes WHERE coupon_id = ? ORDER BY id");
        let rows: Vec<CodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        let mut local = rows
            .into_iter()
            .map(CodeRow::into_domain)
            .collect::<Result<Vec<_>>>()?;
        for (i, code) in new.promotion_codes.iter().enumerate() {
            let Some(text) = code.code.as_ref().map(|c| c.as_str()) else {
                continue;
            };
            let count = code_counts
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(text))
                .map(|x| x.1)
                .unwrap_or(0);
            match local
                .iter()
                .position(|(_, _, c)| c.code.eq_ignore_ascii_case(text))
            {
                Some(pos) => {
                    let (cid, _, c) = local.remove(pos);
                    let same = c.restrictions == code.restrictions && c.metadata == code.metadata;
                    if !same || c.times_redeemed != count {
                        let r = &code.restrictions;
                        sqlx::query(
                            "UPDATE promotion_codes SET first_time_order = ?, partners = ?, customers = ?, subscribers = ?, minimum_order = ?, \
                             expires_at = ?, max_redemptions = ?, metadata = ?, times_redeemed = ?, updated_at = ? WHERE id = ?",
                        )
                        .bind(r.first_time_order)
                        .bind(parties_to(&r.partners, PartyKind::Partner))
                        .bind(parties_to(&r.customers, PartyKind::Customer))
                        .bind(parties_to(&r.subscribers, PartyKind::Subscriber))
                        .bind(r.minimum_order)
                        .bind(r.expires_at.map(micros))
                        .bind(r.max_redemptions)
                        .bind(metadata_to(&code.metadata))
                        .bind(count)
                        .bind(micros(now))
                        .bind(cid)
                        .execute(&mut *tx)
                        .await?;
                        applied.changed = true;
                        applied.provider_change |= !same;
                    }
                }
                None => {
                    let cid = insert_code(
                        &mut tx,
                        program,
                        id,
                        code,
                        &format!("promotion_codes.{i}.code"),
                        now,
                    )
                    .await?;
                    sqlx::query("UPDATE promotion_codes SET times_redeemed = ? WHERE id = ?")
                        .bind(count)
                        .bind(cid)
                        .execute(&mut *tx)
                        .await?;
                    applied.changed = true;
                    applied.provider_change = true;
                }
            }
        }
        for (cid, _, _) in local {
            sqlx::query("DELETE FROM promotion_codes WHERE id = ?")
                .bind(cid)
                .execute(&mut *tx)
                .await?;
            applied.changed = true;
            applied.provider_change = true;
        }
        sqlx::query("UPDATE coupons SET mirror_pass = ? WHERE id = ?")
            .bind(pass)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if applied.provider_change {
            touch_for_provider(&mut tx, program, id, provider, now).await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Live coupons of the program that this pass has not seen (deletion candidates).
    pub async fn unseen(&self, program: &str, pass: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT uuid_code FROM coupons WHERE program = ? AND deleted_at IS NULL AND (mirror_pass IS NULL OR mirror_pass <> ?) ORDER BY id",
        )
        .bind(program)
        .bind(pass)
        .fetch_all(&self.read)
        .await?)
    }

    /// Ends a complete pass: deletes the coupons confirmed gone upstream (as a DELETE would: codes
    /// removed, provider told) and records the pass. Returns how many were deleted.
    pub async fn finish_pass(
        &self,
        program: &str,
        pass: i64,
        counts: PassCounts,
        gone: &[String],
        started: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT id, sync_provider FROM coupons WHERE program = ? AND deleted_at IS NULL AND (mirror_pass IS NULL OR mirror_pass <> ?) \
             AND uuid_code IN (SELECT value FROM json_each(?))",
        )
        .bind(program)
        .bind(pass)
        .bind(serde_json::to_string(gone).unwrap_or_else(|_| "[]".into()))
        .fetch_all(&mut *tx)
        .await?;
        for (id, provider) in &rows {
            soft_delete(
                &mut tx,
                program,
                *id,
                provider.as_deref().and_then(ProviderKind::parse),
                now,
            )
            .await?;
        }
        sqlx::query(
            "UPDATE mirror_state SET last_complete_started_at = ?, last_complete_at = ?, complete_passes = complete_passes + 1, \
             last_pages = ?, last_seen = ?, last_changed = ?, last_deleted = ?, last_error = NULL WHERE program = ?",
        )
        .bind(micros(started))
        .bind(micros(now))
        .bind(counts.pages)
        .bind(counts.seen)
        .bind(counts.changed)
        .bind(rows.len() as i64)
        .bind(program)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.len() as i64)
    }

    /// Records a pass that did not complete (nothing is deleted).
    pub async fn fail_pass(&self, program: &str, error: &str, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE mirror_state SET last_error = ?, last_error_at = ? WHERE program = ?")
            .bind(error)
            .bind(micros(now))
            .bind(program)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn mirror_state(
        &self,
        program: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<MirrorState>> {
        type Row = (
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT pass, pass_started_at, last_complete_started_at, last_complete_at, complete_passes, last_pages, last_seen, \
             last_changed, last_deleted, last_error, last_error_at FROM mirror_state WHERE program = ?",
        )
        .bind(program)
        .fetch_optional(&self.read)
        .await?;
        let ts = |t: Option<i64>| t.map(|t| crate::domain::time::format_ts(&from_micros(t)));
        Ok(row.map(|r| MirrorState {
            pass: r.0,
            pass_started_at: ts(r.1),
            last_complete_started_at: ts(r.2),
            last_complete_at: ts(r.3),
            complete_passes: r.4,
            last_pages: r.5,
            last_seen: r.6,
            last_changed: r.7,
            last_deleted: r.8,
            last_error: r.9,
            last_error_at: ts(r.10),
            lag_secs: r.2.map(|t| (micros(now) - t).max(0) / 1_000_000),
        }))
    }
}

impl Store {
    /// Whether the store already holds this upstream coupon exactly (read-only: an unchanged
    /// coupon costs no write transaction).
    pub async fn upstream_unchanged(
        &self,
        program: &str,
        new: &NewCoupon,
        times_redeemed: i64,
        code_counts: &[(String, i64)],
    ) -> Result<bool> {
        let uuid = new
            .uuid_code
            .as_ref()
            .map(|c| c.as_str())
            .unwrap_or_default();
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {COUPON_COLUMNS} FROM coupons WHERE program = ? AND uuid_code = ? AND deleted_at IS NULL"
        );
        let row: Option<CouponRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(program)
            .bind(uuid)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let (id, c) = row.into_domain()?;
        let name = new.name.clone().unwrap_or_else(|| uuid.to_owned());
        if c.name != name
            || c.terms != new.terms
            || c.metadata != new.metadata
            || c.times_redeemed != times_redeemed
        {
            return Ok(false);
        }
        if c.sync_provider.is_none() && new.sync.is_some() {
            return Ok(false);
        }
        let sql =
            format!("SELECT {CODE_COLUMNS} FROM promotion_codes WHERE coupon_id = ? ORDER BY id");
        let rows: Vec<CodeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
        let local = rows
            .into_iter()
            .map(CodeRow::into_domain)
            .collect::<Result<Vec<_>>>()?;
        if local.len() != new.promotion_codes.len() {
            return Ok(false);
        }
        Ok(new.promotion_codes.iter().all(|code| {
            let Some(text) = code.code.as_ref().map(|c| c.as_str()) else {
                return false;
            };
            let count = code_counts
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(text))
                .map(|x| x.1)
                .unwrap_or(0);
            local.iter().any(|(_, _, l)| {
                l.code.eq_ignore_ascii_case(text)
                    && l.restrictions == code.restrictions
                    && l.metadata == code.metadata
                    && l.times_redeemed == count
            })
        }))
    }

    /// Marks unchanged coupons as seen by this pass, in one transaction.
    pub async fn stamp_pass(&self, program: &str, pass: i64, uuids: &[String]) -> Result<()> {
        if uuids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE coupons SET mirror_pass = ? WHERE program = ? AND uuid_code IN (SELECT value FROM json_each(?))")
            .bind(pass)
            .bind(program)
            .bind(serde_json::to_string(uuids).unwrap_or_else(|_| "[]".into()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
