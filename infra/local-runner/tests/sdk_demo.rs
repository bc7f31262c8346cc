//! The SDK and the reference agent runner against the local system: the demo's steps
//! (two owners, a buyer agent and a worker agent, a top-up, a code review done by a real
//! command, watched live, thumbs up) as a test, plus the SDK's typed errors.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aicity_cli::runner::{self, Outcome, RunnerConfig};
use aicity_sdk::resources::{SearchAgents, SubmitTask};
use aicity_sdk::{AgentCity, Error};
use common::world::template;
use serde_json::json;

/// A reviewer a newcomer could write: reads the task on stdin, prints a JSON review.
const REVIEWER: &str = r#"python3 -c '
import json, os, sys
task = json.load(sys.stdin)
files = sorted(os.listdir("input")) if os.path.isdir("input") else []
print(json.dumps({
  "findings": "Reviewed " + ", ".join(files) + ": the token check in auth.rs is not constant time and an expired session is still accepted by check().",
  "recommendations": ["Compare tokens in constant time", "Reject expired sessions in check()", "Add a test for both"],
  "workdir": os.getcwd(),
}))
'"#;

#[tokio::test]
async fn the_demo_flow_end_to_end_through_the_sdk() {
    let (running, _functions, _clients) = common::start(template()).await;
    let anonymous = AgentCity::builder()
        .base_url(&running.base_url)
        .build()
        .unwrap();
    let unique = ulid::Ulid::generate().to_string().to_lowercase();

    // Two owners.
    let mut owners = Vec::new();
    for who in ["buyer", "seller"] {
        let email = format!("{who}-{unique}@example.com");
        anonymous
            .auth()
            .sign_up(who, &email, "demo-password")
            .await
            .unwrap();
        let signed = anonymous
            .auth()
            .sign_in(&email, "demo-password")
            .await
            .unwrap();
        owners.push(anonymous.with_owner_token(signed.token));
    }
    let (buyer_owner, seller_owner) = (&owners[0], &owners[1]);

    // A buyer agent and a worker agent, of different owners.
    let buyer_agent = buyer_owner
        .agents()
        .register(
            &json!({"displayName": "Buyer", "framework": "custom", "description": "Buys reviews"}),
        )
        .await
        .unwrap();
    let worker = seller_owner
        .agents()
        .register(&json!({
            "displayName": "Reviewer", "framework": "custom", "description": "Reviews Rust code",
            "capabilities": [{"category": "code_review", "tags": ["rust"]}],
            "pricing": {"code_review": 2_500}, "maxConcurrentTasks": 2,
        }))
        .await
        .unwrap();
    let buyer = AgentCity::builder()
        .base_url(&running.base_url)
        .api_key(&buyer_agent.api_key)
        .build()
        .unwrap();
    let worker_city = AgentCity::builder()
        .base_url(&running.base_url)
        .api_key(&worker.api_key)
        .build()
        .unwrap();
    let found = buyer
        .agents()
        .search(&SearchAgents {
            category: Some("code_review".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.data[0]["id"], worker.agent["id"]);

    let top_up = buyer_owner
        .vault()
        .top_up(10_000, Some("demo-top-up"))
        .await
        .unwrap();
    assert_eq!(top_up.new_balance, 10_000);

    // The reference runner works whatever it is given, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let runner_task = {
        let (worker_city, stop, outcomes) = (worker_city.clone(), stop.clone(), outcomes.clone());
        tokio::spawn(async move {
            let config = RunnerConfig {
                poll: Duration::from_millis(200),
                timeout: Duration::from_secs(30),
                work_root: std::env::temp_dir()
                    .join(format!("aicity-runner-{}", ulid::Ulid::generate())),
                ..RunnerConfig::new(REVIEWER)
            };
            runner::run(&worker_city, &config, stop, |o: &Outcome| {
                outcomes.lock().unwrap().push(o.clone())
            })
            .await
        })
    };

    let task = buyer
        .tasks()
        .submit(
            &SubmitTask {
                task_type: "code_review".into(),
                max_budget: 5_000,
                input: json!({"description": "Review the Rust auth module", "files": [{"name": "auth.rs", "content": "fn check() {}"}]}),
                agent_id: None,
                parent_task_id: None,
            },
            Some("demo-submit"),
        )
        .await
        .unwrap();
    let id = task.id.to_string();

    // Watch it live until the stream closes.
    let mut stream = buyer.tasks().stream(&id);
    let mut seen = Vec::new();
    let watched = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = stream.next().await {
            seen.push(event.unwrap().event);
        }
    })
    .await;
    assert!(watched.is_ok(), "the stream never closed; saw {seen:?}");
    assert!(seen.contains(&"progress".to_owned()), "{seen:?}");
    assert_eq!(
        seen.last().map(String::as_str),
        Some("complete"),
        "{seen:?}"
    );

    let done = buyer.tasks().get(&id).await.unwrap();
    assert_eq!(done.status.as_str(), "completed");
    assert!(
        done.quality_score.unwrap() >= 70,
        "{:?}",
        done.quality_reasons
    );
    assert_eq!(done.credits_charged.unwrap().get(), 2_500);
    // The command ran in the sandbox the platform made for the task (the local
    // provider's directory, named by the task's sandbox id), not a copy of its own.
    let sandbox = done
        .sandbox_id
        .clone()
        .expect("the task records its sandbox");
    let workdir = done.output.as_ref().unwrap()["workdir"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        std::path::Path::new(&workdir).file_name().unwrap().to_str(),
        Some(sandbox.as_str()),
        "{workdir}"
    );
    assert!(
        workdir.contains("aicity-test-sandboxes"),
        "the platform's sandbox root: {workdir}"
    );
    assert!(
        !buyer.tasks().give_feedback(&id, "up").await.unwrap(),
        "a thumbs up refunds nothing"
    );

    stop.store(true, Ordering::SeqCst);
    runner_task.await.unwrap().unwrap();
    assert_eq!(
        *outcomes.lock().unwrap(),
        vec![Outcome::Completed(id.clone())]
    );

    let pool = buyer_owner.vault().pool().await.unwrap();
    assert_eq!(
        (pool["balance"].clone(), pool["held"].clone()),
        (json!(7_500), json!(0))
    );
    let wallet = worker_city.vault().wallet().await.unwrap();
    assert_eq!(wallet["pendingEscrow"], 2_125);
    let stats = worker_city.agents().me().await.unwrap();
    assert_eq!(stats["stats"]["completed"], 1);
    assert_eq!(stats["feedback"]["up"], 1);
}

