//! Outbox marks: one per (coupon, provider), holding the desired revision and the sync state.

use super::rows::id_list;
use super::{Result, from_micros, micros};
use crate::domain::ProviderKind;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use std::collections::HashMap;

/// Where a mark stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkStatus {
    Pending,
    Retrying,
    Synced,
    Dead,
    Parked,
}

impl MarkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Synced => "synced",
            Self::Dead => "dead",
            Self::Parked => "parked",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "retrying" => Self::Retrying,
            "synced" => Self::Synced,
            "dead" => Self::Dead,
            "parked" => Self::Parked,
            _ => return None,
        })
    }
}

/// The sync state of a coupon at its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub provider: ProviderKind,
    pub desired_revision: i64,
    pub synced_revision: Option<i64>,
    pub status: MarkStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_message: String,
    pub last_success: bool,
}

impl SyncState {
    /// The provider holds the coupon's current revision.
    pub fn in_sync(&self) -> bool {
        self.synced_revision == Some(self.desired_revision)
    }
}

/// Marks `(coupon, provider)` as needing `revision`; coalesces with a pending mark.
pub(crate) async fn mark(
    conn: &mut SqliteConnection,
    program: &str,
    coupon_id: i64,
    provider: ProviderKind,
    revision: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (coupon_id, provider, program, desired_revision, status, attempts, next_attempt_at, updated_at, pending_since) \
         VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?) \
         ON CONFLICT (coupon_id, provider) DO UPDATE SET \
           desired_revision = excluded.desired_revision, \
           status = CASE WHEN outbox.status = 'parked' THEN 'parked' ELSE 'pending' END, \
           pending_since = CASE WHEN outbox.pending_since IS NULL OR outbox.status IN ('synced', 'dead') \
                                THEN excluded.pending_since ELSE outbox.pending_since END, \
           attempts = 0, next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
    )
    .bind(coupon_id)
    .bind(provider.as_str())
    .bind(program)
    .bind(revision)
    .bind(micros(now))
    .bind(micros(now))
    .bind(micros(now))
    .execute(conn)
    .await?;
    Ok(())
}

type StateRow = (
    i64,
    String,
    i64,
    Option<i64>,
    String,
    i64,
    Option<i64>,
    String,
    bool,
);

/// Sync states of these coupons, keyed by (coupon id, provider).
pub(crate) async fn states(
    conn: &mut SqliteConnection,
    coupon_ids: &[i64],
) -> Result<HashMap<(i64, ProviderKind), SyncState>> {
    let rows: Vec<StateRow> = sqlx::query_as(
        "SELECT coupon_id, provider, desired_revision, synced_revision, status, attempts, next_attempt_at, last_message, last_success \
         FROM outbox WHERE coupon_id IN (SELECT value FROM json_each(?))",
    )
    .bind(id_list(coupon_ids.iter().copied()))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, p, desired, synced, status, attempts, next, msg, ok)| {
                let provider = ProviderKind::parse(&p)?;
                Some((
                    (id, provider),
                    SyncState {
                        provider,
                        desired_revision: desired,
                        synced_revision: synced,
                        status: MarkStatus::parse(&status)?,
                        attempts,
                        next_attempt_at: next.map(from_micros),
                        last_message: msg,
                        last_success: ok,
                    },
                ))
            },
        )
        .collect())
}

// ---------------------------------------------------------------------------------------------
// The worker's side: claims, leases, desired state, links, completion, attempt log, admin.

use super::codes::load_codes;
use super::coupons::find_by_id;
use super::{Store, StoreError};
use crate::domain::{Coupon, PromotionCode};

/// A claimed mark: the worker holds it until `claimed_until` (renewed while working).
#[derive(Debug, Clone)]
pub struct Claim {
    pub coupon_id: i64,
    pub provider: ProviderKind,
    pub program: String,
    pub desired_revision: i64,
    /// Failed attempts so far at this revision.
    pub attempts: i64,
    pub token: String,
}

/// What a provider must hold for one coupon.
#[derive(Debug, Clone)]
pub struct DesiredState {
    pub coupon: Coupon,
    pub deleted: bool,
    pub codes: Vec<PromotionCode>,
}

