//! Shared by the runner's integration tests: the project's functions in-process, and a
//! runner serving them from the template.
#![allow(dead_code)] // each test file uses part of this

pub mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aicity_local::invoke::Invoker;
use aicity_local::runner::{self, Clients, RunnerConfig, Running};
use aicity_local::template::Template;
use aicity_store::AwsClients;
use aicity_testkit::ManualClock;
use aicity_testkit::invoke::InProcess;
use canary::Canary;
use health::Health;

/// What a test can turn: the clocks the functions read and where the tasks function
/// sends routing messages.
#[derive(Clone, Default)]
pub struct Knobs {
    pub tasks_clock: Arc<ManualClock>,
    pub settlement_clock: Arc<ManualClock>,
    /// Send routing messages here instead (a queue that does not exist drops them).
    pub routing_queue_override: Option<String>,
    /// The stream function's limits (tests use short ones).
    pub stream_limits: Option<stream::StreamLimits>,
    /// The quality gate instead of the rule-based one.
    pub quality_gate: Option<Arc<dyn aicity_quality::QualityGate>>,
    /// The payment provider of the vault, tasks and sweeper instead of the local one.
    pub payments: Option<Arc<dyn aicity_vault::PaymentProvider>>,
    /// Gate errors a task may see (3 unless set).
    pub quality_max_attempts: Option<u32>,
    /// The courts function's clock (response deadlines).
    pub courts_clock: Arc<ManualClock>,
    /// The embassy function's clock (approval expiry).
    pub embassy_clock: Arc<ManualClock>,
    /// Webhooks: refuse http://127.0.0.1 receivers (allowed unless set, as `make dev`).
    pub webhook_deny_loopback: bool,
    /// Webhooks: the backoff between attempts (the template's unless set).
    pub webhook_retry: Option<aicity_domain::webhooks::RetrySchedule>,
    /// Webhooks: names resolved to fixed addresses (the rest by the system).
    pub webhook_names: std::collections::HashMap<String, Vec<std::net::IpAddr>>,
    /// Webhooks: no key to seal secrets with.
    pub webhook_no_key: bool,
    /// Webhooks: how long a receiver has to answer (10 s unless set).
    pub webhook_timeout: Option<Duration>,
    /// The webhook delivery function's clock (failure streaks, auto-disable).
    pub webhook_clock: Arc<ManualClock>,
    /// The request limits of every API function (the defaults unless set; benches
    /// raise them so the limiter is not what they measure).
    pub limits: Option<aicity_http::Limits>,
}

/// The Courts admin in tests, as `make dev` sets it.
pub const ADMIN_EMAIL: &str = "admin@aicity.local";

/// Handles on functions a test drives directly.
pub struct Parts {
    pub functions: InProcess,
    pub api: Arc<aicity_http::Context>,
    pub vault: Arc<vault::Vault>,
    pub tasks: Arc<tasks::Tasks>,
    pub router: Arc<router::Router>,
    pub quality: Arc<quality::Quality>,
    pub sweeper: Arc<sweeper::Sweeper>,
    pub settlement: Arc<settlement::Settlement>,
    pub courts: Arc<courts::Courts>,
    pub embassy: Arc<embassy::Embassy>,
    pub webhooks: Arc<webhooks::Webhooks>,
    pub webhook_delivery: Arc<webhook_delivery::Deliverer>,
    pub knobs: Knobs,
}

/// The project's functions, configured from the environment the template gives them.
pub fn functions(clients: &AwsClients, env: &BTreeMap<String, String>) -> InProcess {
    parts(clients, env, Knobs::default()).functions
}

