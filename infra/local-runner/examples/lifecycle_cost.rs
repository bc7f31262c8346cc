//! `make bench` (cost): what one task lifecycle costs in DynamoDB and SQS.
//!
//! The lifecycle is a direct hire with the rule-based gate: submit → route → sandbox →
//! executing → complete → quality → charge → settle, through the runner's HTTP gateway
//! and its SQS pollers, every function in this process. Every DynamoDB request of the
//! functions asks for `ReturnConsumedCapacity: TOTAL` (an SDK interceptor sets it) and
//! the capacity DynamoDB reports is summed, so run it on DynamoDB Local: moto reports
//! 1 WCU for a 3 KB put and nothing for transactions. SQS requests are counted on two
//! clients: the functions' own (sends) and the runner's pollers, which stand in for
//! Lambda's event source mappings (receives that returned a message, deletes) — AWS
//! bills both. Empty long polls are a fixed cost per queue, not per lifecycle.
//!
//! Run by `scripts/bench-cost.sh` (DynamoDB Local + moto); `BENCH_LIFECYCLES` (5).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aicity_domain::ids::TaskId;
use aicity_local::billing::{self, Item};
use aicity_local::invoke::{InvokeError, Invoker, Streamed};
use aicity_store::AwsClients;
use aicity_testkit::invoke::InProcess;
use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::{
    batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
    batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
    delete_item::{DeleteItemInput, DeleteItemOutput},
    get_item::{GetItemInput, GetItemOutput},
    put_item::{PutItemInput, PutItemOutput},
    query::{QueryInput, QueryOutput},
    scan::{ScanInput, ScanOutput},
    transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput},
    transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
    update_item::{UpdateItemInput, UpdateItemOutput},
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use reqwest::Method;
use serde_json::{Value, json};

/// On-demand prices (us-east-1, Standard table class, standard queue), per million.
const PRICE_WRITE_REQUEST_UNIT: f64 = 0.625;
const PRICE_READ_REQUEST_UNIT: f64 = 0.125;
const PRICE_SQS_REQUEST: f64 = 0.40;
const PRICE_LAMBDA_REQUEST: f64 = 0.20;

/// One DynamoDB request as DynamoDB billed it.
#[derive(Debug, Clone, Default)]
struct Call {
    phase: &'static str,
    operation: &'static str,
    wcu: f64,
    rcu: f64,
    /// Of `wcu + rcu`, what the global secondary indexes took.
    gsi: f64,
}

#[derive(Debug, Default)]
struct Tally {
    phase: &'static str,
    dynamodb: Vec<Call>,
    /// (phase, who, operation): SQS requests.
    sqs: Vec<(&'static str, &'static str, String)>,
}

/// Shared by the interceptors and the bench: what was spent, in which phase.
#[derive(Debug, Clone, Default)]
struct Meter(Arc<Mutex<Tally>>);