/// A provider object we created (or adopted) for a coupon.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// `coupon` or `code` (adapters may use other kinds, e.g. `group`).
    pub kind: String,
    /// `""` for the coupon itself, the code text for a code.
    pub local_key: String,
    pub remote_id: String,
    /// What identifies the remote object's immutable part (adapter-defined).
    pub fingerprint: String,
    /// What we last pushed (adapter-defined JSON).
    pub remote: serde_json::Value,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// The provider holds `revision`.
    Synced { message: String },
    /// Try again at `at`; `count_attempt` is false for credential failures (they burn no attempts).
    Retry {
        at: DateTime<Utc>,
        message: String,
        count_attempt: bool,
    },
    /// Given up (permanent error, refusal, or retries exhausted).
    Dead { message: String },
    /// Not attempted (shutdown, connection unhealthy): released as it was.
    Released,
}

impl Completion {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Synced { .. } => "success",
            Self::Retry {
                count_attempt: true,
                ..
            } => "retry",
            Self::Retry {
                count_attempt: false,
                ..
            } => "credentials",
            Self::Dead { .. } => "dead",
            Self::Released => "released",
        }
    }
}

/// One entry of the attempt log.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Attempt {
    pub provider: String,
    pub revision: i64,
    pub attempt: i64,
    #[serde(serialize_with = "ser_ts")]
    pub started_at: i64,
    #[serde(serialize_with = "ser_ts")]
    pub finished_at: i64,
    pub outcome: String,
    pub message: String,
}

fn ser_ts<S: serde::Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::domain::time::format_ts(&from_micros(*us)))
}

/// A mark as the admin API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MarkInfo {
    pub uuid_code: String,
    pub provider: String,
    pub status: String,
    pub attempts: i64,
    pub desired_revision: i64,
    pub synced_revision: Option<i64>,
    pub next_attempt_at: Option<String>,
    pub last_message: String,
}

/// Outbox figures for `/status` and `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OutboxStats {
    /// Marks not yet synced at their desired revision (pending or retrying).
    pub depth: i64,
    pub dead: i64,
    /// Age in seconds of the oldest mark waiting to be synced.
    pub oldest_pending_secs: Option<i64>,
}

type ClaimRow = (i64, String, String, i64, i64);

#[derive(sqlx::FromRow)]
struct MarkRow {
    uuid_code: String,
    provider: String,
    status: String,
    attempts: i64,
    desired_revision: i64,
    synced_revision: Option<i64>,
    next_attempt_at: Option<i64>,
    last_message: String,
}

impl From<MarkRow> for MarkInfo {
    fn from(r: MarkRow) -> Self {
        MarkInfo {
            uuid_code: r.uuid_code,
            provider: r.provider,
            status: r.status,
            attempts: r.attempts,
            desired_revision: r.desired_revision,
            synced_revision: r.synced_revision,
            next_attempt_at: r
                .next_attempt_at
                .map(|t| crate::domain::time::format_ts(&from_micros(t))),
            last_message: r.last_message,
        }
    }
}

const MARK_COLUMNS: &str = "c.uuid_code, o.provider, o.status, o.attempts, o.desired_revision, o.synced_revision, o.next_attempt_at, o.last_message";

