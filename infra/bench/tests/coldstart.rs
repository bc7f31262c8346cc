//! The Runtime API and the measurement end to end, with a shell script standing in for
//! a function (curl speaks the protocol; the real binaries are release builds the bench
//! script makes, too slow to build in a test).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use aicity_bench::coldstart::{Launch, run_once};
use aicity_bench::runtime_api::REQUEST_ID;

fn script(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aicity-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn launch(binary: PathBuf) -> Launch {
    Launch {
        name: "fake".into(),
        log: binary.with_extension("log"),
        binary,
        env: vec![("GREETING".into(), "hi".into())],
        memory_mb: 128,
        timeout: Duration::from_secs(20),
    }
}

fn have_curl() -> bool {
    std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok()
}

#[tokio::test]
async fn a_function_that_answers_is_measured() {
    if !have_curl() {
        eprintln!("skipped: no curl");
        return;
    }
    let base = "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime";
    let fake = script(
        "answers",
        &format!(
            "curl -sf {base}/invocation/next > /dev/null\n\
             curl -sf -X POST -d \"{{\\\"statusCode\\\":201,\\\"g\\\":\\\"$GREETING\\\"}}\" \
             {base}/invocation/{REQUEST_ID}/response\n\
             sleep 30"
        ),
    );
    let event = serde_json::json!({"hello": "bench"});
    let sample = run_once(&launch(fake), &event).await.unwrap();
    assert_eq!(sample.answer, "201");
    assert!(sample.init > Duration::ZERO);
    assert!(sample.peak_rss_kib > 0);
}

#[tokio::test]
async fn a_function_that_dies_at_init_is_an_error() {
    let fake = script("dies", "exit 3");
    let err = run_once(&launch(fake), &serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(err.contains("exited"), "{err}");
}
