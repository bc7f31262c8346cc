//! `aicity embassy`: what the owner's commands parse and print (the pure parts).

use aicity_sdk::embassy::{Approval, AuditEntry, Notification, Policy, PolicyUpdate};

/// A limit given on the command line: cents, or `none` for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<i64>);

/// `--daily-budget 20000`, `--daily-budget none`.
pub fn parse_limit(text: &str) -> Result<Limit, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(Limit(None));
    }
    match text.parse::<i64>() {
        Ok(cents) if cents >= 0 => Ok(Limit(Some(cents))),
        _ => Err(format!(
            "expected cents (a whole number ≥ 0) or `none` for no limit, got {text:?}"
        )),
    }
}

/// Task types given on the command line: `a,b`, or `any` for every type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTypes(pub Option<Vec<String>>);

/// `--allowed-task-types code_review,testing`, `--allowed-task-types any`.
pub fn parse_task_types(text: &str) -> Result<TaskTypes, String> {
    if text.trim().eq_ignore_ascii_case("any") {
        return Ok(TaskTypes(None));
    }
    let types: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if types.is_empty() {
        return Err("name at least one task type (a,b), or `any` for every type".into());
    }
    Ok(TaskTypes(Some(types)))
}

/// What `aicity embassy policy set` was asked to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyChanges {
    pub daily_budget: Option<Limit>,
    pub weekly_budget: Option<Limit>,
    pub max_per_task: Option<Limit>,
    pub approval_threshold: Option<Limit>,
    pub allowed_task_types: Option<TaskTypes>,
    /// Start from no limits instead of the current policy.
    pub clear: bool,
}

impl PolicyChanges {
    /// Whether running it would change anything at all.
    pub fn is_empty(&self) -> bool {
        !self.clear && *self == Self::default()
    }

    /// The whole policy to send: `current` (or no limits with `clear`) with the fields
    /// given replaced, at the version read.
    pub fn update(&self, current: &Policy) -> PolicyUpdate {
        let mut update = if self.clear {
            PolicyUpdate::cleared(current.version)
        } else {
            PolicyUpdate::from(current)
        };
        let limits = [
            (&mut update.daily_budget, self.daily_budget),
            (&mut update.weekly_budget, self.weekly_budget),
            (&mut update.max_per_task, self.max_per_task),
            (&mut update.approval_threshold, self.approval_threshold),
        ];
        for (field, given) in limits {
            if let Some(Limit(value)) = given {
                *field = value;
            }
        }
        if let Some(TaskTypes(types)) = &self.allowed_task_types {
            update.allowed_task_types = types.clone();
        }
        update
    }
}

/// Cents as dollars: `$12.05`.
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}${}.{:02}", abs / 100, abs % 100)
}

fn limit(value: Option<i64>) -> String {
    value.map(dollars).unwrap_or_else(|| "no limit".into())
}

/// The policy for people.
pub fn policy_text(policy: &Policy) -> String {
    let mut head = format!("policy of {} (version {}", policy.agent_id, policy.version);
    match (&policy.updated_at, policy.version) {
        (_, 0) => head.push_str(", never set"),
        (Some(at), _) => head.push_str(&format!(", updated {at}")),
        (None, _) => {}
    }
    head.push(')');
    let types = policy
        .allowed_task_types
        .as_ref()
        .map(|t| t.join(", "))
        .unwrap_or_else(|| "any".into());
    [
        head,
        format!(
            "  daily budget        {:<10}  committed today {}",
            limit(policy.daily_budget),
            dollars(policy.committed.today)
        ),
        format!(
            "  weekly budget       {:<10}  committed over the last 7 days {}",
            limit(policy.weekly_budget),
            dollars(policy.committed.last_7_days)
        ),
        format!("  max per task        {}", limit(policy.max_per_task)),
        format!(
            "  approval threshold  {}{}",
            limit(policy.approval_threshold),
            if policy.approval_threshold.is_some() {
                "  (larger tasks wait for your approval)"
            } else {
                ""
            }
        ),
        format!("  task types          {types}"),
    ]
    .join("\n")
}

/// One approval on one line.
pub fn approval_line(approval: &Approval) -> String {
    let when = match (&approval.decided_at, approval.status.as_str()) {
        (_, "pending") => format!("expires {}", approval.expires_at),
        (Some(at), _) => format!("decided {at}"),
        (None, _) => format!("created {}", approval.created_at),
    };
    let mut line = format!(
        "{}  {:<9} {}  {:<16} {:>10}  agent {}  {when}",
        approval.id,
        approval.status,
        approval.task_id,
        approval.task_type,
        dollars(approval.amount),
        approval.agent_id
    );
    if let Some(reason) = &approval.reason {
        line.push_str(&format!("  ({reason})"));
    }
    line
}

/// One audit entry on one line.
pub fn audit_line(entry: &AuditEntry) -> String {
    format!(
        "{}  {}:{}  {}  {}:{}",
        entry.at,
        entry.actor.kind,
        entry.actor.id,
        entry.action,
        entry.target.kind,
        entry.target.id
    )
}