pub fn parts(clients: &AwsClients, env: &BTreeMap<String, String>, knobs: Knobs) -> Parts {
    // Function logs in test output (shown for failing tests): `RUST_LOG=warn` etc.
    aicity_http::logging::init();
    let table = env["TABLE_NAME"].clone();
    let health = Arc::new(Health {
        clients: clients.clone(),
        table: table.clone(),
        canary_queue_url: env["CANARY_QUEUE_URL"].clone(),
        limits: knobs.limits.unwrap_or_default(),
    });
    let docs = Arc::new(docs::Docs {
        clients: clients.clone(),
        table: table.clone(),
        limits: knobs.limits.unwrap_or_default(),
    });
    let canary = Arc::new(Canary {
        clients: clients.clone(),
        table: table.clone(),
        canary_queue_url: env["CANARY_QUEUE_URL"].clone(),
    });
    let api = aicity_http::Context {
        webhook_queue_url: env.get("WEBHOOK_QUEUE_URL").cloned(),
        routing_queue_url: env.get("ROUTING_QUEUE_URL").cloned(),
        clients: clients.clone(),
        table: table.clone(),
        limits: knobs.limits.unwrap_or_default(),
    };
    let payments = || -> Box<dyn aicity_vault::PaymentProvider> {
        match &knobs.payments {
            Some(provider) => Box::new(provider.clone()),
            None => Box::new(aicity_vault::payments::LocalProvider::new(
                clients.dynamodb.clone(),
                table.clone(),
            )),
        }
    };
    let sandbox_root = std::env::temp_dir().join("aicity-test-sandboxes");
    let vault = Arc::new(vault::Vault {
        ctx: api.clone(),
        payments: payments(),
    });
    let tasks = Arc::new(tasks::Tasks {
        ctx: api.clone(),
        clock: knobs.tasks_clock.clone(),
        refund_window: aicity_domain::task::timing::REFUND_WINDOW,
        disputes: aicity_tasks::disputes::DisputeRules::default(),
        approval_ttl: std::time::Duration::from_secs(
            aicity_tasks::budgets::DEFAULT_APPROVAL_TTL_HOURS * 3600,
        ),
        sqs: clients.sqs.clone(),
        payments: payments(),
        sandboxes: Box::new(aicity_sandbox::LocalSandboxes::new(&sandbox_root)),
        routing_queue_url: knobs
            .routing_queue_override
            .clone()
            .unwrap_or_else(|| env["ROUTING_QUEUE_URL"].clone()),
        quality_queue_url: env["QUALITY_QUEUE_URL"].clone(),
    });
    let router = Arc::new(router::Router {
        ctx: api.clone(),
        sqs: clients.sqs.clone(),
        queue_url: env["ROUTING_QUEUE_URL"].clone(),
        max_attempts: knobs.quality_max_attempts.unwrap_or(3),
        backoff_base: Duration::from_secs(1),
    });
    let quality = Arc::new(quality::Quality {
        ctx: api.clone(),
        gate: match &knobs.quality_gate {
            Some(gate) => Box::new(gate.clone()),
            None => Box::new(aicity_quality::RuleBasedGate),
        },
        pass_mark: aicity_domain::task::quality::DEFAULT_PASS_MARK,
        max_attempts: knobs.quality_max_attempts.unwrap_or(3),
        settlement: Some((clients.sqs.clone(), env["SETTLEMENT_QUEUE_URL"].clone())),
    });
    let settlement = Arc::new(settlement::Settlement {
        ctx: api.clone(),
        sqs: clients.sqs.clone(),
        queue_url: env["SETTLEMENT_QUEUE_URL"].clone(),
        clock: knobs.settlement_clock.clone(),
        window: aicity_domain::task::timing::REFUND_WINDOW,
    });
    let sweeper = Arc::new(sweeper::Sweeper {
        ctx: api.clone(),
        sqs: clients.sqs.clone(),
        routing_queue_url: env["ROUTING_QUEUE_URL"].clone(),
        quality_queue_url: env["QUALITY_QUEUE_URL"].clone(),
        sandboxes: Box::new(aicity_sandbox::LocalSandboxes::new(&sandbox_root)),
        payments: payments(),
        clock: knobs.settlement_clock.clone(),
        refund_window: aicity_domain::task::timing::REFUND_WINDOW,
        deadlines: sweeper::Deadlines::default(),
        budget: 200,
    });
    let courts = Arc::new(courts::Courts {
        ctx: api.clone(),
        clock: knobs.courts_clock.clone(),
        admins: vec![ADMIN_EMAIL.to_owned()],
    });
    let embassy = Arc::new(embassy::Embassy {
        ctx: api.clone(),
        sqs: clients.sqs.clone(),
        routing_queue_url: env["ROUTING_QUEUE_URL"].clone(),
        clock: knobs.embassy_clock.clone(),
    });
    let sealer: Option<Arc<dyn aicity_store::sealing::SecretSealer>> = (!knobs.webhook_no_key)
        .then(|| {
            Arc::new(
                aicity_store::sealing::AesGcmSealer::from_hex(aicity_store::sealing::DEV_KEY_HEX)
                    .expect("the dev key"),
            ) as Arc<dyn aicity_store::sealing::SecretSealer>
        });
    let resolver: Arc<dyn aicity_http::ssrf::Resolver> =
        Arc::new(aicity_http::ssrf::StaticResolver {
            names: knobs.webhook_names.clone(),
        });
    let webhooks = Arc::new(webhooks::Webhooks {
        ctx: api.clone(),
        sqs: clients.sqs.clone(),
        sealer: sealer.clone(),
        allow_loopback: !knobs.webhook_deny_loopback,
        resolver: resolver.clone(),
    });
    let webhook_delivery = Arc::new(webhook_delivery::Deliverer {
        ctx: api.clone(),
        sqs: clients.sqs.clone(),
        queue_url: env["WEBHOOK_QUEUE_URL"].clone(),
        sealer,
        allow_loopback: !knobs.webhook_deny_loopback,
        resolver,
        schedule: knobs.webhook_retry.clone().unwrap_or_else(|| {
            aicity_domain::webhooks::RetrySchedule::parse(&env["WEBHOOK_RETRY_SECONDS"])
                .expect("WEBHOOK_RETRY_SECONDS")
        }),
        disable_after: Duration::from_secs(
            env["WEBHOOK_DISABLE_AFTER_HOURS"]
                .parse::<u64>()
                .expect("WEBHOOK_DISABLE_AFTER_HOURS")
                * 3600,
        ),
        timeout: knobs.webhook_timeout.unwrap_or(Duration::from_secs(
            aicity_domain::webhooks::DELIVERY_TIMEOUT_SECONDS,
        )),
        clock: knobs.webhook_clock.clone(),
    });
    let streamer = Arc::new(stream::Streamer {
        ctx: api.clone(),
        limits: knobs.stream_limits.unwrap_or(stream::StreamLimits {
            poll: Duration::from_millis(100),
            heartbeat: Duration::from_millis(500),
            max_duration: Duration::from_secs(30),
            ..stream::StreamLimits::default()
        }),
    });
    let trust = Arc::new(trust::Trust {
        ctx: api.clone(),
        clock: Arc::new(aicity_domain::task::timing::SystemClock),
        daily_limit: env["TRUST_DAILY_LIMIT"].parse().expect("TRUST_DAILY_LIMIT"),
    });
    let api = Arc::new(api);
    let (for_auth, for_agents) = (api.clone(), api.clone());
    let (for_settlement, for_sweeper) = (settlement.clone(), sweeper.clone());
    let for_courts = courts.clone();
    let for_embassy = embassy.clone();
    let (for_webhooks, for_webhook_delivery) = (webhooks.clone(), webhook_delivery.clone());
    let (for_vault, for_tasks) = (vault.clone(), tasks.clone());
    let (for_router, for_quality) = (router.clone(), quality.clone());
    let functions = InProcess::new()
        .http("auth", move |request| {
            let api = for_auth.clone();
            async move { auth::handle(&api, request).await }
        })
        .http("agents", move |request| {
            let api = for_agents.clone();
            async move { agents::handle(&api, request).await }
        })
        .http("vault", move |request| {
            let vault = for_vault.clone();
            async move { vault::handle(&vault, request).await }
        })
        .http("tasks", move |request| {
            let tasks = for_tasks.clone();
            async move { tasks::handle(&tasks, request).await }
        })
        .event("router", move |event| {
            let router = for_router.clone();
            async move { Ok::<_, lambda_http::Error>(router::handle(&router, event).await) }
        })
        .event("quality", move |event| {
            let quality = for_quality.clone();
            async move { Ok::<_, lambda_http::Error>(quality::handle(&quality, event).await) }
        })
        .event("settlement", move |event| {
            let settlement = for_settlement.clone();
            async move { Ok::<_, lambda_http::Error>(settlement::handle(&settlement, event).await) }
        })
        .event("sweeper", move |_event: serde_json::Value| {
            let sweeper = for_sweeper.clone();
            async move {
                let report = sweeper::sweep(&sweeper).await.map_err(|e| e.to_string())?;
                Ok::<_, lambda_http::Error>(report)
            }
        })
        .http("trust", move |request| {
            let trust = trust.clone();
            async move { trust::handle(&trust, request).await }
        })
        .http("courts", move |request| {
            let courts = for_courts.clone();
            async move { courts::handle(&courts, request).await }
        })
        .http("exchange", |request| async move {
            Ok(exchange::handle(&request))
        })
        .http("embassy", move |request| {
            let embassy = for_embassy.clone();
            async move { embassy::handle(&embassy, request).await }
        })
        .http("webhooks", move |request| {
            let webhooks = for_webhooks.clone();
            async move { webhooks::handle(&webhooks, request).await }
        })
        .event("webhook-delivery", move |event| {
            let deliverer = for_webhook_delivery.clone();
            async move {
                Ok::<_, lambda_http::Error>(webhook_delivery::handle(&deliverer, event).await)
            }
        })
        .streaming_http("stream", move |request| {
            let streamer = streamer.clone();
            async move { stream::handle(&streamer, request).await }
        })
        .http("health", move |request| {
            let health = health.clone();
            async move { health::handle(&health, request).await }
        })
        .http("docs", move |request| {
            let docs = docs.clone();
            async move { docs::handle(&docs, request).await }
        })
        .event("canary", move |event| {
            let canary = canary.clone();
            async move { canary::handle(&canary, event).await }
        });
    Parts {
        functions,
        api,
        vault,
        tasks,
        router,
        quality,
        sweeper,
        settlement,
        courts,
        embassy,
        webhooks,
        webhook_delivery,
        knobs,
    }
}