impl Meter {
    fn phase(&self, phase: &'static str) {
        self.0.lock().unwrap().phase = phase;
    }
    fn take(&self) -> Tally {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A write of one item: its table and key, and the item before the request.
#[derive(Debug, Clone)]
struct Write {
    table: String,
    key: Item,
    before: Option<Item>,
    transactional: bool,
}

/// What the meter learnt of a request before it was sent.
#[derive(Debug, Clone, Default)]
struct Pending {
    /// The phase the request was made in (it may be billed after the bench moved on).
    phase: &'static str,
    writes: Vec<Write>,
    /// Read units per 4 KB: 1 strongly consistent, 0.5 eventually, 2 transactional.
    read_factor: f64,
}

impl Storable for Pending {
    type Storer = StoreReplace<Self>;
}

/// Bills every DynamoDB request of the functions by the rules in
/// `aicity_local::billing`, reading each written item before and after the request on
/// a client of its own (so the meter's reads are not billed to the lifecycle).
#[derive(Debug, Clone)]
struct CapacityMeter {
    meter: Meter,
    images: aws_sdk_dynamodb::Client,
    indexes: Vec<billing::Index>,
}

const TABLE_KEYS: [&str; 2] = ["PK", "SK"];

fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(name, _)| TABLE_KEYS.contains(&name.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl CapacityMeter {
    /// The item as it is now (blocking: interceptors are synchronous; the bench runs on
    /// the multi-threaded runtime, where `block_in_place` is allowed).
    fn image(&self, table: &str, key: &Item) -> Option<Item> {
        let request = self
            .images
            .get_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .consistent_read(true);
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(async { request.send().await.ok().and_then(|output| output.item) })
        })
    }

    fn writes_of(
        &self,
        input: &aws_smithy_runtime_api::client::interceptors::context::Input,
    ) -> Pending {
        let mut writes: Vec<(String, Item, bool)> = vec![];
        let mut read_factor = 1.0;
        if let Some(i) = input.downcast_ref::<PutItemInput>() {
            writes.push((
                i.table_name.clone().unwrap_or_default(),
                key_of(i.item.as_ref().unwrap()),
                false,
            ));
        } else if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
            writes.push((
                i.table_name.clone().unwrap_or_default(),
                i.key.clone().unwrap_or_default(),
                false,
            ));
        } else if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
            writes.push((
                i.table_name.clone().unwrap_or_default(),
                i.key.clone().unwrap_or_default(),
                false,
            ));
        } else if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
            for item in i.transact_items.iter().flatten() {
                if let Some(put) = &item.put {
                    writes.push((put.table_name.clone(), key_of(&put.item), true));
                } else if let Some(update) = &item.update {
                    writes.push((update.table_name.clone(), update.key.clone(), true));
                } else if let Some(delete) = &item.delete {
                    writes.push((delete.table_name.clone(), delete.key.clone(), true));
                } else if let Some(check) = &item.condition_check {
                    writes.push((check.table_name.clone(), check.key.clone(), true));
                }
            }
        } else if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
            for (table, requests) in i.request_items.iter().flatten() {
                for request in requests {
                    if let Some(put) = &request.put_request {
                        writes.push((table.clone(), key_of(&put.item), false));
                    } else if let Some(delete) = &request.delete_request {
                        writes.push((table.clone(), delete.key.clone(), false));
                    }
                }
            }
        } else if let Some(i) = input.downcast_ref::<GetItemInput>() {
            read_factor = if i.consistent_read == Some(true) {
                1.0
            } else {
                0.5
            };
        } else if let Some(i) = input.downcast_ref::<QueryInput>() {
            read_factor = if i.consistent_read == Some(true) {
                1.0
            } else {
                0.5
            };
        } else if let Some(i) = input.downcast_ref::<ScanInput>() {
            read_factor = if i.consistent_read == Some(true) {
                1.0
            } else {
                0.5
            };
        } else if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
            let consistent = i
                .request_items
                .iter()
                .flatten()
                .any(|(_, keys)| keys.consistent_read == Some(true));
            read_factor = if consistent { 1.0 } else { 0.5 };
        } else if input.downcast_ref::<TransactGetItemsInput>().is_some() {
            read_factor = 2.0;
        }
        Pending {
            phase: self.meter.0.lock().unwrap().phase,
            writes: writes
                .into_iter()
                .map(|(table, key, transactional)| Write {
                    before: self.image(&table, &key),
                    table,
                    key,
                    transactional,
                })
                .collect(),
            read_factor,
        }
    }
}

