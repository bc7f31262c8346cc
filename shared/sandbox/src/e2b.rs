//! E2B cloud sandboxes over their HTTP APIs.
//!
//! - The control plane (`https://api.e2b.dev`, key in `X-API-Key`):
//!   `POST /sandboxes` creates one, `DELETE /sandboxes/{id}` destroys it.
//! - The sandbox's own daemon, envd (port 49983 of the sandbox, reached at
//!   `https://49983-{sandboxID}.{domain}`, `domain` from the create answer or `e2b.app`):
//!   `POST /files?username=user` takes a `multipart/form-data` body of `file` parts,
//!   each part's file name the absolute path to write (parent directories are made,
//!   an existing file is overwritten). The sandbox is created with `secure: true`, so
//!   envd requires the `envdAccessToken` of the create answer in `X-Access-Token` on
//!   every call.
//!
//! The wire format is the one E2B's envd OpenAPI spec (`spec/envd/envd.yaml`) and its
//! JS SDK (`sandbox.files.write([...])`) use: several files in one multipart request,
//! with `E2b-Sandbox-Id` / `E2b-Sandbox-Port` headers so a shared sandbox proxy
//! (`E2B_SANDBOX_URL`, as in the SDK) can route the call. Assumption, not checked
//! against a live E2B account: the default template's user is `user` with home
//! `/home/user`, where the task is written (see [`WORKDIR`]).
//!
//! The agent is handed the envd URL and the access token (scoped to its one sandbox;
//! the API key never leaves the platform) and runs its command through envd's
//! Connect-RPC `process.Process/Start` (see the runner, `aicity agent run`).
//!
//! What a sandbox holds, matching the local provider's directory:
//! `{WORKDIR}/task.json` (task id and type, sandbox id, the whole input), `{WORKDIR}/code.txt`
//! when the task has code, and `{WORKDIR}/input/{name}` for each input file.

use std::time::Duration;

use aicity_domain::ids::TaskId;
use aicity_domain::task::model::{TaskInput, is_safe_file_name};
use serde::Deserialize;

use crate::{Access, Sandbox, SandboxError, SandboxFuture, SandboxProvider};

pub const API_BASE: &str = "https://api.e2b.dev";
/// Where E2B serves sandboxes when the create answer names no domain.
pub const DEFAULT_DOMAIN: &str = "e2b.app";
/// envd's port inside every sandbox.
pub const ENVD_PORT: u16 = 49983;
/// The sandbox user files are written as (and whose home holds the task).
pub const SANDBOX_USER: &str = "user";
/// The task's directory inside an E2B sandbox.
pub const WORKDIR: &str = "/home/user/task";
/// Sandboxes live at most an hour; the sweeper destroys leaked ones sooner.
const SANDBOX_TIMEOUT_SECONDS: u64 = 3_600;

pub struct E2bSandboxes {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    template: String,
    /// Every envd call goes here instead of the sandbox's own host (E2B's
    /// `E2B_SANDBOX_URL`: a proxy routing by the `E2b-Sandbox-Id` header).
    sandbox_url: Option<String>,
    domain: String,
}

#[derive(Deserialize)]
struct Created {
    #[serde(rename = "sandboxID")]
    sandbox_id: String,
    #[serde(rename = "envdAccessToken", default)]
    envd_access_token: Option<String>,
    #[serde(default)]
    domain: Option<String>,
}

