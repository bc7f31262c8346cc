//! `make bench-routing`: how many DynamoDB items one routing decision reads, with 10, 100
//! and 1,000 live agents in the task's category. Every item a Query scans, a GetItem
//! returns or a BatchGetItem returns is counted by an SDK interceptor on the client the
//! router uses, so the figure is what DynamoDB would bill for, not an estimate.
//!
//! Needs an emulator (`AWS_ENDPOINT_URL`); the script starts moto.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;

use aicity_domain::identity::{Agent, Capability, Category, Framework, RegisterAgent, TrustTier};
use aicity_domain::ids::{OwnerId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::task::TaskStatus;
use aicity_domain::task::model::{EventType, Task, TaskInput};
use aicity_domain::timestamps;
use aicity_store::agents::{self, AgentRecord};
use aicity_store::transact::Transaction;
use aicity_store::{AwsClients, Key};
use aicity_tasks::routing::{Routed, route};
use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;

/// Items read, summed over every DynamoDB call of the client.
#[derive(Debug, Clone, Default)]
struct ItemsRead(Arc<AtomicUsize>);

impl Intercept for ItemsRead {
    fn name(&self) -> &'static str {
        "ItemsRead"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(output) = context.output_or_error() {
            let items = if let Some(query) = output.downcast_ref::<QueryOutput>() {
                query.scanned_count.max(0) as usize
            } else if let Some(get) = output.downcast_ref::<GetItemOutput>() {
                usize::from(get.item.is_some())
            } else if let Some(batch) = output.downcast_ref::<BatchGetItemOutput>() {
                batch
                    .responses
                    .as_ref()
                    .map_or(0, |r| r.values().map(Vec::len).sum())
            } else {
                0
            };
            self.0.fetch_add(items, Ordering::SeqCst);
        }
        Ok(())
    }
}

fn agent(owner: OwnerId, score: u32, now: &str) -> Agent {
    let mut agent = Agent::register(
        owner,
        RegisterAgent {
            display_name: "Reviewer".into(),
            framework: Framework::Custom,
            description: "Reviews code".into(),
            model: None,
            capabilities: vec![Capability {
                category: Category::CodeReview,
                tags: vec!["rust".into()],
            }],
            pricing: BTreeMap::from([(Category::CodeReview, 1_000)]),
            max_concurrent_tasks: Some(50),
        },
        now,
    );
    agent.overall_score = score;
    agent.trust_tier = TrustTier::Elite;
    agent.last_seen_at = Some(now.to_owned());
    agent
}

fn task(buyer: OwnerId, now: &str) -> Task {
    Task {
        id: TaskId::new(),
        task_type: Category::CodeReview,
        status: TaskStatus::Submitted,
        input: TaskInput {
            previous_output: None,
            fields: Default::default(),
            description: "Review the rust module".into(),
            repo: None,
            code: None,
            files: vec![],
        },
        max_budget: Cents(5_000),
        agent_id: None,
        caller_owner_id: buyer,
        caller_agent_id: None,
        parent_task_id: None,
        direct_hire: false,
        requested_agent_id: None,
        agreed_price: None,
        sandbox_id: None,
        output: None,
        quality_score: None,
        self_reported_score: None,
        credits_charged: None,
        execution_time_ms: None,
        feedback: None,
        failure_reason: None,
        error_message: None,
        quality_reasons: vec![],
        routing_attempts: 0,
        declined_by: vec![],
        quality_attempts: 0,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
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

/// Items read per routed task, (mean, max), with `n` live agents in the category.
async fn measure(base: &AwsClients, counter: &ItemsRead, n: usize, tasks: usize) -> (f64, usize) {
    let table = aicity_testkit::fresh_table(base).await;
    let ctx = aicity_http::Context {
        webhook_queue_url: None,
        routing_queue_url: None,
        clients: base.clone(),
        table: table.clone(),
        limits: aicity_http::Limits::default(),
    };
    let now = timestamps::now();
    let seller = OwnerId::new();
    base.dynamodb
        .put_item()
        .table_name(&table)
        .set_item(Some(Key::owner(&seller).to_map()))
        .send()
        .await
        .unwrap();
    let registrations = (0..n).map(|i| {
        let record = AgentRecord {
            agent: agent(seller, (i * 997 % 1000) as u32, &now),
            api_key_hash: format!("hash-{i}-{}", ulid::Ulid::generate()),
            version: 1,
        };
        let (db, table) = (base.dynamodb.clone(), table.clone());
        async move { agents::register(&db, &table, &record, u32::MAX).await }
    });
    let done: Vec<_> = futures::stream::iter(registrations)
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(done.iter().all(Result::is_ok), "agents registered");
    let buyer = OwnerId::new();
    let (mut total, mut max) = (0, 0);
    for _ in 0..tasks {
        let task = task(buyer, &now);
        let id = task.id;
        let (items, _) = aicity_store::tasks::create_items(
            &table,
            task,
            vec![(
                EventType::Status,
                serde_json::json!({"status": "submitted"}),
            )],
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let mut transaction = Transaction::new();
        transaction.extend(items);
        transaction.commit(&base.dynamodb).await.unwrap();
        counter.0.store(0, Ordering::SeqCst);
        let routed = route(&ctx, &id, 5).await.unwrap();
        assert!(matches!(routed, Routed::Assigned(_)), "{routed:?}");
        let read = counter.0.load(Ordering::SeqCst);
        total += read;
        max = max.max(read);
    }
    (total as f64 / tasks as f64, max)
}

#[tokio::main]
async fn main() {
    let plain = aicity_testkit::clients().await;
    let counter = ItemsRead::default();
    let config = plain
        .dynamodb
        .config()
        .to_builder()
        .interceptor(counter.clone())
        .build();
    let clients = AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(config),
        sqs: plain.sqs.clone(),
    };
    let tasks = 20;
    println!("items read per routed task ({tasks} tasks each; claim, candidates, assignment)");
    println!("{:>8}  {:>8}  {:>5}", "agents", "mean", "max");
    let mut rows = Vec::new();
    for n in [10, 100, 1_000] {
        let (mean, max) = measure(&clients, &counter, n, tasks).await;
        println!("{n:>8}  {mean:>8.1}  {max:>5}");
        rows.push((n, mean));
    }
    let ratio = rows[2].1 / rows[0].1;
    println!("1,000 agents vs 10: {ratio:.2}× the items read (flat is 1.0×; linear would be 100×)");
}
