//! Test support for anything that touches storage or queues: tests talk to a real
//! emulator (moto, DynamoDB Local, LocalStack) over a real connection.
//!
//! `make test` starts one and sets `AWS_ENDPOINT_URL`; each test makes its own
//! uniquely named resources from `infra/template.yaml`, so tests run in parallel.

pub mod http;
pub mod invoke;

use std::path::PathBuf;

use aicity_local::resources::{self, Resources};
use aicity_local::template::Template;
use aicity_store::AwsClients;

/// Clients for the emulator. Panics with instructions when none is configured, so a
/// storage test can never pass by not running.
pub async fn clients() -> AwsClients {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()),
        "storage tests need an emulator: run `make test`, or set AWS_ENDPOINT_URL \
         (e.g. http://127.0.0.1:4566 for moto)"
    );
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(
        aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1"),
    );
    // The emulator accepts any credentials; real ones in the environment win.
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "testkit",
        ));
    }
    let config = loader.load().await;
    AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
    }
}

/// The project's SAM template.
pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/template.yaml")
}

pub fn template() -> Template {
    Template::load(&template_path()).expect("infra/template.yaml parses")
}

/// A prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("t{}-", ulid::Ulid::generate().to_string().to_lowercase())
}

/// A fresh copy of the template's main table; returns its name.
pub async fn fresh_table(clients: &AwsClients) -> String {
    let template = template();
    let spec = template
        .tables
        .iter()
        .find(|t| t.logical_id == "Table")
        .expect("template declares Table");
    let name = format!("{}Table", unique_prefix());
    resources::create_table(&clients.dynamodb, spec, &name)
        .await
        .expect("create table");
    name
}

/// Every table and queue of `template`, freshly made under a unique prefix.
pub async fn fresh_resources(clients: &AwsClients, template: &Template) -> Resources {
    resources::provision(
        template,
        &clients.dynamodb,
        &clients.sqs,
        &unique_prefix(),
        "us-east-1",
    )
    .await
    .expect("provision template resources")
}

/// An API function context on a fresh table, with the given limits.
pub async fn context(limits: aicity_http::Limits) -> aicity_http::Context {
    let clients = clients().await;
    let table = fresh_table(&clients).await;
    aicity_http::Context {
        clients,
        table,
        limits,
        webhook_queue_url: None,
        routing_queue_url: None,
    }
}

/// A clock tests can set: the real time unless pinned.
#[derive(Debug, Default)]
pub struct ManualClock {
    pinned: std::sync::Mutex<Option<time::OffsetDateTime>>,
}

impl ManualClock {
    pub fn pin(&self, at: time::OffsetDateTime) {
        *self.pinned.lock().expect("clock lock") = Some(at);
    }

    pub fn unpin(&self) {
        *self.pinned.lock().expect("clock lock") = None;
    }
}

impl aicity_domain::task::timing::Clock for ManualClock {
    fn now(&self) -> time::OffsetDateTime {
        self.pinned
            .lock()
            .expect("clock lock")
            .unwrap_or_else(time::OffsetDateTime::now_utc)
    }
}
