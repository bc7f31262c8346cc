//! Shared by the runner's integration tests: the project's functions in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aicity_local::runner::{self, Clients, RunnerConfig, Running};
use aicity_local::template::Template;
use aicity_store::AwsClients;
use aicity_testkit::invoke::InProcess;
use canary::Canary;
use health::Health;

/// The project's functions, configured from the environment the template gives them.
pub fn functions(
    clients: &AwsClients,
    env: &std::collections::BTreeMap<String, String>,
) -> InProcess {
    let health = Arc::new(Health {
        clients: clients.clone(),
        table: env["TABLE_NAME"].clone(),
        canary_queue_url: env["CANARY_QUEUE_URL"].clone(),
    });
    let canary = Arc::new(Canary {
        clients: clients.clone(),
        table: env["TABLE_NAME"].clone(),
        canary_queue_url: env["CANARY_QUEUE_URL"].clone(),
    });
    let api = Arc::new(aicity_http::Context {
        clients: clients.clone(),
        table: env["TABLE_NAME"].clone(),
        limits: aicity_http::Limits::default(),
    });
    let for_agents = api.clone();
    let tasks = Arc::new(tasks::Tasks {
        ctx: (*api).clone(),
        sqs: clients.sqs.clone(),
        payments: Box::new(aicity_vault::payments::LocalProvider::new(
            clients.dynamodb.clone(),
            env["TABLE_NAME"].clone(),
        )),
        sandboxes: Box::new(aicity_sandbox::LocalSandboxes::new(
            std::env::temp_dir().join("aicity-test-sandboxes"),
        )),
        routing_queue_url: env["ROUTING_QUEUE_URL"].clone(),
        quality_queue_url: env["QUALITY_QUEUE_URL"].clone(),
    });
    let router = Arc::new(router::Router {
        ctx: (*api).clone(),
        sqs: clients.sqs.clone(),
        queue_url: env["ROUTING_QUEUE_URL"].clone(),
        max_attempts: 3,
        backoff_base: std::time::Duration::from_secs(1),
    });
    let quality = Arc::new(quality::Quality {
        ctx: (*api).clone(),
        gate: Box::new(aicity_quality::RuleBasedGate),
        pass_mark: aicity_domain::task::quality::DEFAULT_PASS_MARK,
    });
    let vault = Arc::new(vault::Vault {
        ctx: (*api).clone(),
        payments: Box::new(aicity_vault::payments::LocalProvider::new(
            clients.dynamodb.clone(),
            env["TABLE_NAME"].clone(),
        )),
    });
    InProcess::new()
        .http("auth", move |request| {
            let api = api.clone();
            async move { auth::handle(&api, request).await }
        })
        .http("agents", move |request| {
            let api = for_agents.clone();
            async move { agents::handle(&api, request).await }
        })
        .http("vault", move |request| {
            let vault = vault.clone();
            async move { vault::handle(&vault, request).await }
        })
        .http("tasks", move |request| {
            let tasks = tasks.clone();
            async move { tasks::handle(&tasks, request).await }
        })
        .event("router", move |event| {
            let router = router.clone();
            async move { Ok::<_, lambda_http::Error>(router::handle(&router, event).await) }
        })
        .event("quality", move |event| {
            let quality = quality.clone();
            async move { Ok::<_, lambda_http::Error>(quality::handle(&quality, event).await) }
        })
        .http("health", move |request| {
            let health = health.clone();
            async move { health::handle(&health, request).await }
        })
        .event("canary", move |event| {
            let canary = canary.clone();
            async move { canary::handle(&canary, event).await }
        })
}

/// Starts the runner for `template` with the project's functions in-process.
#[allow(dead_code)] // used by some test files, not all
pub async fn start(template: Template) -> (Running, InProcess, aicity_store::AwsClients) {
    start_with(template, |functions| Arc::new(functions)).await
}

/// [`start`], with the invoker the runner uses wrapped by `wrap` (fault injection).
#[allow(dead_code)]
pub async fn start_with(
    template: Template,
    wrap: impl FnOnce(InProcess) -> Arc<dyn aicity_local::invoke::Invoker>,
) -> (Running, InProcess, aicity_store::AwsClients) {
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
    let functions = functions(&clients, &env);
    let running = runner::start(
        &runner_clients,
        RunnerConfig {
            template,
            prefix: resources.stack_name.clone() + "-",
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            invoker: wrap(functions.clone()),
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
    (running, functions, clients)
}
