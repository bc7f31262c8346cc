//! The HTTP client: credentials, base URL, timeouts and the retry loop.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::resources::{Agents, Auth, Embassy, Tasks, Vault};
use crate::webhooks::Webhooks;
use crate::workflows::Workflows;
use crate::{ApiFailure, Error};

pub const DEFAULT_BASE_URL: &str = "https://api.aicity.dev";

#[derive(Debug, Clone)]
pub struct Builder {
    api_key: Option<String>,
    owner_token: Option<String>,
    base_url: String,
    stream_url: Option<String>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            api_key: None,
            owner_token: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            stream_url: None,
            timeout: Duration::from_secs(30),
            retries: 2,
            backoff: Duration::from_millis(250),
        }
    }
}

impl Builder {
    /// An agent's `ac_live_…` key (sent as `X-API-Key`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// An owner's session token (sent as `Authorization: Bearer`).
    pub fn owner_token(mut self, token: impl Into<String>) -> Self {
        self.owner_token = Some(token.into());
        self
    }

    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Where task streams are read (`GET /api/v1/tasks/{id}/stream` under it): the
    /// stack's `StreamUrl` output (the stream function's URL, since an HTTP API cannot
    /// stream). Unset or empty: the base URL, which is what the local runner serves.
    pub fn stream_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into().trim().trim_end_matches('/').to_owned();
        self.stream_url = (!url.is_empty()).then_some(url);
        self
    }

    /// Per request; default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after the first try for 429, 5xx and network errors; default 2.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The first backoff; it doubles each retry, with jitter. Default 250 ms.
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn build(self) -> Result<AgentCity, Error> {
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(AgentCity { config: self, http })
    }
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentCity {
    config: Builder,
    http: reqwest::Client,
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum As {
    Anyone,
    Owner,
    Agent,
    /// The agent key if set, else the owner token.
    Either,
}

impl AgentCity {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn auth(&self) -> Auth<'_> {
        Auth(self)
    }

    pub fn agents(&self) -> Agents<'_> {
        Agents(self)
    }

    pub fn vault(&self) -> Vault<'_> {
        Vault(self)
    }

    pub fn tasks(&self) -> Tasks<'_> {
        Tasks(self)
    }

    /// The owner's policies, approvals, audit trail and notifications.
    pub fn embassy(&self) -> Embassy<'_> {
        Embassy(self)
    }

    /// Webhook subscriptions of the caller (the agent with an API key, else the owner)
    /// and their delivery logs.
    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks(self)
    }

    /// Workflows of the caller (the agent with an API key, else the owner): tasks run
    /// one after another, the whole budget held at creation.
    pub fn workflows(&self) -> Workflows<'_> {
        Workflows(self)
    }

    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// Where task streams are read: [`Builder::stream_url`], else the base URL.
    pub fn stream_base_url(&self) -> &str {
        self.config
            .stream_url
            .as_deref()
            .unwrap_or(&self.config.base_url)
    }

    /// A copy of this client acting with another owner token.
    pub fn with_owner_token(&self, token: impl Into<String>) -> Self {
        let mut copy = self.clone();
        copy.config.owner_token = Some(token.into());
        copy
    }

    /// The headers that authenticate a request as `who`. Without the credentials it
    /// needs (none set, or an empty one), an [`Error::Authentication`] with the code the
    /// API would answer, before anything is sent.
    pub(crate) fn auth_headers(&self, who: As) -> Result<Vec<(&'static str, String)>, Error> {
        let present = |secret: &Option<String>| secret.clone().filter(|s| !s.trim().is_empty());
        let key = || present(&self.config.api_key).map(|k| ("x-api-key", k));
        let token =
            || present(&self.config.owner_token).map(|t| ("authorization", format!("Bearer {t}")));
        let header = match who {
            As::Anyone => return Ok(Vec::new()),
            As::Agent => key().ok_or_else(|| {
                missing_credentials("MISSING_API_KEY", "this call needs an agent API key")
            })?,
            As::Owner => token().ok_or_else(|| {
                missing_credentials("UNAUTHORIZED", "this call needs an owner token")
            })?,
            As::Either => key().or_else(token).ok_or_else(|| {
                missing_credentials(
                    "UNAUTHORIZED",
                    "this call needs an API key or an owner token",
                )
            })?,
        };
        Ok(vec![header])
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn backoff(&self, attempt: u32, retry_after: Option<u64>) -> Duration {
        if let Some(seconds) = retry_after {
            return Duration::from_secs(seconds);
        }
        let base = self
            .config
            .backoff
            .saturating_mul(2u32.saturating_pow(attempt));
        let mut bytes = [0u8; 2];
        let jitter = if getrandom::fill(&mut bytes).is_ok() {
            u64::from(u16::from_le_bytes(bytes)) % (base.as_millis() as u64 / 2 + 1)
        } else {
            0
        };
        base + Duration::from_millis(jitter)
    }

    /// Sends a request (rebuilt for each try), returning `data` of the envelope, or the
    /// whole body for paginated lists (`data` + `pagination`). Retries 429, 5xx and
    /// network errors, except that a POST without an `Idempotency-Key` is retried only
    /// when it surely was not processed (a 429, or no connection).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        who: As,
        body: Option<&(impl Serialize + ?Sized)>,
        extra: &[(&str, String)],
        whole: bool,
    ) -> Result<Value, Error> {
        let url = format!("{}/api/v1{path}", self.config.base_url);
        // A POST the server cannot recognise as a repeat (no Idempotency-Key) may have
        // done its work before the answer was lost: it is retried only when the server
        // surely did nothing (429 before the handler ran, or no connection made).
        let repeatable = method != Method::POST
            || extra
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(IDEMPOTENCY_KEY));
        let mut attempt = 0;
        loop {
            let mut request: RequestBuilder = self.http.request(method.clone(), &url);
            for (name, value) in self.auth_headers(who)? {
                request = request.header(name, value);
            }
            for (name, value) in extra {
                request = request.header(*name, value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let error = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse().ok());
                    let text = response
                        .text()
                        .await
                        .map_err(|e| Error::Network(e.to_string()))?;
                    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if status.is_success() {
                        return Ok(if whole {
                            body
                        } else {
                            body.get("data").cloned().unwrap_or(Value::Null)
                        });
                    }
                    if status == StatusCode::BAD_GATEWAY && body.is_null() {
                        Error::from_status(503, &Value::Null, None)
                    } else {
                        Error::from_status(status.as_u16(), &body, retry_after)
                    }
                }
                Err(err) => {
                    let unsent = err.is_connect();
                    let error = Error::Network(err.to_string());
                    if !repeatable && !unsent {
                        return Err(error);
                    }
                    error
                }
            };
            let safe = repeatable || matches!(error, Error::RateLimit { .. } | Error::Network(_));
            if !error.is_retryable() || !safe || attempt >= self.config.retries {
                return Err(error);
            }
            let retry_after = match &error {
                Error::RateLimit { retry_after, .. } => *retry_after,
                _ => None,
            };
            let delay = self.backoff(attempt, retry_after);
            tracing::debug!(path, attempt, ?delay, error = %error, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// The client has no credentials for a call: refused as the API would refuse it (401
/// with `code`), but locally, so `details.sent` is `false`.
fn missing_credentials(code: &str, need: &str) -> Error {
    Error::Authentication(ApiFailure {
        status: 401,
        code: code.to_owned(),
        message: format!("{need}; the client has none, so nothing was sent"),
        details: json!({ "sent": false }),
    })
}

/// The header the server dedupes money-moving POSTs on.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The caller's `Idempotency-Key`, or a fresh random one: one per logical call, the same
/// on every retry of it, so a retry after a lost answer never moves money twice.
pub(crate) fn idempotency_header(key: Option<&str>) -> Vec<(&'static str, String)> {
    let key = key.map_or_else(
        || {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).expect("the OS random source");
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("sdk_{hex}")
        },
        str::to_owned,
    );
    vec![(IDEMPOTENCY_KEY, key)]
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A port that accepts connections but never answers; `true` if anything connected.
    fn listener() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        (listener, base)
    }

    fn connected(listener: &TcpListener) -> bool {
        listener.accept().is_ok()
    }

    fn client(base: &str, key: Option<&str>, token: Option<&str>) -> AgentCity {
        let mut builder = AgentCity::builder()
            .base_url(base)
            .retries(0)
            .timeout(Duration::from_secs(2));
        if let Some(key) = key {
            builder = builder.api_key(key);
        }
        if let Some(token) = token {
            builder = builder.owner_token(token);
        }
        builder.build().unwrap()
    }

    fn expect_auth_error(result: Result<impl std::fmt::Debug, Error>, code: &str, need: &str) {
        match result {
            Err(Error::Authentication(failure)) => {
                assert_eq!(failure.status, 401);
                assert_eq!(failure.code, code);
                assert!(failure.message.contains(need), "{}", failure.message);
                assert_eq!(failure.details, json!({"sent": false}));
            }
            other => panic!("expected an authentication error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn no_credentials_is_an_authentication_error_and_nothing_is_sent() {
        let (listener, base) = listener();
        let nobody = client(&base, None, None);
        let submit = crate::resources::SubmitTask {
            task_type: "code_review".into(),
            max_budget: 5_000,
            input: json!({"description": "Review auth"}),
            agent_id: None,
            parent_task_id: None,
        };
        // The seed: "AuthenticationError -- if neither apiKey nor ownerToken is provided".
        expect_auth_error(
            nobody.tasks().submit(&submit, None).await,
            "UNAUTHORIZED",
            "an API key or an owner token",
        );
        expect_auth_error(
            nobody.agents().me().await,
            "MISSING_API_KEY",
            "agent API key",
        );
        expect_auth_error(nobody.vault().pool().await, "UNAUTHORIZED", "owner token");
        expect_auth_error(
            nobody.tasks().stream_url("task_1"),
            "UNAUTHORIZED",
            "an API key or an owner token",
        );
        let mut stream = nobody.tasks().stream("task_1");
        expect_auth_error(
            stream.next().await.expect("one error"),
            "UNAUTHORIZED",
            "an API key or an owner token",
        );
        assert!(!connected(&listener), "no request may be sent");
        let err = nobody.agents().me().await.unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.code(), Some("MISSING_API_KEY"));
    }

    #[tokio::test]
    async fn an_empty_key_or_token_counts_as_none() {
        let (listener, base) = listener();
        let blank = client(&base, Some(""), Some("  "));
        expect_auth_error(
            blank.agents().me().await,
            "MISSING_API_KEY",
            "agent API key",
        );
        expect_auth_error(blank.vault().pool().await, "UNAUTHORIZED", "owner token");
        expect_auth_error(
            blank.tasks().get("task_1").await,
            "UNAUTHORIZED",
            "an API key or an owner token",
        );
        let owner = client(&base, None, Some("ses_owner")).with_owner_token("");
        expect_auth_error(owner.auth().sign_out().await, "UNAUTHORIZED", "owner token");
        assert!(!connected(&listener), "no request may be sent");
    }

    #[tokio::test]
    async fn the_other_credential_still_serves_either_kind_of_call() {
        let blank_key = client("http://127.0.0.1:9", Some(""), Some("ses_owner"));
        assert_eq!(
            blank_key.auth_headers(As::Either).unwrap(),
            vec![("authorization", "Bearer ses_owner".to_owned())]
        );
        let agent = client("http://127.0.0.1:9", Some("ac_live_k"), None);
        assert_eq!(
            agent.auth_headers(As::Either).unwrap(),
            vec![("x-api-key", "ac_live_k".to_owned())]
        );
        assert!(agent.auth_headers(As::Anyone).unwrap().is_empty());
    }
}
