//! The authorization matrix: every route of the template × {owner, other owner, agent,
//! other agent, anonymous}, over HTTP through the runner.
//!
//! The routes come from `infra/template.yaml` (the runner's own route table), and each
//! must have a rule here saying who may call it: a route added to the template without
//! a rule, or a rule left for a route that is gone, fails the test. The principals:
//!
//! - `Owner` (A) owns everything the paths point at: its agent `Agent`, its trust key,
//!   webhook, workflow, policy and approvals; it bought task T1 (executing) and T2
//!   (completed, disputed) from `OtherAgent`;
//! - `OtherOwner` (B) owns `OtherAgent`, the seller of both tasks;
//! - `Agent` (A's) submitted nothing of the above;
//! - `Anonymous` sends no credentials.
//!
//! A call is *denied* when it answers 401, 403 or a 404 `…NOT_FOUND` (hiding another
//! tenant's resource); *let through* when it answers anything else below 500 (a 400 or
//! 409 about the body or the state is past authorization). Every denied call is made
//! first, on the fixtures as set up, so a denial that wrongly went through would also
//! have changed what the allowed calls then see. A 5xx fails everywhere.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::world::{Auth, Party, World, good_review};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Owner,
    OtherOwner,
    Agent,
    OtherAgent,
    Anonymous,
}

use Who::*;

const EVERYONE: [Who; 5] = [Owner, OtherOwner, Agent, OtherAgent, Anonymous];
const OWNERS: &[Who] = &[Owner, OtherOwner];
const AGENTS: &[Who] = &[Agent, OtherAgent];
const CALLERS: &[Who] = &[Owner, OtherOwner, Agent, OtherAgent];

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// These principals get past authorization; the others are denied.
    Only(&'static [Who]),
    /// Everyone gets this status, whatever the credentials (retired or unknown routes).
    Everyone(u16),
}

