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
        "INSERT INTO outbox (coupon_id, provider, program, desired_revision, status, attempts, next_attempt_at, updated_at) \
         VALUES (?, ?, ?, ?, 'pending', 0, ?, ?) \
         ON CONFLICT (coupon_id, provider) DO UPDATE SET \
           desired_revision = excluded.desired_revision, \
           status = CASE WHEN outbox.status = 'parked' THEN 'parked' ELSE 'pending' END, \
           attempts = 0, next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
    )
    .bind(coupon_id)
    .bind(provider.as_str())
    .bind(program)
    .bind(revision)
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
