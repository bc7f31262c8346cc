//! What every API function needs, built once per cold start.

use std::time::Duration;

use aicity_store::AwsClients;
use aicity_store::config::{MissingEnv, env_var};

/// Request limits, configurable per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per window for one API key or one owner session.
    pub per_caller: u32,
    /// Sign-in and sign-up attempts per window from one client IP.
    pub per_ip_auth: u32,
    pub window: Duration,
    /// How long a session lasts.
    pub session_ttl: Duration,
    /// How long an agent counts as live (`available`, routable) after it was last seen.
    pub agent_liveness: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_caller: 300,
            per_ip_auth: 20,
            window: Duration::from_secs(60),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            agent_liveness: Duration::from_secs(120),
        }
    }
}

fn number(name: &'static str, default: u64) -> Result<u64, MissingEnv> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().map_err(|_| MissingEnv(name)),
        _ => Ok(default),
    }
}

impl Limits {
    /// `RATE_LIMIT_PER_MINUTE`, `AUTH_RATE_LIMIT_PER_MINUTE`, `SESSION_TTL_HOURS`,
    /// `AGENT_LIVENESS_SECONDS`.
    pub fn from_env() -> Result<Self, MissingEnv> {
        let defaults = Self::default();
        Ok(Self {
            per_caller: number("RATE_LIMIT_PER_MINUTE", defaults.per_caller.into())? as u32,
            per_ip_auth: number("AUTH_RATE_LIMIT_PER_MINUTE", defaults.per_ip_auth.into())? as u32,
            window: defaults.window,
            session_ttl: Duration::from_secs(number("SESSION_TTL_HOURS", 7 * 24)? * 3600),
            agent_liveness: Duration::from_secs(number(
                "AGENT_LIVENESS_SECONDS",
                defaults.agent_liveness.as_secs(),
            )?),
        })
    }
}

/// Clients, the table and the limits.
#[derive(Debug, Clone)]
pub struct Context {
    pub clients: AwsClients,
    pub table: String,
    pub limits: Limits,
    /// Where recorded webhook events are sent for delivery (`WEBHOOK_QUEUE_URL`); unset,
    /// events are recorded and the sweeper sends them.
    pub webhook_queue_url: Option<String>,
    /// Where a released workflow step is sent to be routed (`ROUTING_QUEUE_URL`); unset,
    /// the sweeper routes it.
    pub routing_queue_url: Option<String>,
}

impl Context {
    pub async fn from_env() -> Result<Self, MissingEnv> {
        Ok(Self {
            clients: AwsClients::from_env().await,
            table: env_var("TABLE_NAME")?,
            limits: Limits::from_env()?,
            webhook_queue_url: std::env::var("WEBHOOK_QUEUE_URL")
                .ok()
                .filter(|url| !url.trim().is_empty()),
            routing_queue_url: std::env::var("ROUTING_QUEUE_URL")
                .ok()
                .filter(|url| !url.trim().is_empty()),
        })
    }

    pub fn db(&self) -> &aws_sdk_dynamodb::Client {
        &self.clients.dynamodb
    }
}
