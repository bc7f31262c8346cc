//! The Exchange at its sunset, through the runner's gateway as an old integration meets
//! it: each of the 29 methods at the path the old SDK called answers 410
//! `EXCHANGE_SUNSET` with the sunset headers and the Tasks route that replaced it.

mod common;

use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn every_exchange_method_answers_410_with_its_replacement() {
    let (running, _functions, _clients) = common::start(aicity_testkit::template()).await;
    let http = reqwest::Client::new();
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/migration-exchange-to-tasks.md"
    ))
    .expect("the migration guide exists");
    for method in exchange::METHODS {
        let path = method
            .path
            .split('/')
            .map(|s| if s.starts_with('{') { "01JABCDEF" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let url = format!("{}/api/v1/exchange{path}", running.base_url);
        let verb = Method::from_bytes(method.http.as_bytes()).unwrap();
        let mut request = http.request(verb, &url).header("x-api-key", "ac_live_old");
        if method.http == "POST" {
            request = request.json(&serde_json::json!({"category": "code_review"}));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 410, "{} {url}", method.name);
        let headers = response.headers().clone();
        assert_eq!(headers["sunset"], "Tue, 30 Jun 2026 00:00:00 GMT");
        assert!(headers.contains_key("deprecation"));
        assert!(
            headers["link"]
                .to_str()
                .unwrap()
                .contains("migration-exchange-to-tasks.md>; rel=\"sunset\"")
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "EXCHANGE_SUNSET");
        let details = &body["error"]["details"];
        assert_eq!(details["method"], method.name);
        assert_eq!(
            details["replacement"],
            method.replacement.map_or(Value::Null, Value::from),
            "{}",
            method.name
        );
        assert_eq!(
            details["migrationGuide"],
            "docs/migration-exchange-to-tasks.md"
        );
        // The guide documents the method and the same replacement.
        assert!(
            guide.contains(&format!("`{}`", method.name)),
            "{} not in the guide",
            method.name
        );
        if let Some(replacement) = method.replacement {
            assert!(
                guide.contains(replacement),
                "{replacement} not in the guide"
            );
        }
    }
    // Anything else under the Exchange is gone too, with no replacement to name.
    for (verb, path) in [
        (Method::GET, ""),
        (Method::DELETE, "/requests/1"),
        (Method::GET, "/bids"),
    ] {
        let response = http
            .request(verb, format!("{}/api/v1/exchange{path}", running.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 410, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "EXCHANGE_SUNSET");
        assert_eq!(body["error"]["details"]["replacement"], Value::Null);
    }
}