/// Replaces the links of (coupon, provider). A link that still names the same provider object
/// keeps its `updated_at` (and its row): reconcile leaves links written during its scan to the next
/// run, and a push that only confirms what exists must not hide a missing object from it.
async fn write_links(
    conn: &mut SqliteConnection,
    claim: &Claim,
    revision: i64,
    links: &[Link],
    now: DateTime<Utc>,
) -> Result<()> {
    let p = claim.provider.as_str();
    let keep: Vec<serde_json::Value> = links
        .iter()
        .map(|l| serde_json::json!([l.kind, l.local_key]))
        .collect();
    sqlx::query(
        "DELETE FROM provider_links WHERE coupon_id = ? AND provider = ? \
         AND NOT EXISTS (SELECT 1 FROM json_each(?) k WHERE k.value ->> 0 = object_kind AND k.value ->> 1 = local_key)",
    )
    .bind(claim.coupon_id)
    .bind(p)
    .bind(serde_json::Value::Array(keep).to_string())
    .execute(&mut *conn)
    .await?;
    for l in links {
        sqlx::query(
            "INSERT INTO provider_links (coupon_id, provider, object_kind, local_key, remote_id, fingerprint, revision, remote, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (coupon_id, provider, object_kind, local_key) DO UPDATE SET \
               remote_id = excluded.remote_id, fingerprint = excluded.fingerprint, revision = excluded.revision, \
               remote = excluded.remote, \
               updated_at = CASE WHEN remote_id = excluded.remote_id THEN updated_at ELSE excluded.updated_at END",
        )
        .bind(claim.coupon_id)
        .bind(p)
        .bind(&l.kind)
        .bind(&l.local_key)
        .bind(&l.remote_id)
        .bind(&l.fingerprint)
        .bind(revision)
        .bind(l.remote.to_string())
        .bind(micros(now))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Lets an adapter record its links part-way through a push (before and after side effects), so
/// a crash between a provider call and the end of the push cannot lose what was created.
pub struct LinkJournal {
    store: Store,
    claim: Claim,
    revision: i64,
}

impl LinkJournal {
    pub fn new(store: Store, claim: Claim, revision: i64) -> Self {
        Self {
            store,
            claim,
            revision,
        }
    }

    /// Records `links` while the claim is still held; `false` when it was lost.
    pub async fn save(&self, links: &[Link]) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM outbox WHERE coupon_id = ? AND provider = ? AND claim_token = ?",
        )
        .bind(self.claim.coupon_id)
        .bind(self.claim.provider.as_str())
        .bind(&self.claim.token)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        write_links(
            &mut tx,
            &self.claim,
            self.revision,
            links,
            chrono::Utc::now(),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether `code` is now a live code of another coupon of the same program (it moved there):
    /// its provider object then belongs to that coupon's push and must not be deleted here.
    pub async fn code_live_elsewhere(&self, code: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM promotion_codes p JOIN coupons c ON c.id = p.coupon_id \
             WHERE p.program = ? AND p.code = ? AND p.coupon_id != ? AND c.deleted_at IS NULL",
        )
        .bind(&self.claim.program)
        .bind(code)
        .bind(self.claim.coupon_id)
        .fetch_optional(&self.store.read)
        .await?;
        Ok(found.is_some())
    }
}

impl Store {
    /// Claims up to `limit` due marks (not held by a live lease), skipping `exclude`
    /// (program, provider) connections. Each claim holds a lease until `now + lease`.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: i64,
        exclude: &[(String, ProviderKind)],
        in_flight: &[i64],
    ) -> Result<Vec<Claim>> {
        let mut tx = self.begin().await?;
        let excluded: Vec<String> = exclude
            .iter()
            .map(|(p, k)| format!("{p}\u{1f}{}", k.as_str()))
            .collect();
        let rows: Vec<ClaimRow> = sqlx::query_as(
            "SELECT coupon_id, provider, program, desired_revision, attempts FROM outbox \
             WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ? \
               AND (claimed_until IS NULL OR claimed_until < ?) \
               AND (program || char(31) || provider) NOT IN (SELECT value FROM json_each(?)) \
               AND coupon_id NOT IN (SELECT value FROM json_each(?)) \
             ORDER BY next_attempt_at LIMIT ?",
        )
        .bind(micros(now))
        .bind(micros(now))
        .bind(serde_json::to_string(&excluded).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(in_flight).unwrap_or_else(|_| "[]".into()))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let until = micros(now) + lease.as_micros() as i64;
        let mut out = Vec::with_capacity(rows.len());
        for (coupon_id, provider, program, desired_revision, attempts) in rows {
            let Some(provider) = ProviderKind::parse(&provider) else {
                continue;
            };
            let token = uuid::Uuid::now_v7().to_string();
            sqlx::query("UPDATE outbox SET claimed_until = ?, claim_token = ? WHERE coupon_id = ? AND provider = ?")
                .bind(until)
                .bind(&token)
                .bind(coupon_id)
                .bind(provider.as_str())
                .execute(&mut *tx)
                .await?;
            out.push(Claim {
                coupon_id,
                provider,
                program,
                desired_revision,
                attempts,
                token,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Claims one specific mark if it is due and free (the inline push of a write).
    pub async fn claim_one(
        &self,
        coupon_id: i64,
        provider: ProviderKind,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<Option<Claim>> {
        let mut tx = self.begin().await?;
        let row: Option<ClaimRow> = sqlx::query_as(
            "SELECT coupon_id, provider, program, desired_revision, attempts FROM outbox \
             WHERE coupon_id = ? AND provider = ? AND status IN ('pending', 'retrying') \
               AND (claimed_until IS NULL OR claimed_until < ?)",
        )
        .bind(coupon_id)
        .bind(provider.as_str())
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((coupon_id, _, program, desired_revision, attempts)) = row else {
            return Ok(None);
        };
        let token = uuid::Uuid::now_v7().to_string();
        sqlx::query("UPDATE outbox SET claimed_until = ?, claim_token = ? WHERE coupon_id = ? AND provider = ?")
            .bind(micros(now) + lease.as_micros() as i64)
            .bind(&token)
            .bind(coupon_id)
            .bind(provider.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Claim {
            coupon_id,
            provider,
            program,
            desired_revision,
            attempts,
            token,
        }))
    }

    /// Extends a lease; `false` when the claim was lost.
    pub async fn renew_lease(&self, claim: &Claim, until: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE outbox SET claimed_until = ? WHERE coupon_id = ? AND provider = ? AND claim_token = ?")
            .bind(micros(until))
            .bind(claim.coupon_id)
            .bind(claim.provider.as_str())
            .bind(&claim.token)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Releases every lease (shutdown of the only worker, or start-up after a crash).
    pub async fn release_all_claims(&self) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE outbox SET claimed_until = NULL, claim_token = NULL WHERE claim_token IS NOT NULL")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// The coupon's *current* desired state (whatever revision the claim named).
    pub async fn desired_state(&self, coupon_id: i64) -> Result<(DesiredState, i64)> {
        let mut conn = self.read.acquire().await?;
        let (_, coupon) = find_by_id(&mut conn, coupon_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let deleted: Option<i64> =
            sqlx::query_scalar("SELECT deleted_at FROM coupons WHERE id = ?")
                .bind(coupon_id)
                .fetch_one(&mut *conn)
                .await?;
        let mut codes = load_codes(&mut conn, &[coupon_id]).await?;
        let codes = codes
            .remove(&coupon_id)
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.code)
            .collect();
        let revision = coupon.revision;
        Ok((
            DesiredState {
                coupon,
                deleted: deleted.is_some(),
                codes,
            },
            revision,
        ))
    }

    /// The links of (coupon, provider).
    pub async fn links(&self, coupon_id: i64, provider: ProviderKind) -> Result<Vec<Link>> {
        let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT object_kind, local_key, remote_id, fingerprint, remote FROM provider_links \
             WHERE coupon_id = ? AND provider = ? ORDER BY object_kind, local_key",
        )
        .bind(coupon_id)
        .bind(provider.as_str())
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, local_key, remote_id, fingerprint, remote)| Link {
                kind,
                local_key,
                remote_id,
                fingerprint,
                remote: serde_json::from_str(&remote).unwrap_or_default(),
            })
            .collect())
    }

    /// Records an attempt in one transaction: links as they now stand, the attempt log entry and
    /// the mark (compare-and-set on the claim token; a newer revision keeps the mark pending).
    pub async fn complete(
        &self,
        claim: &Claim,
        pushed_revision: i64,
        links: Option<&[Link]>,
        completion: &Completion,
        started: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let p = claim.provider.as_str();
        let held: Option<i64> = sqlx::query_scalar("SELECT desired_revision FROM outbox WHERE coupon_id = ? AND provider = ? AND claim_token = ?")
            .bind(claim.coupon_id)
            .bind(p)
            .bind(&claim.token)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(desired) = held else {
            // the lease was lost (expired and taken again): write nothing
            tx.rollback().await?;
            return Ok(false);
        };
        if let Some(links) = links {
            write_links(&mut tx, claim, pushed_revision, links, now).await?;
        }
        let msg = match completion {
            Completion::Synced { message }
            | Completion::Retry { message, .. }
            | Completion::Dead { message } => message.clone(),
            Completion::Released => String::new(),
        };
        if !matches!(completion, Completion::Released) {
            sqlx::query(
                "INSERT INTO sync_attempts (coupon_id, provider, revision, attempt, started_at, finished_at, outcome, message) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(claim.coupon_id)
            .bind(p)
            .bind(pushed_revision)
            .bind(claim.attempts + 1)
            .bind(micros(started))
            .bind(micros(now))
            .bind(completion.outcome())
            .bind(&msg)
            .execute(&mut *tx)
            .await?;
        }
        let newer = desired > pushed_revision;
        let q = match completion {
            Completion::Synced { .. } => sqlx::query(
                "UPDATE outbox SET synced_revision = ?, status = CASE WHEN ? THEN 'pending' ELSE 'synced' END, attempts = 0, \
                 pending_since = CASE WHEN ? THEN pending_since ELSE NULL END, \
                 next_attempt_at = CASE WHEN ? THEN ? ELSE NULL END, last_message = ?, last_success = 1, \
                 claimed_until = NULL, claim_token = NULL, updated_at = ? WHERE coupon_id = ? AND provider = ?",
            )
            .bind(pushed_revision)
            .bind(newer)
            .bind(newer)
            .bind(newer)
            .bind(micros(now)),
            Completion::Retry { at, count_attempt, .. } => sqlx::query(
                "UPDATE outbox SET status = 'retrying', attempts = attempts + ?, next_attempt_at = CASE WHEN ? THEN ? ELSE ? END, \
                 last_message = ?, last_success = 0, claimed_until = NULL, claim_token = NULL, updated_at = ? \
                 WHERE coupon_id = ? AND provider = ?",
            )
            .bind(i64::from(*count_attempt && !newer))
            .bind(newer)
            .bind(micros(now))
            .bind(micros(*at)),
            Completion::Dead { .. } => sqlx::query(
                "UPDATE outbox SET status = CASE WHEN ? THEN 'pending' ELSE 'dead' END, attempts = CASE WHEN ? THEN 0 ELSE attempts + 1 END, \
                 pending_since = CASE WHEN ? THEN pending_since ELSE NULL END, \
                 next_attempt_at = CASE WHEN ? THEN ? ELSE NULL END, last_message = ?, last_success = 0, \
                 claimed_until = NULL, claim_token = NULL, updated_at = ? WHERE coupon_id = ? AND provider = ?",
            )
            .bind(newer)
            .bind(newer)
            .bind(newer)
            .bind(newer)
            .bind(micros(now)),
            Completion::Released => sqlx::query(
                "UPDATE outbox SET last_message = CASE WHEN ? = '' THEN last_message ELSE ? END, claimed_until = NULL, claim_token = NULL, \
                 updated_at = ? WHERE coupon_id = ? AND provider = ?",
            )
            .bind(msg.clone()),
        };
        q.bind(msg)
            .bind(micros(now))
            .bind(claim.coupon_id)
            .bind(p)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Failed (retrying) and dead marks of a program.
    pub async fn failed_marks(&self, program: &str, dead_only: bool) -> Result<Vec<MarkInfo>> {
        let sql = format!(
            "SELECT {MARK_COLUMNS} FROM outbox o JOIN coupons c ON c.id = o.coupon_id \
             WHERE o.program = ? AND (o.status = 'dead' OR (? = 0 AND o.status = 'retrying')) ORDER BY o.updated_at"
        );
        let rows: Vec<MarkRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(program)
            .bind(dead_only)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(MarkInfo::from).collect())
    }

    /// The attempt log of a coupon (newest last) and its marks.
    pub async fn sync_history(
        &self,
        program: &str,
        uuid_code: &str,
    ) -> Result<Option<(Vec<MarkInfo>, Vec<Attempt>)>> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM coupons WHERE program = ? AND uuid_code = ?")
                .bind(program)
                .bind(uuid_code)
                .fetch_optional(&self.read)
                .await?;
        let Some(id) = id else { return Ok(None) };
        let sql = format!(
            "SELECT {MARK_COLUMNS} FROM outbox o JOIN coupons c ON c.id = o.coupon_id WHERE o.coupon_id = ?"
        );
        let rows: Vec<MarkRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.read)
            .await?;
        let marks = rows.into_iter().map(MarkInfo::from).collect();
        let attempts: Vec<Attempt> = sqlx::query_as(
            "SELECT provider, revision, attempt, started_at, finished_at, outcome, message FROM sync_attempts WHERE coupon_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        Ok(Some((marks, attempts)))
    }

    /// Puts dead marks of a program (optionally one coupon) back to pending. Returns how many.
    pub async fn retry_dead(
        &self,
        program: &str,
        uuid_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?, pending_since = ? \
             WHERE program = ? AND status = 'dead' \
               AND (? IS NULL OR coupon_id IN (SELECT id FROM coupons WHERE program = ? AND uuid_code = ?))",
        )
        .bind(micros(now))
        .bind(micros(now))
        .bind(micros(now))
        .bind(program)
        .bind(uuid_code)
        .bind(program)
        .bind(uuid_code)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Outbox depth, dead count and the age of the oldest waiting mark.
    pub async fn outbox_stats(&self, now: DateTime<Utc>) -> Result<OutboxStats> {
        let (depth, dead, oldest): (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT COALESCE(SUM(status IN ('pending', 'retrying')), 0), COALESCE(SUM(status = 'dead'), 0), \
             MIN(CASE WHEN status IN ('pending', 'retrying') THEN COALESCE(pending_since, updated_at) END) FROM outbox",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(OutboxStats {
            depth,
            dead,
            oldest_pending_secs: oldest.map(|t| (micros(now) - t).max(0) / 1_000_000),
        })
    }
}

