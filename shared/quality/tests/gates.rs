//! The LLM judge against a local fake of an OpenAI-compatible endpoint, and the
//! rule-based gate through the trait.

use std::sync::{Arc, Mutex};

use aicity_domain::identity::Category;
use aicity_domain::ids::{OwnerId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::task::TaskStatus;
use aicity_domain::task::model::{Task, TaskInput};
use aicity_quality::{GateError, LlmJudge, QualityGate, RuleBasedGate};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

fn task() -> Task {
    Task {
        id: TaskId::new(),
        task_type: Category::CodeReview,
        status: TaskStatus::QualityCheck,
        input: TaskInput {
            previous_output: None,
            fields: Default::default(),
            description: "Review auth".into(),
            repo: None,
            code: None,
            files: vec![],
        },
        max_budget: Cents(5_000),
        agent_id: None,
        caller_owner_id: OwnerId::new(),
        caller_agent_id: None,
        parent_task_id: None,
        direct_hire: false,
        requested_agent_id: None,
        agreed_price: None,
        sandbox_id: None,
        output: None,
        quality_score: None,
        self_reported_score: Some(80),
        credits_charged: None,
        execution_time_ms: None,
        feedback: None,
        failure_reason: None,
        error_message: None,
        quality_reasons: vec![],
        routing_attempts: 0,
        quality_attempts: 0,
        declined_by: Vec::new(),
        created_at: "t".into(),
        updated_at: "t".into(),
        completed_at: None,
        assigned_at: None,
        started_at: None,
        settled_at: None,
        dispute_id: None,
        dispute_status: None,
        budget_day: None,
        workflow_id: None,
        workflow_step: None,
    }
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(HeaderMap, Value)>>>);

const KEY: &str = "sk-test";

/// OpenAI's error shape.
fn openai_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
        ),
    )
        .into_response()
}

fn completion(content: &str) -> Response {
    axum::Json(json!({
        "id": "c1", "object": "chat.completion", "model": "judge-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
    }))
    .into_response()
}

/// A strict fake of an OpenAI-compatible chat completions endpoint: the key checked
/// (401 in OpenAI's shape), the request checked as OpenAI checks it (400), and the
/// answer chosen by a marker in the graded output, so each way a real judge fails can
/// be driven.
async fn completions(State(seen): State<Seen>, headers: HeaderMap, body: String) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect API key provided.",
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "We could not parse the JSON body of your request.",
        );
    };
    seen.0.lock().unwrap().push((headers, body.clone()));
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    if body["model"].as_str().is_none_or(str::is_empty) || messages.is_empty() {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "model and messages are required",
        );
    }
    let mentions_json = messages.iter().any(|m| {
        m["content"]
            .as_str()
            .is_some_and(|c| c.to_lowercase().contains("json"))
    });
    if body["response_format"]["type"] == "json_object" && !mentions_json {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
        );
    }
    let user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let marker = |m: &str| user.contains(m);
    if marker("rate-limited") {
        return openai_error(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "Rate limit reached.",
        );
    }
    if marker("bad-request") {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "This model's maximum context length is exceeded.",
        );
    }
    if marker("server-error") {
        return openai_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The server had an error.",
        );
    }
    if marker("overloaded") {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "<html>upstream overloaded</html>",
        )
            .into_response();
    }
    if marker("html-200") {
        return (
            [("content-type", "text/html")],
            "<html><body>Welcome</body></html>",
        )
            .into_response();
    }
    if marker("truncated-body") {
        // A complete HTTP answer whose JSON stops half way.
        return ([("content-type", "application/json")], r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"{\"score\": 9"#).into_response();
    }
    if marker("no-choices") {
        return axum::Json(json!({"id": "c1", "object": "chat.completion", "choices": []}))
            .into_response();
    }
    if marker("null-content") {
        return axum::Json(json!({"id": "c1", "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": "I can't grade this."}}]})).into_response();
    }
    let content = if marker("garbage") {
        "not json at all"
    } else if marker("cut-by-length") {
        // The model ran out of tokens mid-answer (finish_reason "length").
        r#"{"score": 9"#
    } else if marker("too-high") {
        r#"{"score": 140, "reasons": ["great"]}"#
    } else if marker("negative") {
        r#"{"score": -5, "reasons": ["bad"]}"#
    } else if marker("string-score") {
        r#"{"score": "88", "reasons": []}"#
    } else if marker("no-score") {
        r#"{"reasons": ["forgot the score"]}"#
    } else if marker("thin") {
        r#"{"score": 35, "reasons": ["misses most of the description"]}"#
    } else if marker("edge-100") {
        r#"{"score": 100}"#
    } else {
        r#"{"score": 88.4, "reasons": ["specific", "covers auth"]}"#
    };
    completion(content)
}