fn reported_reads(capacity: Option<&ConsumedCapacity>) -> f64 {
    capacity.and_then(|c| c.capacity_units).unwrap_or(0.0)
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        if std::env::var("BENCH_ITEMS").is_ok() {
            describe(input.downcast_ref::<TransactWriteItemsInput>(), &self.meter);
        }
        // Asked only so a Query's scanned size can be read back (see below).
        if let Some(query) = input.downcast_mut::<QueryInput>() {
            query.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        }
        let pending = self.writes_of(input);
        cfg.interceptor_state().store_put(pending);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let pending = cfg.load::<Pending>().cloned().unwrap_or_default();
        let (mut wcu, mut rcu, mut gsi) = (0.0, 0.0, 0.0);
        let operation = match context.output_or_error() {
            Err(_) => {
                // A refused condition (or a cancelled transaction) is billed for the
                // items it would have written; nothing reaches the indexes.
                for write in &pending.writes {
                    let (table, _) = billing::item_write(
                        write.before.as_ref(),
                        None,
                        write.transactional,
                        &[],
                        &TABLE_KEYS,
                    );
                    wcu += table;
                }
                "Refused"
            }
            Ok(output) => {
                for write in &pending.writes {
                    let after = self.image(&write.table, &write.key);
                    let (table, index) = billing::item_write(
                        write.before.as_ref(),
                        after.as_ref(),
                        write.transactional,
                        &self.indexes,
                        &TABLE_KEYS,
                    );
                    wcu += table + index;
                    gsi += index;
                }
                let factor = pending.read_factor;
                if let Some(o) = output.downcast_ref::<GetItemOutput>() {
                    rcu +=
                        billing::read_units(o.item.as_ref().map_or(0, billing::item_size)) * factor;
                    "GetItem"
                } else if let Some(o) = output.downcast_ref::<QueryOutput>() {
                    let bytes: usize = o.items.iter().flatten().map(billing::item_size).sum();
                    // A filter drops items after they were read: DynamoDB Local's figure
                    // counts what was scanned; take the larger.
                    rcu += (billing::read_units(bytes) * factor)
                        .max(reported_reads(o.consumed_capacity.as_ref()));
                    "Query"
                } else if let Some(o) = output.downcast_ref::<ScanOutput>() {
                    let bytes: usize = o.items.iter().flatten().map(billing::item_size).sum();
                    rcu += billing::read_units(bytes) * factor;
                    "Scan"
                } else if let Some(o) = output.downcast_ref::<BatchGetItemOutput>() {
                    rcu += o
                        .responses
                        .iter()
                        .flatten()
                        .flat_map(|(_, items)| items)
                        .map(|item| billing::read_units(billing::item_size(item)) * factor)
                        .sum::<f64>();
                    "BatchGetItem"
                } else if let Some(o) = output.downcast_ref::<TransactGetItemsOutput>() {
                    rcu += o
                        .responses
                        .iter()
                        .flatten()
                        .map(|r| {
                            billing::read_units(r.item.as_ref().map_or(0, billing::item_size))
                                * factor
                        })
                        .sum::<f64>();
                    "TransactGetItems"
                } else if output.downcast_ref::<PutItemOutput>().is_some() {
                    "PutItem"
                } else if output.downcast_ref::<UpdateItemOutput>().is_some() {
                    "UpdateItem"
                } else if output.downcast_ref::<DeleteItemOutput>().is_some() {
                    "DeleteItem"
                } else if output.downcast_ref::<TransactWriteItemsOutput>().is_some() {
                    "TransactWriteItems"
                } else if output.downcast_ref::<BatchWriteItemOutput>().is_some() {
                    "BatchWriteItem"
                } else {
                    "Other"
                }
            }
        };
        if std::env::var("BENCH_ITEMS").is_ok() && operation == "TransactWriteItems" {
            eprintln!("  billed {wcu} WCU, of which indexes {gsi}");
        }
        let mut tally = self.meter.0.lock().unwrap();
        tally.dynamodb.push(Call {
            phase: pending.phase,
            operation,
            wcu,
            rcu,
            gsi,
        });
        Ok(())
    }
}

/// `BENCH_ITEMS=1`: prints each transaction's items (key prefixes, operation, bytes).
fn describe(input: Option<&TransactWriteItemsInput>, meter: &Meter) {
    let Some(input) = input else { return };
    let phase = meter.0.lock().unwrap().phase;
    let mut line = format!("[{phase}] transaction:");
    for item in input.transact_items.iter().flatten() {
        let (kind, key, bytes) = if let Some(put) = &item.put {
            ("Put", put.item.clone(), billing::item_size(&put.item))
        } else if let Some(update) = &item.update {
            ("Update", update.key.clone(), 0)
        } else if let Some(check) = &item.condition_check {
            ("Check", check.key.clone(), 0)
        } else if let Some(delete) = &item.delete {
            ("Delete", delete.key.clone(), 0)
        } else {
            continue;
        };
        let pk = key
            .get("PK")
            .and_then(|v| v.as_s().ok())
            .map(|s| s.split('#').next().unwrap_or("").to_owned())
            .unwrap_or_default();
        let sk = key
            .get("SK")
            .and_then(|v| v.as_s().ok())
            .map(|s| s.split('#').next().unwrap_or("").to_owned())
            .unwrap_or_default();
        line += &format!(
            " {kind} {pk}/{sk}{};",
            if bytes > 0 {
                format!(" {bytes} B")
            } else {
                String::new()
            }
        );
    }
    eprintln!("{line}");
}

