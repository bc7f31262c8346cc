//! `make bench` (CPU): each function's own CPU per request, with criterion.
//!
//! The functions run in this process through the in-process invoker (lambda_http's own
//! adapter: API Gateway v2 event → `Request` → handler → response event, as in Lambda),
//! with events built by the local runner's gateway exactly as `make dev` builds them.
//! Their DynamoDB and SQS clients are the real SDK clients over a stub HTTP client
//! ([`stub`]): what is measured is routing, auth, validation, serde, the SDK's request
//! building, signing and parsing, and the event conversions, not a network. The store's
//! items are the ones the handlers themselves wrote while the world was set up
//! (sign-ups, an agent, a submitted task), plus the buyer's pool, built with the
//! store's own types. The request log line is formatted as in Lambda (JSON) into a
//! sink.
//!
//! Run by `scripts/bench-cpu.sh` (`cargo bench -p aicity-local --bench handlers`).

#[path = "../../tests/common/mod.rs"]
mod common;
mod stub;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aicity_domain::ids::{OwnerId, PoolId};
use aicity_domain::money::Cents;
use aicity_local::gateway::{self, IncomingRequest, Route};
use aicity_local::invoke::Invoker;
use aicity_local::resources::{LOCAL_ACCOUNT, QueueInfo, Resources};
use aicity_local::template::Template;
use aicity_store::item::Stored;
use aicity_store::vault::{Pool, pool_key};
use aicity_testkit::invoke::InProcess;
use aws_sdk_dynamodb::types::AttributeValue;
use criterion::{BatchSize, Criterion};
use serde_json::{Value, json};
use stub::Stub;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Names the template's tables and queues as a stack called `bench` would have them;
/// nothing is created (the stub answers every call).
fn resources(template: &Template) -> Resources {
    let region = "us-east-1";
    let queues = template
        .queues
        .iter()
        .map(|queue| {
            let name = format!("bench-{}", queue.logical_id);
            let info = QueueInfo {
                url: format!("http://stub.invalid/{LOCAL_ACCOUNT}/{name}"),
                arn: format!("arn:aws:sqs:{region}:{LOCAL_ACCOUNT}:{name}"),
                name,
                visibility_timeout: queue.visibility_timeout.unwrap_or(30),
                max_receive_count: None,
                dead_letter_url: None,
            };
            (queue.logical_id.clone(), info)
        })
        .collect();
    Resources {
        region: region.into(),
        stack_name: "bench".into(),
        parameters: template.parameters.clone(),
        tables: template
            .tables
            .iter()
            .map(|t| (t.logical_id.clone(), format!("bench-{}", t.logical_id)))
            .collect(),
        queues,
    }
}

/// DynamoDB's JSON wire format of one attribute value.
fn wire(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::L(list) => json!({ "L": list.iter().map(wire).collect::<Vec<_>>() }),
        AttributeValue::M(map) => json!({ "M": wire_item(map) }),
        AttributeValue::Ss(set) => json!({ "SS": set }),
        AttributeValue::Ns(set) => json!({ "NS": set }),
        other => panic!("no stub wire format for {other:?}"),
    }
}

fn wire_item(item: &HashMap<String, AttributeValue>) -> serde_json::Map<String, Value> {
    item.iter().map(|(k, v)| (k.clone(), wire(v))).collect()
}

/// The gateway's routes and the in-process functions, called as the runner calls them.
struct Api {
    routes: Vec<Route>,
    functions: InProcess,
}

