//! The randomized auditor: owners, agents and tasks driven through the real handlers
//! and consumers (the real queues in between) with racing operations, redeliveries,
//! clock jumps and injected faults, and after every step the books audited against
//! the table itself:
//!
//! - the sum of all accounts is zero;
//! - each pool's `held` is the sum of its pending holds;
//! - each wallet's `pendingEscrow` is its posted, unsettled earnings;
//! - every finished task's hold has ended, exactly once (its hold account holds one
//!   deposit and outflows of exactly that amount), and matches the task's status;
//! - no task sits in a sweeper watch it does not belong to.
//!
//! Seeded and reproducible: `AUDITOR_SEED` (printed on every run) and `AUDITOR_OPS`
//! (operations; CI runs a short run, `make fuzz` at least 100,000).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use aicity_domain::ids::{AgentId, OwnerId, TaskId};
use aicity_domain::task::TaskStatus;
use aicity_domain::task::model::Task;
use aicity_store::faults::{self, point};
use aicity_store::item::Stored;
use aicity_store::tasks::TaskRecord;
use aicity_store::vault::{Hold, HoldStatus, hold_key, pool_key, revenue_key, wallet_key};
use aicity_store::{AwsClients, Key};
use aicity_testkit::http::{Answer, Call, send};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use common::{Knobs, Parts};
use serde_json::{Value, json};

type Item = HashMap<String, AttributeValue>;

struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.next(items.len() as u64) as usize])
    }
}

struct Owner {
    id: OwnerId,
    token: String,
}

struct Agent {
    id: AgentId,
    key: String,
}

/// What the run did, for the closing line.
#[derive(Debug, Default)]
struct Tally {
    operations: u64,
    by_kind: BTreeMap<&'static str, u64>,
    statuses: BTreeMap<u16, u64>,
    faults_armed: u64,
    checks: u64,
    /// Milliseconds spent per kind of operation, and in the audit.
    millis: BTreeMap<&'static str, u128>,
}

struct Auditor {
    parts: Parts,
    clients: AwsClients,
    table: String,
    queues: BTreeMap<&'static str, String>,
    owners: Vec<Owner>,
    agents: Vec<Agent>,
    /// Every task ever seen, by id.
    tasks: BTreeSet<TaskId>,
    /// Tasks whose hold may still be pending or posted (an ended hold never reopens).
    open: BTreeSet<TaskId>,
    clock_offset: Duration,
    tally: Tally,
}

impl Auditor {
    async fn http(&mut self, function: &'static str, call: Call) -> Answer {
        let answer = match function {
            "auth" => send(&|r| auth::handle(&self.parts.api, r), &call).await,
            "agents" => send(&|r| agents::handle(&self.parts.api, r), &call).await,
            "vault" => send(&|r| vault::handle(&self.parts.vault, r), &call).await,
            _ => send(&|r| tasks::handle(&self.parts.tasks, r), &call).await,
        };
        *self.tally.statuses.entry(answer.status).or_default() += 1;
        // A server error is allowed only where a fault was injected or contention
        // outlasted its retries (503); anything else is a bug.
        assert!(
            answer.status < 500 || answer.status == 503 || self.tally.faults_armed > 0,
            "{} answered {}: {}",
            function,
            answer.status,
            answer.body
        );
        if let Some(id) = answer.data()["id"].as_str().and_then(|s| s.parse().ok()) {
            self.learn(id);
        }
        answer
    }

    fn learn(&mut self, id: TaskId) {
        if self.tasks.insert(id) {
            self.open.insert(id);
        }
    }

    fn set_clocks(&self) {
        let now = time::OffsetDateTime::now_utc() + self.clock_offset;
        self.parts.knobs.tasks_clock.pin(now);
        self.parts.knobs.settlement_clock.pin(now);
    }

    // ---- setup -------------------------------------------------------------------