impl Store {
    /// Forgets a coupon's provider links, as if a crash had lost them (tests of adoption).
    #[doc(hidden)]
    pub async fn forget_links_for_tests(&self, program: &str, uuid_code: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM provider_links WHERE coupon_id IN (SELECT id FROM coupons WHERE program = ? AND uuid_code = ?)")
            .bind(program)
            .bind(uuid_code)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Marks currently held by a claim (0 after a clean shutdown).
    pub async fn claimed_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE claim_token IS NOT NULL")
                .fetch_one(&self.read)
                .await?,
        )
    }
}

impl Store {
    /// The program a coupon belongs to.
    pub async fn program_of(&self, coupon_id: i64) -> Result<String> {
        Ok(
            sqlx::query_scalar("SELECT program FROM coupons WHERE id = ?")
                .bind(coupon_id)
                .fetch_one(&self.read)
                .await?,
        )
    }
}

/// A change reconcile makes to a link before re-marking the coupon.
#[derive(Debug, Clone)]
pub enum LinkChange {
    /// The object is gone at the provider: forget it (the next push creates it again).
    Drop { kind: String, local_key: String },
    /// The object was changed by hand: record what the provider holds (so the next push writes
    /// ours back); an empty fingerprint forces a replacement (immutable fields changed).
    Theirs {
        kind: String,
        local_key: String,
        remote: serde_json::Value,
        keep_fingerprint: bool,
    },
}

