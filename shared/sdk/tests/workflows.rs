//! The workflows resource against a local fake of the API: the routes, bodies and query
//! strings it sends (as the agent when it has a key, else the owner), the
//! Idempotency-Key every create carries (fresh per call, the caller's when given, the
//! same on a retry after a 503), and how it reads answers and refusals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aicity_sdk::workflows::{CreateWorkflow, StepSpec, TaskStatus, WorkflowStatus};
use aicity_sdk::{AgentCity, Error};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

/// One request the fake saw.
#[derive(Debug, Clone)]
struct Request {
    who: String,
    method: String,
    target: String,
    key: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Fake {
    seen: Vec<Request>,
    /// The next POSTs to `/workflows` answered 503 before the handler "ran".
    fail_creates: usize,
}

type Shared = Arc<Mutex<Fake>>;

fn ok(status: StatusCode, data: Value) -> (StatusCode, String) {
    (status, json!({"success": true, "data": data}).to_string())
}

fn refused(status: StatusCode, code: &str, details: Value) -> (StatusCode, String) {
    (
        status,
        json!({"success": false, "error": {"code": code, "message": "m", "details": details}})
            .to_string(),
    )
}

fn workflow(status: &str, step_status: &str) -> Value {
    json!({"id": "wf_1", "name": "Full code audit", "status": status,
    "callerOwnerId": "usr_1", "callerAgentId": "ag_buyer", "totalBudget": 1200,
    "createdAt": "2026-03-01T10:00:00Z", "updatedAt": "2026-03-01T10:00:00Z",
    "creditsCharged": 0,
    "steps": [
        {"order": 1, "taskId": "task_1", "taskType": "code_review", "description": "Review",
         "maxBudget": 500, "status": step_status},
        {"order": 2, "taskId": "task_2", "taskType": "testing", "description": "Test",
         "maxBudget": 700, "agentId": "ag_tester", "status": "waiting"},
    ]})
}

async fn fake(
    State(fake): State<Shared>,
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
    let mut fake = fake.lock().unwrap();
    fake.seen.push(Request {
        who,
        method: method.to_string(),
        target: uri.path_and_query().unwrap().as_str().to_owned(),
        key: headers
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: body.clone(),
    });
    match (method.as_str(), uri.path().trim_start_matches("/api/v1")) {
        ("POST", "/workflows") => {
            if fake.fail_creates > 0 {
                fake.fail_creates -= 1;
                return refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    json!({}),
                );
            }
            let mut created = workflow("active", "routing");
            created["name"] = body["name"].clone();
            ok(StatusCode::CREATED, created)
        }
        ("GET", "/workflows") => (
            StatusCode::OK,
            json!({"success": true, "data": [{"id": "wf_1", "name": "Full code audit",
                "status": "failed", "callerOwnerId": "usr_1", "totalBudget": 1200,
                "failedStep": 1, "createdAt": "2026-03-01T10:00:00Z",
                "updatedAt": "2026-03-01T10:05:00Z", "completedAt": "2026-03-01T10:05:00Z",
                "steps": [{"order": 1, "taskId": "task_1", "taskType": "code_review",
                    "description": "Review", "maxBudget": 500}]}],
                "pagination": {"page": 2, "pageSize": 20, "total": 21, "totalPages": 2}})
            .to_string(),
        ),
        ("GET", "/workflows/wf_1") => ok(StatusCode::OK, workflow("active", "executing")),
        ("POST", "/workflows/wf_1/cancel") => {
            let mut cancelled = workflow("cancelled", "executing");
            cancelled["steps"][1]["status"] = json!("cancelled");
            ok(StatusCode::OK, cancelled)
        }
        ("POST", "/workflows/wf_done/cancel") => refused(
            StatusCode::CONFLICT,
            "INVALID_WORKFLOW_STATE",
            json!({"status": "completed"}),
        ),
        _ => refused(StatusCode::NOT_FOUND, "WORKFLOW_NOT_FOUND", json!({})),
    }
}

async fn serve() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let app = axum::Router::new()
        .fallback(fake)
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, shared)
}

fn agent(base: &str) -> AgentCity {
    AgentCity::builder()
        .owner_token("ses_owner")
        .api_key("ac_live_agent")
        .base_url(base)
        .backoff(Duration::from_millis(10))
        .build()
        .unwrap()
}

fn request() -> CreateWorkflow {
    let mut test = StepSpec::new("testing", 700, "Test");
    test.agent_id = Some("ag_tester".into());
    test.input = json!({"repo": "https://github.com/o/r"})
        .as_object()
        .cloned();
    CreateWorkflow {
        name: "Full code audit".into(),
        steps: vec![StepSpec::new("code_review", 500, "Review"), test],
    }
}

