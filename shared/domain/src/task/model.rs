//! A task as stored and shown, what a buyer submits, and the events of its life.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::FieldError;
use crate::identity::Category;
use crate::ids::{AgentId, OwnerId, TaskId};
use crate::money::Cents;
use crate::task::TaskStatus;
use crate::validate::{Validate, check_length, check_range};

pub const MAX_BUDGET: i64 = 1_000_000;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_REPO_CHARS: usize = 2_048;
pub const MAX_CODE_CHARS: usize = 100_000;
pub const MAX_FILES: usize = 20;
pub const MAX_FILE_NAME_CHARS: usize = 255;
pub const MAX_FILE_CHARS: usize = 100_000;
/// All of a task's input together (its template's fields included): at most this as
/// JSON and at most this stored ([`crate::json_limits::stored_size`]; `previousOutput`
/// and the template's `integer` and `json` fields may hold numbers). The size budget of
/// a task item (DynamoDB stops at 400 KB):
/// input ≤ 150 KiB stored + output ≤ 150 KiB stored + quality reasons ≤ 20 × 500 characters
/// (≤ 40 KB in UTF-8) + error message ≤ 2,000 characters (≤ 8 KB) + the rest (ids,
/// timestamps, index keys: < 4 KB) ≤ 359 KB. `aicity-store` checks every task item
/// against the limit before writing and a test builds the worst case.
pub const MAX_INPUT_BYTES: usize = 150 * 1024;
/// An agent's output: at most this as JSON, and at most this stored
/// ([`crate::json_limits::stored_size`]), within DynamoDB's depth and number range.
pub const MAX_OUTPUT_BYTES: usize = 150 * 1024;
/// Reasons the quality gate gives, and the characters of each.
pub const MAX_QUALITY_REASONS: usize = 20;
pub const MAX_QUALITY_REASON_CHARS: usize = 500;
pub const MAX_PROGRESS_CHARS: usize = 1_000;
pub const MAX_ERROR_CHARS: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    /// A plain file name (no directories), unique in the task.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 100_000))]
    pub content: String,
}

/// What a buyer gives: the fields every task type takes, and the fields of its task
/// type's template (`crate::task::templates`), which submit checks against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    /// What to do (not blank).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 10_000, pattern = r"\S")
    )]
    pub description: String,
    /// An http(s) URL of the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 2_048, pattern = "^https?://")
    )]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100_000))]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub files: Vec<InputFile>,
    /// A workflow step's input: the output of the step before it (set by the platform;
    /// a buyer chaining tasks by hand may set it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_output: Option<Value>,
    /// The task type's own fields (e.g. `expectedBehavior` of a `bug_fix`), by their
    /// wire names. Anything its template does not list is refused at submit.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

/// `POST /tasks`
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitTask {
    pub task_type: Category,
    /// The most the buyer pays, in cents: held from the owner's pool until the task ends.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub max_budget: i64,
    pub input: TaskInput,
    /// Hire this agent directly (another owner's, offering the task type within the budget).
    #[serde(default)]
    pub agent_id: Option<AgentId>,
    /// A task of the caller's this one follows up on.
    #[serde(default)]
    pub parent_task_id: Option<TaskId>,
}

/// A file name safe to write inside a sandbox: no directories, no dot-dot, no control
/// characters.
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

impl Validate for SubmitTask {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_range(errors, "maxBudget", self.max_budget, 1, MAX_BUDGET);
        let input = &self.input;
        check_length(
            errors,
            "input.description",
            input.description.trim(),
            1,
            MAX_DESCRIPTION_CHARS,
        );
        if let Some(repo) = &input.repo {
            check_length(errors, "input.repo", repo, 1, MAX_REPO_CHARS);
            if !(repo.starts_with("https://") || repo.starts_with("http://")) {
                errors.push(FieldError::new("input.repo", "must be an http(s) URL"));
            }
        }
        if let Some(code) = &input.code {
            check_length(errors, "input.code", code, 1, MAX_CODE_CHARS);
        }
        if input.files.len() > MAX_FILES {
            errors.push(FieldError::new(
                "input.files",
                format!("at most {MAX_FILES} files"),
            ));
        }
        for (i, file) in input.files.iter().enumerate() {
            check_length(
                errors,
                &format!("input.files[{i}].name"),
                &file.name,
                1,
                MAX_FILE_NAME_CHARS,
            );
            if !is_safe_file_name(&file.name) {
                errors.push(FieldError::new(
                    format!("input.files[{i}].name"),
                    "must be a plain file name (no directories)",
                ));
            }
            check_length(
                errors,
                &format!("input.files[{i}].content"),
                &file.content,
                0,
                MAX_FILE_CHARS,
            );
            if input.files[..i].iter().any(|f| f.name == file.name) {
                errors.push(FieldError::new(
                    format!("input.files[{i}].name"),
                    "is listed twice",
                ));
            }
        }
        crate::task::templates::template(self.task_type).check_input(&input.fields, errors);
        let size = serde_json::to_vec(input)
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        if size > MAX_INPUT_BYTES {
            errors.push(FieldError::new(
                "input",
                format!("must be at most {MAX_INPUT_BYTES} bytes in all"),
            ));
        } else if let Ok(value) = serde_json::to_value(input) {
            crate::json_limits::check(errors, "input", &value, MAX_INPUT_BYTES);
        }
    }
}

