//! API writes against the raw SQLite baseline, in the same run.

use crate::common::{API_KEY, STRIPE_KEY, app, percentile};
use serde_json::json;
use std::time::{Duration, Instant};

/// API writes through HTTP (coupon + code + outbox mark, fsynced) at several concurrencies, and
/// raw SQLite inserts of the same rows with the same pragmas, in the same run.
async fn api_writes(total: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    // Stripe is connected (so every write carries an outbox mark) but nothing is pushed inline
    // (inline_deadline_ms = 0) and no worker runs: this measures the API and the store only.
    let a = app(format!(
        "[store]\npath = {:?}\n[log]\nfilter = \"error\"\n[sync]\ninline_deadline_ms = 0\n[programs.bench]\napi_keys = [\"{API_KEY}\"]\n\
         [programs.bench.stripe]\nsecret_key = \"{STRIPE_KEY}\"\nbase_url = \"http://127.0.0.1:9\"\n",
        dir.path().join("api.db")
    ))
    .await;
    let base = format!("http://{}", a.local_addr());
    tokio::spawn(a.run(std::future::pending()));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();
    let mut rows = Vec::new();
    let mut best = 0.0f64;
    for (kind, clients) in [
        ("create", 1),
        ("create", 8),
        ("create", 64),
        ("update", 8),
        ("update", 64),
    ] {
        let per = total / clients;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (client, base) = (client.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per);
                for i in 0..per {
                    let t = Instant::now();
                    let r = if kind == "create" {
                        let body = json!({"uuid_code": format!("A{clients}x{c}x{i}"), "coupon_discount_type": "percent", "coupon_discount_amount": 10,
                                          "coupon_duration_type": "once", "promotion_codes": [{"code": format!("AC{clients}x{c}x{i}")}],
                                          "sync": {"provider": "stripe"}});
                        client.post(format!("{base}/v1/coupons")).bearer_auth(API_KEY).json(&body).send().await.unwrap()
                    } else {
                        // update the coupons created by the 64-client run: name changes (provider-relevant: a mark each)
                        let made = total / 64;
                        let body = json!({"uuid_code": format!("A64x{}x{}", c % 64, i % made), "name": format!("n{clients}x{i}")});
                        client.put(format!("{base}/v1/coupons")).bearer_auth(API_KEY).json(&body).send().await.unwrap()
                    };
                    assert!(r.status().is_success(), "{}", r.status());
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut lat: Vec<Duration> = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        lat.sort();
        let rate = lat.len() as f64 / secs;
        if kind == "create" {
            best = best.max(rate);
        }
        let line = format!(
            "| API {kind}s | {clients} concurrent clients, {} requests | {rate:.0}/s | {:.2} ms | {:.2} ms |",
            lat.len(),
            percentile(&lat, 0.5).as_secs_f64() * 1000.0,
            percentile(&lat, 0.99).as_secs_f64() * 1000.0
        );
        println!("{line}");
        rows.push(line);
    }
    // the baseline: the same rows straight into SQLite, one transaction per coupon, same pragmas
    let raw = raw_sqlite(total, dir.path()).await;
    let line = format!(
        "| raw SQLite baseline | {total} transactions: coupon + code + outbox row, WAL, synchronous=FULL | {raw:.0}/s | | |"
    );
    println!("{line}");
    rows.push(line);
    let ratio = format!(
        "API creates (best concurrency) ÷ raw SQLite: **{:.2}** (goal ≥ 0.5)",
        best / raw
    );
    println!("{ratio}");
    rows.push(ratio);
    rows
}

async fn raw_sqlite(n: usize, dir: &std::path::Path) -> f64 {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{ConnectOptions, Connection};
    let mut conn = SqliteConnectOptions::new()
        .filename(dir.join("raw.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .connect()
        .await
        .unwrap();
    sqlx::query("CREATE TABLE c (id INTEGER PRIMARY KEY, program TEXT, uuid_code TEXT COLLATE NOCASE, name TEXT, active INTEGER, discount_type TEXT, discount_hundredths INTEGER, duration_type TEXT, metadata TEXT, sync_provider TEXT, revision INTEGER, created_at INTEGER, updated_at INTEGER, UNIQUE (program, uuid_code))").execute(&mut conn).await.unwrap();
    sqlx::query("CREATE TABLE p (id INTEGER PRIMARY KEY, program TEXT, coupon_id INTEGER REFERENCES c (id), code TEXT COLLATE NOCASE, metadata TEXT, created_at INTEGER, updated_at INTEGER, UNIQUE (program, code))").execute(&mut conn).await.unwrap();
    sqlx::query("CREATE TABLE o (coupon_id INTEGER REFERENCES c (id), provider TEXT, program TEXT, desired_revision INTEGER, status TEXT, next_attempt_at INTEGER, updated_at INTEGER, PRIMARY KEY (coupon_id, provider))").execute(&mut conn).await.unwrap();
    let started = Instant::now();
    for i in 0..n {
        let mut tx = conn.begin().await.unwrap();
        let id = sqlx::query("INSERT INTO c (program, uuid_code, name, active, discount_type, discount_hundredths, duration_type, metadata, sync_provider, revision, created_at, updated_at) VALUES ('bench', ?, ?, 1, 'percent', 1000, 'once', '{}', 'stripe', 1, 0, 0)")
            .bind(format!("R{i}")).bind(format!("R{i}")).execute(&mut *tx).await.unwrap().last_insert_rowid();
        sqlx::query("INSERT INTO p (program, coupon_id, code, metadata, created_at, updated_at) VALUES ('bench', ?, ?, '{}', 0, 0)")
            .bind(id).bind(format!("RC{i}")).execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO o (coupon_id, provider, program, desired_revision, status, next_attempt_at, updated_at) VALUES (?, 'stripe', 'bench', 1, 'pending', 0, 0)")
            .bind(id).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

pub async fn section(total: usize) -> crate::doc::Section {
    let rows = api_writes(total).await;
    let mut body = String::new();
    body.push_str("## API writes\n\n");
    body.push_str(&crate::common::stamp());
    body.push_str(
        "\n\nCoupon creates (with one nested code) and updates over HTTP on loopback, each acknowledged only after \
         its fsynced commit (`store.durability = \"full\"`, WAL) with its outbox mark; Stripe is connected so \
         every write carries a mark, but nothing is pushed (`inline_deadline_ms = 0`, no worker). The baseline \
         inserts the same three rows per transaction straight into SQLite with the same pragmas, in the same run.\n\n",
    );
    body.push_str("| benchmark | workload | rate | p50 | p99 |\n|---|---|---|---|---|\n");
    for r in rows.iter().filter(|r| r.starts_with('|')) {
        body.push_str(r);
        body.push('\n');
    }
    for r in rows.iter().filter(|r| !r.starts_with('|')) {
        body.push('\n');
        body.push_str(r);
        body.push('\n');
    }
    body.push_str(
        "\nWhere the time goes: writes go through one writer connection with group commit: a write runs in a \
         savepoint inside a transaction that stays open while other writes queue behind it, and the transaction is \
         committed (one fsync) once that queue has drained; each request is answered only after the commit that \
         holds its write. With one client every write is its own commit; with 8 or 64 clients the fsyncs are \
         shared. The API also parses and validates the request, checks uniqueness and reads the row back for the \
         answer; the baseline does none of that and commits each of its transactions on its own.\n",
    );
    crate::doc::Section { name: "api", body }
}