/// Which fixture a `{id}` means, by the route's group.
fn rules() -> BTreeMap<&'static str, Rule> {
    use Rule::*;
    BTreeMap::from([
        // auth
        ("POST /api/v1/auth/sign-up", Only(&EVERYONE)),
        ("POST /api/v1/auth/sign-in", Only(&EVERYONE)),
        ("POST /api/v1/auth/sign-out", Only(OWNERS)),
        ("GET /api/v1/auth/session", Only(OWNERS)),
        // agents
        ("POST /api/v1/agents", Only(OWNERS)),
        ("GET /api/v1/agents", Only(OWNERS)),
        ("GET /api/v1/agents/me", Only(AGENTS)),
        ("PATCH /api/v1/agents/me", Only(AGENTS)),
        ("POST /api/v1/agents/me/heartbeat", Only(AGENTS)),
        ("GET /api/v1/agents/me/profitability", Only(AGENTS)),
        ("GET /api/v1/agents/{id}/reputation", Only(CALLERS)),
        ("GET /api/v1/agents/search", Only(CALLERS)),
        ("GET /api/v1/agents/{id}", Only(CALLERS)),
        ("PATCH /api/v1/agents/{id}", Only(&[Owner])),
        ("POST /api/v1/agents/{id}/deactivate", Only(&[Owner])),
        ("POST /api/v1/agents/{id}/reactivate", Only(&[Owner])),
        ("POST /api/v1/agents/{id}/rotate-key", Only(&[Owner])),
        // vault
        ("GET /api/v1/vault/pool", Only(OWNERS)),
        ("POST /api/v1/vault/pool/top-up", Only(OWNERS)),
        ("PUT /api/v1/vault/pool/auto-top-up", Only(OWNERS)),
        ("GET /api/v1/vault/transactions", Only(OWNERS)),
        ("GET /api/v1/vault/wallet", Only(AGENTS)),
        (
            "POST /api/v1/vault/wallets/{agentId}/allocate",
            Only(&[Owner]),
        ),
        ("POST /api/v1/vault/transfers", Only(&[Owner])),
        // tasks: T1 bought by the owner, worked by the other agent
        ("POST /api/v1/tasks", Only(CALLERS)),
        ("GET /api/v1/tasks", Only(CALLERS)),
        ("GET /api/v1/tasks/submitted", Only(AGENTS)),
        ("GET /api/v1/tasks/estimate", Only(CALLERS)),
        ("GET /api/v1/tasks/templates", Only(CALLERS)),
        ("GET /api/v1/tasks/templates/{taskType}", Only(CALLERS)),
        ("GET /api/v1/tasks/{id}", Only(&[Owner, OtherAgent])),
        ("GET /api/v1/tasks/{id}/stream", Only(&[Owner, OtherAgent])),
        ("POST /api/v1/tasks/{id}/cancel", Only(&[Owner])),
        ("POST /api/v1/tasks/{id}/sandbox", Only(&[OtherAgent])),
        (
            "DELETE /api/v1/tasks/{id}/sandbox/{sandboxId}",
            Only(&[OtherAgent]),
        ),
        ("POST /api/v1/tasks/{id}/executing", Only(&[OtherAgent])),
        ("POST /api/v1/tasks/{id}/progress", Only(&[OtherAgent])),
        ("POST /api/v1/tasks/{id}/complete", Only(&[OtherAgent])),
        ("POST /api/v1/tasks/{id}/fail", Only(&[OtherAgent])),
        // T2 (completed) for these two
        ("POST /api/v1/tasks/{id}/feedback", Only(&[Owner])),
        ("POST /api/v1/tasks/{id}/dispute", Only(&[Owner])),
        // workflows: the owner's
        ("POST /api/v1/workflows", Only(CALLERS)),
        ("GET /api/v1/workflows", Only(CALLERS)),
        ("GET /api/v1/workflows/{id}", Only(&[Owner])),
        ("POST /api/v1/workflows/{id}/cancel", Only(&[Owner])),
        // courts: the dispute on T2 (buyer: the owner; seller: the other agent and its owner)
        ("GET /api/v1/courts/disputes", Only(CALLERS)),
        (
            "GET /api/v1/courts/disputes/{id}",
            Only(&[Owner, OtherOwner, OtherAgent]),
        ),
        (
            "POST /api/v1/courts/disputes/{id}/respond",
            Only(&[OtherOwner, OtherAgent]),
        ),
        ("POST /api/v1/courts/disputes/{id}/withdraw", Only(&[Owner])),
        // admins only, and none of the five is one
        ("GET /api/v1/courts/review-queue", Only(&[])),
        ("POST /api/v1/courts/disputes/{id}/resolve", Only(&[])),
        (
            "GET /api/v1/courts/assessments/{taskId}",
            Only(&[Owner, OtherOwner, OtherAgent]),
        ),
        // trust: the owner's key; reports need a Trust API key, which none of the five is
        ("POST /api/v1/trust/keys", Only(OWNERS)),
        ("GET /api/v1/trust/keys", Only(OWNERS)),
        ("POST /api/v1/trust/keys/{id}/revoke", Only(&[Owner])),
        ("GET /api/v1/trust/agents/{agentId}", Only(&[])),
        // embassy: the owner's agent and approval
        (
            "GET /api/v1/embassy/agents/{agentId}/policy",
            Only(&[Owner]),
        ),
        (
            "PUT /api/v1/embassy/agents/{agentId}/policy",
            Only(&[Owner]),
        ),
        ("GET /api/v1/embassy/approvals", Only(OWNERS)),
        ("GET /api/v1/embassy/approvals/{id}", Only(&[Owner])),
        (
            "POST /api/v1/embassy/approvals/{id}/approve",
            Only(&[Owner]),
        ),
        ("POST /api/v1/embassy/approvals/{id}/deny", Only(&[Owner])),
        ("GET /api/v1/embassy/audit", Only(OWNERS)),
        ("GET /api/v1/embassy/notifications", Only(OWNERS)),
        // exchange: retired for everyone
        ("ANY /api/v1/exchange", Everyone(410)),
        ("ANY /api/v1/exchange/{proxy+}", Everyone(410)),
        // webhooks: the owner's subscription
        ("POST /api/v1/webhooks", Only(CALLERS)),
        ("GET /api/v1/webhooks", Only(CALLERS)),
        ("GET /api/v1/webhooks/{id}", Only(&[Owner])),
        ("DELETE /api/v1/webhooks/{id}", Only(&[Owner])),
        ("POST /api/v1/webhooks/{id}/enable", Only(&[Owner])),
        ("GET /api/v1/webhooks/{id}/deliveries", Only(&[Owner])),
        (
            "POST /api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver",
            Only(&[Owner]),
        ),
        // health: open
        ("GET /api/v1/health", Only(&EVERYONE)),
        ("POST /api/v1/health/probes", Only(&EVERYONE)),
        ("GET /api/v1/health/probes/{probeId}", Only(&EVERYONE)),
        // docs: open
        ("GET /api/v1/openapi.json", Only(&EVERYONE)),
        ("GET /api/v1/docs", Only(&EVERYONE)),
        ("GET /api/v1/docs/{asset}", Only(&EVERYONE)),
        // anything else
        ("ANY /{proxy+}", Everyone(404)),
    ])
}