#[tokio::test]
async fn the_sdk_reports_api_errors_typed() {
    let (running, _functions, _clients) = common::start(template()).await;
    let anonymous = AgentCity::builder()
        .base_url(&running.base_url)
        .build()
        .unwrap();
    let email = format!(
        "e-{}@example.com",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    anonymous
        .auth()
        .sign_up("E", &email, "demo-password")
        .await
        .unwrap();
    match anonymous.auth().sign_up("E", &email, "demo-password").await {
        Err(Error::Conflict(failure)) => assert_eq!(failure.code, "EMAIL_ALREADY_REGISTERED"),
        other => panic!("{other:?}"),
    }
    let token = anonymous
        .auth()
        .sign_in(&email, "demo-password")
        .await
        .unwrap()
        .token;
    let owner = anonymous.with_owner_token(token);
    let submit = SubmitTask {
        task_type: "code_review".into(),
        max_budget: 500,
        input: json!({"description": "d"}),
        agent_id: None,
        parent_task_id: None,
    };
    let err = owner.tasks().submit(&submit, None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    assert_eq!(err.code(), Some("NO_AGENTS_AVAILABLE"));
    let err = owner
        .tasks()
        .submit(
            &SubmitTask {
                max_budget: 0,
                ..submit
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Validation(f) if f.details["fields"][0]["field"] == "maxBudget"));
    assert!(matches!(
        anonymous.vault().pool().await,
        Err(Error::Authentication(_))
    ));
    let wrong = AgentCity::builder()
        .base_url(&running.base_url)
        .owner_token("ses_nope")
        .build()
        .unwrap();
    assert!(matches!(
        wrong.vault().pool().await,
        Err(Error::Authentication(_))
    ));
}
