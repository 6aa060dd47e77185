//! One-shot operator commands on the store: `--dead`, `--retry-dead`, `--history`.
//! They open the same SQLite file as a running daemon (WAL: safe concurrent access).

use crate::cli::{Cli, Format};
use crate::config::Settings;
use crate::store::Store;
use crate::store::outbox::MarkInfo;
use anyhow::Context;
use serde_json::json;
use std::fmt::Write as _;

fn programs<'a>(settings: &'a Settings, only: Option<&'a str>) -> anyhow::Result<Vec<&'a str>> {
    match only {
        Some(p) if settings.programs.contains_key(p) => Ok(vec![p]),
        Some(p) => anyhow::bail!("no program named {p:?} in the configuration"),
        None => Ok(settings.programs.keys().map(String::as_str).collect()),
    }
}

fn mark_table(out: &mut String, program: &str, marks: &[MarkInfo]) {
    for m in marks {
        let _ = writeln!(
            out,
            "{program:<12} {:<24} {:<12} {:<9} {:>8} {:>6}/{:<6} {}",
            m.uuid_code,
            m.provider,
            m.status,
            m.attempts,
            m.synced_revision
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            m.desired_revision,
            m.last_message
        );
    }
}

/// Runs the admin command; returns the process exit code.
pub async fn run(cli: &Cli, settings: &Settings) -> anyhow::Result<u8> {
    let store = Store::open(&settings.store.path, &settings.store.options())
        .await
        .with_context(|| format!("opening store {}", settings.store.path.display()))?;
    let progs = programs(settings, cli.program.as_deref())?;
    let mut out = String::new();
    let header = format!(
        "{:<12} {:<24} {:<12} {:<9} {:>8} {:>13} {}",
        "PROGRAM", "COUPON", "PROVIDER", "STATUS", "ATTEMPTS", "SYNCED/WANTED", "LAST MESSAGE"
    );
    let code = if cli.dead {
        let mut all = Vec::new();
        for p in &progs {
            all.push((p.to_string(), store.failed_marks(p, true).await?));
        }
        let total: usize = all.iter().map(|(_, m)| m.len()).sum();
        match cli.format {
            Format::Json => {
                let v: Vec<_> = all
                    .iter()
                    .flat_map(|(p, ms)| ms.iter().map(move |m| json!({"program": p, "sync": m})))
                    .collect();
                out = serde_json::to_string_pretty(&v)?;
            }
            Format::Table => {
                let _ = writeln!(out, "{header}");
                for (p, ms) in &all {
                    mark_table(&mut out, p, ms);
                }
                let _ = writeln!(out, "{total} dead sync(s)");
            }
        }
        u8::from(total > 0)
    } else if cli.retry_dead {
        let mut total = 0;
        for p in &progs {
            total += store
                .retry_dead(p, cli.coupon.as_deref(), chrono::Utc::now())
                .await?;
        }
        match cli.format {
            Format::Json => out = json!({"requeued": total}).to_string(),
            Format::Table => {
                let _ = writeln!(
                    out,
                    "requeued {total} dead sync(s); a running daemon picks them up within sync.poll_interval_ms"
                );
            }
        }
        0
    } else if let Some(uuid) = &cli.history {
        let mut found = false;
        let mut json_out = Vec::new();
        for p in &progs {
            let Some((marks, attempts)) = store.sync_history(p, uuid).await? else {
                continue;
            };
            found = true;
            let redemptions = store.provider_redemptions(p, uuid).await?;
            match cli.format {
                Format::Json => json_out.push(
                    json!({"program": p, "syncs": marks, "attempts": attempts, "provider_redemptions": redemptions}),
                ),
                Format::Table => {
                    let _ = writeln!(out, "{header}");
                    mark_table(&mut out, p, &marks);
                    let _ = writeln!(
                        out,
                        "\n{:<28} {:<12} {:>8} {:>7} {:<12} MESSAGE",
                        "FINISHED", "PROVIDER", "REVISION", "ATTEMPT", "OUTCOME"
                    );
                    for a in &attempts {
                        let v = serde_json::to_value(a)?;
                        let _ = writeln!(
                            out,
                            "{:<28} {:<12} {:>8} {:>7} {:<12} {}",
                            v["finished_at"].as_str().unwrap_or(""),
                            a.provider,
                            a.revision,
                            a.attempt,
                            a.outcome,
                            a.message
                        );
                    }
                    if !redemptions.is_empty() {
                        let _ = writeln!(
                            out,
                            "\n{:<12} {:<24} {:>8} READ AT (redemptions the provider counts)",
                            "PROVIDER", "CODE", "COUNT"
                        );
                        for r in &redemptions {
                            let _ = writeln!(
                                out,
                                "{:<12} {:<24} {:>8} {}",
                                r.provider, r.code, r.count, r.read_at
                            );
                        }
                    }
                }
            }
        }
        if cli.format == Format::Json {
            out = serde_json::to_string_pretty(&json_out)?;
        }
        if !found {
            anyhow::bail!("no coupon {uuid:?} in {}", progs.join(", "));
        }
        0
    } else {
        0
    };
    print!("{out}");
    if !out.ends_with('\n') {
        println!();
    }
    store.close().await;
    Ok(code)
}