/// Calls that take a fixture away or change who the callers are: made last, in this
/// order.
const LAST: [&str; 5] = [
    "DELETE /api/v1/webhooks/{id}",
    "POST /api/v1/agents/{id}/deactivate",
    "POST /api/v1/agents/{id}/reactivate",
    "POST /api/v1/agents/{id}/rotate-key",
    "POST /api/v1/auth/sign-out",
];

struct Fixtures {
    owner: Party,
    other_owner: Party,
    owner_email: String,
    agent: (String, String),
    second_agent: String,
    other_agent: (String, String),
    executing_task: String,
    sandbox: String,
    completed_task: String,
    dispute: String,
    workflow: String,
    approval: String,
    trust_key: (String, String),
    webhook: String,
    delivery: String,
    probe: String,
}

impl Fixtures {
    fn credentials(&self, who: Who) -> Option<(&'static str, String)> {
        match who {
            Owner => Some(("authorization", format!("Bearer {}", self.owner.token))),
            OtherOwner => Some((
                "authorization",
                format!("Bearer {}", self.other_owner.token),
            )),
            Agent => Some(("x-api-key", self.agent.1.clone())),
            OtherAgent => Some(("x-api-key", self.other_agent.1.clone())),
            Anonymous => None,
        }
    }

    /// The route's path with its parameters pointing at the fixtures.
    fn path(&self, route: &str) -> String {
        let (_, path) = route.split_once(' ').unwrap();
        let id = if path.starts_with("/api/v1/agents/") {
            &self.agent.0
        } else if path.starts_with("/api/v1/tasks/{id}/feedback")
            || path.starts_with("/api/v1/tasks/{id}/dispute")
        {
            &self.completed_task
        } else if path.starts_with("/api/v1/tasks/") {
            &self.executing_task
        } else if path.starts_with("/api/v1/workflows/") {
            &self.workflow
        } else if path.starts_with("/api/v1/courts/") {
            &self.dispute
        } else if path.starts_with("/api/v1/embassy/") {
            &self.approval
        } else if path.starts_with("/api/v1/trust/") {
            &self.trust_key.0
        } else {
            &self.webhook
        };
        path.replace("{id}", id)
            .replace("{agentId}", &self.agent.0)
            .replace("{taskId}", &self.completed_task)
            .replace("{sandboxId}", &self.sandbox)
            .replace("{deliveryId}", &self.delivery)
            .replace("{probeId}", &self.probe)
            .replace("{taskType}", "code_review")
            .replace("{asset}", "redoc.standalone.js")
            .replace("{proxy+}", "no/such/route")
            .replace("/api/v1/exchange", "/api/v1/exchange/requests")
    }

