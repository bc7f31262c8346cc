//! What every API function needs, built once per cold start.

use std::time::Duration;

use aicity_store::AwsClients;
use aicity_store::config::{MissingEnv, env_var};

/// Request limits, configurable per deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per window for one principal: an owner (all its sessions) or an agent
    /// (whatever its key).
    pub per_caller: u32,
    /// Sign-in and sign-up attempts per window from one client IP.
    pub per_ip_auth: u32,
    pub window: Duration,
    /// Requests per minute from one client IP to the routes callable without
    /// credentials (sign-up, sign-in, health).
    pub anonymous_per_minute: u32,
    /// Sign-in attempts per `sign_in_account_window` for one account (normalized
    /// email), from any IP; a successful one is given back.
    pub sign_in_per_account: u32,
    pub sign_in_account_window: Duration,
    /// Failed authentications (unknown or revoked key, unknown or expired session,
    /// unknown Trust API key) per `failed_auth_window` from one client IP; past them
    /// the IP gets `429` before its credentials are looked up.
    pub failed_auth_per_ip: u32,
    pub failed_auth_window: Duration,
    /// The batched limiter (principal and anonymous limits): an instance writes its
    /// count every `rate_limit_batch` hits (1 = every hit) or `rate_limit_flush` after
    /// its last write.
    pub rate_limit_batch: u32,
    pub rate_limit_flush: Duration,
    /// How long an instance trusts an agent's owner status it read (0 = read it on
    /// every agent request).
    pub owner_status_cache: Duration,
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
            anonymous_per_minute: 60,
            sign_in_per_account: 10,
            sign_in_account_window: Duration::from_secs(15 * 60),
            failed_auth_per_ip: 30,
            failed_auth_window: Duration::from_secs(5 * 60),
            rate_limit_batch: 10,
            rate_limit_flush: Duration::from_secs(10),
            owner_status_cache: Duration::from_secs(5),
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
    /// `RATE_LIMIT_PER_MINUTE`, `AUTH_RATE_LIMIT_PER_MINUTE`,
    /// `RATE_LIMIT_ANONYMOUS_PER_MINUTE`, `SIGN_IN_LIMIT_PER_ACCOUNT`,
    /// `SIGN_IN_LIMIT_WINDOW_SECONDS`, `FAILED_AUTH_LIMIT_PER_IP`,
    /// `FAILED_AUTH_WINDOW_SECONDS`, `RATE_LIMIT_BATCH`, `RATE_LIMIT_FLUSH_SECONDS`,
    /// `OWNER_STATUS_CACHE_SECONDS`, `SESSION_TTL_HOURS`, `AGENT_LIVENESS_SECONDS`.
    pub fn from_env() -> Result<Self, MissingEnv> {
        let defaults = Self::default();
        let count = |name, default: u32| number(name, default.into()).map(|n| n as u32);
        let seconds =
            |name, default: Duration| number(name, default.as_secs()).map(Duration::from_secs);
        Ok(Self {
            per_caller: count("RATE_LIMIT_PER_MINUTE", defaults.per_caller)?,
            per_ip_auth: count("AUTH_RATE_LIMIT_PER_MINUTE", defaults.per_ip_auth)?,
            window: defaults.window,
            anonymous_per_minute: count(
                "RATE_LIMIT_ANONYMOUS_PER_MINUTE",
                defaults.anonymous_per_minute,
            )?,
            sign_in_per_account: count("SIGN_IN_LIMIT_PER_ACCOUNT", defaults.sign_in_per_account)?,
            sign_in_account_window: seconds(
                "SIGN_IN_LIMIT_WINDOW_SECONDS",
                defaults.sign_in_account_window,
            )?,
            failed_auth_per_ip: count("FAILED_AUTH_LIMIT_PER_IP", defaults.failed_auth_per_ip)?,
            failed_auth_window: seconds("FAILED_AUTH_WINDOW_SECONDS", defaults.failed_auth_window)?,
            rate_limit_batch: count("RATE_LIMIT_BATCH", defaults.rate_limit_batch)?.max(1),
            rate_limit_flush: seconds("RATE_LIMIT_FLUSH_SECONDS", defaults.rate_limit_flush)?,
            owner_status_cache: seconds("OWNER_STATUS_CACHE_SECONDS", defaults.owner_status_cache)?,
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
