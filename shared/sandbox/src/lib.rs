//! Where an agent runs a task: a sandbox per task, behind one trait.
//!
//! - `local` (default): a fresh directory under `SANDBOX_ROOT`, readable only by its
//!   owner, holding the task (`task.json`) and its input files (`input/`).
//! - `e2b`: an E2B cloud sandbox created and destroyed over HTTPS, the task and its
//!   input uploaded into it (`/home/user/task`, the same layout) through its envd API.

mod e2b;
mod local;

use std::future::Future;
use std::pin::Pin;

use aicity_domain::ids::TaskId;
use aicity_domain::task::model::TaskInput;

pub use e2b::E2bSandboxes;
pub use local::LocalSandboxes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox provider unavailable: {0}")]
    Unavailable(String),
    #[error("invalid sandbox request: {0}")]
    Invalid(String),
    #[error("sandbox provider not configured: {0}")]
    NotConfigured(String),
}

pub type SandboxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SandboxError>> + Send + 'a>>;

pub trait SandboxProvider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Provisions a sandbox holding the task's input.
    fn create<'a>(&'a self, task: &'a TaskId, input: &'a TaskInput) -> SandboxFuture<'a, Sandbox>;
    /// Tears it down; `false` when there was nothing to destroy.
    fn destroy<'a>(&'a self, sandbox_id: &'a str) -> SandboxFuture<'a, bool>;
}

/// The provider `SANDBOX_PROVIDER` selects (`local` unless `e2b`).
pub fn from_env() -> Result<Box<dyn SandboxProvider>, SandboxError> {
    match std::env::var("SANDBOX_PROVIDER").as_deref() {
        Ok("e2b") => {
            let key = std::env::var("E2B_API_KEY")
                .ok()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| SandboxError::NotConfigured("E2B_API_KEY is not set".into()))?;
            let base = std::env::var("E2B_API_BASE").unwrap_or_else(|_| e2b::API_BASE.into());
            let template = std::env::var("E2B_TEMPLATE").unwrap_or_else(|_| "base".into());
            let mut provider = E2bSandboxes::new(base, key, template);
            if let Ok(domain) = std::env::var("E2B_DOMAIN").map(|d| d.trim().to_owned())
                && !domain.is_empty()
            {
                provider = provider.with_domain(domain);
            }
            if let Ok(url) = std::env::var("E2B_SANDBOX_URL").map(|u| u.trim().to_owned())
                && !url.is_empty()
            {
                provider = provider.with_sandbox_url(url);
            }
            Ok(Box::new(provider))
        }
        Ok("local") | Err(_) => {
            let root = std::env::var("SANDBOX_ROOT").unwrap_or_else(|_| {
                std::env::temp_dir()
                    .join("aicity-sandboxes")
                    .display()
                    .to_string()
            });
            Ok(Box::new(LocalSandboxes::new(root)))
        }
        Ok(other) => Err(SandboxError::NotConfigured(format!(
            "unknown SANDBOX_PROVIDER {other}"
        ))),
    }
}