    /// A body that would be accepted from the allowed caller, so a denial is about the
    /// caller and never about the body.
    fn body(&self, route: &str) -> Option<Value> {
        let review = json!({"taskType": "code_review", "maxBudget": 500,
            "input": {"description": "Review the Rust auth module",
                      "files": [{"name": "auth.rs", "content": "fn check() {}"}]}});
        Some(match route {
            "POST /api/v1/auth/sign-up" => json!({"name": "M", "email": self.owner_email,
                                                   "password": "long-password"}),
            "POST /api/v1/auth/sign-in" => {
                json!({"email": self.owner_email, "password": "long-password"})
            }
            "POST /api/v1/agents" => registration("Matrix"),
            "PATCH /api/v1/agents/me" | "PATCH /api/v1/agents/{id}" => {
                json!({"description": "Reviews Rust code, carefully"})
            }
            "POST /api/v1/vault/pool/top-up" => json!({"amount": 500}),
            "PUT /api/v1/vault/pool/auto-top-up" => {
                json!({"enabled": false, "threshold": 0, "reloadAmount": 500})
            }
            "POST /api/v1/vault/wallets/{agentId}/allocate" => json!({"amount": 100}),
            "POST /api/v1/vault/transfers" => json!({"fromAgentId": self.agent.0,
                                                      "toAgentId": self.second_agent,
                                                      "amount": 1}),
            "POST /api/v1/tasks" => review,
            "DELETE /api/v1/tasks/{id}/sandbox/{sandboxId}" => return None,
            "POST /api/v1/tasks/{id}/executing" => json!({"sandboxId": self.sandbox}),
            "POST /api/v1/tasks/{id}/progress" => json!({"message": "half way", "percent": 50}),
            "POST /api/v1/tasks/{id}/complete" => json!({"output": good_review(),
                                                          "executionTimeMs": 1000}),
            "POST /api/v1/tasks/{id}/fail" => {
                json!({"reason": "execution_error", "errorMessage": "gave up"})
            }
            "POST /api/v1/tasks/{id}/feedback" => json!({"feedback": "up"}),
            "POST /api/v1/tasks/{id}/dispute" => json!({"reason": "wrong_output",
                                                         "description": "Not what was asked"}),
            "POST /api/v1/workflows" => json!({"name": "Matrix", "steps": [
                {"taskType": "code_review", "description": "first", "maxBudget": 500,
                 "input": {"files": [{"name": "a.rs", "content": "fn a() {}"}]}},
                {"taskType": "code_review", "description": "second", "maxBudget": 500,
                 "input": {"files": [{"name": "b.rs", "content": "fn b() {}"}]}}]}),
            "POST /api/v1/courts/disputes/{id}/respond" => {
                json!({"response": "The output matches the request"})
            }
            "POST /api/v1/courts/disputes/{id}/resolve" => {
                json!({"outcome": "seller", "note": "fine"})
            }
            "POST /api/v1/trust/keys" => json!({"name": "matrix"}),
            "PUT /api/v1/embassy/agents/{agentId}/policy" => {
                json!({"version": 1, "approvalThreshold": 600})
            }
            "POST /api/v1/embassy/approvals/{id}/deny" => json!({"reason": "no"}),
            "POST /api/v1/webhooks" => json!({"url": "http://127.0.0.1:9/hook",
                                               "events": ["task.completed"]}),
            "POST /api/v1/health/probes" => json!({}),
            _ => return None,
        })
    }
}

fn registration(name: &str) -> Value {
    json!({
        "displayName": name, "framework": "custom", "description": "Reviews code",
        "capabilities": [{"category": "code_review", "tags": ["rust"]}],
        "pricing": {"code_review": 200}, "maxConcurrentTasks": 20,
    })
}

