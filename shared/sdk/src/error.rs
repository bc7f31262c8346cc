//! Errors by HTTP status, each carrying the API's error code, message and details.

use serde_json::Value;

/// What the API said when it refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFailure {
    pub status: u16,
    /// e.g. `INSUFFICIENT_CREDITS`.
    pub code: String,
    pub message: String,
    pub details: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validation failed: {0:?}")]
    Validation(ApiFailure),
    #[error("not authenticated: {0:?}")]
    Authentication(ApiFailure),
    #[error("forbidden: {0:?}")]
    Forbidden(ApiFailure),
    #[error("not found: {0:?}")]
    NotFound(ApiFailure),
    #[error("conflict: {0:?}")]
    Conflict(ApiFailure),
    #[error("payment required: {0:?}")]
    PaymentRequired(ApiFailure),
    #[error("rate limited; retry after {retry_after:?} s: {failure:?}")]
    RateLimit {
        retry_after: Option<u64>,
        failure: ApiFailure,
    },
    /// 410 and other 4xx the API uses rarely.
    #[error("request failed: {0:?}")]
    Other(ApiFailure),
    #[error("server error: {0:?}")]
    Server(ApiFailure),
    #[error("network error: {0}")]
    Network(String),
    /// The client was set up wrong (e.g. an HTTP client that cannot be built). Missing
    /// credentials for a call are an [`Error::Authentication`], refused before sending.
    #[error("client misconfigured: {0}")]
    Config(String),
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl Error {
    /// Builds the typed error for a status and an error envelope.
    pub fn from_status(status: u16, body: &Value, retry_after: Option<u64>) -> Self {
        let error = &body["error"];
        let failure = ApiFailure {
            status,
            code: error["code"].as_str().unwrap_or("UNKNOWN").to_owned(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            details: error.get("details").cloned().unwrap_or(Value::Null),
        };
        match status {
            400 => Error::Validation(failure),
            401 => Error::Authentication(failure),
            402 => Error::PaymentRequired(failure),
            403 => Error::Forbidden(failure),
            404 => Error::NotFound(failure),
            409 => Error::Conflict(failure),
            429 => Error::RateLimit {
                retry_after,
                failure,
            },
            500..=599 => Error::Server(failure),
            _ => Error::Other(failure),
        }
    }

    /// The API's failure, when the API answered.
    pub fn failure(&self) -> Option<&ApiFailure> {
        match self {
            Error::Validation(f)
            | Error::Authentication(f)
            | Error::Forbidden(f)
            | Error::NotFound(f)
            | Error::Conflict(f)
            | Error::PaymentRequired(f)
            | Error::Other(f)
            | Error::Server(f)
            | Error::RateLimit { failure: f, .. } => Some(f),
            _ => None,
        }
    }

    /// The API's error code, e.g. `"NO_AGENTS_AVAILABLE"`.
    pub fn code(&self) -> Option<&str> {
        self.failure().map(|f| f.code.as_str())
    }

    /// Whether the call may succeed if tried again (429, 5xx, network).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RateLimit { .. } | Error::Server(_) | Error::Network(_)
        )
    }
}
