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
        "BUDGET_LIMIT_EXCEEDED" => {
            "the agent's owner can raise the limit: aicity embassy policy set <agentId> --daily-budget … (or --weekly-budget, --max-per-task)"
        }
        "AGENT_NOT_AUTHORIZED" => {
            "the agent may not do this; if it is the task type, its owner can allow it: aicity embassy policy set <agentId> --allowed-task-types …"
        }
        "POLICY_VERSION_CONFLICT" => {
            "the policy changed since it was read; run the command again (it reads the current version)"
        }
        "APPROVAL_NOT_FOUND" => {
            "see the waiting ones: aicity embassy approvals list --status pending"
        }
        "APPROVAL_ALREADY_DECIDED" => {
            "it was already approved or denied: aicity embassy approvals get <id>"
        }
        "APPROVAL_EXPIRED" => {
            "it waited too long, so the task was cancelled and its credits released; the agent must submit it again"
        }
        "WEBHOOK_NOT_FOUND" => "see your subscriptions: aicity webhooks list",
        "WORKFLOW_NOT_FOUND" => "see your workflows: aicity workflows list",
        "INVALID_WORKFLOW_STATE" => {
            "the workflow has already ended; see where it stands: aicity workflows get <id>"
        }
        "WEBHOOK_DELIVERY_NOT_FOUND" => {
            "see its log: aicity webhooks deliveries <webhookId> (entries expire after 30 days)"
        }
        "WEBHOOK_LIMIT_REACHED" => {
            "delete one first: aicity webhooks list, then aicity webhooks rm <id> (a `webhooks listen` killed without Ctrl-C leaves its subscription behind)"
        }
        "WEBHOOKS_NOT_CONFIGURED" => {
            "the server has no key for webhook secrets (WEBHOOK_SECRET_KEY); try again later or ask its operator"
        }
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
    if let (Some(limit), Some(committed)) = (
        failure.details.get("limit").and_then(|v| v.as_i64()),
        failure.details.get("committed").and_then(|v| v.as_i64()),
    ) {
        text.push_str(&match failure.details["window"].as_str() {
            Some("task") => format!("\n  limit {limit} cents per task"),
            Some("day") => format!(
                "\n  limit {limit} cents a day (UTC), already committed {committed} cents today"
            ),
            Some("week") => format!(
                "\n  limit {limit} cents a week (rolling 7 days), already committed {committed} cents"
            ),
            _ => format!("\n  limit {limit} cents, already committed {committed} cents"),
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(status: u16, code: &str, details: serde_json::Value) -> Error {
        Error::from_status(
            status,
            &json!({"success": false, "error": {"code": code, "message": "m", "details": details}}),
            None,
        )
    }

    #[test]
    fn a_budget_refusal_names_the_limit_and_what_is_committed() {
        let text = explain(&refusal(
            400,
            "BUDGET_LIMIT_EXCEEDED",
            json!({"limit": 20000, "committed": 18000, "window": "day"}),
        ));
        assert!(text.starts_with("BUDGET_LIMIT_EXCEEDED (400): m"), "{text}");
        assert!(
            text.contains("limit 20000 cents a day (UTC), already committed 18000 cents today"),
            "{text}"
        );
        assert!(
            text.contains("hint: the agent's owner can raise the limit"),
            "{text}"
        );
    }

    #[test]
    fn embassy_refusals_say_what_to_do() {
        for (status, code, hint) in [
            (409, "POLICY_VERSION_CONFLICT", "run the command again"),
            (404, "APPROVAL_NOT_FOUND", "approvals list --status pending"),
            (
                409,
                "APPROVAL_ALREADY_DECIDED",
                "already approved or denied",
            ),
            (410, "APPROVAL_EXPIRED", "submit it again"),
            (403, "AGENT_NOT_AUTHORIZED", "--allowed-task-types"),
            (404, "WEBHOOK_NOT_FOUND", "aicity webhooks list"),
            (403, "WEBHOOK_LIMIT_REACHED", "aicity webhooks rm <id>"),
        ] {
            let text = explain(&refusal(status, code, json!({})));
            assert!(text.starts_with(&format!("{code} ({status})")), "{text}");
            assert!(text.contains(hint), "{text}");
        }
    }
}
