//! Puts Redoc's standalone browser bundle in OUT_DIR for `include_str!`.
//!
//! The bundle comes from npm, pinned by `infra/docs/package.json` and its committed
//! `package-lock.json`. When `infra/docs/node_modules` lacks it, or holds another version
//! than the lock names (a fresh clone, a bump), this runs `npm ci` there first, so a
//! machine with Node.js needs nothing done by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let docs = manifest.join("../../infra/docs");
    let lock = docs.join("package-lock.json");
    let installed = docs.join("node_modules/redoc/package.json");
    let bundle = docs.join("node_modules/redoc/bundles/redoc.standalone.js");
    for path in [&lock, &installed, &bundle] {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let locked = version(
        &read_json(&lock),
        &["packages", "node_modules/redoc", "version"],
    )
    .unwrap_or_else(|| panic!("{} pins no redoc version", lock.display()));
    let present = installed
        .is_file()
        .then(|| version(&read_json(&installed), &["version"]))
        .flatten();
    if present.as_deref() != Some(locked.as_str()) || !bundle.is_file() {
        npm_ci(&docs);
    }
    assert!(
        bundle.is_file(),
        "{} is missing after `npm ci`",
        bundle.display()
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::copy(&bundle, out.join("redoc.standalone.js")).expect("copy the Redoc bundle");
    println!("cargo:rustc-env=REDOC_VERSION={locked}");
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn version(json: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .try_fold(json, |value, key| value.get(key))?
        .as_str()
        .map(str::to_owned)
}

fn npm_ci(docs: &Path) {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let status = Command::new(npm)
        .arg("ci")
        .arg("--prefix")
        .arg(docs)
        .args(["--no-audit", "--no-fund", "--ignore-scripts"])
        // npm's report goes to cargo's log, never into build-script directives.
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .unwrap_or_else(|err| {
            panic!(
                "functions/docs embeds Redoc from npm: `npm ci --prefix {}` could not run ({err}); install Node.js and npm",
                docs.display()
            )
        });
    assert!(
        status.success(),
        "`npm ci --prefix {}` failed: {status}",
        docs.display()
    );
}