    async fn owner(&mut self, name: &str, funds: i64) -> usize {
        let email = format!(
            "{name}-{}@example.com",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let up = self
            .http(
                "auth",
                Call::at("POST", "/api/v1/auth/sign-up")
                    .json(json!({"name": name, "email": email, "password": "long-password"})),
            )
            .await;
        let id = up.data()["user"]["id"].as_str().unwrap().parse().unwrap();
        let signed = self
            .http(
                "auth",
                Call::at("POST", "/api/v1/auth/sign-in")
                    .json(json!({"email": email, "password": "long-password"})),
            )
            .await;
        let token = signed.data()["token"].as_str().unwrap().to_owned();
        self.owners.push(Owner {
            id,
            token: token.clone(),
        });
        if funds > 0 {
            let answer = self
                .http(
                    "vault",
                    Call::at("POST", "/api/v1/vault/pool/top-up")
                        .bearer(&token)
                        .json(json!({"amount": funds})),
                )
                .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
        self.owners.len() - 1
    }

    async fn agent(&mut self, owner: usize, price: i64, slots: u32) {
        let token = self.owners[owner].token.clone();
        let answer = self
            .http("agents", Call::at("POST", "/api/v1/agents").bearer(&token).json(json!({
                "displayName": "Reviewer", "framework": "custom", "description": "Reviews code",
                "capabilities": [{"category": "code_review", "tags": ["rust"]}],
                "pricing": {"code_review": price}, "maxConcurrentTasks": slots,
            })))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        self.agents.push(Agent {
            id: answer.data()["agent"]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
            key: answer.data()["apiKey"].as_str().unwrap().to_owned(),
        });
        let key = self.agents.last().unwrap().key.clone();
        self.poll(&key).await;
    }

    /// An agent polls for work: its sign of life (written at most every 30 s).
    async fn poll(&mut self, key: &str) {
        self.http(
            "tasks",
            Call::at("GET", "/api/v1/tasks/submitted").api_key(key),
        )
        .await;
    }

    // ---- operations --------------------------------------------------------------

    async fn step(&mut self, rng: &mut Rng) {
        let kind = match rng.next(100) {
            0..=17 => "submit",
            18..=29 => "deliver_routing",
            30..=47 => "agent_work",
            48..=57 => "deliver_quality",
            58..=62 => "settle",
            63..=67 => "feedback",
            68..=71 => "cancel",
            72..=75 => "top_up",
            76..=79 => "allocate_or_transfer",
            80..=81 => "sweep",
            82..=87 => "time_passes",
            88..=90 => "fault",
            91..=94 => "redeliver",
            _ => "race",
        };
        *self.tally.by_kind.entry(kind).or_default() += 1;
        self.tally.operations += 1;
        let started = Instant::now();
        match kind {
            "race" => self.race(rng).await,
            _ => Box::pin(self.simple(kind, rng)).await,
        }
        *self.tally.millis.entry(kind).or_default() += started.elapsed().as_millis();
    }

    async fn simple(&mut self, kind: &'static str, rng: &mut Rng) {
        match kind {
            "submit" => self.submit(rng).await,
            "deliver_routing" => self.deliver("router", rng).await,
            "agent_work" => self.agent_work(rng).await,
            "deliver_quality" => self.deliver("quality", rng).await,
            "settle" => self.settle(rng).await,
            "feedback" => self.feedback(rng).await,
            "cancel" => self.cancel(rng).await,
            "top_up" => self.top_up(rng).await,
            "allocate_or_transfer" => self.allocate_or_transfer(rng).await,
            "sweep" => {
                self.set_clocks();
                sweeper::sweep(&self.parts.sweeper)
                    .await
                    .expect("sweep runs");
            }
            "time_passes" => {
                let minutes = [1, 5, 11, 16, 31, 61][rng.next(6) as usize];
                self.clock_offset += Duration::from_secs(minutes * 60);
                self.set_clocks();
            }
            "fault" => {
                let point = *rng.pick(&point::ALL).unwrap();
                faults::arm(&self.table, point, 1);
                self.tally.faults_armed += 1;
            }
            _ => self.redeliver(rng).await,
        }
    }

    /// Two submits of one owner at the same moment (the pool item is contended), or a
    /// feedback racing settlement of the same task.
    async fn race(&mut self, rng: &mut Rng) {
        let owner = rng.next(self.owners.len() as u64) as usize;
        let token = self.owners[owner].token.clone();
        let call = |budget: i64| {
            Call::at("POST", "/api/v1/tasks")
                .bearer(&token)
                .json(json!({
                    "taskType": "code_review", "maxBudget": budget,
                    "input": {"description": "Review the module"},
                }))
        };
        let (a, b) = (
            call(100 + rng.next(1_500) as i64),
            call(100 + rng.next(1_500) as i64),
        );
        let tasks = self.parts.tasks.clone();
        let handler = |r| tasks::handle(&tasks, r);
        let (first, second) = tokio::join!(send(&handler, &a), send(&handler, &b));
        for answer in [first, second] {
            assert!(
                answer.status < 500 || answer.status == 503 || self.tally.faults_armed > 0,
                "{}",
                answer.body
            );
            *self.tally.statuses.entry(answer.status).or_default() += 1;
            if let Some(id) = answer.data()["id"].as_str().and_then(|s| s.parse().ok()) {
                self.learn(id);
            }
            if answer.status >= 500 {
                self.refresh_tasks(owner).await;
            }
        }
        if let Some(&task) = rng.pick(&self.tasks.iter().copied().collect::<Vec<_>>()) {
            let owner_token = self.owner_of(&task).await;
            let feedback = Call::new(
                "POST",
                "/api/v1/tasks/{id}/feedback",
                &format!("/api/v1/tasks/{task}/feedback"),
            )
            .bearer(&owner_token)
            .json(json!({"feedback": if rng.chance(50) { "up" } else { "down" }}));
            let settlement = self.parts.settlement.clone();
            self.set_clocks();
            let event = sqs_event(&[task]);
            let tasks = self.parts.tasks.clone();
            let handler = |r| tasks::handle(&tasks, r);
            let (answer, _) = tokio::join!(
                send(&handler, &feedback),
                settlement::handle(&settlement, event)
            );
            assert!(
                answer.status < 500 || answer.status == 503 || self.tally.faults_armed > 0,
                "{}",
                answer.body
            );
        }
    }

    async fn submit(&mut self, rng: &mut Rng) {
        let owner = rng.next(self.owners.len() as u64) as usize;
        let token = self.owners[owner].token.clone();
        let mut body = json!({
            "taskType": "code_review", "maxBudget": 100 + rng.next(3_000) as i64,
            "input": {"description": "Review the module"},
        });
        if rng.chance(25) {
            body["agentId"] = json!(rng.pick(&self.agents).unwrap().id.to_string());
        }
        let mut call = Call::at("POST", "/api/v1/tasks").bearer(&token).json(body);
        let keyed = rng.chance(40);
        if keyed {
            call = call.header("idempotency-key", &format!("k{}", rng.next(50)));
        }
        let answer = self.http("tasks", call.clone()).await;
        if answer.status >= 500 {
            // It may have committed: learn every task of this owner, and retry as a
            // client would.
            self.refresh_tasks(owner).await;
            if keyed {
                self.http("tasks", call).await;
            }
        }
    }

    async fn refresh_tasks(&mut self, owner: usize) {
        let id = self.owners[owner].id;
        let tasks = aicity_store::tasks::submitted_by(&self.clients.dynamodb, &self.table, &id)
            .await
            .unwrap();
        for task in tasks {
            self.learn(task.id);
        }
    }

    /// Receives what is on a queue and hands it to its consumer (as the event source
    /// mapping does); deletes what the consumer finished, as the runner does.
    async fn deliver(&mut self, consumer: &'static str, rng: &mut Rng) {
        let url = self.queues[consumer].clone();
        let received = self
            .clients
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(1 + rng.next(10) as i32)
            .visibility_timeout(1)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return;
        }
        let records: Vec<SqsMessage> = messages
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id.clone();
                record.receipt_handle = m.receipt_handle.clone();
                record.body = m.body.clone();
                record
            })
            .collect();
        let mut event = SqsEvent::default();
        event.records = records;
        self.set_clocks();
        let response = match consumer {
            "router" => router::handle(&self.parts.router, event).await,
            _ => quality::handle(&self.parts.quality, event).await,
        };
        let failed: BTreeSet<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        for message in messages {
            if !failed.contains(message.message_id.as_deref().unwrap_or_default()) {
                let _ = self
                    .clients
                    .sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(message.receipt_handle.unwrap_or_default())
                    .send()
                    .await;
            }
        }
    }

    /// A message for a random task delivered again (or for the first time: a message
    /// the queue lost and the sweeper would send).
    async fn redeliver(&mut self, rng: &mut Rng) {
        let Some(&task) = rng.pick(&self.tasks.iter().copied().collect::<Vec<_>>()) else {
            return;
        };
        self.set_clocks();
        let event = sqs_event(&[task]);
        match rng.next(3) {
            0 => drop(router::handle(&self.parts.router, event).await),
            1 => drop(quality::handle(&self.parts.quality, event).await),
            _ => drop(settlement::handle(&self.parts.settlement, event).await),
        }
    }

    async fn settle(&mut self, rng: &mut Rng) {
        let open: Vec<TaskId> = self.open.iter().copied().collect();
        let Some(&task) = rng.pick(&open) else { return };
        self.set_clocks();
        settlement::handle(&self.parts.settlement, sqs_event(&[task])).await;
    }

    /// An agent does the next thing: start an assigned task, or finish one it runs.
    async fn agent_work(&mut self, rng: &mut Rng) {
        let agent = rng.next(self.agents.len() as u64) as usize;
        let key = self.agents[agent].key.clone();
        self.poll(&key).await;
        let listed = self
            .http(
                "tasks",
                Call::at("GET", "/api/v1/tasks")
                    .api_key(&key)
                    .query("role", "assigned")
                    .query("pageSize", "100"),
            )
            .await;
        let mine: Vec<Value> = listed.data().as_array().cloned().unwrap_or_default();
        let Some(task) = rng.pick(&mine) else { return };
        let id = task["id"].as_str().unwrap().to_owned();
        let path = |tail: &str| format!("/api/v1/tasks/{id}/{tail}");
        match task["status"].as_str().unwrap_or_default() {
            "submitted" => {
                let sandbox = self
                    .http(
                        "tasks",
                        Call::new("POST", "/api/v1/tasks/{id}/sandbox", &path("sandbox"))
                            .api_key(&key),
                    )
                    .await;
                if let Some(sandbox) = sandbox.data()["sandboxId"].as_str() {
                    let sandbox = sandbox.to_owned();
                    self.http(
                        "tasks",
                        Call::new("POST", "/api/v1/tasks/{id}/executing", &path("executing"))
                            .api_key(&key)
                            .json(json!({"sandboxId": sandbox})),
                    )
                    .await;
                }
            }
            "executing" if rng.chance(15) => {
                self.http(
                    "tasks",
                    Call::new("POST", "/api/v1/tasks/{id}/fail", &path("fail"))
                        .api_key(&key)
                        .json(json!({"reason": "execution_error", "errorMessage": "crashed"})),
                )
                .await;
            }
            "executing" => {
                let output = if rng.chance(80) {
                    json!({"findings": "Found 3 security issues in auth.rs: the token comparison is not constant time, the session id is logged, and expired sessions are still accepted.",
                           "recommendations": ["Use a constant-time comparison", "Stop logging session ids"]})
                } else {
                    json!({"findings": "ok"})
                };
                self.http(
                    "tasks",
                    Call::new("POST", "/api/v1/tasks/{id}/complete", &path("complete"))
                        .api_key(&key)
                        .json(json!({"output": output, "executionTimeMs": 1200})),
                )
                .await;
            }
            _ => {}
        }
    }

    async fn owner_of(&self, task: &TaskId) -> String {
        let record = aicity_store::tasks::get(&self.clients.dynamodb, &self.table, task)
            .await
            .unwrap();
        let owner = self
            .owners
            .iter()
            .find(|o| o.id == record.task.caller_owner_id)
            .unwrap();
        owner.token.clone()
    }

    async fn feedback(&mut self, rng: &mut Rng) {
        let Some(&task) = rng.pick(&self.tasks.iter().copied().collect::<Vec<_>>()) else {
            return;
        };
        let token = self.owner_of(&task).await;
        let value = if rng.chance(50) { "up" } else { "down" };
        self.http(
            "tasks",
            Call::new(
                "POST",
                "/api/v1/tasks/{id}/feedback",
                &format!("/api/v1/tasks/{task}/feedback"),
            )
            .bearer(&token)
            .json(json!({"feedback": value})),
        )
        .await;
    }

    async fn cancel(&mut self, rng: &mut Rng) {
        let open: Vec<TaskId> = self.open.iter().copied().collect();
        let Some(&task) = rng.pick(&open) else { return };
        let token = self.owner_of(&task).await;
        self.http(
            "tasks",
            Call::new(
                "POST",
                "/api/v1/tasks/{id}/cancel",
                &format!("/api/v1/tasks/{task}/cancel"),
            )
            .bearer(&token),
        )
        .await;
    }

    async fn top_up(&mut self, rng: &mut Rng) {
        let owner = rng.next(self.owners.len() as u64) as usize;
        let token = self.owners[owner].token.clone();
        let mut call = Call::at("POST", "/api/v1/vault/pool/top-up")
            .bearer(&token)
            .json(json!({"amount": 500 + rng.next(5_000) as i64}));
        if rng.chance(50) {
            call = call.header("idempotency-key", &format!("t{}", rng.next(30)));
        }
        self.http("vault", call).await;
    }

    async fn allocate_or_transfer(&mut self, rng: &mut Rng) {
        // Agents 0 and 1 belong to owner 0 (see `run`).
        let token = self.owners[0].token.clone();
        let (a, b) = (self.agents[0].id, self.agents[1].id);
        let amount = 1 + rng.next(800) as i64;
        let mut call = if rng.chance(50) {
            Call::new(
                "POST",
                "/api/v1/vault/wallets/{agentId}/allocate",
                &format!("/api/v1/vault/wallets/{a}/allocate"),
            )
            .bearer(&token)
            .json(json!({"amount": amount}))
        } else {
            let (from, to) = if rng.chance(50) { (a, b) } else { (b, a) };
            Call::at("POST", "/api/v1/vault/transfers")
                .bearer(&token)
                .json(json!({"fromAgentId": from, "toAgentId": to, "amount": amount}))
        };
        if rng.chance(50) {
            call = call.header("idempotency-key", &format!("m{}", rng.next(30)));
        }
        self.http("vault", call).await;
    }

    // ---- the audit ---------------------------------------------------------------

    async fn batch_get(&self, keys: &[Key]) -> HashMap<(String, String), Item> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(Key::to_map).collect()))
                .consistent_read(true)
                .build()
                .unwrap();
            loop {
                let output = self
                    .clients
                    .dynamodb
                    .batch_get_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .unwrap();
                for item in output
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let pk = item["PK"].as_s().unwrap().clone();
                    let sk = item["SK"].as_s().unwrap().clone();
                    found.insert((pk, sk), item);
                }
                match output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                {
                    Some(rest) if !rest.keys().is_empty() => pending = rest,
                    _ => break,
                }
            }
        }
        found
    }

    /// Every invariant, against the table as it is now. Panics with the seed's step on
    /// the first violation.
    async fn check(&mut self, step: u64) {
        self.tally.checks += 1;
        let mut keys: Vec<Key> = self.owners.iter().map(|o| pool_key(&o.id)).collect();
        keys.extend(self.agents.iter().map(|a| wallet_key(&a.id)));
        keys.extend((0..aicity_domain::vault::ledger::REVENUE_SHARDS).map(revenue_key));
        for task in &self.open {
            keys.push(hold_key(task));
            keys.push(Key::task(task));
        }
        let items = self.batch_get(&keys).await;
        let number = |key: &Key, attribute: &str| -> i64 {
            items
                .get(&(key.pk.clone(), key.sk.clone()))
                .and_then(|item| item.get(attribute))
                .and_then(|v| v.as_n().ok())
                .map_or(0, |n| n.parse().unwrap())
        };
        let mut sum = 0;
        for owner in &self.owners {
            let key = pool_key(&owner.id);
            sum +=
                number(&key, "externalBalance") + number(&key, "available") + number(&key, "held");
        }
        for agent in &self.agents {
            let key = wallet_key(&agent.id);
            sum += number(&key, "available") + number(&key, "pendingEscrow");
        }
        for shard in 0..aicity_domain::vault::ledger::REVENUE_SHARDS {
            sum += number(&revenue_key(shard), "balance");
        }
        assert_eq!(sum, 0, "step {step}: the accounts do not sum to zero");

        let mut held: HashMap<OwnerId, i64> = HashMap::new();
        let mut escrow: HashMap<AgentId, i64> = HashMap::new();
        let mut ended = Vec::new();
        for task_id in self.open.clone() {
            let hold_item = items.get(&(hold_key(&task_id).pk, hold_key(&task_id).sk));
            let task_item = items.get(&(Key::task(&task_id).pk, Key::task(&task_id).sk));
            let Some(task_item) = task_item else {
                assert!(
                    hold_item.is_none(),
                    "step {step}: a hold without its task {task_id}"
                );
                continue; // a submit that never committed
            };
            let record: TaskRecord =
                serde_dynamo::from_item::<_, Stored<TaskRecord>>(task_item.clone())
                    .unwrap()
                    .body;
            check_watch(step, &record.task, task_item);
            let hold: Hold = serde_dynamo::from_item::<_, Stored<Hold>>(
                hold_item
                    .unwrap_or_else(|| panic!("step {step}: task {task_id} without a hold"))
                    .clone(),
            )
            .unwrap()
            .body;
            check_hold_matches(step, &record.task, &hold);
            match hold.status {
                HoldStatus::Pending => *held.entry(hold.owner_id).or_default() += hold.amount.get(),
                HoldStatus::Posted => {
                    *escrow
                        .entry(hold.agent_id.expect("posted to an agent"))
                        .or_default() += hold.earning.get()
                }
                _ => ended.push(task_id),
            }
        }
        for owner in &self.owners {
            assert_eq!(
                number(&pool_key(&owner.id), "held"),
                held.get(&owner.id).copied().unwrap_or(0),
                "step {step}: pool {} held ≠ its pending holds ({} open tasks)",
                owner.id,
                self.open.len()
            );
        }
        for agent in &self.agents {
            assert_eq!(
                number(&wallet_key(&agent.id), "pendingEscrow"),
                escrow.get(&agent.id).copied().unwrap_or(0),
                "step {step}: wallet {} escrow ≠ its posted, unsettled earnings",
                agent.id
            );
        }
        for task in ended {
            self.check_ended_once(step, &task).await;
            self.open.remove(&task);
        }
    }

    /// The hold account of an ended hold took one deposit and paid out exactly it.
    async fn check_ended_once(&self, step: u64, task: &TaskId) {
        let entries: Vec<aicity_store::vault::Entry> = aicity_store::item::query_all(|| {
            self.clients
                .dynamodb
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(format!("ACCOUNT#hold:{task}")),
                )
                .consistent_read(true)
        })
        .await
        .unwrap();
        let deposits: Vec<i64> = entries
            .iter()
            .map(|e| e.amount.get())
            .filter(|a| *a > 0)
            .collect();
        let paid: i64 = entries
            .iter()
            .map(|e| e.amount.get())
            .filter(|a| *a < 0)
            .sum();
        assert_eq!(
            deposits.len(),
            1,
            "step {step}: hold of {task} deposited {deposits:?}"
        );
        assert_eq!(
            -paid, deposits[0],
            "step {step}: hold of {task} ended more or less than once"
        );
    }
}