/// Status and body (null for an event stream, which is not read).
async fn send(world: &World, fixtures: &Fixtures, route: &str, who: Who) -> (u16, Value) {
    let (method, _) = route.split_once(' ').unwrap();
    let method = match method {
        "ANY" => Method::GET,
        other => other.parse().unwrap(),
    };
    let url = format!("{}{}", world.running.base_url, fixtures.path(route));
    let mut request = world.http.request(method, url);
    if let Some((name, value)) = fixtures.credentials(who) {
        request = request.header(name, value);
    }
    if let Some(body) = fixtures.body(route) {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let streaming = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if streaming {
        return (status, Value::Null);
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

fn denied(status: u16, body: &Value) -> bool {
    matches!(status, 401 | 403)
        || (status == 404
            && body["error"]["code"]
                .as_str()
                .is_some_and(|code| code.ends_with("NOT_FOUND")))
}

async fn call(world: &World, auth: Auth<'_>, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = world.call(method, path, auth, Some(body)).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer["data"].clone()
}

async fn get(world: &World, auth: Auth<'_>, path: &str) -> Value {
    let (status, answer) = world.call(Method::GET, path, auth, None).await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer["data"].clone()
}

/// Waits for `check` to find something in what `path` answers.
async fn eventually(
    world: &World,
    auth: Auth<'_>,
    path: &str,
    check: impl Fn(&Value) -> Option<String>,
) -> String {
    let started = Instant::now();
    loop {
        if let Some(found) = check(&get(world, auth, path).await) {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "nothing at {path}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn trust_report(world: &World, key: &str, agent: &str) -> u16 {
    world
        .http
        .get(format!(
            "{}/api/v1/trust/agents/{agent}",
            world.running.base_url
        ))
        .header("x-trust-api-key", key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn direct_hire(world: &World, auth: Auth<'_>, agent: &str, budget: i64) -> Value {
    call(
        world,
        auth,
        Method::POST,
        "/tasks",
        json!({"taskType": "code_review", "maxBudget": budget, "agentId": agent,
               "input": {"description": "Review the Rust auth module",
                         "files": [{"name": "auth.rs", "content": "fn check() {}"}]}}),
    )
    .await
}

async fn fixtures(world: &mut World) -> Fixtures {
    let owner = world.owner(50_000).await;
    let other_owner = world.owner(50_000).await;
    let owner_email =
        get(world, Auth::Bearer(&owner.token), "/auth/session").await["user"]["email"]
            .as_str()
            .unwrap()
            .to_owned();
    let agent = world.reviewer(&owner, 200, 20).await;
    let second_agent = world.reviewer(&owner, 200, 20).await.0;
    let other_agent = world.reviewer(&other_owner, 200, 20).await;
    let owner_auth = Auth::Bearer(&owner.token);

    // A webhook first, so T2's completion leaves a delivery on it.
    let webhook = call(
        world,
        owner_auth,
        Method::POST,
        "/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "events": ["task.completed"]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // T2: completed by the other agent, then disputed by the owner.
    let completed_task = direct_hire(world, owner_auth, &other_agent.0, 1_000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    world.wait_assigned(&completed_task, owner_auth).await;
    world.start(&completed_task, &other_agent.1).await;
    let (status, body) = world
        .complete(&completed_task, &other_agent.1, good_review())
        .await;
    assert_eq!(status, 200, "{body}");
    world
        .wait_status(&completed_task, owner_auth, "completed")
        .await;
    let dispute = call(
        world,
        owner_auth,
        Method::POST,
        &format!("/tasks/{completed_task}/dispute"),
        json!({"reason": "wrong_output", "description": "Not what was asked"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // T1: executing.
    let executing_task = direct_hire(world, owner_auth, &other_agent.0, 1_000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    world.wait_assigned(&executing_task, owner_auth).await;
    let sandbox = world.start(&executing_task, &other_agent.1).await;

    let workflow = call(
        world,
        owner_auth,
        Method::POST,
        "/workflows",
        json!({"name": "Audit", "steps": [
            {"taskType": "code_review", "description": "first", "maxBudget": 500,
             "agentId": other_agent.0,
             "input": {"files": [{"name": "a.rs", "content": "fn a() {}"}]}},
            {"taskType": "code_review", "description": "second", "maxBudget": 500,
             "agentId": other_agent.0,
             "input": {"files": [{"name": "b.rs", "content": "fn b() {}"}]}}]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // An approval: the owner's agent submits over its threshold (which the 500-cent
    // tasks and workflow steps of the calls below stay under).
    call(
        world,
        owner_auth,
        Method::PUT,
        &format!("/embassy/agents/{}/policy", agent.0),
        json!({"version": 0, "approvalThreshold": 600}),
    )
    .await;
    let pending = direct_hire(world, Auth::Key(&agent.1), &other_agent.0, 700).await;
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    let approval = eventually(world, owner_auth, "/embassy/approvals", |list| {
        list.as_array()?
            .first()
            .and_then(|a| a["id"].as_str())
            .map(str::to_owned)
    })
    .await;

    let key = call(
        world,
        owner_auth,
        Method::POST,
        "/trust/keys",
        json!({"name": "third party"}),
    )
    .await;
    let trust_key = (
        key["id"].as_str().unwrap().to_owned(),
        key["key"].as_str().unwrap().to_owned(),
    );
    assert_eq!(trust_report(world, &trust_key.1, &agent.0).await, 200);

    let delivery = eventually(
        world,
        owner_auth,
        &format!("/webhooks/{webhook}/deliveries"),
        |page| {
            page["deliveries"]
                .as_array()?
                .first()
                .and_then(|d| d["id"].as_str())
                .map(str::to_owned)
        },
    )
    .await;

    let probe: Value = world
        .http
        .post(format!("{}/api/v1/health/probes", world.running.base_url))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let probe = probe["data"]["probeId"].as_str().unwrap().to_owned();

    Fixtures {
        owner,
        other_owner,
        owner_email,
        agent,
        second_agent,
        other_agent,
        executing_task,
        sandbox,
        completed_task,
        dispute,
        workflow,
        approval,
        trust_key,
        webhook,
        delivery,
        probe,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_lets_through_exactly_whom_it_should() {
    let mut world = World::new().await;
    let rules = rules();

    // The template's routes and the rules name the same set.
    let routes: BTreeSet<String> = aicity_local::gateway::routes(&common::world::template())
        .into_iter()
        .map(|route| route.route_key)
        .collect();
    let ruled: BTreeSet<String> = rules.keys().map(|k| (*k).to_owned()).collect();
    let unruled: Vec<_> = routes.difference(&ruled).collect();
    let gone: Vec<_> = ruled.difference(&routes).collect();
    assert!(
        unruled.is_empty(),
        "routes with no authorization rule: {unruled:?}"
    );
    assert!(
        gone.is_empty(),
        "rules for routes not in the template: {gone:?}"
    );

    let fixtures = fixtures(&mut world).await;
    let mut failures = Vec::new();

    // Denials first, on the fixtures as set up.
    for (route, rule) in &rules {
        for who in EVERYONE {
            let (status, body) = match rule {
                Rule::Only(allowed) if allowed.contains(&who) => continue,
                _ => send(&world, &fixtures, route, who).await,
            };
            let ok = match rule {
                Rule::Everyone(expected) => status == *expected,
                Rule::Only(_) => denied(status, &body),
            };
            if !ok {
                failures.push(format!(
                    "{route} as {who:?}: expected a denial, got {status} {body}"
                ));
            }
        }
    }

    // Then the allowed callers, the ones that change who the callers are last.
    let mut order: Vec<&&str> = rules.keys().filter(|r| !LAST.contains(r)).collect();
    order.extend(LAST.iter());
    for route in order {
        let Rule::Only(allowed) = rules[*route] else {
            continue;
        };
        for who in allowed {
            let (status, body) = send(&world, &fixtures, route, *who).await;
            if status >= 500 || denied(status, &body) {
                failures.push(format!(
                    "{route} as {who:?}: expected to get through, got {status} {body}"
                ));
            }
        }
    }

    // The one principal outside the five: the trust key read reports during set-up;
    // its owner's allowed revoke above must have stopped it.
    assert_eq!(
        trust_report(&world, &fixtures.trust_key.1, &fixtures.agent.0).await,
        401,
        "a revoked trust key still reads reports"
    );

    assert!(
        failures.is_empty(),
        "{} authorization failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
