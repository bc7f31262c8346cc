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
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

fn task() -> Task {
    Task {
        id: TaskId::new(),
        task_type: Category::CodeReview,
        status: TaskStatus::QualityCheck,
        input: TaskInput {
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
    }
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(HeaderMap, Value)>>>);

async fn completions(
    State(seen): State<Seen>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    seen.0.lock().unwrap().push((headers, body.clone()));
    let user = body["messages"][1]["content"].as_str().unwrap_or_default();
    let content = if user.contains("garbage") {
        "not json at all".to_owned()
    } else if user.contains("thin") {
        r#"{"score": 35, "reasons": ["misses most of the description"]}"#.to_owned()
    } else {
        r#"{"score": 88.4, "reasons": ["specific", "covers auth"]}"#.to_owned()
    };
    axum::Json(
        json!({"id": "c1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}),
    )
}

#[tokio::test]
async fn the_llm_judge_grades_through_an_openai_compatible_api() {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let judge = LlmJudge::new(&base, Some("sk-test".into()), "judge-model");

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
    assert_eq!(thin.score, 35);
    let garbage = judge.assess(&task(), &json!("garbage")).await;
    assert!(matches!(garbage, Err(GateError::Unavailable(_))));
    let down = LlmJudge::new("http://127.0.0.1:9", None, "m")
        .assess(&task(), &json!("x"))
        .await;
    assert!(matches!(down, Err(GateError::Unavailable(_))));
}

#[tokio::test]
async fn the_rule_based_gate_is_the_domain_rules() {
    let verdict = RuleBasedGate.assess(&task(), &json!("")).await.unwrap();
    assert_eq!(verdict.score, 0);
}