/// Why a task failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    QualityGate,
    ExecutionError,
    Timeout,
    BudgetExceeded,
    /// No eligible agent after every routing attempt.
    NoAgentsAvailable,
    /// The quality gate could not score the output (it kept erroring) within its
    /// attempts and age: the buyer pays nothing, the agent is not marked.
    QualityUnavailable,
}

/// Thumbs up or down from the buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    Up,
    Down,
}

/// A task, as stored and as `GET /tasks/:id` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: TaskId,
    pub task_type: Category,
    pub status: TaskStatus,
    pub input: TaskInput,
    pub max_budget: Cents,
    pub agent_id: Option<AgentId>,
    /// Who pays: the owner, directly or through one of its agents.
    pub caller_owner_id: OwnerId,
    pub caller_agent_id: Option<AgentId>,
    pub parent_task_id: Option<TaskId>,
    /// Whether the buyer named the agent (direct hire).
    pub direct_hire: bool,
    /// The agent named for a direct hire, until the router assigns it.
    #[serde(default)]
    pub requested_agent_id: Option<AgentId>,
    /// The assigned agent's price for the task type when it was assigned: what the
    /// buyer is charged on success (never more than `max_budget`).
    #[serde(default)]
    pub agreed_price: Option<Cents>,
    pub sandbox_id: Option<String>,
    pub output: Option<Value>,
    pub quality_score: Option<u8>,
    pub self_reported_score: Option<u8>,
    pub credits_charged: Option<Cents>,
    pub execution_time_ms: Option<u64>,
    pub feedback: Option<Feedback>,
    pub failure_reason: Option<FailureReason>,
    pub error_message: Option<String>,
    /// Why the quality gate scored as it did.
    #[serde(default)]
    pub quality_reasons: Vec<String>,
    pub routing_attempts: u32,
    /// Agents that let this task lapse (assigned, never started): it is not offered
    /// to them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declined_by: Vec<AgentId>,
    /// How often the quality gate failed to score this output (not a low score: an
    /// error). Bounded by `QUALITY_MAX_ATTEMPTS`.
    #[serde(default)]
    pub quality_attempts: u32,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    /// When the router assigned the agent.
    #[serde(default)]
    pub assigned_at: Option<String>,
    /// When the agent started executing.
    #[serde(default)]
    pub started_at: Option<String>,
    /// When the escrow was released to the agent (the refund window closed).
    #[serde(default)]
    pub settled_at: Option<String>,
    /// The dispute filed on this task, if any.
    #[serde(default)]
    pub dispute_id: Option<crate::ids::DisputeId>,
    /// That dispute's status, changed in the same transaction as the dispute itself, so
    /// every step that reads the task knows whether its earning is frozen.
    #[serde(default)]
    pub dispute_status: Option<crate::task::dispute::DisputeStatus>,
    /// The UTC day whose budget counter of the submitting agent holds this task's
    /// budget (`None`: an owner's submit, counted nowhere). A voided hold gives its
    /// amount back to that day, a posted one what was not charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_day: Option<String>,
    /// The workflow this task is a step of, and which step (from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<crate::ids::WorkflowId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_step: Option<u8>,
}

impl Task {
    /// A task as a buyer's submit creates it, in `status` (`submitted`, or
    /// `pending_approval` / `waiting` before it), nothing done yet.
    pub fn submitted(
        id: TaskId,
        body: &SubmitTask,
        buyer: (OwnerId, Option<AgentId>),
        status: TaskStatus,
        at: &str,
    ) -> Self {
        Self {
            id,
            task_type: body.task_type,
            status,
            input: body.input.clone(),
            max_budget: Cents(body.max_budget),
            agent_id: None,
            caller_owner_id: buyer.0,
            caller_agent_id: buyer.1,
            parent_task_id: body.parent_task_id,
            direct_hire: body.agent_id.is_some(),
            requested_agent_id: body.agent_id,
            agreed_price: None,
            sandbox_id: None,
            output: None,
            quality_score: None,
            self_reported_score: None,
            credits_charged: None,
            execution_time_ms: None,
            feedback: None,
            failure_reason: None,
            error_message: None,
            quality_reasons: Vec::new(),
            routing_attempts: 0,
            quality_attempts: 0,
            declined_by: Vec::new(),
            created_at: at.to_owned(),
            updated_at: at.to_owned(),
            completed_at: None,
            assigned_at: None,
            started_at: None,
            settled_at: None,
            dispute_id: None,
            dispute_status: None,
            budget_day: None,
            workflow_id: None,
            workflow_step: None,
        }
    }

    /// A dispute is open: the agent's earning for this task is frozen.
    pub fn dispute_open(&self) -> bool {
        self.dispute_status.is_some_and(|s| s.is_open())
    }
}

/// Kinds of task events; the SSE stream uses them as event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Status,
    Progress,
    Complete,
    Error,
    /// The buyer filed a dispute (the agent is told through its stream).
    Dispute,
}

