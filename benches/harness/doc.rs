//! `docs/BENCHMARKS.md`: one marked section per benchmark. A run rewrites the sections it
//! measured and keeps the others (and the hand-written profile section) as they were.

use std::fmt::Write as _;

/// Sections in the order the file shows them.
const ORDER: [&str; 6] = ["api", "push", "lifecycle", "reconcile", "mirror", "profile"];

pub struct Section {
    pub name: &'static str,
    /// Markdown, starting with its `## ` heading.
    pub body: String,
}

fn open(name: &str) -> String {
    format!("<!-- section:{name} -->")
}

fn close(name: &str) -> String {
    format!("<!-- /section:{name} -->")
}

/// The body of a section in an existing file.
fn extract(old: &str, name: &str) -> Option<String> {
    let start = old.find(&open(name))? + open(name).len();
    let end = start + old[start..].find(&close(name))?;
    Some(old[start..end].trim().to_owned())
}

pub fn write(ran: &[Section]) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/BENCHMARKS.md");
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let mut doc = String::new();
    let _ = writeln!(doc, "# Benchmarks\n");
    let _ = writeln!(
        doc,
        "Reproduce with `cargo bench --bench harness` (all sections, about 25 minutes) or \
         `cargo bench --bench harness -- <section>` with one of `api`, `push`, `lifecycle`, \
         `reconcile`, `mirror`; a run rewrites only the sections it measured. The harness prints the \
         same tables. Each section says when, at which commit and on which machine it was measured; \
         every ratio compares figures of one run of one section. Nothing here runs in `cargo test`; \
         CI builds the harness so it cannot rot.\n"
    );
    for name in ORDER {
        let body = ran
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.body.trim().to_owned())
            .or_else(|| extract(&old, name));
        if let Some(body) = body {
            let _ = writeln!(doc, "{}\n{body}\n{}\n", open(name), close(name));
        }
    }
    std::fs::write(path, doc.trim_end().to_owned() + "\n").unwrap();
    println!("wrote {path}");
}