impl Store {
    /// Applies reconcile's link changes, logs what was found, and marks the coupon for sync.
    pub async fn reconcile_repair(
        &self,
        program: &str,
        coupon_id: i64,
        provider: ProviderKind,
        changes: &[LinkChange],
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let p = provider.as_str();
        for c in changes {
            match c {
                LinkChange::Drop { kind, local_key } => {
                    sqlx::query("DELETE FROM provider_links WHERE coupon_id = ? AND provider = ? AND object_kind = ? AND local_key = ?")
                        .bind(coupon_id)
                        .bind(p)
                        .bind(kind)
                        .bind(local_key)
                        .execute(&mut *tx)
                        .await?;
                }
                LinkChange::Theirs {
                    kind,
                    local_key,
                    remote,
                    keep_fingerprint,
                } => {
                    sqlx::query(
                        "UPDATE provider_links SET remote = ?, fingerprint = CASE WHEN ? THEN fingerprint ELSE '' END \
                         WHERE coupon_id = ? AND provider = ? AND object_kind = ? AND local_key = ?",
                    )
                    .bind(remote.to_string())
                    .bind(*keep_fingerprint)
                    .bind(coupon_id)
                    .bind(p)
                    .bind(kind)
                    .bind(local_key)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        let revision: i64 = sqlx::query_scalar("SELECT revision FROM coupons WHERE id = ?")
            .bind(coupon_id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sync_attempts (coupon_id, provider, revision, attempt, started_at, finished_at, outcome, message) VALUES (?, ?, ?, 0, ?, ?, 'drift', ?)",
        )
        .bind(coupon_id)
        .bind(p)
        .bind(revision)
        .bind(micros(now))
        .bind(micros(now))
        .bind(message)
        .execute(&mut *tx)
        .await?;
        super::coupons::touch_for_provider(&mut tx, program, coupon_id, Some(provider), now)
            .await?;
        sqlx::query("UPDATE outbox SET last_message = ? WHERE coupon_id = ? AND provider = ?")
            .bind(message)
            .bind(coupon_id)
            .bind(p)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A mark's state as the inline push waits on it.
#[derive(Debug, Clone)]
pub struct ClaimState {
    pub claimed: bool,
    pub status: MarkStatus,
    pub in_sync: bool,
    pub last_message: String,
}

impl ClaimState {
    /// The outcome of the last finished push, as a completion.
    pub fn completion(&self) -> Option<Completion> {
        match self.status {
            _ if self.in_sync => Some(Completion::Synced {
                message: self.last_message.clone(),
            }),
            MarkStatus::Dead => Some(Completion::Dead {
                message: self.last_message.clone(),
            }),
            MarkStatus::Retrying => Some(Completion::Retry {
                at: Utc::now(),
                message: self.last_message.clone(),
                count_attempt: true,
            }),
            _ => None,
        }
    }
}

impl Store {
    pub async fn claim_state(
        &self,
        coupon_id: i64,
        provider: ProviderKind,
    ) -> Result<Option<ClaimState>> {
        type Row = (Option<String>, String, i64, Option<i64>, String);
        let row: Option<Row> = sqlx::query_as(
            "SELECT claim_token, status, desired_revision, synced_revision, last_message FROM outbox WHERE coupon_id = ? AND provider = ?",
        )
        .bind(coupon_id)
        .bind(provider.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(
            |(token, status, desired, synced, last_message)| ClaimState {
                claimed: token.is_some(),
                status: MarkStatus::parse(&status).unwrap_or(MarkStatus::Pending),
                in_sync: synced == Some(desired),
                last_message,
            },
        ))
    }
}

/// One recorded reconcile run.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct ReconcileRun {
    pub trigger: String,
    #[serde(serialize_with = "ser_ts")]
    pub started_at: i64,
    #[serde(serialize_with = "ser_ts")]
    pub finished_at: i64,
    pub outcome: String,
    #[serde(serialize_with = "ser_json")]
    pub counts: String,
    pub message: String,
}

fn ser_json<S: serde::Serializer>(s: &str, ser: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(
        &serde_json::from_str::<serde_json::Value>(s).unwrap_or_default(),
        ser,
    )
}

impl Store {
    pub async fn record_reconcile(&self, run: &ReconcileRun) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO reconcile_runs (trigger, started_at, finished_at, outcome, counts, message) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&run.trigger)
            .bind(run.started_at)
            .bind(run.finished_at)
            .bind(&run.outcome)
            .bind(&run.counts)
            .bind(&run.message)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reconcile runs, oldest first (at most `limit`, newest kept).
    pub async fn reconcile_runs(&self, limit: i64) -> Result<Vec<ReconcileRun>> {
        let mut rows: Vec<ReconcileRun> = sqlx::query_as(
            "SELECT trigger, started_at, finished_at, outcome, counts, message FROM reconcile_runs ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.reverse();
        Ok(rows)
    }
}

/// A link as reconcile pages through them.
#[derive(Debug, Clone)]
pub struct PagedLink {
    pub rowid: i64,
    pub coupon_id: i64,
    /// The coupon's `uuid_code`, for the report.
    pub uuid_code: String,
    pub link: Link,
    pub updated_at: i64,
}

/// A redemption count read from a provider.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProviderRedemption {
    pub provider: String,
    /// The promotion code (`""` for a count of the coupon as a whole).
    pub code: String,
    pub count: i64,
    pub read_at: String,
}

impl Store {
    /// The links of a program × provider whose remote id is one of `ids` (one page's worth).
    pub async fn links_by_remote(
        &self,
        program: &str,
        provider: ProviderKind,
        ids: &[String],
    ) -> Result<Vec<(i64, Link)>> {
        let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT l.coupon_id, l.object_kind, l.local_key, l.remote_id, l.fingerprint, l.remote FROM provider_links l \
             JOIN coupons c ON c.id = l.coupon_id \
             WHERE l.provider = ? AND c.program = ? AND l.remote_id IN (SELECT value FROM json_each(?)) \
             ORDER BY l.coupon_id",
        )
        .bind(provider.as_str())
        .bind(program)
        .bind(serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, kind, local_key, remote_id, fingerprint, remote)| {
                (
                    id,
                    Link {
                        kind,
                        local_key,
                        remote_id,
                        fingerprint,
                        remote: serde_json::from_str(&remote).unwrap_or_default(),
                    },
                )
            })
            .collect())
    }

