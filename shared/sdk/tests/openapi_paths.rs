//! Every SDK call's method and path is an operation of the OpenAPI document
//! (`aicity_openapi::document()`), and every query parameter it sends is one of that
//! operation's.
//!
//! The SDK builds its paths in code, so they are read where they end up: every public
//! call of every resource is made against a tiny in-process server that records the
//! method, path and query of each request (and answers an empty success, which the
//! typed calls may fail to decode: only the request matters). Each recorded path is
//! mapped back to a document path template segment by segment, the most specific
//! template winning (a literal segment before a `{param}`, as API Gateway routes), and
//! the test fails naming every call whose method and path, or query parameter, the
//! document lacks (a `{param}` matches only an id the test passed, so a segment the SDK
//! writes literally must be a literal of the document). It also fails when a resource gains a public call this test does not
//! make, read from the SDK's sources, so nothing goes unchecked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aicity_sdk::AgentCity;
use aicity_sdk::embassy::{AuditQuery, PolicyUpdate};
use aicity_sdk::resources::{ListTasks, SearchAgents, SubmitTask};
use aicity_sdk::workflows::{CreateWorkflow, StepSpec, WorkflowStatus};
use axum::extract::{Request, State};
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    path: String,
    query: Vec<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn record(State(log): State<Log>, request: Request) -> axum::Json<Value> {
    let uri = request.uri();
    let query = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split('=').next().unwrap_or_default().to_owned())
        .collect();
    log.lock().unwrap().push(Seen {
        method: request.method().as_str().to_owned(),
        path: uri.path().to_owned(),
        query,
    });
    axum::Json(json!({
        "success": true,
        "data": {},
        "pagination": {"page": 1, "pageSize": 20, "total": 0, "totalPages": 0, "nextCursor": null}
    }))
}

async fn server() -> (String, Log) {
    let log = Log::default();
    let app = axum::Router::new().fallback(record).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, log)
}