/// One notification on one line.
pub fn notification_line(notification: &Notification) -> String {
    format!(
        "{}  {:<20} {}: {}",
        notification.created_at, notification.kind, notification.title, notification.body
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aicity_sdk::embassy::{Committed, Party};
    use serde_json::json;

    fn current() -> Policy {
        Policy {
            agent_id: "ag_1".into(),
            version: 7,
            daily_budget: Some(20_000),
            weekly_budget: Some(50_000),
            max_per_task: None,
            approval_threshold: Some(3_000),
            allowed_task_types: Some(vec!["code_review".into()]),
            updated_at: Some("2026-03-01T10:00:00Z".into()),
            committed: Committed {
                today: 2_500,
                last_7_days: 9_000,
            },
        }
    }

    #[test]
    fn limits_and_task_types_parse_with_words_for_no_limit() {
        assert_eq!(parse_limit("2500"), Ok(Limit(Some(2500))));
        assert_eq!(parse_limit("0"), Ok(Limit(Some(0))));
        assert_eq!(parse_limit("none"), Ok(Limit(None)));
        assert_eq!(parse_limit("NONE"), Ok(Limit(None)));
        assert!(parse_limit("-1").is_err());
        assert!(parse_limit("12.50").is_err());
        assert!(parse_limit("").is_err());

        assert_eq!(
            parse_task_types("code_review, testing,"),
            Ok(TaskTypes(Some(vec![
                "code_review".into(),
                "testing".into()
            ])))
        );
        assert_eq!(parse_task_types("any"), Ok(TaskTypes(None)));
        assert!(parse_task_types(" , ").is_err());
    }

    #[test]
    fn a_set_keeps_what_is_not_given_and_sends_the_version_read() {
        let changes = PolicyChanges {
            max_per_task: Some(Limit(Some(10_000))),
            daily_budget: Some(Limit(None)),
            ..PolicyChanges::default()
        };
        assert!(!changes.is_empty());
        assert_eq!(
            changes.update(&current()),
            PolicyUpdate {
                version: 7,
                daily_budget: None,
                weekly_budget: Some(50_000),
                max_per_task: Some(10_000),
                approval_threshold: Some(3_000),
                allowed_task_types: Some(vec!["code_review".into()]),
            }
        );
    }

    #[test]
    fn a_clear_starts_from_no_limits() {
        let clear = PolicyChanges {
            clear: true,
            ..PolicyChanges::default()
        };
        assert!(!clear.is_empty());
        assert_eq!(clear.update(&current()), PolicyUpdate::cleared(7));

        let clear_but_one = PolicyChanges {
            approval_threshold: Some(Limit(Some(100))),
            allowed_task_types: Some(TaskTypes(Some(vec!["testing".into()]))),
            clear: true,
            ..PolicyChanges::default()
        };
        assert_eq!(
            clear_but_one.update(&current()),
            PolicyUpdate {
                version: 7,
                approval_threshold: Some(100),
                allowed_task_types: Some(vec!["testing".into()]),
                ..PolicyUpdate::default()
            }
        );
        assert!(PolicyChanges::default().is_empty());
    }

    #[test]
    fn amounts_print_as_dollars() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(5), "$0.05");
        assert_eq!(dollars(250_099), "$2500.99");
        assert_eq!(dollars(-50), "-$0.50");
    }

    #[test]
    fn the_policy_prints_its_limits_and_what_is_committed() {
        let text = policy_text(&current());
        assert!(
            text.starts_with("policy of ag_1 (version 7, updated 2026-03-01T10:00:00Z)"),
            "{text}"
        );
        assert!(text.contains("daily budget        $200.00"), "{text}");
        assert!(text.contains("committed today $25.00"), "{text}");
        assert!(
            text.contains("committed over the last 7 days $90.00"),
            "{text}"
        );
        assert!(text.contains("max per task        no limit"), "{text}");
        assert!(text.contains("approval threshold  $30.00"), "{text}");
        assert!(text.contains("task types          code_review"), "{text}");

        let fresh = Policy {
            agent_id: "ag_2".into(),
            ..Policy::default()
        };
        let text = policy_text(&fresh);
        assert!(
            text.starts_with("policy of ag_2 (version 0, never set)"),
            "{text}"
        );
        assert!(text.contains("task types          any"), "{text}");
    }

    #[test]
    fn approvals_audit_entries_and_notifications_fit_on_a_line() {
        let approval: Approval = serde_json::from_value(json!({
            "id": "apr_1", "taskId": "task_1", "agentId": "ag_1", "ownerId": "usr_1",
            "taskType": "code_review", "amount": 4000, "status": "denied",
            "createdAt": "2026-03-01T10:00:00Z", "expiresAt": "2026-03-02T10:00:00Z",
            "decidedAt": "2026-03-01T10:05:00Z", "reason": "too dear"
        }))
        .unwrap();
        let line = approval_line(&approval);
        assert!(line.starts_with("apr_1  denied    task_1"), "{line}");
        assert!(line.contains("$40.00"), "{line}");
        assert!(line.contains("decided 2026-03-01T10:05:00Z"), "{line}");
        assert!(line.ends_with("(too dear)"), "{line}");

        let entry = AuditEntry {
            id: "aud_1".into(),
            at: "2026-03-01T10:05:00Z".into(),
            owner_id: "usr_1".into(),
            agent_id: None,
            actor: Party {
                kind: "owner".into(),
                id: "usr_1".into(),
            },
            action: "approval.denied".into(),
            target: Party {
                kind: "approval".into(),
                id: "apr_1".into(),
            },
            request_id: None,
            details: json!({}),
        };
        assert_eq!(
            audit_line(&entry),
            "2026-03-01T10:05:00Z  owner:usr_1  approval.denied  approval:apr_1"
        );

        let notification: Notification = serde_json::from_value(json!({
            "id": "ntf_1", "type": "approval.requested", "title": "Approval needed",
            "body": "$40.00 for code_review", "createdAt": "2026-03-01T10:00:00Z"
        }))
        .unwrap();
        assert_eq!(
            notification_line(&notification),
            "2026-03-01T10:00:00Z  approval.requested   Approval needed: $40.00 for code_review"
        );
    }
}