/// A task is in the sweeper's watch its state calls for, and in no other.
fn check_watch(step: u64, task: &Task, item: &Item) {
    let expected = aicity_domain::task::timing::watch(task)
        .map(|(watch, _)| aicity_store::tasks::watch_partition(watch));
    let actual = item.get("GSI3PK").and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(
        actual, expected,
        "step {step}: task {} ({}) in the wrong watch",
        task.id, task.status
    );
}

/// The task's status and its hold agree.
fn check_hold_matches(step: u64, task: &Task, hold: &Hold) {
    use HoldStatus as H;
    use TaskStatus as S;
    let fine = match task.status {
        S::Completed => matches!(hold.status, H::Posted | H::Released),
        S::Refunded => hold.status == H::Reversed,
        S::Failed | S::Cancelled => hold.status == H::Voided,
        _ => hold.status == H::Pending,
    };
    assert!(
        fine,
        "step {step}: task {} is {} with its hold {:?}",
        task.id, task.status, hold.status
    );
    if task.status == S::Completed {
        assert_eq!(
            hold.status == H::Released,
            task.settled_at.is_some(),
            "step {step}: settledAt of {} disagrees with its hold",
            task.id
        );
    }
}

fn sqs_event(tasks: &[TaskId]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = tasks
        .iter()
        .map(|task| {
            let mut record = SqsMessage::default();
            record.message_id = Some(ulid::Ulid::generate().to_string());
            record.body = Some(json!({"taskId": task}).to_string());
            record
        })
        .collect();
    event
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One auditor run on its own tables: (operations, checks, tasks, faults).
async fn run(seed: u64, operations: u64) -> (u64, u64, usize, u64) {
    let clients = aicity_testkit::clients().await;
    let template = common::world::template();
    let resources = aicity_testkit::fresh_resources(&clients, &template).await;
    let env = aicity_local::runner::shared_environment(&template, &resources).unwrap();
    let parts = common::parts(&clients, &env, Knobs::default());
    let queues = BTreeMap::from([
        ("router", env["ROUTING_QUEUE_URL"].clone()),
        ("quality", env["QUALITY_QUEUE_URL"].clone()),
    ]);
    let mut auditor = Auditor {
        table: env["TABLE_NAME"].clone(),
        parts,
        clients,
        queues,
        owners: vec![],
        agents: vec![],
        tasks: BTreeSet::new(),
        open: BTreeSet::new(),
        clock_offset: Duration::ZERO,
        tally: Tally::default(),
    };
    let seller = auditor.owner("seller", 20_000).await;
    auditor.agent(seller, 400, 3).await;
    auditor.agent(seller, 900, 2).await;
    let other = auditor.owner("other", 5_000).await;
    auditor.agent(other, 250, 4).await;
    for name in ["buyer-a", "buyer-b"] {
        auditor.owner(name, 30_000).await;
    }

    let mut rng = Rng(seed);
    let started = Instant::now();
    for step in 0..operations {
        auditor.step(&mut rng).await;
        let audit = Instant::now();
        auditor.check(step).await;
        *auditor.tally.millis.entry("(audit)").or_default() += audit.elapsed().as_millis();
        if step > 0 && step % 5_000 == 0 {
            println!(
                "auditor: seed {seed}: {step} operations, violations 0, {:.0}s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    // Wind down: time passes, the sweeper and the queues finish what is left.
    faults::disarm(&auditor.table);
    for _ in 0..4 {
        auditor.clock_offset += Duration::from_secs(2 * 3600);
        auditor.set_clocks();
        sweeper::sweep(&auditor.parts.sweeper)
            .await
            .expect("sweep runs");
        for _ in 0..5 {
            auditor.deliver("router", &mut rng).await;
            auditor.deliver("quality", &mut rng).await;
        }
        auditor.check(operations).await;
    }
    let tally = &auditor.tally;
    println!(
        "auditor: seed {seed}: {} operations, {} checks, {} tasks, {} faults injected, violations 0, {:.1}s",
        tally.operations,
        tally.checks,
        auditor.tasks.len(),
        tally.faults_armed,
        started.elapsed().as_secs_f64()
    );
    println!("auditor: seed {seed}: operations {:?}", tally.by_kind);
    println!("auditor: seed {seed}: answers {:?}", tally.statuses);
    println!("auditor: seed {seed}: milliseconds {:?}", tally.millis);
    assert!(auditor.tasks.len() > 5, "the run did some work");
    (
        tally.operations,
        tally.checks,
        auditor.tasks.len(),
        tally.faults_armed,
    )
}

/// `AUDITOR_WORKERS` runs side by side (seeds `AUDITOR_SEED`, +1, …), each on its own
/// tables, `AUDITOR_OPS` operations each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_books_hold_after_every_step_of_a_random_run() {
    let seed = env_number(
        "AUDITOR_SEED",
        u64::from(ulid::Ulid::generate().random() as u32) | 1,
    );
    let operations = env_number("AUDITOR_OPS", 200);
    let workers = env_number("AUDITOR_WORKERS", 1);
    println!(
        "auditor: seed {seed}, {workers} × {operations} operations (AUDITOR_SEED={seed} AUDITOR_OPS={operations} AUDITOR_WORKERS={workers} reproduces the operations)"
    );
    let started = Instant::now();
    let runs: Vec<_> = (0..workers)
        .map(|i| tokio::spawn(run(seed + i, operations)))
        .collect();
    let (mut total_ops, mut total_checks, mut total_tasks, mut total_faults) = (0, 0, 0, 0);
    for run in runs {
        let (ops, checks, tasks, faults) = run.await.expect("an auditor run found a violation");
        total_ops += ops;
        total_checks += checks;
        total_tasks += tasks;
        total_faults += faults;
    }
    println!(
        "auditor: total: seed {seed}, {total_ops} operations, {total_checks} checks, {total_tasks} tasks, {total_faults} faults injected, violations 0, {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