#[derive(Deserialize)]
struct Written {
    path: String,
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
            sandbox_url: None,
            domain: DEFAULT_DOMAIN.to_owned(),
        }
    }

    /// Sends every envd call to `url` (E2B's `E2B_SANDBOX_URL`).
    pub fn with_sandbox_url(mut self, url: impl Into<String>) -> Self {
        self.sandbox_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The domain sandboxes are served under when E2B's answer names none
    /// (E2B's `E2B_DOMAIN`, `e2b.app` by default).
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }

    fn unavailable(e: impl std::fmt::Display) -> SandboxError {
        SandboxError::Unavailable(e.to_string())
    }

    fn envd_url(&self, created: &Created) -> String {
        match &self.sandbox_url {
            Some(url) => url.clone(),
            None => {
                let domain = created
                    .domain
                    .as_deref()
                    .filter(|d| !d.is_empty())
                    .unwrap_or(&self.domain);
                format!("https://{ENVD_PORT}-{}.{domain}", created.sandbox_id)
            }
        }
    }

    async fn make(
        &self,
        task: &TaskId,
        task_type: &str,
        input: &TaskInput,
    ) -> Result<Sandbox, SandboxError> {
        // Checked before anything is created, as the local provider does.
        if let Some(file) = input.files.iter().find(|f| !is_safe_file_name(&f.name)) {
            return Err(SandboxError::Invalid(format!(
                "unsafe file name {:?}",
                file.name
            )));
        }
        let response = self
            .http
            .post(format!("{}/sandboxes", self.base_url))
            .header("X-API-Key", &self.api_key)
            .json(&serde_json::json!({
                "templateID": self.template,
                "timeout": SANDBOX_TIMEOUT_SECONDS,
                "secure": true,
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
        if let Err(e) = self.upload(&created, task, task_type, input).await {
            // A sandbox without its input is no sandbox: do not leak it.
            if let Err(cleanup) = self.remove(&created.sandbox_id).await {
                tracing::warn!(sandbox = %created.sandbox_id, error = %cleanup,
                    "could not destroy an E2B sandbox whose input upload failed");
            }
            return Err(e);
        }
        Ok(Sandbox {
            access: Access::E2b {
                envd_url: self.envd_url(&created),
                access_token: created.envd_access_token,
                user: SANDBOX_USER.to_owned(),
            },
            id: created.sandbox_id,
        })
    }

    /// Writes the task and its input into the sandbox, in one envd request.
    async fn upload(
        &self,
        created: &Created,
        task: &TaskId,
        task_type: &str,
        input: &TaskInput,
    ) -> Result<(), SandboxError> {
        let manifest = serde_json::json!({
            "taskId": task,
            "taskType": task_type,
            "sandboxId": created.sandbox_id,
            "input": input,
        })
        .to_string();
        let mut files: Vec<(String, &[u8])> =
            vec![(format!("{WORKDIR}/task.json"), manifest.as_bytes())];
        if let Some(code) = &input.code {
            files.push((format!("{WORKDIR}/code.txt"), code.as_bytes()));
        }
        for file in &input.files {
            files.push((
                format!("{WORKDIR}/input/{}", file.name),
                file.content.as_bytes(),
            ));
        }
        let boundary = format!("aicity-{}", ulid::Ulid::generate());
        let body = multipart_body(&boundary, &files);
        let mut request = self
            .http
            .post(format!(
                "{}/files?username={SANDBOX_USER}",
                self.envd_url(created)
            ))
            .header("E2b-Sandbox-Id", &created.sandbox_id)
            .header("E2b-Sandbox-Port", ENVD_PORT.to_string())
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        if let Some(token) = &created.envd_access_token {
            request = request.header("X-Access-Token", token);
        }
        let response = request.send().await.map_err(Self::unavailable)?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            return Err(SandboxError::Unavailable(format!(
                "E2B's sandbox answered {status} to the input upload: {}",
                detail.chars().take(200).collect::<String>()
            )));
        }
        let written: Vec<Written> = response.json().await.map_err(|e| {
            Self::unavailable(format!("unexpected answer to the input upload: {e}"))
        })?;
        if let Some((missing, _)) = files
            .iter()
            .find(|(path, _)| !written.iter().any(|w| &w.path == path))
        {
            return Err(SandboxError::Unavailable(format!(
                "E2B's sandbox did not write {missing}"
            )));
        }
        Ok(())
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
            reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => Err(
                SandboxError::NotConfigured("E2B rejected the API key".into()),
            ),
            s => Err(SandboxError::Unavailable(format!("E2B answered {s}"))),
        }
    }
}

/// A `multipart/form-data` body of `file` parts, each named by the path to write.
///
/// Paths are sent as plain quoted file names (as browsers' and E2B's SDK `FormData`
/// do; envd reads the whole name, directories included). Input file names are
/// checked safe (no `/`, `\`, control characters); a `"` is escaped as `\"`.
fn multipart_body(boundary: &str, files: &[(String, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (path, content) in files {
        let name = path.replace('"', "\\\"");
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

impl SandboxProvider for E2bSandboxes {
    fn name(&self) -> &'static str {
        "e2b"
    }

    fn create<'a>(
        &'a self,
        task: &'a TaskId,
        task_type: &'a str,
        input: &'a TaskInput,
    ) -> SandboxFuture<'a, Sandbox> {
        Box::pin(self.make(task, task_type, input))
    }

    fn destroy<'a>(&'a self, sandbox_id: &'a str) -> SandboxFuture<'a, bool> {
        Box::pin(self.remove(sandbox_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(domain: Option<&str>) -> Created {
        Created {
            sandbox_id: "isb1".into(),
            envd_access_token: None,
            domain: domain.map(str::to_owned),
        }
    }

    #[test]
    fn envd_is_reached_on_the_sandbox_host_unless_a_sandbox_url_is_set() {
        let provider = E2bSandboxes::new(API_BASE, "k", "base");
        assert_eq!(
            provider.envd_url(&created(None)),
            "https://49983-isb1.e2b.app"
        );
        assert_eq!(
            provider.envd_url(&created(Some("eu.e2b.dev"))),
            "https://49983-isb1.eu.e2b.dev",
            "the domain E2B answers wins"
        );
        let provider = provider.with_domain("e2b.example");
        assert_eq!(
            provider.envd_url(&created(Some(""))),
            "https://49983-isb1.e2b.example"
        );
        let provider = provider.with_sandbox_url("http://127.0.0.1:1/");
        assert_eq!(provider.envd_url(&created(None)), "http://127.0.0.1:1");
    }
}
