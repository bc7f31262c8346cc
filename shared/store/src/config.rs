//! Clients and names, built once per cold start from the environment.

use aws_config::BehaviorVersion;

/// The AWS clients every function shares. Cheap to clone (reference counted).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Loads region, credentials and endpoint the standard way, so `AWS_ENDPOINT_URL`
    /// (moto, LocalStack, DynamoDB Local) or real AWS work unchanged.
    pub async fn from_env() -> Self {
        let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            sqs: aws_sdk_sqs::Client::new(&shared),
        }
    }
}

/// Where things are: filled from the environment the template sets.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The single table (`TABLE_NAME`).
    pub table: String,
}

/// A required environment variable was missing.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingEnv(pub &'static str);

/// Reads a required environment variable.
pub fn env_var(name: &'static str) -> Result<String, MissingEnv> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(MissingEnv(name))
}

impl StoreConfig {
    pub fn from_env() -> Result<Self, MissingEnv> {
        Ok(Self {
            table: env_var("TABLE_NAME")?,
        })
    }
}
