//! Every fixture in `events/` is a real event its function accepts, with the outcome
//! the fixture's README promises.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use aicity_local::invoke::Invoker;
use aicity_local::runner;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture exists")).expect("JSON")
}

#[tokio::test]
async fn every_fixture_invokes_its_function() {
    let clients = aicity_testkit::clients().await;
    let template = aicity_testkit::template();
    let resources = aicity_testkit::fresh_resources(&clients, &template).await;
    let env = runner::shared_environment(&template, &resources).unwrap();
    let functions = common::functions(&clients, &env);
    let timeout = Duration::from_secs(10);

    let response = functions
        .invoke("health", fixture("health-get.json"), timeout)
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 200);
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["status"], "ok");

    let response = functions
        .invoke("health", fixture("health-probe-post.json"), timeout)
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 201);

    let response = functions
        .invoke("canary", fixture("canary-sqs.json"), timeout)
        .await
        .unwrap();
    let failed: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        [
            "0e3b6c1a-0000-4000-8000-000000000001",
            "0e3b6c1a-0000-4000-8000-000000000002"
        ]
    );

    for (function, file) in [
        ("router", "router-sqs.json"),
        ("quality", "quality-sqs.json"),
    ] {
        let response = functions
            .invoke(function, fixture(file), timeout)
            .await
            .unwrap();
        assert_eq!(
            response["batchItemFailures"],
            serde_json::json!([]),
            "{function}"
        );
    }

    let response = functions
        .invoke("canary", fixture("canary-schedule.json"), timeout)
        .await
        .unwrap();
    assert!(response["probeId"].as_str().unwrap().starts_with("prb_"));
}
