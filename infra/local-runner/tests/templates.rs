//! Task templates through the runner's gateway: `GET /tasks/templates` (one per task type,
//! `bug_fix` among them), one template, an unknown type, and `POST /tasks` checking the
//! input against its template.

mod common;

use common::world::{Auth, World};
use reqwest::Method;
use serde_json::{Value, json};

/// The fields a 400 names, in order.
fn fields(body: &Value) -> Vec<String> {
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{body}");
    body["error"]["details"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields: {body}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_task_type_has_a_template_any_caller_may_read() {
    let mut world = World::new().await;
    let owner = world.owner(0).await;
    let (_, key) = world.idle_reviewer(&owner, 100, 1).await;

    for auth in [Auth::Bearer(&owner.token), Auth::Key(&key)] {
        let (status, body) = world
            .call(Method::GET, "/tasks/templates", auth, None)
            .await;
        assert_eq!(status, 200, "{body}");
        let list = body["data"].as_array().expect("a list of templates");
        let types: Vec<&str> = list
            .iter()
            .map(|t| t["taskType"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = aicity_domain::identity::Category::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(types, expected);
        assert!(types.contains(&"bug_fix"));
        for template in list {
            assert!(template["description"].is_string());
            assert_eq!(template["fields"][0]["name"], "description");
            assert_eq!(template["fields"][0]["required"], true);
            assert!(template["output"]["fields"].is_array());
        }
    }

    // The literal path is not taken for a task id, nor is a template path.
    let (status, body) = world
        .call(
            Method::GET,
            "/tasks/templates/bug_fix",
            Auth::Key(&key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let template = &body["data"];
    assert_eq!(template["taskType"], "bug_fix");
    let names: Vec<&str> = template["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "description",
            "repo",
            "code",
            "files",
            "previousOutput",
            "expectedBehavior",
            "actualBehavior",
            "stepsToReproduce"
        ]
    );
    assert_eq!(
        template["fields"][5],
        json!({"name": "expectedBehavior", "type": "text", "required": false, "description": "What should happen"})
    );
    assert_eq!(template["output"]["fields"][0]["name"], "fix");
    assert_eq!(template["output"]["fields"][0]["required"], true);

    let (status, body) = world
        .call(
            Method::GET,
            "/tasks/templates/bugfix",
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "TEMPLATE_NOT_FOUND");
    assert!(
        body["error"]["details"]["allowed"]
            .as_array()
            .unwrap()
            .contains(&json!("bug_fix"))
    );

    // Through the SDK, as an agent.
    let city = aicity_sdk::AgentCity::builder()
        .api_key(&key)
        .base_url(&world.running.base_url)
        .build()
        .unwrap();
    let all = city.tasks().templates().await.unwrap();
    assert_eq!(all.len(), aicity_domain::identity::Category::ALL.len());
    let bug_fix = city.tasks().template("bug_fix").await.unwrap();
    assert_eq!(bug_fix.fields[6].name, "actualBehavior");
    assert_eq!(bug_fix.output.fields[0].kind, "text");
    match city.tasks().template("bug fix").await {
        Err(aicity_sdk::Error::NotFound(failure)) => assert_eq!(failure.code, "TEMPLATE_NOT_FOUND"),
        other => panic!("{other:?}"),
    }

    // Authenticated callers only.
    let response = world
        .http
        .get(format!("{}/api/v1/tasks/templates", world.running.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_bug_fix_is_submitted_with_its_fields_and_bad_inputs_are_named() {
    let mut world = World::new().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (status, body) = world
        .call(
            Method::POST,
            "/agents",
            Auth::Bearer(&seller.token),
            Some(json!({
                "displayName": "Fixer", "framework": "custom", "description": "Fixes bugs",
                "capabilities": [{"category": "bug_fix", "tags": ["rust"]}],
                "pricing": {"bug_fix": 500}, "maxConcurrentTasks": 2,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    world.agents.push(
        body["data"]["agent"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    let submit = |input: Value| {
        let world = &world;
        let token = buyer.token.clone();
        async move {
            world
                .call(
                    Method::POST,
                    "/tasks",
                    Auth::Bearer(&token),
                    Some(json!({"taskType": "bug_fix", "maxBudget": 1_000, "input": input})),
                )
                .await
        }
    };

    let input = json!({
        "description": "Fix the crash on an empty token",
        "repo": "https://github.com/o/r",
        "expectedBehavior": "401 for an empty token",
        "actualBehavior": "the handler panics",
        "stepsToReproduce": "curl -H 'Authorization: Bearer ' /me",
    });
    let (status, body) = submit(input.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["taskType"], "bug_fix");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let task = world.task(&id, Auth::Bearer(&buyer.token)).await;
    assert_eq!(task["input"], input, "stored and shown as sent");

    // Wrong type, unknown field, a field of another template: each named.
    let (status, body) = submit(json!({
        "description": "Fix it",
        "actualBehavior": 500,
        "wordCount": 3,
        "severity": "high",
    }))
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        fields(&body),
        ["input.actualBehavior", "input.severity", "input.wordCount"]
    );
    let message = body["error"]["details"]["fields"][1]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("expectedBehavior"), "{message}");

    // A missing required field, and a common field of the wrong type.
    let (status, body) = submit(json!({"actualBehavior": "panics"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fields(&body), ["input.description"]);
    let (status, body) = submit(json!({"description": "d", "repo": 5})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fields(&body), ["input.repo"]);

    // An unknown task type is named, with the known ones.
    let (status, body) = world
        .call(
            Method::POST,
            "/tasks",
            Auth::Bearer(&buyer.token),
            Some(json!({"taskType": "bugfix", "maxBudget": 1_000, "input": {"description": "d"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fields(&body), ["taskType"]);
    let message = body["error"]["details"]["fields"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("bugfix") && message.contains("`bug_fix`"),
        "{message}"
    );

    // Nothing but the one accepted task was held.
    let (_, list) = world
        .call(Method::GET, "/tasks", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(list["pagination"]["total"], 1);
    world.assert_books_balance(&[&id]).await;
}