#[tokio::test]
async fn a_create_always_carries_an_idempotency_key_and_repeats_it_on_a_retry() {
    let (base, fake) = serve().await;
    let city = agent(&base);
    fake.lock().unwrap().fail_creates = 1;

    let created = city.workflows().create(&request(), None).await.unwrap();
    assert_eq!(created.id, "wf_1");
    assert_eq!(created.status, WorkflowStatus::Active);
    assert_eq!(created.steps[0].status, Some(TaskStatus::Routing));
    assert_eq!(created.steps[1].status, Some(TaskStatus::Waiting));

    city.workflows().create(&request(), None).await.unwrap();
    city.workflows()
        .create(&request(), Some("mine-1"))
        .await
        .unwrap();

    let seen = fake.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 4, "a 503 and its retry, then two more creates");
    for sent in &seen {
        assert_eq!(
            (
                sent.who.as_str(),
                sent.method.as_str(),
                sent.target.as_str()
            ),
            ("key:ac_live_agent", "POST", "/api/v1/workflows")
        );
        assert_eq!(
            sent.body,
            json!({"name": "Full code audit", "steps": [
                {"taskType": "code_review", "description": "Review", "maxBudget": 500},
                {"taskType": "testing", "description": "Test", "maxBudget": 700,
                 "agentId": "ag_tester", "input": {"repo": "https://github.com/o/r"}},
            ]})
        );
    }
    let first = seen[0].key.clone().expect("a key the SDK made up");
    assert!(first.starts_with("sdk_") && first.len() == 36, "{first}");
    assert_eq!(seen[1].key.as_deref(), Some(first.as_str()), "the retry");
    let second = seen[2].key.clone().expect("a key for the second call");
    assert!(second.starts_with("sdk_"), "{second}");
    assert_ne!(second, first, "a new call, a new key");
    assert_eq!(seen[3].key.as_deref(), Some("mine-1"));
}

#[tokio::test]
async fn get_list_and_cancel_hit_their_routes_and_read_back_typed() {
    let (base, fake) = serve().await;
    let city = agent(&base);
    let workflows = city.workflows();

    let got = workflows.get("wf_1").await.unwrap();
    assert_eq!(got.steps[0].status, Some(TaskStatus::Executing));
    assert_eq!(got.credits_charged, Some(0));
    assert_eq!(got.caller_agent_id.as_deref(), Some("ag_buyer"));

    let page = workflows
        .list(Some(WorkflowStatus::Failed), Some(2))
        .await
        .unwrap();
    assert_eq!(page.pagination.total, 21);
    assert_eq!(page.data[0].status, WorkflowStatus::Failed);
    assert_eq!(page.data[0].failed_step, Some(1));
    assert_eq!(page.data[0].steps[0].status, None);
    workflows.list(None, None).await.unwrap();

    let cancelled = workflows.cancel("wf_1").await.unwrap();
    assert_eq!(cancelled.status, WorkflowStatus::Cancelled);
    assert_eq!(cancelled.steps[1].status, Some(TaskStatus::Cancelled));

    let err = workflows.cancel("wf_done").await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(err.code(), Some("INVALID_WORKFLOW_STATE"));
    assert_eq!(err.failure().unwrap().details["status"], "completed");
    let err = workflows.get("wf_other").await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(err.code(), Some("WORKFLOW_NOT_FOUND"));

    let seen = fake.lock().unwrap().seen.clone();
    let sent: Vec<(&str, &str, &str)> = seen
        .iter()
        .map(|r| (r.who.as_str(), r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        sent,
        [
            ("key:ac_live_agent", "GET", "/api/v1/workflows/wf_1"),
            (
                "key:ac_live_agent",
                "GET",
                "/api/v1/workflows?status=failed&page=2"
            ),
            ("key:ac_live_agent", "GET", "/api/v1/workflows"),
            ("key:ac_live_agent", "POST", "/api/v1/workflows/wf_1/cancel"),
            (
                "key:ac_live_agent",
                "POST",
                "/api/v1/workflows/wf_done/cancel"
            ),
            ("key:ac_live_agent", "GET", "/api/v1/workflows/wf_other"),
        ]
    );
    assert!(
        seen.iter().all(|r| r.key.is_none()),
        "only a create is keyed"
    );
}

#[tokio::test]
async fn an_owner_without_a_key_creates_for_itself_and_nobody_cannot() {
    let (base, fake) = serve().await;
    let owner = AgentCity::builder()
        .owner_token("ses_owner")
        .base_url(&base)
        .retries(0)
        .build()
        .unwrap();
    owner.workflows().create(&request(), None).await.unwrap();
    owner.workflows().cancel("wf_1").await.unwrap();
    let seen = fake.lock().unwrap().seen.clone();
    assert!(seen.iter().all(|r| r.who == "Bearer ses_owner"), "{seen:?}");

    let nobody = AgentCity::builder()
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let err = nobody.workflows().list(None, None).await.unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");
}
