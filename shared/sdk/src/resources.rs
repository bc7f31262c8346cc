//! One type per API group; every route the server has (the Embassy's in [`crate::embassy`],
//! the webhooks' in [`crate::webhooks`]).

use aicity_domain::task::model::Task;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::client::{AgentCity, As};

pub use crate::economics::{Estimate, EstimateHistory, PriceSpread, ProfitLine, Profitability};
pub use crate::embassy::{
    Approval, AuditEntry, AuditPage, AuditQuery, Committed, Decision, Embassy, Notification,
    NotificationPage, Party, Policy, PolicyUpdate,
};
pub use crate::webhooks::{
    Attempt, CreatedWebhook, Deleted, Delivery, DeliveryPage, Event, Webhook, Webhooks,
};

pub(crate) fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::Decode(e.to_string()))
}

pub(crate) const NO_BODY: Option<&Value> = None;

/// Header names and values to send.
pub type Headers = Vec<(&'static str, String)>;

/// A page of a list: `data` and `pagination`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

/// `total`/`total_pages` are exact on the last page (`next_cursor` is `None`), a lower
/// bound before it (the API never counts a whole list).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u32,
    pub page_size: u32,
    pub total: u64,
    pub total_pages: u64,
    /// Pass to a list's `*_after` method (or `cursor` filter) for the next page;
    /// `None` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The cursor of the next page, `None` on the last.
    pub fn next_cursor(&self) -> Option<&str> {
        self.pagination.next_cursor.as_deref()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub token: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SignedIn {
    pub token: String,
    pub session: Session,
    pub user: User,
}

/// Query string from optional pairs.
pub(crate) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", urlencode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `path` with `cursor=` added to its query.
pub(crate) fn with_cursor(path: String, cursor: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}cursor={}", urlencode(cursor))
}

pub(crate) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/auth`
pub struct Auth<'a>(pub(crate) &'a AgentCity);

impl Auth<'_> {
    pub async fn sign_up(&self, name: &str, email: &str, password: &str) -> Result<User, Error> {
        let body = json!({"name": name, "email": email, "password": password});
        let data = self
            .0
            .call(
                Method::POST,
                "/auth/sign-up",
                As::Anyone,
                Some(&body),
                &[],
                false,
            )
            .await?;
        decode(data["user"].clone())
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Result<SignedIn, Error> {
        let body = json!({"email": email, "password": password});
        decode(
            self.0
                .call(
                    Method::POST,
                    "/auth/sign-in",
                    As::Anyone,
                    Some(&body),
                    &[],
                    false,
                )
                .await?,
        )
    }

    pub async fn sign_out(&self) -> Result<(), Error> {
        self.0
            .call(
                Method::POST,
                "/auth/sign-out",
                As::Owner,
                NO_BODY,
                &[],
                false,
            )
            .await?;
        Ok(())
    }

    pub async fn session(&self) -> Result<Value, Error> {
        self.0
            .call(Method::GET, "/auth/session", As::Owner, NO_BODY, &[], false)
            .await
    }
}

/// What registering an agent answers: its profile and its key, shown once.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub agent: Value,
    pub api_key: String,
}

/// Filters of [`Agents::search`].
#[derive(Debug, Clone, Default)]
pub struct SearchAgents {
    pub category: Option<String>,
    pub availability: Option<String>,
    pub min_score: Option<u32>,
    pub framework: Option<String>,
    pub trust_tier: Option<String>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    /// The `next_cursor` of the page before (then `page` is not needed).
    pub cursor: Option<String>,
}

/// `/agents`
pub struct Agents<'a>(pub(crate) &'a AgentCity);

impl Agents<'_> {
    /// Owner: `{displayName, framework, description, model?, capabilities?, pricing?, maxConcurrentTasks?}`.
    pub async fn register(&self, body: &Value) -> Result<Registered, Error> {
        decode(
            self.0
                .call(Method::POST, "/agents", As::Owner, Some(body), &[], false)
                .await?,
        )
    }

    pub async fn list(&self) -> Result<Page<Value>, Error> {
        self.list_after(None).await
    }

    /// The owner's agents, 100 a page, after the page whose `next_cursor` is `cursor`.
    pub async fn list_after(&self, cursor: Option<&str>) -> Result<Page<Value>, Error> {
        let path = format!(
            "/agents{}",
            query(&[
                ("pageSize", Some("100".to_owned())),
                ("cursor", cursor.map(str::to_owned)),
            ])
        );
        decode(
            self.0
                .call(Method::GET, &path, As::Owner, NO_BODY, &[], true)
                .await?,
        )
    }

    pub async fn me(&self) -> Result<Value, Error> {
        self.0
            .call(Method::GET, "/agents/me", As::Agent, NO_BODY, &[], false)
            .await
    }

    pub async fn update_me(&self, changes: &Value) -> Result<Value, Error> {
        self.0
            .call(
                Method::PATCH,
                "/agents/me",
                As::Agent,
                Some(changes),
                &[],
                false,
            )
            .await
    }

    pub async fn search(&self, filter: &SearchAgents) -> Result<Page<Value>, Error> {
        let path = format!(
            "/agents/search{}",
            query(&[
                ("category", filter.category.clone()),
                ("availability", filter.availability.clone()),
                ("minScore", filter.min_score.map(|s| s.to_string())),
                ("framework", filter.framework.clone()),
                ("trustTier", filter.trust_tier.clone()),
                ("page", filter.page.map(|p| p.to_string())),
                ("pageSize", filter.page_size.map(|p| p.to_string())),
                ("cursor", filter.cursor.clone()),
            ])
        );
        decode(
            self.0
                .call(Method::GET, &path, As::Either, NO_BODY, &[], true)
                .await?,
        )
    }

    pub async fn get(&self, id: &str) -> Result<Value, Error> {
        self.0
            .call(
                Method::GET,
                &format!("/agents/{id}"),
                As::Either,
                NO_BODY,
                &[],
                false,
            )
            .await
    }

    pub async fn update(&self, id: &str, changes: &Value) -> Result<Value, Error> {
        self.0
            .call(
                Method::PATCH,
                &format!("/agents/{id}"),
                As::Owner,
                Some(changes),
                &[],
                false,
            )
            .await
    }

    pub async fn deactivate(&self, id: &str) -> Result<Value, Error> {
        self.0
            .call(
                Method::POST,
                &format!("/agents/{id}/deactivate"),
                As::Owner,
                NO_BODY,
                &[],
                false,
            )
            .await
    }

    pub async fn reactivate(&self, id: &str) -> Result<Value, Error> {
        self.0
            .call(
                Method::POST,
                &format!("/agents/{id}/reactivate"),
                As::Owner,
                NO_BODY,
                &[],
                false,
            )
            .await
    }

    /// A new key; the old one stops working at once.
    pub async fn rotate_key(&self, id: &str) -> Result<String, Error> {
        let data = self
            .0
            .call(
                Method::POST,
                &format!("/agents/{id}/rotate-key"),
                As::Owner,
                NO_BODY,
                &[],
                false,
            )
            .await?;
        decode(data["apiKey"].clone())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopUp {
    pub new_balance: i64,
    pub amount_charged: i64,
    pub charge_id: String,
}

/// `/vault`
pub struct Vault<'a>(pub(crate) &'a AgentCity);

impl Vault<'_> {
    pub async fn pool(&self) -> Result<Value, Error> {
        self.0
            .call(Method::GET, "/vault/pool", As::Owner, NO_BODY, &[], false)
            .await
    }

    /// Charges the card. Every call carries an `Idempotency-Key` (`idempotency_key`, or
    /// a fresh one), so its retries charge once.
    pub async fn top_up(&self, amount: i64, idempotency_key: Option<&str>) -> Result<TopUp, Error> {
        let extra = crate::client::idempotency_header(idempotency_key);
        let body = json!({ "amount": amount });
        decode(
            self.0
                .call(
                    Method::POST,
                    "/vault/pool/top-up",
                    As::Owner,
                    Some(&body),
                    &extra,
                    false,
                )
                .await?,
        )
    }

    pub async fn auto_top_up(
        &self,
        enabled: bool,
        threshold: i64,
        reload_amount: i64,
    ) -> Result<Value, Error> {
        let body =
            json!({"enabled": enabled, "threshold": threshold, "reloadAmount": reload_amount});
        self.0
            .call(
                Method::PUT,
                "/vault/pool/auto-top-up",
                As::Owner,
                Some(&body),
                &[],
                false,
            )
            .await
    }

    pub async fn transactions(
        &self,
        kind: Option<&str>,
        page: Option<u32>,
    ) -> Result<Page<Value>, Error> {
        let path = format!(
            "/vault/transactions{}",
            query(&[
                ("type", kind.map(str::to_owned)),
                ("page", page.map(|p| p.to_string()))
            ])
        );
        decode(
            self.0
                .call(Method::GET, &path, As::Owner, NO_BODY, &[], true)
                .await?,
        )
    }

    pub async fn wallet(&self) -> Result<Value, Error> {
        self.0
            .call(Method::GET, "/vault/wallet", As::Agent, NO_BODY, &[], false)
            .await
    }

    /// Moves credits from the pool to an agent's wallet; each call carries a fresh
    /// `Idempotency-Key`, so its retries move them once.
    pub async fn allocate(&self, agent_id: &str, amount: i64) -> Result<Value, Error> {
        let body = json!({ "amount": amount });
        self.0
            .call(
                Method::POST,
                &format!("/vault/wallets/{agent_id}/allocate"),
                As::Owner,
                Some(&body),
                &crate::client::idempotency_header(None),
                false,
            )
            .await
    }

    /// Moves credits between two of the owner's agents' wallets; each call carries a
    /// fresh `Idempotency-Key`, so its retries move them once.
    pub async fn transfer(&self, from: &str, to: &str, amount: i64) -> Result<Value, Error> {
        let body = json!({"fromAgentId": from, "toAgentId": to, "amount": amount});
        self.0
            .call(
                Method::POST,
                "/vault/transfers",
                As::Owner,
                Some(&body),
                &crate::client::idempotency_header(None),
                false,
            )
            .await
    }
}

/// `GET /tasks/templates/{taskType}`: what a task type takes as `input` (checked at
/// submit) and what its output should hold (the rules gate scores it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskTemplate {
    pub task_type: String,
    pub description: String,
    pub fields: Vec<TemplateField>,
    pub output: TemplateOutput,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateOutput {
    pub fields: Vec<TemplateField>,
}

/// One field: `type` is `string`, `text`, `url`, `integer`, `boolean`, `string[]`,
/// `files` or `json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateField {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    #[serde(default)]
    pub description: String,
}

/// `POST /tasks`
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitTask {
    pub task_type: String,
    pub max_budget: i64,
    pub input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<String>,
}

/// Filters and paging of [`Tasks::list`] (README, "Paging"); every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListTasks {
    /// Page number, from 1 (default 1); `page × page_size` at most 1,000.
    pub page: Option<u32>,
    /// Results per page, 1 to 100 (default 20).
    pub page_size: Option<u32>,
    /// Only tasks with this status, e.g. `completed`.
    pub status: Option<String>,
    /// `submitted` (the caller's own) or `assigned` (to the calling agent).
    pub role: Option<String>,
    /// The `next_cursor` of the page before (then `page` is not needed).
    pub cursor: Option<String>,
}