/// Makes every public call of the SDK once, returning each call's name
/// (`Resource::method`) and the requests it sent.
async fn every_call(city: &AgentCity, base: &str, log: &Log) -> BTreeMap<String, Vec<Seen>> {
    let mut calls: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    macro_rules! call {
        ($name:literal, $future:expr) => {{
            log.lock().unwrap().clear();
            // The answer is ignored: an empty success may not decode as the call's type.
            let _ = tokio::time::timeout(Duration::from_secs(10), $future)
                .await
                .unwrap_or_else(|_| panic!("{} did not finish", $name));
            let seen = std::mem::take(&mut *log.lock().unwrap());
            assert!(
                calls.insert($name.to_owned(), seen).is_none(),
                "{} made twice",
                $name
            );
        }};
    }
    let (task, agent, other) = ("task_01", "agent_01", "agent_02");
    let body = json!({"displayName": "x"});

    call!(
        "Auth::sign_up",
        city.auth().sign_up("Riley", "r@example.com", "password1")
    );
    call!(
        "Auth::sign_in",
        city.auth().sign_in("r@example.com", "password1")
    );
    call!("Auth::sign_out", city.auth().sign_out());
    call!("Auth::session", city.auth().session());

    call!("Agents::register", city.agents().register(&body));
    call!("Agents::list", city.agents().list());
    call!("Agents::list_after", city.agents().list_after(Some("c1")));
    call!("Agents::me", city.agents().me());
    call!("Agents::update_me", city.agents().update_me(&body));
    let search = SearchAgents {
        category: Some("code_review".into()),
        availability: Some("available".into()),
        min_score: Some(300),
        framework: Some("custom".into()),
        trust_tier: Some("verified".into()),
        page: Some(1),
        page_size: Some(10),
        cursor: Some("c1".into()),
    };
    call!("Agents::search", city.agents().search(&search));
    call!("Agents::get", city.agents().get(agent));
    call!("Agents::update", city.agents().update(agent, &body));
    call!("Agents::deactivate", city.agents().deactivate(agent));
    call!("Agents::reactivate", city.agents().reactivate(agent));
    call!("Agents::rotate_key", city.agents().rotate_key(agent));
    call!(
        "Agents::profitability",
        city.agents().profitability(Some("90d"))
    );

    call!("Vault::pool", city.vault().pool());
    call!("Vault::top_up", city.vault().top_up(1_000, Some("k1")));
    call!(
        "Vault::auto_top_up",
        city.vault().auto_top_up(true, 500, 2_000)
    );
    call!(
        "Vault::transactions",
        city.vault().transactions(Some("top_up"), Some(2))
    );
    call!("Vault::wallet", city.vault().wallet());
    call!("Vault::allocate", city.vault().allocate(agent, 100));
    call!("Vault::transfer", city.vault().transfer(agent, other, 100));

    let submit = SubmitTask {
        task_type: "code_review".into(),
        max_budget: 5_000,
        input: json!({"description": "Review auth"}),
        agent_id: Some(agent.into()),
        parent_task_id: None,
    };
    call!("Tasks::submit", city.tasks().submit(&submit, None));
    call!("Tasks::templates", city.tasks().templates());
    call!("Tasks::template", city.tasks().template("bug_fix"));
    call!(
        "Tasks::estimate",
        city.tasks().estimate("code_review", Some(2_500))
    );
    call!("Tasks::get", city.tasks().get(task));
    let list = ListTasks {
        page: Some(1),
        page_size: Some(20),
        status: Some("completed".into()),
        role: Some("submitted".into()),
        cursor: Some("c1".into()),
    };
    call!("Tasks::list", city.tasks().list(&list));
    call!("Tasks::list_after", city.tasks().list_after(&list, "c2"));
    call!("Tasks::list_submitted", city.tasks().list_submitted());
    call!("Tasks::cancel", city.tasks().cancel(task));
    call!(
        "Tasks::provision_sandbox",
        city.tasks().provision_sandbox(task)
    );
    call!(
        "Tasks::provision_sandbox_access",
        city.tasks().provision_sandbox_access(task)
    );
    call!(
        "Tasks::destroy_sandbox",
        city.tasks().destroy_sandbox(task, "sbx_01")
    );
    call!(
        "Tasks::mark_executing",
        city.tasks().mark_executing(task, "sbx_01")
    );
    call!(
        "Tasks::progress",
        city.tasks().progress(task, "half", Some(50))
    );
    call!(
        "Tasks::complete",
        city.tasks()
            .complete(task, &json!({"result": "ok"}), 3_200, Some(87))
    );
    call!(
        "Tasks::fail",
        city.tasks().fail(task, "execution_error", Some("boom"))
    );
    call!(
        "Tasks::give_feedback",
        city.tasks().give_feedback(task, "up")
    );
    call!(
        "Tasks::dispute",
        city.tasks()
            .dispute(task, "wrong_output", "Not what was asked")
    );
    call!("Tasks::stream", async {
        let mut stream = city.tasks().stream(task);
        while stream.next().await.is_some() {}
    });
    // `stream_url` sends nothing: the URL it gives is what a client would GET.
    call!("Tasks::stream_url", async {
        let (url, _) = city.tasks().stream_url(task).unwrap();
        let path = url
            .strip_prefix(base)
            .expect("under the base URL")
            .to_owned();
        log.lock().unwrap().push(Seen {
            method: "GET".into(),
            path,
            query: Vec::new(),
        });
    });

    call!("Embassy::policy", city.embassy().policy(agent));
    call!(
        "Embassy::set_policy",
        city.embassy().set_policy(agent, &PolicyUpdate::cleared(3))
    );
    call!(
        "Embassy::approvals",
        city.embassy().approvals(Some("pending"), Some(2))
    );
    call!(
        "Embassy::approvals_after",
        city.embassy().approvals_after(Some("pending"), "c1")
    );
    call!("Embassy::approval", city.embassy().approval("apr_01"));
    call!("Embassy::approve", city.embassy().approve("apr_01"));
    call!(
        "Embassy::deny",
        city.embassy().deny("apr_01", Some("too much"))
    );
    let audit = AuditQuery {
        agent_id: Some(agent.into()),
        since: Some("2026-03-01T10:00:00Z".into()),
        limit: Some(20),
        cursor: Some("aud_01".into()),
    };
    call!("Embassy::audit", city.embassy().audit(&audit));
    call!(
        "Embassy::notifications",
        city.embassy().notifications(Some("ntf_01"), Some(5))
    );

    call!(
        "Webhooks::create",
        city.webhooks()
            .create("https://example.com/hook", &["task.assigned"])
    );
    call!("Webhooks::list", city.webhooks().list(Some(2)));
    call!("Webhooks::list_after", city.webhooks().list_after("c1"));
    call!("Webhooks::get", city.webhooks().get("wh_01"));
    call!("Webhooks::delete", city.webhooks().delete("wh_01"));
    call!("Webhooks::enable", city.webhooks().enable("wh_01"));
    call!(
        "Webhooks::deliveries",
        city.webhooks().deliveries("wh_01", Some(5), Some("dlv_09"))
    );
    call!(
        "Webhooks::redeliver",
        city.webhooks().redeliver("wh_01", "dlv_02")
    );

    let workflow = CreateWorkflow {
        name: "review then fix".into(),
        steps: vec![
            StepSpec::new("code_review", 2_500, "Review auth"),
            StepSpec::new("bug_fix", 2_500, "Fix what the review found"),
        ],
    };
    call!(
        "Workflows::create",
        city.workflows().create(&workflow, None)
    );
    call!("Workflows::get", city.workflows().get("wf_01"));
    call!(
        "Workflows::list",
        city.workflows().list(Some(WorkflowStatus::Active), Some(2))
    );
    call!(
        "Workflows::list_after",
        city.workflows()
            .list_after(Some(WorkflowStatus::Active), "c1")
    );
    call!("Workflows::cancel", city.workflows().cancel("wf_01"));
    calls
}