    /// Starts a record of the provider objects a reconcile run reads; returns the run's token.
    /// Clears what runs that ended a day ago or more (a crashed one) left behind.
    pub async fn seen_begin(&self, now: DateTime<Utc>) -> Result<String> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM reconcile_seen WHERE at < ?")
            .bind(micros(now) - 86_400_000_000)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(uuid::Uuid::now_v7().to_string())
    }

    /// Records that the run read these provider object ids.
    pub async fn seen_add(
        &self,
        run: &str,
        remote_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if remote_ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT OR IGNORE INTO reconcile_seen (run, remote_id, at) SELECT ?, value, ? FROM json_each(?)",
        )
        .bind(run)
        .bind(micros(now))
        .bind(serde_json::to_string(remote_ids).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets what the run read.
    pub async fn seen_end(&self, run: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM reconcile_seen WHERE run = ?")
            .bind(run)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One page of a program × provider's links, after `after` (a rowid), in rowid order,
    /// leaving out those whose provider object the reconcile run `unseen_by` has read.
    pub async fn links_page(
        &self,
        program: &str,
        provider: ProviderKind,
        unseen_by: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<PagedLink>> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(i64, i64, String, String, String, String, String, String, i64)> = sqlx::query_as(
            "SELECT l.rowid, l.coupon_id, c.uuid_code, l.object_kind, l.local_key, l.remote_id, l.fingerprint, l.remote, l.updated_at \
             FROM provider_links l JOIN coupons c ON c.id = l.coupon_id \
             WHERE l.provider = ? AND c.program = ? AND l.rowid > ? \
               AND NOT EXISTS (SELECT 1 FROM reconcile_seen s WHERE s.run = ? AND s.remote_id = l.remote_id) \
             ORDER BY l.rowid LIMIT ?",
        )
        .bind(provider.as_str())
        .bind(program)
        .bind(after)
        .bind(unseen_by)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    rowid,
                    coupon_id,
                    uuid_code,
                    kind,
                    local_key,
                    remote_id,
                    fingerprint,
                    remote,
                    updated_at,
                )| {
                    PagedLink {
                        rowid,
                        coupon_id,
                        uuid_code,
                        link: Link {
                            kind,
                            local_key,
                            remote_id,
                            fingerprint,
                            remote: serde_json::from_str(&remote).unwrap_or_default(),
                        },
                        updated_at,
                    }
                },
            )
            .collect())
    }

    /// Records redemption counts a provider reported (one transaction for a page).
    pub async fn record_redemptions(
        &self,
        provider: ProviderKind,
        counts: &[(i64, String, i64)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for (coupon_id, code, n) in counts {
            sqlx::query(
                "INSERT INTO provider_redemptions (coupon_id, provider, code, count, read_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (coupon_id, provider, code) DO UPDATE SET count = excluded.count, read_at = excluded.read_at",
            )
            .bind(coupon_id)
            .bind(provider.as_str())
            .bind(code)
            .bind(n)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The redemption counts read from providers for a coupon.
    pub async fn provider_redemptions(
        &self,
        program: &str,
        uuid_code: &str,
    ) -> Result<Vec<ProviderRedemption>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT r.provider, r.code, r.count, r.read_at FROM provider_redemptions r \
             JOIN coupons c ON c.id = r.coupon_id WHERE c.program = ? AND c.uuid_code = ? ORDER BY r.provider, r.code",
        )
        .bind(program)
        .bind(uuid_code)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(provider, code, count, read_at)| ProviderRedemption {
                provider,
                code,
                count,
                read_at: crate::domain::time::format_ts(
                    &DateTime::from_timestamp_micros(read_at).unwrap_or_default(),
                ),
            })
            .collect())
    }
}