impl ListTasks {
    /// The path and query string it asks for.
    pub fn path(&self) -> String {
        format!(
            "/tasks{}",
            query(&[
                ("status", self.status.clone()),
                ("role", self.role.clone()),
                ("page", self.page.map(|p| p.to_string())),
                ("pageSize", self.page_size.map(|p| p.to_string())),
                ("cursor", self.cursor.clone()),
            ])
        )
    }
}

/// The answer to `POST /tasks/{id}/sandbox`: the sandbox and how to reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxAccess {
    pub sandbox_id: String,
    /// `local` or `e2b`; `None` from an API that predates it.
    #[serde(default)]
    pub provider: Option<String>,
    /// Where `task.json`, `code.txt` and `input/` are, inside the sandbox.
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub local: Option<LocalSandboxAccess>,
    #[serde(default)]
    pub e2b: Option<E2bSandboxAccess>,
}

/// A `local` sandbox: a directory on the machine of the API that made it.
#[derive(Debug, Clone, Deserialize)]
pub struct LocalSandboxAccess {
    pub path: String,
}

/// An `e2b` sandbox, reached through its envd (every call with `E2b-Sandbox-Id`,
/// `E2b-Sandbox-Port` and the access token, which is scoped to this one sandbox, in
/// `X-Access-Token`).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct E2bSandboxAccess {
    pub sandbox_id: String,
    pub envd_url: String,
    #[serde(default = "envd_port")]
    pub envd_port: u16,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default = "sandbox_user")]
    pub user: String,
}

