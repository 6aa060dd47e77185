//! CLI dispatch only.

use clap::Parser;
use coupond::app::{App, shutdown_signal};
use coupond::cli::Cli;
use coupond::config::{Settings, Sources};
use coupond::demo::Demo;
use std::io::Write;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let demo = if cli.demo {
        match Demo::prepare().await {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("coupond: cannot prepare the demo store: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let sources = Sources {
        file: if cli.demo { None } else { cli.config.clone() },
        overlays: demo.iter().map(|d| d.overlay.clone()).collect(),
        env: None,
    };
    let settings = match Settings::load(&sources) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("coupond: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout(), "{}", settings.redacted_toml());
        return ExitCode::SUCCESS;
    }
    if cli.reconcile {
        return match coupond::reconcile::run(&cli, &settings).await {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("coupond: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if cli.admin() {
        return match coupond::admin::run(&cli, &settings).await {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("coupond: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    coupond::telemetry::init(settings.log.format, &settings.log.filter);
    let app = match App::build(settings, None).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "start-up failed");
            eprintln!("coupond: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(d) = &demo {
        println!("{}", d.banner(app.local_addr()));
    }
    let result = app.run(shutdown_signal()).await;
    if let Some(d) = &demo {
        let _ = std::fs::remove_dir_all(&d.store_dir);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coupond: {e:#}");
            ExitCode::from(1)
        }
    }
}
