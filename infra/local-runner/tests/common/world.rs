//! A little world for lifecycle tests: parties, agents and tasks driven over HTTP
//! through the runner's gateway, and the books checked at the end.

use std::time::{Duration, Instant};

use aicity_domain::ids::{AgentId, OwnerId, TaskId};
use aicity_local::runner::Running;
use aicity_local::template::Template;
use aicity_store::AwsClients;
use aicity_store::vault::{self, HoldStatus};
use aicity_testkit::invoke::InProcess;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Bearer(&'a str),
    Key(&'a str),
}

pub struct World {
    pub running: Running,
    pub functions: InProcess,
    pub clients: AwsClients,
    pub http: reqwest::Client,
    pub owners: Vec<OwnerId>,
    pub agents: Vec<AgentId>,
}

/// The project's template, with the routing queue retrying within the test's patience.
pub fn template() -> Template {
    let mut template = aicity_testkit::template();
    for queue in template.queues.iter_mut() {
        if queue.logical_id == "RoutingQueue" || queue.logical_id == "QualityQueue" {
            queue.visibility_timeout = Some(2);
        }
    }
    template
}

pub struct Party {
    pub token: String,
}

impl World {
    pub async fn new() -> Self {
        Self::from(super::start(template()).await)
    }

    pub fn from((running, functions, clients): (Running, InProcess, AwsClients)) -> Self {
        Self {
            running,
            functions,
            clients,
            http: reqwest::Client::new(),
            owners: vec![],
            agents: vec![],
        }
    }

    pub fn table(&self) -> &str {
        &self.running.resources.tables["Table"]
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.running.base_url));
        request = match auth {
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Key(key) => request.header("x-api-key", key),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn owner(&mut self, funds: i64) -> Party {
        let email = format!(
            "{}@example.com",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let url = format!("{}/api/v1/auth", self.running.base_url);
        let up: Value = self
            .http
            .post(format!("{url}/sign-up"))
            .json(&json!({"name": "P", "email": email, "password": "long-password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id: OwnerId = up["data"]["user"]["id"].as_str().unwrap().parse().unwrap();
        let signed: Value = self
            .http
            .post(format!("{url}/sign-in"))
            .json(&json!({"email": email, "password": "long-password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = signed["data"]["token"].as_str().unwrap().to_owned();
        if funds > 0 {
            let (status, body) = self
                .call(
                    Method::POST,
                    "/vault/pool/top-up",
                    Auth::Bearer(&token),
                    Some(json!({"amount": funds})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        self.owners.push(id);
        Party { token }
    }

    /// A code reviewer charging `price`, taking `max` tasks at once, online (it sent a
    /// heartbeat, as a running agent does); returns (id, key).
    pub async fn reviewer(&mut self, owner: &Party, price: i64, max: u32) -> (String, String) {
        let (id, key) = self.idle_reviewer(owner, price, max).await;
        self.heartbeat(&key).await;
        (id, key)
    }

    /// A live agent's sign of life.
    pub async fn heartbeat(&self, key: &str) {
        let (status, body) = self
            .call(Method::POST, "/agents/me/heartbeat", Auth::Key(key), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// A reviewer that registered and never polls for work.
    pub async fn idle_reviewer(&mut self, owner: &Party, price: i64, max: u32) -> (String, String) {
        let (status, body) = self
            .call(
                Method::POST,
                "/agents",
                Auth::Bearer(&owner.token),
                Some(json!({
                    "displayName": "Reviewer", "framework": "custom", "description": "Reviews code",
                    "capabilities": [{"category": "code_review", "tags": ["rust"]}],
                    "pricing": {"code_review": price}, "maxConcurrentTasks": max,
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["data"]["agent"]["id"].as_str().unwrap().to_owned();
        self.agents.push(id.parse().unwrap());
        (id, body["data"]["apiKey"].as_str().unwrap().to_owned())
    }

    pub async fn submit(&self, buyer: &Party, budget: i64) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/tasks",
                Auth::Bearer(&buyer.token),
                Some(json!({
                    "taskType": "code_review", "maxBudget": budget,
                    "input": {"description": "Review the Rust auth module", "files": [{"name": "auth.rs", "content": "fn check() {}"}]},
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["data"]["status"], "submitted");
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn task(&self, id: &str, auth: Auth<'_>) -> Value {
        let (status, body) = self
            .call(Method::GET, &format!("/tasks/{id}"), auth, None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    pub async fn wait_status(&self, id: &str, auth: Auth<'_>, status: &str) -> Value {
        let started = Instant::now();
        loop {
            let task = self.task(id, auth).await;
            if task["status"] == status {
                return task;
            }
            assert!(
                started.elapsed() < Duration::from_secs(45),
                "task {id} stuck at {} waiting for {status}",
                task["status"]
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits until the router assigned the task to someone.
    pub async fn wait_assigned(&self, id: &str, auth: Auth<'_>) -> Value {
        let started = Instant::now();
        loop {
            let task = self.task(id, auth).await;
            if task["agentId"].is_string() && task["status"] == "submitted" {
                return task;
            }
            assert!(
                started.elapsed() < Duration::from_secs(45),
                "task {id} never assigned: {task}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Provision a sandbox and start: returns the sandbox id.
    pub async fn start(&self, id: &str, key: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/tasks/{id}/sandbox"),
                Auth::Key(key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let sandbox = body["data"]["sandboxId"].as_str().unwrap().to_owned();
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/tasks/{id}/executing"),
                Auth::Key(key),
                Some(json!({"sandboxId": sandbox})),
            )
            .await;
        assert_eq!(
            (status, body["data"]["status"].clone()),
            (200, json!("executing")),
            "{body}"
        );
        sandbox
    }

    pub async fn complete(&self, id: &str, key: &str, output: Value) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("/tasks/{id}/complete"),
            Auth::Key(key),
            Some(json!({"output": output, "executionTimeMs": 3200, "qualityScore": 90})),
        )
        .await
    }

    /// The money invariant over everybody in this world, and no open hold on a
    /// finished task.
    pub async fn assert_books_balance(&self, tasks: &[&str]) {
        let (db, table) = (&self.clients.dynamodb, self.table());
        let mut sum = 0i64;
        for owner in &self.owners {
            let item = db
                .get_item()
                .table_name(table)
                .set_key(Some(vault::pool_key(owner).to_map()))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .unwrap_or_default();
            for attribute in ["externalBalance", "available", "held"] {
                sum += item
                    .get(attribute)
                    .and_then(|v| v.as_n().ok())
                    .map_or(0, |n| n.parse::<i64>().unwrap());
            }
        }
        for agent in &self.agents {
            let wallet = vault::wallet(db, table, agent).await.unwrap();
            // `shortfall` is shown as what the agent owes: its account is minus that.
            sum += wallet.available.get() + wallet.pending_escrow.get() + wallet.frozen.get()
                - wallet.shortfall.get();
        }
        sum += vault::revenue(db, table).await.unwrap().get();
        assert_eq!(sum, 0, "the ledger sums to zero");
        for id in tasks {
            let task: TaskId = id.parse().unwrap();
            let record = aicity_store::tasks::get(db, table, &task).await.unwrap();
            let hold = vault::hold(db, table, &task).await.unwrap();
            if record.task.status.is_terminal() {
                assert_ne!(
                    hold.status,
                    HoldStatus::Pending,
                    "task {id} is {} with its hold open",
                    record.task.status
                );
            }
        }
    }

    pub async fn events(&self, id: &str) -> Vec<(String, Value)> {
        let task: TaskId = id.parse().unwrap();
        aicity_store::tasks::events(&self.clients.dynamodb, self.table(), &task, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    serde_json::to_value(e.kind)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    e.data,
                )
            })
            .collect()
    }
}

pub fn good_review() -> Value {
    json!({
        "findings": "Found 3 security issues in auth.rs: the token comparison is not constant time, \
                     the session id is logged, and expired sessions are still accepted by check().",
        "recommendations": ["Use a constant-time comparison", "Stop logging session ids", "Check expiry in check()"],
    })
}