/// The public calls of the SDK's resources (`impl Resource<'_>` blocks), read from its
/// sources: `Resource::method` for each `pub fn` / `pub async fn` in them.
fn public_calls() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut calls = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut resource: Option<String> = None;
        for line in text.lines() {
            let opened = line
                .strip_prefix("impl ")
                .filter(|_| line.trim_end().ends_with('{'))
                .and_then(|rest| rest.split_once("<'_>"))
                .map(|(name, _)| name)
                .filter(|name| !name.contains(' '));
            if let Some(name) = opened {
                resource = Some(name.to_owned());
            } else if line == "}" {
                resource = None;
            } else if let Some(resource) = &resource {
                let line = line.trim_start();
                let rest = line
                    .strip_prefix("pub async fn ")
                    .or_else(|| line.strip_prefix("pub fn "));
                if let Some(rest) = rest {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    calls.insert(format!("{resource}::{name}"));
                }
            }
        }
    }
    calls
}

/// Every id and name the calls above put in a path. A `{param}` segment matches only
/// one of them, so a segment the SDK writes literally (`templates`, `me`) must be a
/// literal of the document too, never taken for an id.
const PATH_IDS: [&str; 9] = [
    "task_01", "agent_01", "agent_02", "bug_fix", "sbx_01", "apr_01", "wh_01", "dlv_02", "wf_01",
];

/// How specific a template is for a concrete path: per segment, literal (2) or
/// parameter (1); `None` when it does not match.
fn specificity(template: &str, path: &str) -> Option<Vec<u8>> {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    if template.len() != path.len() {
        return None;
    }
    template
        .iter()
        .zip(&path)
        .map(|(t, p)| {
            if t.starts_with('{') && t.ends_with('}') {
                PATH_IDS.contains(p).then_some(1)
            } else {
                (t == p).then_some(2)
            }
        })
        .collect()
}

/// The document's path template a concrete path routes to, the most specific first.
fn route<'a>(paths: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a str> {
    paths
        .keys()
        .filter_map(|template| specificity(template, path).map(|rank| (rank, template)))
        .max()
        .map(|(_, template)| template.as_str())
}

