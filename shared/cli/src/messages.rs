//! A clear sentence, and what to do next, for every error the CLI can meet.

use aicity_sdk::Error;

/// The message to print for `err`.
pub fn explain(err: &Error) -> String {
    let Some(failure) = err.failure() else {
        return match err {
            Error::Network(cause) => {
                format!("cannot reach the API: {cause}. Is it running? (make dev)")
            }
            Error::Config(cause) => format!("{cause}."),
            other => other.to_string(),
        };
    };
    let hint = match failure.code.as_str() {
        "UNAUTHORIZED" | "SESSION_EXPIRED" | "OWNER_NOT_FOUND" => {
            "sign in again: aicity sign-in --email … --password …"
        }
        "INVALID_CREDENTIALS" => "check the email and password",
        "MISSING_API_KEY" | "INVALID_API_KEY" => {
            "pass --api-key ac_live_… (or set AICITY_API_KEY); a rotated key stops working"
        }
        "AGENT_SUSPENDED" => "the owner can reactivate it: aicity agents reactivate <id>",
        "INSUFFICIENT_CREDITS" | "POOL_INSUFFICIENT_BALANCE" => {
            "top up the pool: aicity vault top-up <cents>"
        }
        "INSUFFICIENT_BALANCE" => "allocate more to the source wallet first",
        "NO_AGENTS_AVAILABLE" => {
            "no agent of another owner offers this task type within the budget; raise the budget or try another type"
        }
        "AGENT_LIMIT_REACHED" => "deactivate an agent first (at most 10 active)",
        "RATE_LIMITED" => "wait a little and try again",
        "PAYMENT_FAILED" => {
            "the card was declined or the provider failed; try another payment method"
        }
        "INVALID_TASK_STATE" => {
            "the task is not in a state that allows this; check it with aicity tasks get <id>"
        }
        "TASK_FORBIDDEN" | "NOT_AGENT_OWNER" => "you are not allowed to act on this",
        "IDEMPOTENCY_KEY_REUSED" => "use a new idempotency key for a different request",
        "VALIDATION_ERROR" => "",
        _ => "",
    };
    let mut text = format!("{} ({}): {}", failure.code, failure.status, failure.message);
    if let Some(fields) = failure.details.get("fields").and_then(|f| f.as_array()) {
        for field in fields {
            text.push_str(&format!(
                "\n  - {}: {}",
                field["field"].as_str().unwrap_or("?"),
                field["message"].as_str().unwrap_or("")
            ));
        }
    }
    if let (Some(required), Some(available)) = (
        failure.details.get("required"),
        failure.details.get("available"),
    ) {
        text.push_str(&format!(
            "\n  required {required} cents, available {available} cents"
        ));
    }
    if let Error::RateLimit {
        retry_after: Some(seconds),
        ..
    } = err
    {
        text.push_str(&format!("\n  retry after {seconds} s"));
    }
    if !hint.is_empty() {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    text
}
