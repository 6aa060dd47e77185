//! Transactions: create (single or batch, all-or-nothing), list, get, delete.

use super::{Result, Store, StoreError, from_micros, is_unique_violation, micros};
use crate::domain::errors::msg;
use crate::domain::{FieldErrors, NewTransaction};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;

/// A stored transaction.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TransactionRow {
    pub key: Option<String>,
    pub action: String,
    amount: Option<String>,
    pub amount_units: Option<String>,
    pub customer: String,
    pub partner: Option<String>,
    created_at: i64,
}

impl TransactionRow {
    pub fn amount(&self) -> Option<Decimal> {
        self.amount
            .as_deref()
            .and_then(|a| Decimal::from_str(a).ok())
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        from_micros(self.created_at)
    }
}

/// Exact-match filters of `GET /v1/transactions`.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub key: Option<String>,
    pub partner: Option<String>,
    pub customer: Option<String>,
}

const COLUMNS: &str = "key, action, amount, amount_units, customer, partner, created_at";

impl Store {
    pub async fn create_transactions(
        &self,
        program: &str,
        items: &[NewTransaction],
        batch: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<TransactionRow>> {
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(items.len());
        for (i, t) in items.iter().enumerate() {
            let path = if batch {
                format!("transactions.{i}.key")
            } else {
                "key".to_owned()
            };
            let created = micros(t.created_at.unwrap_or(now));
            let res = sqlx::query(
                "INSERT INTO transactions (program, key, action, amount, reward, amount_units, customer, partner, product_id, \
                 product_type, rewarded, rewardable, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(program)
            .bind(&t.key)
            .bind(&t.action)
            .bind(t.amount.map(|d| d.normalize().to_string()))
            .bind(t.reward.map(|d| d.normalize().to_string()))
            .bind(&t.amount_units)
            .bind(&t.customer)
            .bind(&t.partner)
            .bind(&t.product_id)
            .bind(&t.product_type)
            .bind(t.rewarded)
            .bind(t.rewardable)
            .bind(created)
            .execute(&mut *tx)
            .await;
            match res {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(FieldErrors::single(&path, msg::taken(&path)).into());
                }
                Err(e) => return Err(e.into()),
            }
            out.push(TransactionRow {
                key: t.key.clone(),
                action: t.action.clone(),
                amount: t.amount.map(|d| d.normalize().to_string()),
                amount_units: t.amount_units.clone(),
                customer: t.customer.clone(),
                partner: t.partner.clone(),
                created_at: created,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn list_transactions(
        &self,
        program: &str,
        f: &TransactionFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TransactionRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM transactions WHERE program = ? \
             AND (? IS NULL OR key = ?) AND (? IS NULL OR partner = ?) AND (? IS NULL OR customer = ?) \
             ORDER BY id LIMIT ? OFFSET ?"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(program)
            .bind(&f.key)
            .bind(&f.key)
            .bind(&f.partner)
            .bind(&f.partner)
            .bind(&f.customer)
            .bind(&f.customer)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?)
    }

    pub async fn get_transaction(
        &self,
        program: &str,
        key: &str,
    ) -> Result<Option<TransactionRow>> {
        let sql = format!("SELECT {COLUMNS} FROM transactions WHERE program = ? AND key = ?");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(program)
            .bind(key)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Deletes for good; redemption log entries naming the key stay (B17).
    pub async fn delete_transaction(&self, program: &str, key: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM transactions WHERE program = ? AND key = ?")
            .bind(program)
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
}