/// The query parameter names an operation declares (`$ref`s to
/// `components.parameters` resolved).
fn query_names(document: &Value, operation: &Value, item: &Value) -> BTreeSet<String> {
    let resolve = |p: &Value| -> Value {
        match p.get("$ref").and_then(Value::as_str) {
            Some(reference) => document
                .pointer(reference.trim_start_matches('#'))
                .cloned()
                .unwrap_or(Value::Null),
            None => p.clone(),
        }
    };
    [operation.get("parameters"), item.get("parameters")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .map(resolve)
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn every_sdk_call_is_an_operation_of_the_openapi_document() {
    let (base, log) = server().await;
    let city = AgentCity::builder()
        .api_key("ac_live_k")
        .owner_token("ses_o")
        .base_url(&base)
        .retries(0)
        .build()
        .unwrap();
    let calls = every_call(&city, &base, &log).await;

    // Nothing public goes unchecked, and nothing checked is gone.
    let made: BTreeSet<String> = calls.keys().cloned().collect();
    let public = public_calls();
    assert!(
        public.len() > 50,
        "the SDK's calls were not found: {public:?}"
    );
    let unmade: Vec<&String> = public.difference(&made).collect();
    let stale: Vec<&String> = made.difference(&public).collect();
    assert!(
        unmade.is_empty() && stale.is_empty(),
        "public calls this test does not make: {unmade:?}; calls made that are not public: {stale:?}"
    );

    let document = aicity_openapi::document();
    let paths = document["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    let mut unknown_query = Vec::new();
    for (name, seen) in &calls {
        assert!(!seen.is_empty(), "{name} sent no request");
        for request in seen {
            let method = request.method.to_ascii_lowercase();
            let found = route(paths, &request.path).and_then(|template| {
                let item = &paths[template];
                item.get(&method)
                    .map(|operation| (template, item, operation))
            });
            let Some((template, item, operation)) = found else {
                missing.push(format!("{name}: {} {}", request.method, request.path));
                continue;
            };
            let declared = query_names(&document, operation, item);
            for query in &request.query {
                if !declared.contains(query) {
                    unknown_query.push(format!(
                        "{name}: {} {template} ?{query} (declared: {declared:?})",
                        request.method
                    ));
                }
            }
        }
    }
    assert!(
        missing.is_empty() && unknown_query.is_empty(),
        "SDK calls the OpenAPI document lacks ({} of {} calls):\n  {}\nquery parameters it lacks:\n  {}",
        missing.len(),
        calls.len(),
        missing.join("\n  "),
        unknown_query.join("\n  ")
    );
}

#[test]
fn paths_route_to_the_most_specific_template() {
    let paths = json!({
        "/api/v1/tasks/{id}": {}, "/api/v1/tasks/templates": {},
        "/api/v1/tasks/templates/{taskType}": {}, "/api/v1/agents/me": {},
        "/api/v1/agents/{id}": {}
    });
    let paths = paths.as_object().unwrap();
    assert_eq!(
        route(paths, "/api/v1/tasks/templates"),
        Some("/api/v1/tasks/templates")
    );
    assert_eq!(
        route(paths, "/api/v1/tasks/task_01"),
        Some("/api/v1/tasks/{id}")
    );
    assert_eq!(
        route(paths, "/api/v1/tasks/templates/bug_fix"),
        Some("/api/v1/tasks/templates/{taskType}")
    );
    assert_eq!(route(paths, "/api/v1/agents/me"), Some("/api/v1/agents/me"));
    assert_eq!(route(paths, "/api/v1/tasks/task_01/cancel"), None);
    assert_eq!(route(paths, "/api/v1/tasks/"), None);
    // A literal the document lacks is not taken for an id.
    let without = json!({"/api/v1/tasks/{id}": {}, "/api/v1/agents/{id}": {}});
    let without = without.as_object().unwrap();
    assert_eq!(route(without, "/api/v1/tasks/templates"), None);
    assert_eq!(route(without, "/api/v1/agents/me"), None);
    assert_eq!(
        route(without, "/api/v1/agents/agent_01"),
        Some("/api/v1/agents/{id}")
    );
}