/// Counts SQS requests; `who` is "functions" or "pollers" (the event source mappings).
#[derive(Debug, Clone)]
struct SqsMeter(Meter, &'static str);

impl aws_sdk_sqs::config::Intercept for SqsMeter {
    fn name(&self) -> &'static str {
        "SqsMeter"
    }

    fn read_after_deserialization(
        &self,
        context: &aws_sdk_sqs::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_sqs::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sqs::config::ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
        let operation = match context.output_or_error() {
            Ok(output) => {
                if let Some(received) = output.downcast_ref::<ReceiveMessageOutput>() {
                    if received.messages.as_ref().is_none_or(Vec::is_empty) {
                        return Ok(()); // an empty poll: per queue, not per lifecycle
                    }
                    "ReceiveMessage".to_owned()
                } else {
                    use aws_sdk_sqs::operation::{
                        change_message_visibility::ChangeMessageVisibilityOutput as Visibility,
                        delete_message::DeleteMessageOutput as Delete,
                        delete_message_batch::DeleteMessageBatchOutput as DeleteBatch,
                        send_message::SendMessageOutput as Send,
                        send_message_batch::SendMessageBatchOutput as SendBatch,
                    };
                    let name = if output.downcast_ref::<Send>().is_some() {
                        "SendMessage"
                    } else if output.downcast_ref::<SendBatch>().is_some() {
                        "SendMessageBatch"
                    } else if output.downcast_ref::<Delete>().is_some() {
                        "DeleteMessage"
                    } else if output.downcast_ref::<DeleteBatch>().is_some() {
                        "DeleteMessageBatch"
                    } else if output.downcast_ref::<Visibility>().is_some() {
                        "ChangeMessageVisibility"
                    } else {
                        "Other"
                    };
                    name.to_owned()
                }
            }
            Err(_) => "Error".to_owned(),
        };
        let mut tally = self.0.0.lock().unwrap();
        let phase = tally.phase;
        tally.sqs.push((phase, self.1, operation));
        Ok(())
    }
}

/// The runner's invoker, minus the schedules (the sweeper and canary would add their
/// own reads to whichever lifecycle happened to be running).
struct NoSchedules(InProcess);

impl Invoker for NoSchedules {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Value,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Value, InvokeError>> + Send + 'a>> {
        if matches!(function, "sweeper" | "canary") {
            return Box::pin(async { Ok(Value::Null) });
        }
        self.0.invoke(function, event, timeout)
    }

    fn invoke_stream<'a>(
        &'a self,
        function: &'a str,
        event: Value,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Streamed, InvokeError>> + Send + 'a>> {
        self.0.invoke_stream(function, event)
    }
}

fn metered(
    base: &AwsClients,
    meter: &Meter,
    who: &'static str,
    indexes: &[billing::Index],
) -> AwsClients {
    let dynamodb = base
        .dynamodb
        .config()
        .to_builder()
        .interceptor(CapacityMeter {
            meter: meter.clone(),
            images: base.dynamodb.clone(),
            indexes: indexes.to_vec(),
        })
        .build();
    let sqs = base
        .sqs
        .config()
        .to_builder()
        .interceptor(SqsMeter(meter.clone(), who))
        .build();
    AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
        sqs: aws_sdk_sqs::Client::from_conf(sqs),
    }
}

const PHASES: [&str; 8] = [
    "submit",
    "route",
    "sandbox",
    "executing",
    "complete",
    "quality+charge",
    "settle",
    "setup",
];

