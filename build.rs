//! Build script: stamps the build with its git commit and checks the D1 migrations it ships.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BYTE_BUILD_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=migrations");

    // Migrations must be numbered 0001_name.sql, contiguous, and never empty: wrangler applies
    // them in name order and a gap usually means a lost file.
    let mut names: Vec<String> = std::fs::read_dir("migrations")
        .expect("migrations/ exists")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    for (i, n) in names.iter().enumerate() {
        let expected = format!("{:04}_", i + 1);
        assert!(
            n.starts_with(&expected),
            "migration {n} should start with {expected}"
        );
        let body = std::fs::read_to_string(format!("migrations/{n}")).expect("readable migration");
        assert!(body.contains(';'), "migration {n} has no statements");
    }
}
