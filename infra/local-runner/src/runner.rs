//! Everything the template asks for, running: resources, gateway, pollers, schedules.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::gateway::{self, Gateway};
use crate::invoke::Invoker;
use crate::poller::{self, SqsSource};
use crate::resources::{self, ResourceError, Resources};
use crate::schedule::{self, Schedule};
use crate::template::{EventSource, Template};

/// Clients for the emulator (or AWS), from the standard configuration chain, so
/// `AWS_ENDPOINT_URL` decides where they go.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub region: String,
}

impl Clients {
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            region: config
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".to_owned()),
        }
    }
}

/// The environment every function gets: the union of what the template gives each.
/// `cargo lambda watch` has one environment for all functions, so a variable that two
/// functions set differently is an error rather than a silent pick.
pub fn shared_environment(
    template: &Template,
    resources: &Resources,
) -> Result<BTreeMap<String, String>, ResourceError> {
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    for function in &template.functions {
        for (name, value) in resources.environment(&function.environment)? {
            match merged.get(&name) {
                Some(existing) if *existing != value => {
                    return Err(ResourceError::Invalid(format!(
                        "{name} differs between functions ({existing} vs {value}); \
                         one local environment cannot hold both"
                    )));
                }
                _ => {
                    merged.insert(name, value);
                }
            }
        }
    }
    Ok(merged)
}

/// `KEY=value` lines for `cargo lambda watch --env-file`. Empty values are left out:
/// the watch rejects them, and the functions treat empty as unset anyway.
pub fn env_file(environment: &BTreeMap<String, String>) -> String {
    environment
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

/// The event sources of the template, resolved against provisioned resources.
pub fn event_sources(
    template: &Template,
    resources: &Resources,
    invoke_grace: Duration,
) -> Result<(Vec<SqsSource>, Vec<Schedule>), ResourceError> {
    let mut queues = Vec::new();
    let mut schedules = Vec::new();
    for function in &template.functions {
        // The first call of a function under `cargo lambda watch` compiles it.
        let timeout = Duration::from_secs(u64::from(function.timeout_seconds)) + invoke_grace;
        for event in &function.events {
            match event {
                EventSource::Sqs {
                    queue,
                    batch_size,
                    report_batch_item_failures,
                    ..
                } => queues.push(SqsSource {
                    function: function.binary.clone(),
                    queue: resources.queue(queue)?.clone(),
                    batch_size: *batch_size,
                    report_batch_item_failures: *report_batch_item_failures,
                    timeout,
                }),
                EventSource::Schedule {
                    name,
                    expression,
                    enabled: true,
                } => match schedule::rate_period(expression) {
                    Some(period) => schedules.push(Schedule {
                        function: function.binary.clone(),
                        rule: format!("{}-{name}", function.logical_id),
                        period,
                        timeout,
                    }),
                    None => tracing::warn!(expression, "only rate(...) schedules run locally"),
                },
                _ => {}
            }
        }
    }
    Ok((queues, schedules))
}

/// Settings for [`start`].
pub struct RunnerConfig {
    pub template: Template,
    pub prefix: String,
    pub listen: SocketAddr,
    pub invoker: Arc<dyn Invoker>,
    /// Added to each function's timeout (local builds on first call).
    pub invoke_grace: Duration,
    /// SQS long-poll wait; 0 polls without waiting.
    pub sqs_wait_seconds: i32,
}

/// A running local system; dropping it stops every task.
pub struct Running {
    pub base_url: String,
    pub resources: Resources,
    pub schedules: Vec<Schedule>,
    pub invoker: Arc<dyn Invoker>,
    pub tasks: JoinSet<()>,
}

/// Provisions resources, then serves the gateway and runs every poller and schedule.
pub async fn start(clients: &Clients, config: RunnerConfig) -> anyhow_like::Result<Running> {
    let resources = resources::provision(
        &config.template,
        &clients.dynamodb,
        &clients.sqs,
        &config.prefix,
        &clients.region,
    )
    .await?;
    let (queues, schedules) = event_sources(&config.template, &resources, config.invoke_grace)?;
    let mut tasks = JoinSet::new();

    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let router = gateway::router(Gateway {
        routes: gateway::routes(&config.template),
        invoker: config.invoker.clone(),
        invoke_timeout: Duration::from_secs(30) + config.invoke_grace,
    });
    tasks.spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(err) = axum::serve(listener, service).await {
            tracing::error!(error = %err, "gateway stopped");
        }
    });
    for source in queues {
        tracing::info!(
            function = source.function,
            queue = source.queue.name,
            "polling"
        );
        tasks.spawn(poller::run(
            clients.sqs.clone(),
            config.invoker.clone(),
            source,
            clients.region.clone(),
            config.sqs_wait_seconds,
        ));
    }
    for entry in &schedules {
        tracing::info!(function = entry.function, rule = entry.rule, period = ?entry.period, "scheduled");
        tasks.spawn(schedule::run(
            config.invoker.clone(),
            entry.clone(),
            clients.region.clone(),
        ));
    }
    Ok(Running {
        base_url: format!("http://{address}"),
        resources,
        schedules,
        invoker: config.invoker,
        tasks,
    })
}

/// A boxed error for the runner's top level.
pub mod anyhow_like {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
    pub type Result<T> = std::result::Result<T, Error>;
}
