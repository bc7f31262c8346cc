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
#[allow(dead_code)] // used by end_to_end.rs, not by fixtures.rs
pub async fn start(template: Template) -> (Running, InProcess, aicity_store::AwsClients) {
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
            invoker: Arc::new(functions.clone()),
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