async fn judge_at(key: Option<&str>) -> (LlmJudge, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (
        LlmJudge::new(&base, key.map(str::to_owned), "judge-model"),
        seen,
    )
}

#[tokio::test]
async fn the_llm_judge_grades_through_an_openai_compatible_api() {
    let (judge, seen) = judge_at(Some(KEY)).await;
    let verdict = judge
        .assess(&task(), &json!({"findings": "good"}))
        .await
        .unwrap();
    assert_eq!(verdict.score, 88);
    assert_eq!(verdict.reasons, ["specific", "covers auth"]);
    let (headers, body) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert_eq!(body["model"], "judge-model");
    assert_eq!(body["response_format"]["type"], "json_object");
    assert!(
        body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Review auth")
    );

    let thin = judge.assess(&task(), &json!("thin")).await.unwrap();
    assert_eq!((thin.score, thin.reasons.len()), (35, 1));
    let edge = judge.assess(&task(), &json!("edge-100")).await.unwrap();
    assert_eq!(edge.score, 100, "100 is in range; reasons may be left out");
}

/// Every way a judge can fail is an error the quality stage counts and retries
/// (`quality_stage::gate_errored`), never a verdict, so never a pass.
#[tokio::test]
async fn a_judge_that_fails_is_an_error_never_a_verdict() {
    let (judge, _) = judge_at(Some(KEY)).await;
    for marker in [
        "rate-limited",
        "bad-request",
        "server-error",
        "overloaded",
        "html-200",
        "truncated-body",
        "no-choices",
        "null-content",
        "garbage",
        "cut-by-length",
        "too-high",
        "negative",
        "string-score",
        "no-score",
    ] {
        let result = judge.assess(&task(), &json!(marker)).await;
        assert!(
            matches!(result, Err(GateError::Unavailable(_))),
            "{marker}: {result:?}"
        );
    }
    let down = LlmJudge::new("http://127.0.0.1:9", None, "m")
        .assess(&task(), &json!("x"))
        .await;
    assert!(matches!(down, Err(GateError::Unavailable(_))));
}

#[tokio::test]
async fn a_rejected_key_is_a_configuration_error_never_a_verdict() {
    for key in [None, Some("sk-wrong")] {
        let (judge, seen) = judge_at(key).await;
        let result = judge.assess(&task(), &json!({"findings": "good"})).await;
        assert!(
            matches!(result, Err(GateError::NotConfigured(_))),
            "{key:?}: {result:?}"
        );
        assert!(seen.0.lock().unwrap().is_empty(), "the fake refused it");
    }
}

/// The connection drops before the whole body arrived (a `Content-Length` promised,
/// fewer bytes sent).
#[tokio::test]
async fn a_body_cut_on_the_wire_is_an_error_never_a_verdict() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 64 * 1024];
        let _ = socket.read(&mut request).await;
        let partial = r#"{"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":"{\"score\": 95"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            partial.len() + 40
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(partial.as_bytes()).await.unwrap();
        socket.shutdown().await.ok();
    });
    let result = LlmJudge::new(&base, Some(KEY.into()), "m")
        .assess(&task(), &json!("x"))
        .await;
    assert!(
        matches!(result, Err(GateError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_rule_based_gate_is_the_domain_rules() {
    let verdict = RuleBasedGate.assess(&task(), &json!("")).await.unwrap();
    assert_eq!(verdict.score, 0);
}
