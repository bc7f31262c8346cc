//! Where an agent runs a task: a sandbox per task, behind one trait.
//!
//! - `local` (when `SANDBOX_PROVIDER` is unset): a fresh directory under `SANDBOX_ROOT`,
//!   readable only by its owner, holding the task (`task.json`) and its input files
//!   (`input/`). It is on the machine of the API that made it, so only an agent on that
//!   same machine can work in it (`make dev`); in AWS it would be in a Lambda's `/tmp`.
//! - `e2b`: an E2B cloud sandbox created and destroyed over HTTPS, the task and its
//!   input uploaded into it (`/home/user/task`, the same layout) through its envd API.
//!
//! [`Sandbox::answer`] is what the assigned agent gets back: how to reach its sandbox
//! (the directory, or the sandbox's envd URL and the access token scoped to that one
//! sandbox); never a platform secret such as the E2B API key.

mod e2b;
mod lazy;
mod local;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use aicity_domain::ids::TaskId;
use aicity_domain::task::model::TaskInput;

pub use e2b::E2bSandboxes;
pub use lazy::{KeySource, LazyE2b};
pub use local::LocalSandboxes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub id: String,
    /// How the assigned agent reaches it.
    pub access: Access,
}

/// How to reach a sandbox and run a command in it.
#[derive(Clone, PartialEq, Eq)]
pub enum Access {
    /// A directory (absolute) on the machine of the API that made it.
    Local { path: PathBuf },
    /// An E2B sandbox, reached through its envd (`process.Process/Start` runs a
    /// command; every call carries `E2b-Sandbox-Id`, `E2b-Sandbox-Port` and, for a
    /// secure sandbox, the access token in `X-Access-Token`).
    E2b {
        envd_url: String,
        /// Scoped to this one sandbox (E2B's `envdAccessToken`), not the API key.
        access_token: Option<String>,
        user: String,
    },
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Local { path } => f.debug_struct("Local").field("path", path).finish(),
            Access::E2b {
                envd_url,
                access_token,
                user,
            } => f
                .debug_struct("E2b")
                .field("envd_url", envd_url)
                .field("access_token", &access_token.as_ref().map(|_| "<redacted>"))
                .field("user", user)
                .finish(),
        }
    }
}

impl Sandbox {
    pub fn provider(&self) -> &'static str {
        match self.access {
            Access::Local { .. } => "local",
            Access::E2b { .. } => "e2b",
        }
    }

    /// Where `task.json`, `code.txt` and `input/` are, inside the sandbox.
    pub fn workdir(&self) -> String {
        match &self.access {
            Access::Local { path } => path.display().to_string(),
            Access::E2b { .. } => e2b::WORKDIR.to_owned(),
        }
    }

    /// The answer to `POST /tasks/{id}/sandbox`: `{sandboxId, provider, workdir}` and
    /// either `local: {path}` or `e2b: {sandboxId, envdUrl, envdPort, accessToken, user}`.
    pub fn answer(&self) -> serde_json::Value {
        let mut answer = serde_json::json!({
            "sandboxId": self.id,
            "provider": self.provider(),
            "workdir": self.workdir(),
        });
        match &self.access {
            Access::Local { path } => {
                answer["local"] = serde_json::json!({ "path": path.display().to_string() });
            }
            Access::E2b {
                envd_url,
                access_token,
                user,
            } => {
                answer["e2b"] = serde_json::json!({
                    "sandboxId": self.id,
                    "envdUrl": envd_url,
                    "envdPort": e2b::ENVD_PORT,
                    "accessToken": access_token,
                    "user": user,
                });
            }
        }
        answer
    }
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
    /// Provisions a sandbox holding the task (`task.json`: `taskId`, `taskType`,
    /// `sandboxId`, `input`) and its input files.
    fn create<'a>(
        &'a self,
        task: &'a TaskId,
        task_type: &'a str,
        input: &'a TaskInput,
    ) -> SandboxFuture<'a, Sandbox>;
    /// Tears it down; `false` when there was nothing to destroy.
    fn destroy<'a>(&'a self, sandbox_id: &'a str) -> SandboxFuture<'a, bool>;
}

/// `e2b` selected without its key: the function still starts (its other routes work)
/// and every sandbox call is `NotConfigured` (503), the cause logged.
pub struct Unconfigured(&'static str);

impl Unconfigured {
    /// `e2b` without `E2B_API_KEY`.
    pub fn default_e2b() -> Self {
        Self("E2B_API_KEY is not set")
    }
}

impl SandboxProvider for Unconfigured {
    fn name(&self) -> &'static str {
        "e2b"
    }

    fn create<'a>(
        &'a self,
        _task: &'a TaskId,
        _task_type: &'a str,
        _input: &'a TaskInput,
    ) -> SandboxFuture<'a, Sandbox> {
        Box::pin(async move { Err(SandboxError::NotConfigured(self.0.into())) })
    }

    fn destroy<'a>(&'a self, _sandbox_id: &'a str) -> SandboxFuture<'a, bool> {
        Box::pin(async move { Err(SandboxError::NotConfigured(self.0.into())) })
    }
}

/// The provider `SANDBOX_PROVIDER` selects (`local` when unset; the template's
/// default is `e2b`, `make dev` sets `local`), with the E2B key from `E2B_API_KEY`.
pub fn from_env() -> Result<Box<dyn SandboxProvider>, SandboxError> {
    from_env_with_key(std::env::var("E2B_API_KEY").ok())
}

/// [`from_env`] for a function: with `e2b` selected and no `E2B_API_KEY` in the
/// environment, the key comes from `source` (the SSM parameter `E2B_API_KEY_PARAM`
/// names) on the first sandbox call, not at start ([`LazyE2b`]: no SSM round trip in
/// the cold start).
pub fn from_env_lazy(source: KeySource) -> Result<Box<dyn SandboxProvider>, SandboxError> {
    let key_in_env = std::env::var("E2B_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    match std::env::var("SANDBOX_PROVIDER").as_deref() {
        Ok("e2b") if !key_in_env => Ok(Box::new(LazyE2b::new(source))),
        _ => from_env(),
    }
}

/// [`from_env`] with the E2B key given (from `E2B_API_KEY` or the SSM parameter
/// `E2B_API_KEY_PARAM` names).
pub fn from_env_with_key(
    e2b_api_key: Option<String>,
) -> Result<Box<dyn SandboxProvider>, SandboxError> {
    match std::env::var("SANDBOX_PROVIDER").as_deref() {
        Ok("e2b") => {
            let Some(key) = e2b_api_key.filter(|k| !k.is_empty()) else {
                tracing::error!("SANDBOX_PROVIDER is e2b but E2B_API_KEY is not set");
                return Ok(Box::new(Unconfigured::default_e2b()));
            };
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