/// One entry of a task's history, numbered from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TaskEventRecord))]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub data: Value,
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(value: serde_json::Value) -> Vec<String> {
        let task: SubmitTask = serde_json::from_value(value).unwrap();
        let mut errors = Vec::new();
        task.validate(&mut errors);
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_plain_task_is_valid() {
        assert!(submit(serde_json::json!({
            "taskType": "code_review", "maxBudget": 5000,
            "input": {"description": "Review", "repo": "https://github.com/o/r", "files": [{"name": "a.rs", "content": "fn main(){}"}]}
        }))
        .is_empty());
    }

    #[test]
    fn every_size_and_shape_limit_names_its_field() {
        let fields = submit(serde_json::json!({
            "taskType": "code_review", "maxBudget": 0,
            "input": {
                "description": " ",
                "repo": "ftp://x",
                "files": [{"name": "../etc/passwd", "content": ""}, {"name": "a", "content": "x"}, {"name": "a", "content": "y"}]
            }
        }));
        assert_eq!(
            fields,
            [
                "maxBudget",
                "input.description",
                "input.repo",
                "input.files[0].name",
                "input.files[2].name"
            ]
        );
    }

    #[test]
    fn a_bug_fix_takes_its_template_fields_and_keeps_them() {
        let body = serde_json::json!({
            "taskType": "bug_fix", "maxBudget": 500,
            "input": {"description": "Fix the crash", "repo": "https://github.com/o/r",
                      "expectedBehavior": "200 OK", "actualBehavior": "500", "stepsToReproduce": "curl /"}
        });
        assert!(submit(body.clone()).is_empty());
        let task: SubmitTask = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(task.task_type, Category::BugFix);
        assert_eq!(task.input.fields["expectedBehavior"], "200 OK");
        assert_eq!(task.input.fields.len(), 3);
        // Shown and stored as given: the template's fields beside the common ones.
        let shown = serde_json::to_value(&task.input).unwrap();
        assert_eq!(shown, body["input"]);
        let back: TaskInput = serde_json::from_value(shown).unwrap();
        assert_eq!(back, task.input);
        // A plain input shows no trace of them.
        let plain: TaskInput =
            serde_json::from_value(serde_json::json!({"description": "d"})).unwrap();
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::json!({"description": "d"})
        );
    }

    #[test]
    fn input_is_checked_against_its_template() {
        let fields = submit(serde_json::json!({
            "taskType": "content_creation", "maxBudget": 500,
            "input": {"description": "Write a post", "wordCount": "long", "tone": "dry", "colour": "red"}
        }));
        assert_eq!(fields, ["input.colour", "input.wordCount"]);
        // A field of another template is unknown here.
        assert_eq!(
            submit(serde_json::json!({
                "taskType": "code_review", "maxBudget": 500,
                "input": {"description": "Review", "wordCount": 3}
            })),
            ["input.wordCount"]
        );
    }

    fn parse_error(value: serde_json::Value) -> String {
        serde_json::from_value::<SubmitTask>(value)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_missing_description_or_a_mistyped_common_field_fails_to_parse() {
        let missing = parse_error(serde_json::json!({
            "taskType": "bug_fix", "maxBudget": 500, "input": {"actualBehavior": "500"}
        }));
        assert!(missing.contains("missing field `description`"), "{missing}");
        let mistyped = parse_error(serde_json::json!({
            "taskType": "bug_fix", "maxBudget": 500, "input": {"description": "d", "repo": 5}
        }));
        assert!(mistyped.contains("invalid type"), "{mistyped}");
    }

    #[test]
    fn an_unknown_task_type_lists_the_known_ones() {
        let message = parse_error(serde_json::json!({
            "taskType": "bugfix", "maxBudget": 500, "input": {"description": "d"}
        }));
        assert!(message.contains("unknown variant `bugfix`"), "{message}");
        for category in Category::ALL {
            assert!(message.contains(category.as_str()), "{message}");
        }
    }

    #[test]
    fn numbers_in_the_input_count_at_their_stored_size() {
        // A list of small numbers: within the limit as JSON, half again as large stored.
        let list = serde_json::Value::Array(vec![serde_json::json!(1); MAX_INPUT_BYTES / 2 - 100]);
        let input = serde_json::json!({"description": "d", "previousOutput": list});
        assert!(serde_json::to_vec(&input).unwrap().len() <= MAX_INPUT_BYTES);
        let task: SubmitTask = serde_json::from_value(serde_json::json!({
            "taskType": "general", "maxBudget": 500, "input": input
        }))
        .unwrap();
        let mut errors = Vec::new();
        task.validate(&mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "input");
        assert!(errors[0].message.contains("stored"), "{errors:?}");
    }

    #[test]
    fn file_names_cannot_escape_a_directory() {
        for bad in ["", ".", "..", "a/b", "..\\x", "a\u{0}"] {
            assert!(!is_safe_file_name(bad), "{bad:?}");
        }
        assert!(is_safe_file_name("main.rs"));
        assert!(is_safe_file_name("..hidden"));
    }
}