fn envd_port() -> u16 {
    49_983
}

fn sandbox_user() -> String {
    "user".into()
}

impl std::fmt::Debug for E2bSandboxAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E2bSandboxAccess")
            .field("sandbox_id", &self.sandbox_id)
            .field("envd_url", &self.envd_url)
            .field("envd_port", &self.envd_port)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("user", &self.user)
            .finish()
    }
}

/// `/tasks`
pub struct Tasks<'a>(pub(crate) &'a AgentCity);

impl Tasks<'_> {
    /// Submits with the agent key if set, else the owner token. Every call carries an
    /// `Idempotency-Key` (`idempotency_key`, or a fresh one), so its retries create one
    /// task and one hold.
    pub async fn submit(
        &self,
        task: &SubmitTask,
        idempotency_key: Option<&str>,
    ) -> Result<Task, Error> {
        let extra = crate::client::idempotency_header(idempotency_key);
        decode(
            self.0
                .call(
                    Method::POST,
                    "/tasks",
                    As::Either,
                    Some(task),
                    &extra,
                    false,
                )
                .await?,
        )
    }

    /// Every task type's template (any caller).
    pub async fn templates(&self) -> Result<Vec<TaskTemplate>, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    "/tasks/templates",
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// One task type's template; an unknown type is `TEMPLATE_NOT_FOUND`.
    pub async fn template(&self, task_type: &str) -> Result<TaskTemplate, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    &format!("/tasks/templates/{}", urlencode(task_type)),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    pub async fn get(&self, id: &str) -> Result<Task, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    &format!("/tasks/{id}"),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// The caller's tasks, newest first: `city.tasks().list(&ListTasks { page: Some(1),
    /// page_size: Some(20), status: Some("completed".into()), ..Default::default() })`.
    pub async fn list(&self, filter: &ListTasks) -> Result<Page<Task>, Error> {
        decode(
            self.0
                .call(Method::GET, &filter.path(), As::Either, NO_BODY, &[], true)
                .await?,
        )
    }

    /// [`Self::list`] after the page whose `next_cursor` is `cursor` (the filter's own
    /// `page` and `cursor` are not used).
    pub async fn list_after(&self, filter: &ListTasks, cursor: &str) -> Result<Page<Task>, Error> {
        let next = ListTasks {
            page: None,
            cursor: Some(cursor.to_owned()),
            ..filter.clone()
        };
        self.list(&next).await
    }

    /// Agent: tasks assigned to it, waiting to start.
    pub async fn list_submitted(&self) -> Result<Vec<Task>, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    "/tasks/submitted",
                    As::Agent,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    pub async fn cancel(&self, id: &str) -> Result<Task, Error> {
        decode(
            self.0
                .call(
                    Method::POST,
                    &format!("/tasks/{id}/cancel"),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    pub async fn provision_sandbox(&self, id: &str) -> Result<String, Error> {
        let data = self
            .0
            .call(
                Method::POST,
                &format!("/tasks/{id}/sandbox"),
                As::Agent,
                NO_BODY,
                &[],
                false,
            )
            .await?;
        decode(data["sandboxId"].clone())
    }

    /// Agent: provisions a sandbox for the task and says how to reach it (the
    /// directory of a `local` one, or the envd of an `e2b` one).
    pub async fn provision_sandbox_access(&self, id: &str) -> Result<SandboxAccess, Error> {
        decode(
            self.0
                .call(
                    Method::POST,
                    &format!("/tasks/{id}/sandbox"),
                    As::Agent,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    pub async fn destroy_sandbox(&self, id: &str, sandbox_id: &str) -> Result<bool, Error> {
        let path = format!("/tasks/{id}/sandbox/{sandbox_id}");
        let data = self
            .0
            .call(Method::DELETE, &path, As::Agent, NO_BODY, &[], false)
            .await?;
        decode(data["destroyed"].clone())
    }

    pub async fn mark_executing(&self, id: &str, sandbox_id: &str) -> Result<Task, Error> {
        let body = json!({ "sandboxId": sandbox_id });
        decode(
            self.0
                .call(
                    Method::POST,
                    &format!("/tasks/{id}/executing"),
                    As::Agent,
                    Some(&body),
                    &[],
                    false,
                )
                .await?,
        )
    }

    pub async fn progress(
        &self,
        id: &str,
        message: &str,
        percent: Option<u8>,
    ) -> Result<(), Error> {
        let body = json!({ "message": message, "percent": percent });
        self.0
            .call(
                Method::POST,
                &format!("/tasks/{id}/progress"),
                As::Agent,
                Some(&body),
                &[],
                false,
            )
            .await?;
        Ok(())
    }

    pub async fn complete(
        &self,
        id: &str,
        output: &Value,
        execution_time_ms: u64,
        quality_score: Option<u8>,
    ) -> Result<Task, Error> {
        let body = json!({ "output": output, "executionTimeMs": execution_time_ms, "qualityScore": quality_score });
        decode(
            self.0
                .call(
                    Method::POST,
                    &format!("/tasks/{id}/complete"),
                    As::Agent,
                    Some(&body),
                    &[],
                    false,
                )
                .await?,
        )
    }

    pub async fn fail(
        &self,
        id: &str,
        reason: &str,
        error_message: Option<&str>,
    ) -> Result<Task, Error> {
        let body = json!({ "reason": reason, "errorMessage": error_message });
        decode(
            self.0
                .call(
                    Method::POST,
                    &format!("/tasks/{id}/fail"),
                    As::Agent,
                    Some(&body),
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// `up` or `down`; `true` when a thumbs-down refunded the task.
    pub async fn give_feedback(&self, id: &str, feedback: &str) -> Result<bool, Error> {
        let body = json!({ "feedback": feedback });
        let data = self
            .0
            .call(
                Method::POST,
                &format!("/tasks/{id}/feedback"),
                As::Either,
                Some(&body),
                &[],
                false,
            )
            .await?;
        decode(data["refunded"].clone())
    }

    pub async fn dispute(&self, id: &str, reason: &str, description: &str) -> Result<Value, Error> {
        let body = json!({ "reason": reason, "description": description });
        self.0
            .call(
                Method::POST,
                &format!("/tasks/{id}/dispute"),
                As::Either,
                Some(&body),
                &[],
                false,
            )
            .await
    }

    /// The stream's URL and the headers to send (no request is made). The URL is under
    /// the stream base ([`crate::Builder::stream_url`], the stack's `StreamUrl`), which
    /// is the API's base URL when none was set.
    pub fn stream_url(&self, id: &str) -> Result<(String, Headers), Error> {
        Ok((
            format!("{}/api/v1/tasks/{id}/stream", self.0.stream_base_url()),
            self.0.auth_headers(As::Either)?,
        ))
    }

    /// Live events of a task, reconnecting with `Last-Event-ID` when a connection ends.
    pub fn stream(&self, id: &str) -> crate::TaskStream {
        crate::TaskStream::new(self.0.clone(), id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_list_takes_page_page_size_status_and_cursor() {
        // The seed: `city.tasks.list({ page: 1, pageSize: 20, status: "completed" })`.
        let seed = ListTasks {
            page: Some(1),
            page_size: Some(20),
            status: Some("completed".into()),
            ..Default::default()
        };
        assert_eq!(seed.path(), "/tasks?status=completed&page=1&pageSize=20");
        assert_eq!(ListTasks::default().path(), "/tasks");
        let next = ListTasks {
            role: Some("assigned".into()),
            page_size: Some(100),
            cursor: Some("eyJ=".into()),
            ..Default::default()
        };
        assert_eq!(
            next.path(),
            "/tasks?role=assigned&pageSize=100&cursor=eyJ%3D"
        );
    }
}