#[tokio::main]
async fn main() {
    let lifecycles: usize = std::env::var("BENCH_LIFECYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let meter = Meter::default();
    let plain = aicity_testkit::clients().await;
    let mut template = common::world::template();
    let indexes = indexes(&template);
    let functions_clients = metered(&plain, &meter, "functions", &indexes);
    let poller_clients = metered(&plain, &meter, "pollers", &indexes);

    for queue in template.queues.iter_mut() {
        if queue.logical_id == "SettlementQueue" {
            queue.delay_seconds = Some(1);
        }
    }
    let resources = aicity_testkit::fresh_resources(&plain, &template).await;
    let env = aicity_local::runner::shared_environment(&template, &resources).unwrap();
    let parts = common::parts(&functions_clients, &env, common::Knobs::default());
    // Settle as soon as the (shortened) delay lets the message through.
    parts
        .knobs
        .settlement_clock
        .pin(time::OffsetDateTime::now_utc() + Duration::from_secs(86_400));
    let invoker: Arc<dyn Invoker> = Arc::new(NoSchedules(parts.functions.clone()));
    let running = aicity_local::runner::start(
        &aicity_local::runner::Clients {
            dynamodb: poller_clients.dynamodb.clone(),
            sqs: poller_clients.sqs.clone(),
            region: "us-east-1".into(),
        },
        aicity_local::runner::RunnerConfig {
            template,
            prefix: resources.stack_name.clone() + "-",
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            invoker,
            invoke_grace: Duration::from_secs(5),
            sqs_wait_seconds: 1,
        },
    )
    .await
    .expect("runner starts");
    let mut world = common::world::World::from((running, parts.functions.clone(), plain.clone()));
    let table = world.table().to_owned();

    meter.phase("setup");
    let buyer = world.owner(1_000_000).await;
    let seller = world.owner(0).await;
    let (agent, key) = world.reviewer(&seller, 2_500, 50).await;
    meter.take();
    let calls_before = invocations(&parts.functions);

    let started = Instant::now();
    for _ in 0..lifecycles {
        meter.phase("submit");
        let (status, body) = world
            .call(
                Method::POST,
                "/tasks",
                common::world::Auth::Bearer(&buyer.token),
                Some(json!({
                    "taskType": "code_review", "maxBudget": 5_000, "agentId": agent,
                    "input": {"description": "Review the Rust auth module",
                              "files": [{"name": "auth.rs", "content": "fn check() {}"}]},
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id: TaskId = body["data"]["id"].as_str().unwrap().parse().unwrap();
        meter.phase("route");
        wait(&plain, &table, &id, |t| t.agent_id.is_some()).await;
        meter.phase("sandbox");
        let (status, body) = world
            .call(
                Method::POST,
                &format!("/tasks/{id}/sandbox"),
                common::world::Auth::Key(&key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let sandbox = body["data"]["sandboxId"].clone();
        meter.phase("executing");
        let (status, body) = world
            .call(
                Method::POST,
                &format!("/tasks/{id}/executing"),
                common::world::Auth::Key(&key),
                Some(json!({ "sandboxId": sandbox })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        meter.phase("complete");
        let (status, body) = world
            .complete(&id.to_string(), &key, common::world::good_review())
            .await;
        assert_eq!(status, 200, "{body}");
        meter.phase("quality+charge");
        wait(&plain, &table, &id, |t| {
            t.status == aicity_domain::task::TaskStatus::Completed
        })
        .await;
        meter.phase("settle");
        wait(&plain, &table, &id, |t| t.settled_at.is_some()).await;
        // Let the pollers' deletes land in this phase.
        tokio::time::sleep(Duration::from_millis(300)).await;
        meter.phase("setup");
    }
    let elapsed = started.elapsed();
    let calls_after = invocations(&parts.functions);
    world.assert_books_balance(&[]).await;
    report(
        &meter.take(),
        lifecycles,
        &calls_before,
        &calls_after,
        elapsed,
    );
}

/// The main table's indexes, as the template declares them.
fn indexes(template: &aicity_local::template::Template) -> Vec<billing::Index> {
    let table = template
        .tables
        .iter()
        .find(|t| t.logical_id == "Table")
        .expect("the template's Table");
    table
        .indexes
        .iter()
        .map(|index| billing::Index {
            name: index.name.clone(),
            pk: index
                .keys
                .iter()
                .find(|k| k.hash)
                .unwrap()
                .attribute
                .clone(),
            sk: index
                .keys
                .iter()
                .find(|k| !k.hash)
                .map(|k| k.attribute.clone()),
            projection: match index.projection.as_str() {
                "ALL" => billing::Projection::All,
                "KEYS_ONLY" => billing::Projection::KeysOnly,
                other => panic!("projection {other} is not modelled"),
            },
        })
        .collect()
}

async fn wait(
    clients: &AwsClients,
    table: &str,
    id: &TaskId,
    done: impl Fn(&aicity_domain::task::model::Task) -> bool,
) {
    let started = Instant::now();
    loop {
        let record = aicity_store::tasks::get(&clients.dynamodb, table, id)
            .await
            .unwrap();
        if done(&record.task) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "task {id} stuck at {}",
            record.task.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const FUNCTIONS: [&str; 8] = [
    "auth",
    "tasks",
    "router",
    "quality",
    "settlement",
    "webhook-delivery",
    "vault",
    "agents",
];

fn invocations(functions: &InProcess) -> BTreeMap<&'static str, usize> {
    FUNCTIONS.iter().map(|f| (*f, functions.calls(f))).collect()
}

fn report(
    tally: &Tally,
    n: usize,
    before: &BTreeMap<&'static str, usize>,
    after: &BTreeMap<&'static str, usize>,
    elapsed: Duration,
) {
    let per = |x: f64| x / n as f64;
    println!("## Cost of one task lifecycle ({n} lifecycles, DynamoDB Local, per lifecycle)");
    println!();
    println!("| phase | DynamoDB requests | WCU | RCU | SQS requests |");
    println!("|---|---:|---:|---:|---:|");
    let (mut wcu, mut rcu, mut requests, mut sqs) = (0.0, 0.0, 0usize, 0usize);
    for phase in PHASES.iter().filter(|p| **p != "setup") {
        let calls: Vec<&Call> = tally
            .dynamodb
            .iter()
            .filter(|c| c.phase == *phase)
            .collect();
        let w: f64 = calls.iter().map(|c| c.wcu).sum();
        let r: f64 = calls.iter().map(|c| c.rcu).sum();
        let s = tally.sqs.iter().filter(|(p, _, _)| p == phase).count();
        println!(
            "| {phase} | {:.1} | {:.1} | {:.1} | {:.1} |",
            per(calls.len() as f64),
            per(w),
            per(r),
            per(s as f64)
        );
        wcu += w;
        rcu += r;
        requests += calls.len();
        sqs += s;
    }
    println!(
        "| **total** | **{:.1}** | **{:.1}** | **{:.1}** | **{:.1}** |",
        per(requests as f64),
        per(wcu),
        per(rcu),
        per(sqs as f64)
    );
    println!();
    let mut by_operation: BTreeMap<(&str, &str), (usize, f64, f64, f64)> = BTreeMap::new();
    for call in tally.dynamodb.iter().filter(|c| c.phase != "setup") {
        let entry = by_operation
            .entry((call.phase, call.operation))
            .or_default();
        entry.0 += 1;
        entry.1 += call.wcu;
        entry.2 += call.rcu;
        entry.3 += call.gsi;
    }
    println!(
        "DynamoDB by phase and operation (per lifecycle: requests, WCU, RCU, of which indexes):"
    );
    for ((phase, operation), (count, w, r, g)) in &by_operation {
        println!(
            "  {phase:<15} {operation:<19} {:>5.1} {:>6.1} {:>6.1} {:>6.1}",
            per(*count as f64),
            per(*w),
            per(*r),
            per(*g)
        );
    }
    let mut by_sqs: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (phase, who, operation) in tally.sqs.iter().filter(|(p, _, _)| *p != "setup") {
        *by_sqs.entry((who, operation.as_str())).or_default() += 1;
        let _ = phase;
    }
    println!("SQS by caller and operation (per lifecycle):");
    for ((who, operation), count) in &by_sqs {
        println!("  {who:<10} {operation:<26} {:>5.1}", per(*count as f64));
    }
    let invoked: usize = FUNCTIONS.iter().map(|f| after[f] - before[f]).sum();
    println!(
        "Lambda invocations (per lifecycle): {:.1} ({})",
        per(invoked as f64),
        FUNCTIONS
            .iter()
            .filter(|f| after[*f] > before[*f])
            .map(|f| format!("{f} {:.1}", per((after[f] - before[f]) as f64)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let dollars = per(wcu) * PRICE_WRITE_REQUEST_UNIT
        + per(rcu) * PRICE_READ_REQUEST_UNIT
        + per(sqs as f64) * PRICE_SQS_REQUEST;
    println!(
        "$ per million lifecycles, DynamoDB + SQS: {dollars:.2} \
         (on-demand: ${PRICE_WRITE_REQUEST_UNIT}/M write units, ${PRICE_READ_REQUEST_UNIT}/M read units, \
         ${PRICE_SQS_REQUEST}/M SQS requests)"
    );
    println!(
        "  + Lambda requests: {:.2} (${PRICE_LAMBDA_REQUEST}/M invocations; duration not counted)",
        per(invoked as f64) * PRICE_LAMBDA_REQUEST
    );
    println!(
        "(wall time {:.1} s for {n} lifecycles, polling included)",
        elapsed.as_secs_f64()
    );
}
