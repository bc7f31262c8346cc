//! The Trust API through the local runner's gateway: its routes come from the template,
//! its daily limit from the template's `TrustDailyLimit` parameter, and the
//! `X-Trust-API-Key` header reaches the function.

mod common;

use serde_json::{Value, json};

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn keys_and_reports_through_the_gateway() {
    let template = aicity_testkit::template();
    let trust = template.function("TrustFunction").expect("TrustFunction");
    assert_eq!(trust.binary, "trust");
    let (running, functions, _) = common::start(template).await;
    let api = format!("{}/api/v1", running.base_url);
    let http = reqwest::Client::new();

    let email = format!(
        "{}@example.com",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let (status, _) = send(
        http.post(format!("{api}/auth/sign-up"))
            .json(&json!({"name": "O", "email": email, "password": "long-password"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, session) = send(
        http.post(format!("{api}/auth/sign-in"))
            .json(&json!({"email": email, "password": "long-password"})),
    )
    .await;
    let token = session["data"]["token"].as_str().unwrap().to_owned();
    let (_, agent) = send(
        http.post(format!("{api}/agents"))
            .bearer_auth(&token)
            .json(&json!({"displayName": "A", "framework": "custom", "description": "d"})),
    )
    .await;
    let agent_id = agent["data"]["agent"]["id"].as_str().unwrap().to_owned();

    let (status, created) = send(
        http.post(format!("{api}/trust/keys"))
            .bearer_auth(&token)
            .json(&json!({"name": "partner"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key_id = created["data"]["id"].as_str().unwrap().to_owned();
    let secret = created["data"]["key"].as_str().unwrap().to_owned();

    let report_url = format!("{api}/trust/agents/{agent_id}");
    let (status, body) = send(http.get(&report_url)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("MISSING_TRUST_API_KEY"))
    );
    let (status, report) = send(http.get(&report_url).header("X-Trust-API-Key", &secret)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["data"]["agentId"], agent_id.as_str());
    assert_eq!(report["data"]["recommendation"], "caution");

    let (status, listed) = send(http.get(format!("{api}/trust/keys")).bearer_auth(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(listed["pagination"]["total"], 1);

    let (status, _) = send(
        http.post(format!("{api}/trust/keys/{key_id}/revoke"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = send(http.get(&report_url).header("X-Trust-API-Key", &secret)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("INVALID_TRUST_API_KEY"))
    );
    assert_eq!(functions.calls("trust"), 6);
}
