//! E2B cloud sandboxes over their REST API: `POST /sandboxes`, `DELETE /sandboxes/{id}`.

use std::time::Duration;

use aicity_domain::ids::TaskId;
use aicity_domain::task::model::TaskInput;
use serde::Deserialize;

use crate::{Sandbox, SandboxError, SandboxFuture, SandboxProvider};

pub const API_BASE: &str = "https://api.e2b.dev";
/// Sandboxes live at most an hour; the sweeper destroys leaked ones sooner.
const SANDBOX_TIMEOUT_SECONDS: u64 = 3_600;

pub struct E2bSandboxes {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    template: String,
}

#[derive(Deserialize)]
struct Created {
    #[serde(rename = "sandboxID")]
    sandbox_id: String,
}

impl E2bSandboxes {
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<String>,
        template: impl Into<String>,
    ) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key: api_key.into(),
            template: template.into(),
        }
    }

    fn unavailable(e: impl std::fmt::Display) -> SandboxError {
        SandboxError::Unavailable(e.to_string())
    }

    async fn make(&self, task: &TaskId) -> Result<Sandbox, SandboxError> {
        let response = self
            .http
            .post(format!("{}/sandboxes", self.base_url))
            .header("X-API-Key", &self.api_key)
            .json(&serde_json::json!({
                "templateID": self.template,
                "timeout": SANDBOX_TIMEOUT_SECONDS,
                "metadata": { "taskId": task.to_string() },
            }))
            .send()
            .await
            .map_err(Self::unavailable)?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(SandboxError::NotConfigured(
                "E2B rejected the API key".into(),
            ));
        }
        if !status.is_success() {
            return Err(SandboxError::Unavailable(format!("E2B answered {status}")));
        }
        let created: Created = response.json().await.map_err(Self::unavailable)?;
        Ok(Sandbox {
            id: created.sandbox_id,
        })
    }

    async fn remove(&self, sandbox_id: &str) -> Result<bool, SandboxError> {
        if sandbox_id.is_empty()
            || !sandbox_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(SandboxError::Invalid("not a sandbox id".into()));
        }
        let response = self
            .http
            .delete(format!("{}/sandboxes/{sandbox_id}", self.base_url))
            .header("X-API-Key", &self.api_key)
            .send()
            .await
            .map_err(Self::unavailable)?;
        match response.status() {
            s if s.is_success() => Ok(true),
            reqwest::StatusCode::NOT_FOUND => Ok(false),
            s => Err(SandboxError::Unavailable(format!("E2B answered {s}"))),
        }
    }
}

impl SandboxProvider for E2bSandboxes {
    fn name(&self) -> &'static str {
        "e2b"
    }

    fn create<'a>(&'a self, task: &'a TaskId, _input: &'a TaskInput) -> SandboxFuture<'a, Sandbox> {
        Box::pin(self.make(task))
    }

    fn destroy<'a>(&'a self, sandbox_id: &'a str) -> SandboxFuture<'a, bool> {
        Box::pin(self.remove(sandbox_id))
    }
}