impl Api {
    /// The API Gateway v2 event `make dev`'s gateway would build for this request.
    fn event(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (String, Value) {
        let uri: http::Uri = path.parse().expect("a path");
        let (route, params) =
            gateway::find_route(&self.routes, method, uri.path()).expect("a route of the template");
        let mut map = http::HeaderMap::new();
        map.insert("host", "127.0.0.1:4000".parse().unwrap());
        map.insert("user-agent", "aicity-bench".parse().unwrap());
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        if !body.is_empty() {
            map.insert("content-type", "application/json".parse().unwrap());
        }
        let incoming = IncomingRequest {
            method,
            uri: &uri,
            headers: &map,
            body: body.as_bytes(),
            source_ip: "127.0.0.1".into(),
        };
        let event = gateway::api_gateway_event(route, &params, &incoming);
        (route.function.clone(), event)
    }

    async fn invoke(&self, function: &str, event: Value) -> Value {
        self.functions
            .invoke(function, event, TIMEOUT)
            .await
            .expect("the function answers")
    }

    /// One request, checked: (status, body).
    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let (function, event) = self.event(method, path, headers, body.as_ref());
        let output = self.invoke(&function, event).await;
        let status = output["statusCode"].as_u64().unwrap_or_default() as u16;
        let body = output["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, body)
    }

    /// Signs an owner up and in: (owner id, session token).
    async fn owner(&self, email: &str) -> (OwnerId, String) {
        let credentials = json!({ "name": "Bench", "email": email, "password": "long-password" });
        let (status, body) = self
            .call("POST", "/api/v1/auth/sign-up", &[], Some(credentials))
            .await;
        assert_eq!(status, 201, "sign-up: {body}");
        let id = body["data"]["user"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let credentials = json!({ "email": email, "password": "long-password" });
        let (status, body) = self
            .call("POST", "/api/v1/auth/sign-in", &[], Some(credentials))
            .await;
        assert_eq!(status, 200, "sign-in: {body}");
        (id, body["data"]["token"].as_str().unwrap().to_owned())
    }
}

/// What the measured requests need: the world set up through the handlers.
struct World {
    api: Api,
    bearer: String,
    agent: String,
    task: String,
    routing_event: Value,
}

async fn world(stub: &Stub, template: &Template) -> World {
    let env = aicity_local::runner::shared_environment(template, &resources(template))
        .expect("the template's environment");
    let parts = common::parts(&stub.clients(), &env, common::Knobs::default());
    let api = Api {
        routes: gateway::routes(template),
        functions: parts.functions.clone(),
    };
    let (buyer, token) = api.owner("buyer@bench.example").await;
    let (_, seller) = api.owner("seller@bench.example").await;
    let bearer = format!("Bearer {token}");
    let seller = format!("Bearer {seller}");
    let registration = json!({
        "displayName": "Reviewer", "framework": "custom", "description": "Reviews code",
        "capabilities": [{"category": "code_review", "tags": ["rust"]}],
        "pricing": {"code_review": 2_500}, "maxConcurrentTasks": 50,
    });
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/agents",
            &[("authorization", &seller)],
            Some(registration),
        )
        .await;
    assert_eq!(status, 201, "register: {body}");
    let agent = body["data"]["agent"]["id"].as_str().unwrap().to_owned();
    let key = body["data"]["apiKey"].as_str().unwrap().to_owned();
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/agents/me/heartbeat",
            &[("x-api-key", &key)],
            None,
        )
        .await;
    assert_eq!(status, 200, "heartbeat: {body}");
    // The pool as a funded owner's is stored (a top-up goes through the payment provider).
    let pool = Pool {
        id: PoolId::new(),
        owner_id: buyer,
        balance: Cents(1_000_000_000),
        held: Cents(0),
        available: Cents(1_000_000_000),
        auto_top_up: Default::default(),
        external_balance: Cents(-1_000_000_000),
    };
    let item = Stored::new(pool_key(&buyer), pool)
        .to_item()
        .expect("pool item");
    stub.put(wire_item(&item));
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/tasks",
            &[("authorization", &bearer)],
            Some(submission(&agent)),
        )
        .await;
    assert_eq!(status, 201, "submit: {body}");
    let task = body["data"]["id"].as_str().unwrap().to_owned();
    let routing_url = &env["ROUTING_QUEUE_URL"];
    let message = stub
        .last_sent(routing_url)
        .expect("the submit sent a routing message");
    let routing_event = routing_event(&message, template);
    World {
        api,
        bearer,
        agent,
        task,
        routing_event,
    }
}

fn submission(agent: &str) -> Value {
    json!({
        "taskType": "code_review", "maxBudget": 5_000, "agentId": agent,
        "input": {"description": "Review the Rust auth module",
                  "files": [{"name": "auth.rs", "content": "fn check() {}"}]},
    })
}

