//! The one error type every layer returns to the HTTP edge.

use serde::Serialize;
use serde_json::{Value, json};

use crate::ErrorCode;

/// One problem with one input field, as listed in `details.fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `input.description` or `files[2].name`.
    pub field: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error the API answers with: a code from [`ErrorCode`], a message safe to show
/// to the caller, and optional structured details.
///
/// Internal causes are logged where they happen and never put in here: the public
/// message of a 5xx is always the code's default message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            message: code.default_message().to_owned(),
            details: None,
        }
    }

    /// An error with a specific message. For 5xx codes the message is replaced by
    /// the default one, so a caller cannot leak internals by accident.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        let message = if code.http_status() >= 500 {
            code.default_message().to_owned()
        } else {
            message.into()
        };
        Self {
            code,
            message,
            details: None,
        }
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `VALIDATION_ERROR` naming every offending field in `details.fields`.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [one] => format!("Invalid value for '{}': {}", one.field, one.message),
            _ => format!("{} fields failed validation", fields.len()),
        };
        Self::with_message(ErrorCode::ValidationError, message).details(json!({ "fields": fields }))
    }

    /// `VALIDATION_ERROR` for a single field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// The generic 500. Log the cause before calling this; it carries none.
    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalError)
    }

    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// Whether the same request may succeed later: trouble on our side (5xx, which
    /// includes contention) or a rate limit. Anything else is an answer, not a fault.
    pub fn is_retryable(&self) -> bool {
        self.http_status() >= 500 || self.http_status() == 429
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_never_carry_a_custom_message() {
        let err = ApiError::with_message(ErrorCode::InternalError, "db at 10.0.0.3 refused");
        assert_eq!(err.message, ErrorCode::InternalError.default_message());
        assert!(!err.message.contains("10.0.0.3"));
    }

    #[test]
    fn client_errors_keep_their_message() {
        let err = ApiError::with_message(ErrorCode::InvalidTaskState, "task is completed");
        assert_eq!(err.message, "task is completed");
        assert_eq!(err.http_status(), 409);
    }

    #[test]
    fn only_server_errors_and_rate_limits_are_retryable() {
        assert!(ApiError::new(ErrorCode::ServiceUnavailable).is_retryable());
        assert!(ApiError::internal().is_retryable());
        assert!(ApiError::new(ErrorCode::RateLimited).is_retryable());
        assert!(!ApiError::new(ErrorCode::InvalidTaskState).is_retryable());
        assert!(!ApiError::new(ErrorCode::TaskNotFound).is_retryable());
    }

    #[test]
    fn validation_lists_every_field() {
        let err = ApiError::validation(vec![
            FieldError::new("taskType", "is required"),
            FieldError::new("maxBudget", "must be a positive integer"),
        ]);
        assert_eq!(err.code, ErrorCode::ValidationError);
        let fields = &err.details.as_ref().unwrap()["fields"];
        assert_eq!(fields[0]["field"], "taskType");
        assert_eq!(fields[1]["field"], "maxBudget");
        assert_eq!(err.http_status(), 400);
    }
}
