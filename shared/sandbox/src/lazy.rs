//! An E2B provider whose key is fetched on first use rather than at start.
//!
//! The key usually lives in SSM: reading it at start put an SSM round trip (and a
//! second SDK configuration) into every cold start of the functions that hold a
//! sandbox provider, most of whose requests never touch a sandbox. The first sandbox
//! call pays for it instead, once per instance; a failed read is that call's error and
//! the next call tries again (nothing half-configured is cached).

use std::future::Future;
use std::pin::Pin;

use aicity_domain::ids::TaskId;
use aicity_domain::task::model::TaskInput;
use tokio::sync::OnceCell;

use crate::{Sandbox, SandboxError, SandboxFuture, SandboxProvider};

/// Fetches the E2B key (`None`: not configured).
pub type KeySource = Box<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Option<String>, String>> + Send>> + Send + Sync,
>;

/// `e2b`, built on the first call from the key `source` returns.
pub struct LazyE2b {
    source: KeySource,
    provider: OnceCell<Box<dyn SandboxProvider>>,
}

impl LazyE2b {
    pub fn new(source: KeySource) -> Self {
        Self {
            source,
            provider: OnceCell::new(),
        }
    }

    async fn provider(&self) -> Result<&dyn SandboxProvider, SandboxError> {
        self.provider
            .get_or_try_init(|| async {
                let key = (self.source)().await.map_err(SandboxError::NotConfigured)?;
                crate::from_env_with_key(key)
            })
            .await
            .map(|p| p.as_ref())
    }
}

impl SandboxProvider for LazyE2b {
    fn name(&self) -> &'static str {
        "e2b"
    }

    fn create<'a>(
        &'a self,
        task: &'a TaskId,
        task_type: &'a str,
        input: &'a TaskInput,
    ) -> SandboxFuture<'a, Sandbox> {
        Box::pin(async move { self.provider().await?.create(task, task_type, input).await })
    }

    fn destroy<'a>(&'a self, sandbox_id: &'a str) -> SandboxFuture<'a, bool> {
        Box::pin(async move { self.provider().await?.destroy(sandbox_id).await })
    }
}