/// The SQS event the runner's poller hands the router for `body`.
fn routing_event(body: &str, template: &Template) -> Value {
    let arn = resources(template).queues["RoutingQueue"].arn.clone();
    let message = aws_sdk_sqs::types::Message::builder()
        .message_id(ulid::Ulid::generate().to_string())
        .receipt_handle("stub-receipt")
        .body(body)
        .attributes(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            "1",
        )
        .build();
    json!({ "Records": [aicity_local::poller::sqs_record(&message, &arn, "us-east-1")] })
}

/// What one request asked of DynamoDB and SQS, e.g. `GetItem×2 UpdateItem`: shows the
/// measured path is the real one (a stub answer that sent a handler down an error path
/// would show up here and in the status check).
fn describe(calls: Vec<String>) -> String {
    let mut counted: BTreeMap<String, usize> = BTreeMap::new();
    for call in calls {
        let operation = call.rsplit('.').next().unwrap_or(&call).to_owned();
        *counted.entry(operation).or_default() += 1;
    }
    let parts: Vec<String> = counted
        .into_iter()
        .map(|(op, n)| if n == 1 { op } else { format!("{op}×{n}") })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

fn status(output: &Value) -> u64 {
    output["statusCode"].as_u64().unwrap_or_default()
}

fn main() {
    // The request log line costs CPU in Lambda too: format it as there, into a sink.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_target(false)
        .json()
        .flatten_event(true)
        .with_writer(std::io::sink)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let template = aicity_testkit::template();
    let stub = Stub::default();
    let world = runtime.block_on(world(&stub, &template));
    stub.freeze();
    let api = &world.api;

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("handlers");
    let requests: BTreeMap<&str, (String, Value, u64)> = [
        (
            "GET health",
            api.event("GET", "/api/v1/health", &[], None),
            200,
        ),
        (
            "GET vault pool",
            api.event(
                "GET",
                "/api/v1/vault/pool",
                &[("authorization", &world.bearer)],
                None,
            ),
            200,
        ),
        (
            "GET task",
            api.event(
                "GET",
                &format!("/api/v1/tasks/{}", world.task),
                &[("authorization", &world.bearer)],
                None,
            ),
            200,
        ),
    ]
    .into_iter()
    .map(|(name, (function, event), expected)| (name, (function, event, expected)))
    .collect();
    for (name, (function, event, expected)) in &requests {
        let (output, calls) = stub.traced(|| runtime.block_on(api.invoke(function, event.clone())));
        assert_eq!(status(&output), *expected, "{name}: {output}");
        println!("{name}: {}", describe(calls));
        group.bench_function(*name, |b| {
            b.iter_batched(
                || event.clone(),
                |event| runtime.block_on(api.invoke(function, event)),
                BatchSize::SmallInput,
            )
        });
    }

    // Each submit carries its own Idempotency-Key, as the SDK and CLI send it.
    let submit = || {
        let key = ulid::Ulid::generate().to_string();
        api.event(
            "POST",
            "/api/v1/tasks",
            &[("authorization", &world.bearer), ("idempotency-key", &key)],
            Some(&submission(&world.agent)),
        )
    };
    let (function, event) = submit();
    let (output, calls) = stub.traced(|| runtime.block_on(api.invoke(&function, event)));
    assert_eq!(status(&output), 201, "POST task: {output}");
    println!("POST task (submit): {}", describe(calls));
    group.bench_function("POST task (submit)", |b| {
        b.iter_batched(
            || submit().1,
            |event| runtime.block_on(api.invoke(&function, event)),
            BatchSize::SmallInput,
        )
    });

    // The router's SQS event: the task as submitted, its agent live; the routing
    // transaction "succeeds" every time (the stub keeps nothing once frozen).
    let (output, calls) =
        stub.traced(|| runtime.block_on(api.invoke("router", world.routing_event.clone())));
    println!("router SQS event: {}", describe(calls));
    assert_eq!(output["batchItemFailures"], json!([]), "router: {output}");
    group.bench_function("router SQS event", |b| {
        b.iter_batched(
            || world.routing_event.clone(),
            |event| runtime.block_on(api.invoke("router", event)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
    criterion.final_summary();
}
