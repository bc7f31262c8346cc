//! The webhooks resource against a local fake of the API: the routes, bodies and query
//! strings it sends, as the agent when it has a key (else the owner), and how it reads
//! answers and refusals.

use std::sync::{Arc, Mutex};

use aicity_sdk::{AgentCity, Error};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

/// Every request the fake saw: who, method, path and query, body.
type Seen = Arc<Mutex<Vec<(String, String, String, Value)>>>;

fn ok(status: StatusCode, data: Value) -> (StatusCode, String) {
    (status, json!({"success": true, "data": data}).to_string())
}

fn webhook(status: &str) -> Value {
    json!({"id": "wh_1", "url": "https://example.com/hooks", "events": ["task.assigned"],
        "status": status, "createdAt": "2026-03-01T10:00:00Z"})
}

fn delivery(status: &str) -> Value {
    json!({"id": "whd_1", "eventId": "evt_1", "eventType": "task.assigned", "status": status,
        "attempts": [{"at": "2026-03-01T10:00:00Z", "statusCode": 500, "latencyMs": 30}],
        "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-01T10:00:01Z"})
}

async fn fake(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let who = match (headers.get("x-api-key"), headers.get("authorization")) {
        (Some(key), _) => format!("key:{}", key.to_str().unwrap()),
        (None, Some(token)) => token.to_str().unwrap().to_owned(),
        (None, None) => "nobody".into(),
    };
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let target = uri.path_and_query().unwrap().as_str().to_owned();
    seen.lock()
        .unwrap()
        .push((who, method.to_string(), target, body.clone()));
    match (method.as_str(), uri.path().trim_start_matches("/api/v1")) {
        ("POST", "/webhooks") => {
            let mut created = webhook("active");
            created["url"] = body["url"].clone();
            created["events"] = body["events"].clone();
            created["secret"] = json!("whsec_abc");
            ok(StatusCode::CREATED, created)
        }
        ("GET", "/webhooks") => (
            StatusCode::OK,
            json!({"success": true, "data": [webhook("disabled")],
                "pagination": {"page": 2, "pageSize": 20, "total": 21, "totalPages": 2}})
            .to_string(),
        ),
        ("GET", "/webhooks/wh_1") => ok(StatusCode::OK, webhook("active")),
        ("DELETE", "/webhooks/wh_1") => ok(StatusCode::OK, json!({"id": "wh_1", "deleted": true})),
        ("POST", "/webhooks/wh_1/enable") => ok(StatusCode::OK, webhook("active")),
        ("GET", "/webhooks/wh_1/deliveries") => ok(
            StatusCode::OK,
            json!({"deliveries": [delivery("failed")], "hasMore": true, "nextCursor": "whd_1"}),
        ),
        ("POST", "/webhooks/wh_1/deliveries/whd_1/redeliver") => {
            ok(StatusCode::ACCEPTED, delivery("pending"))
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"success": false, "error": {"code": "WEBHOOK_NOT_FOUND",
                "message": "Webhook subscription not found", "details": {}}})
            .to_string(),
        ),
    }
}

async fn serve() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new().fallback(fake).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test]
async fn every_route_is_sent_as_the_agent_and_read_back_typed() {
    let (base, seen) = serve().await;
    let city = AgentCity::builder()
        .owner_token("ses_owner")
        .api_key("ac_live_agent")
        .base_url(base)
        .retries(0)
        .build()
        .unwrap();
    let hooks = city.webhooks();

    let created = hooks
        .create(
            "https://example.com/hooks",
            &["task.assigned", "task.failed"],
        )
        .await
        .unwrap();
    assert_eq!(created.secret, "whsec_abc");
    assert_eq!(created.webhook.id, "wh_1");
    assert_eq!(created.webhook.events, ["task.assigned", "task.failed"]);

    let page = hooks.list(Some(2)).await.unwrap();
    assert_eq!(page.data[0].status, "disabled");
    assert_eq!(page.pagination.total, 21);
    assert_eq!(
        hooks.get("wh_1").await.unwrap().url,
        "https://example.com/hooks"
    );
    assert!(hooks.delete("wh_1").await.unwrap().deleted);
    assert_eq!(hooks.enable("wh_1").await.unwrap().status, "active");
    let log = hooks
        .deliveries("wh_1", Some(10), Some("whd_9"))
        .await
        .unwrap();
    assert_eq!(log.deliveries[0].attempts[0].status_code, Some(500));
    assert!(log.has_more);
    let again = hooks.redeliver("wh_1", "whd_1").await.unwrap();
    assert_eq!(again.status, "pending");

    let err = hooks.delete("wh_other").await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(err.code(), Some("WEBHOOK_NOT_FOUND"));

    let seen = seen.lock().unwrap();
    let sent: Vec<(&str, &str, &str)> = seen
        .iter()
        .map(|(who, method, target, _)| (who.as_str(), method.as_str(), target.as_str()))
        .collect();
    assert_eq!(
        sent,
        [
            ("key:ac_live_agent", "POST", "/api/v1/webhooks"),
            ("key:ac_live_agent", "GET", "/api/v1/webhooks?page=2"),
            ("key:ac_live_agent", "GET", "/api/v1/webhooks/wh_1"),
            ("key:ac_live_agent", "DELETE", "/api/v1/webhooks/wh_1"),
            ("key:ac_live_agent", "POST", "/api/v1/webhooks/wh_1/enable"),
            (
                "key:ac_live_agent",
                "GET",
                "/api/v1/webhooks/wh_1/deliveries?limit=10&cursor=whd_9"
            ),
            (
                "key:ac_live_agent",
                "POST",
                "/api/v1/webhooks/wh_1/deliveries/whd_1/redeliver"
            ),
            ("key:ac_live_agent", "DELETE", "/api/v1/webhooks/wh_other"),
        ]
    );
    assert_eq!(
        seen[0].3,
        json!({"url": "https://example.com/hooks", "events": ["task.assigned", "task.failed"]})
    );
}

#[tokio::test]
async fn an_owner_without_a_key_acts_for_itself() {
    let (base, seen) = serve().await;
    let city = AgentCity::builder()
        .owner_token("ses_owner")
        .base_url(base)
        .retries(0)
        .build()
        .unwrap();
    city.webhooks()
        .create(
            "https://example.com/hooks",
            &[String::from("approval.requested")],
        )
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap()[0].0, "Bearer ses_owner");

    let nobody = AgentCity::builder()
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let err = nobody.webhooks().list(None).await.unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");
}