pub async fn start(template: Template) -> (Running, InProcess, AwsClients) {
    start_with(template, |functions| Arc::new(functions)).await
}

/// [`start`], with the invoker the runner uses wrapped by `wrap` (fault injection).
pub async fn start_with(
    template: Template,
    wrap: impl FnOnce(InProcess) -> Arc<dyn Invoker>,
) -> (Running, InProcess, AwsClients) {
    let (running, parts, clients) = start_full(template, Knobs::default(), wrap).await;
    (running, parts.functions, clients)
}

/// Everything: the runner, the parts a test may drive, the clients.
pub async fn start_full(
    template: Template,
    knobs: Knobs,
    wrap: impl FnOnce(InProcess) -> Arc<dyn Invoker>,
) -> (Running, Parts, AwsClients) {
    let clients = aicity_testkit::clients().await;
    let runner_clients = Clients {
        dynamodb: clients.dynamodb.clone(),
        sqs: clients.sqs.clone(),
        region: "us-east-1".into(),
    };
    // Provision first so the functions' environment can be resolved, exactly as
    // `make dev` writes the env file before starting the functions.
    let resources = aicity_testkit::fresh_resources(&clients, &template).await;
    let env = runner::shared_environment(&template, &resources).unwrap();
    let parts = parts(&clients, &env, knobs);
    let running = runner::start(
        &runner_clients,
        RunnerConfig {
            template,
            prefix: resources.stack_name.clone() + "-",
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            invoker: wrap(parts.functions.clone()),
            invoke_grace: Duration::from_secs(5),
            sqs_wait_seconds: 1,
        },
    )
    .await
    .expect("runner starts");
    assert_eq!(
        running.resources.tables, resources.tables,
        "same resources reused"
    );
    (running, parts, clients)
}
