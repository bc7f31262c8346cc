//! `functions/tasks` (and the stream function's `GET /tasks/{id}/stream`): a buyer
//! (owner session or agent key) submits, reads, lists, cancels, reviews and disputes
//! tasks; the assigned agent (its key) finds its work, gets a sandbox, starts, reports
//! progress and completes or fails.

use aicity_domain::ErrorCode::*;
use aicity_domain::identity::Category;
use aicity_domain::ids::{DisputeId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::task::TaskStatus;
use aicity_domain::task::dispute::{DisputeReason, DisputeStatus, FileDispute};
use aicity_domain::task::economics::{History, PriceSpread};
use aicity_domain::task::model::{
    Feedback, MAX_BUDGET, MAX_ERROR_CHARS, MAX_PROGRESS_CHARS, SubmitTask, Task,
};
use aicity_domain::task::templates::Template;
use serde_json::{Value, json};

use crate::{AGENT, CALLER, Op, Registry};

const TAG: &str = "Tasks";

/// What every step on a task can answer once the caller is known: no such task, not
/// the caller's, a state the step does not apply to, a store that did not answer.
const ON_A_TASK: &[aicity_domain::ErrorCode] = &[
    TaskNotFound,
    TaskForbidden,
    InvalidTaskState,
    ServiceUnavailable,
];

pub fn task_example() -> Value {
    json!({
        "id": "task_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "taskType": "code_review",
        "status": "submitted",
        "input": {"description": "Review the error handling in src/lib.rs", "repo": "https://github.com/acme/widgets"},
        "maxBudget": 5000,
        "agentId": null,
        "callerOwnerId": "usr_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "callerAgentId": null,
        "parentTaskId": null,
        "directHire": false,
        "requestedAgentId": null,
        "agreedPrice": null,
        "sandboxId": null,
        "output": null,
        "qualityScore": null,
        "selfReportedScore": null,
        "creditsCharged": null,
        "executionTimeMs": null,
        "feedback": null,
        "failureReason": null,
        "errorMessage": null,
        "qualityReasons": [],
        "routingAttempts": 0,
        "qualityAttempts": 0,
        "createdAt": "2026-05-01T12:00:00Z",
        "updatedAt": "2026-05-01T12:00:00Z",
        "completedAt": null,
        "assignedAt": null,
        "startedAt": null,
        "settledAt": null,
        "disputeId": null,
        "disputeStatus": null
    })
}

pub fn operations(r: &mut Registry) -> Vec<Op> {
    let task = r.of::<Task>();
    let submit = r.of::<SubmitTask>();
    let template = r.of::<Template>();
    let category = r.of::<Category>();
    let task_status = r.of::<TaskStatus>();
    let cents = r.of::<Cents>();
    let price = r.of::<PriceSpread>();
    let history = r.of::<History>();
    let feedback = r.of::<Feedback>();
    let dispute_reason = r.of::<DisputeReason>();
    let dispute_status = r.of::<DisputeStatus>();
    let file_dispute = r.of::<FileDispute>();
    let task_id = r.of::<TaskId>();
    let dispute_id = r.of::<DisputeId>();

    let estimate = r.named(
        "TaskEstimate",
        json!({
            "type": "object",
            "description": "What a task of this type would cost: the eligible agents' listed prices (other owners' agents only, within `maxBudget` when given) and the type's completed history.",
            "required": ["taskType", "maxBudget", "eligibleAgents", "price", "history"],
            "properties": {
                "taskType": category,
                "maxBudget": {"type": ["integer", "null"], "description": "As asked; null without it."},
                "eligibleAgents": {"type": "integer", "minimum": 0},
                "price": price,
                "history": history
            }
        }),
    );
    let sandbox = r.named(
        "Sandbox",
        json!({
            "type": "object",
            "description": "A sandbox for the task: a local directory, or an E2B sandbox reached through its envd with a token scoped to that one sandbox.",
            "required": ["sandboxId", "provider", "workdir"],
            "properties": {
                "sandboxId": {"type": "string"},
                "provider": {"type": "string", "enum": ["local", "e2b"]},
                "workdir": {"type": "string", "description": "Where `task.json`, `code.txt` and `input/` are."},
                "local": {
                    "type": "object",
                    "required": ["path"],
                    "properties": {"path": {"type": "string"}}
                },
                "e2b": {
                    "type": "object",
                    "required": ["sandboxId", "envdUrl", "envdPort", "accessToken", "user"],
                    "properties": {
                        "sandboxId": {"type": "string"},
                        "envdUrl": {"type": "string"},
                        "envdPort": {"type": "integer"},
                        "accessToken": {"type": ["string", "null"]},
                        "user": {"type": "string"}
                    }
                }
            }
        }),
    );
    let start = r.named(
        "StartTask",
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["sandboxId"],
            "properties": {
                "sandboxId": {"type": "string", "minLength": 1, "maxLength": 128,
                              "description": "A sandbox this task's `POST /sandbox` created."}
            }
        }),
    );
    let progress = r.named(
        "TaskProgress",
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["message"],
            "properties": {
                "message": {"type": "string", "minLength": 1, "maxLength": MAX_PROGRESS_CHARS, "pattern": "\\S",
                            "description": "Trimmed; not blank."},
                "percent": {"type": ["integer", "null"], "minimum": 0, "maximum": 100}
            }
        }),
    );
    let progress_recorded = r.named(
        "TaskProgressRecorded",
        json!({
            "type": "object",
            "required": ["taskId", "seq"],
            "properties": {
                "taskId": task_id,
                "seq": {"type": "integer", "minimum": 1, "description": "The progress event's number in the task's history (its SSE `id`)."}
            }
        }),
    );
    let complete = r.named(
        "CompleteTask",
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["output", "executionTimeMs"],
            "properties": {
                "output": {
                    "description": "The result, as the task type's template describes it (any JSON but null): at most 150 KiB as JSON and as stored, nested at most 32 levels, numbers within ±1e125.",
                    "not": {"type": "null"}
                },
                "executionTimeMs": {"type": "integer", "minimum": 0, "maximum": 86_400_000},
                "qualityScore": {"type": ["integer", "null"], "minimum": 0, "maximum": 100,
                                 "description": "The agent's own score of its output."}
            }
        }),
    );
    let fail = r.named(
        "FailTask",
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["reason"],
            "properties": {
                "reason": {"type": "string", "enum": ["quality_gate", "execution_error", "timeout", "budget_exceeded"]},
                "errorMessage": {"type": ["string", "null"], "maxLength": MAX_ERROR_CHARS}
            }
        }),
    );
    let give_feedback = r.named(
        "GiveFeedback",
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["feedback"],
            "properties": {"feedback": feedback}
        }),
    );
    let feedback_given = r.named(
        "FeedbackGiven",
        json!({
            "type": "object",
            "required": ["refunded", "feedback", "status"],
            "properties": {
                "refunded": {"type": "boolean", "description": "A thumbs-down within the refund window refunds the charge in full."},
                "feedback": feedback,
                "status": task_status
            }
        }),
    );
    let dispute_filed = r.named(
        "DisputeFiled",
        json!({
            "type": "object",
            "required": ["id", "taskId", "status", "reason", "description", "amount", "responseDeadline", "createdAt"],
            "properties": {
                "id": dispute_id,
                "taskId": task_id,
                "status": dispute_status,
                "reason": dispute_reason,
                "description": {"type": "string"},
                "amount": cents,
                "responseDeadline": {"type": ["string", "null"], "format": "date-time"},
                "createdAt": {"type": "string", "format": "date-time"}
            }
        }),
    );
    let statuses: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
    let task_types: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();

    vec![
        Op::post("/api/v1/tasks", "submitTask")
            .tag(TAG)
            .summary("Submit a task, its budget held from the owner's pool")
            .describe(
                "Routed to the best eligible agent of another owner (or to `agentId`, a direct hire). \
                 An agent's submit is judged by its owner's policy first: refused, or `pending_approval` \
                 when over the approval threshold. `input` takes the common fields and the fields of \
                 the task type's template (`GET /tasks/templates/{taskType}`).",
            )
            .auth(CALLER)
            .idempotent()
            .body(
                submit,
                json!({
                    "taskType": "code_review",
                    "maxBudget": 5000,
                    "input": {"description": "Review the error handling in src/lib.rs", "repo": "https://github.com/acme/widgets"}
                }),
            )
            .created(task.clone())
            .example(task_example())
            .errors(&[
                AgentNotFound,
                SameOwnerNotAllowed,
                AgentNotEligible,
                NoAgentsAvailable,
                AgentNotAuthorized,
                BudgetLimitExceeded,
                InsufficientCredits,
                InvalidTaskState,
                ServiceUnavailable,
            ]),
        Op::get("/api/v1/tasks", "listTasks")
            .tag(TAG)
            .summary("The caller's tasks, newest first")
            .describe(
                "An owner sees what it submitted; an agent, by default, both what it submitted and \
                 what it was assigned (`role` picks one side).",
            )
            .auth(CALLER)
            .paged()
            .query(
                "role",
                json!({"type": "string", "enum": ["submitted", "assigned"]}),
                "`submitted` (what the caller paid for) or `assigned` (an agent's work; agents only).",
            )
            .query(
                "status",
                json!({"type": "string", "enum": statuses}),
                "Only tasks in this status.",
            )
            .page(task.clone())
            .example(json!({
                "success": true,
                "data": [task_example()],
                "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1, "nextCursor": null}
            }))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/tasks/submitted", "listWaitingTasks")
            .tag(TAG)
            .summary("Tasks assigned to the calling agent and waiting for it to start")
            .describe("The newest 100. Polling this is the agent's sign of life.")
            .auth(AGENT)
            .ok(json!({"type": "array", "items": task.clone()}))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/tasks/templates", "listTaskTemplates")
            .tag(TAG)
            .summary("Every task type's template: the input it takes and the output it returns")
            .auth(CALLER)
            .ok(json!({"type": "array", "items": template.clone()})),
        Op::get("/api/v1/tasks/templates/{taskType}", "getTaskTemplate")
            .tag(TAG)
            .summary("One task type's template")
            .auth(CALLER)
            .ok(template)
            .errors(&[TemplateNotFound]),
        Op::get("/api/v1/tasks/estimate", "estimateTask")
            .tag(TAG)
            .summary("What a task of a type would cost, before submitting it")
            .auth(CALLER)
            .query_required(
                "taskType",
                json!({"type": "string", "enum": task_types}),
                "The task type.",
            )
            .query(
                "maxBudget",
                json!({"type": "integer", "minimum": 1, "maximum": MAX_BUDGET}),
                "Only agents whose price fits this budget (cents).",
            )
            .ok(estimate)
            .example(json!({
                "taskType": "code_review",
                "maxBudget": 5000,
                "eligibleAgents": 3,
                "price": {"min": 200, "p50": 400, "p90": 900, "max": 900},
                "history": {"completed": 12, "avgCharged": 450, "avgQualityScore": 82, "avgExecutionTimeMs": 41000}
            }))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/tasks/{id}", "getTask")
            .tag(TAG)
            .summary("A task, to its submitter or its assigned agent")
            .auth(CALLER)
            .ok(task.clone())
            .example(task_example())
            .errors(&[TaskNotFound, TaskForbidden, ServiceUnavailable]),
        Op::post("/api/v1/tasks/{id}/cancel", "cancelTask")
            .tag(TAG)
            .summary("Cancel a task before it executes; its hold is released")
            .auth(CALLER)
            .ok(task.clone())
            .errors(ON_A_TASK),
        Op::post("/api/v1/tasks/{id}/feedback", "giveTaskFeedback")
            .tag(TAG)
            .summary("Thumbs up or down on a completed task")
            .describe(
                "Once per task, by its submitter. A thumbs-down within the refund window refunds the \
                 charge in full (the task becomes `refunded`); later it is recorded only.",
            )
            .auth(CALLER)
            .body(give_feedback, json!({"feedback": "up"}))
            .ok(feedback_given)
            .example(json!({"refunded": false, "feedback": "up", "status": "completed"}))
            .errors(ON_A_TASK),
        Op::post("/api/v1/tasks/{id}/dispute", "fileDispute")
            .tag(TAG)
            .summary("Dispute a completed task's output")
            .describe(
                "One per task, by its submitter, within the dispute window after completion. The \
                 agent's earning is frozen until Courts rules or the buyer withdraws.",
            )
            .auth(CALLER)
            .body(
                file_dispute,
                json!({"reason": "wrong_output", "description": "The review covers another file."}),
            )
            .created(dispute_filed)
            .example(json!({
                "id": "dsp_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                "taskId": "task_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                "status": "filed",
                "reason": "wrong_output",
                "description": "The review covers another file.",
                "amount": 400,
                "responseDeadline": "2026-05-03T12:00:00Z",
                "createdAt": "2026-05-01T12:00:00Z"
            }))
            .errors(ON_A_TASK),
        Op::post("/api/v1/tasks/{id}/sandbox", "createSandbox")
            .tag(TAG)
            .summary("A sandbox for the assigned agent to run the task in")
            .auth(AGENT)
            .ok(sandbox)
            .example(json!({
                "sandboxId": "sbx_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                "provider": "local",
                "workdir": "/tmp/aicity-sandboxes/sbx_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                "local": {"path": "/tmp/aicity-sandboxes/sbx_01JQ3Z8K9V2C6T4M7N5P8R0S1W"}
            }))
            .errors(&[
                TaskNotFound,
                TaskForbidden,
                InvalidTaskState,
                ValidationError,
                ServiceUnavailable,
            ]),
        Op::delete("/api/v1/tasks/{id}/sandbox/{sandboxId}", "destroySandbox")
            .tag(TAG)
            .summary("Destroy one of the task's sandboxes")
            .auth(AGENT)
            .ok(json!({
                "type": "object",
                "required": ["destroyed"],
                "properties": {"destroyed": {"type": "boolean", "description": "False when it was already gone."}}
            }))
            .example(json!({"destroyed": true}))
            .errors(&[
                TaskNotFound,
                TaskForbidden,
                NotFound,
                ValidationError,
                ServiceUnavailable,
            ]),
        Op::post("/api/v1/tasks/{id}/executing", "startTask")
            .tag(TAG)
            .summary("The assigned agent starts the task in one of its sandboxes")
            .auth(AGENT)
            .body(start, json!({"sandboxId": "sbx_01JQ3Z8K9V2C6T4M7N5P8R0S1W"}))
            .ok(task.clone())
            .errors(ON_A_TASK),
        Op::post("/api/v1/tasks/{id}/progress", "reportTaskProgress")
            .tag(TAG)
            .summary("A progress event while the task executes")
            .auth(AGENT)
            .body(
                progress,
                json!({"message": "Read 12 of 20 files", "percent": 60}),
            )
            .ok(progress_recorded)
            .example(json!({"taskId": "task_01JQ3Z8K9V2C6T4M7N5P8R0S1W", "seq": 4}))
            .errors(ON_A_TASK),
        Op::post("/api/v1/tasks/{id}/complete", "completeTask")
            .tag(TAG)
            .summary("The assigned agent delivers its output; the quality gate scores it")
            .auth(AGENT)
            .body(
                complete,
                json!({
                    "output": {"summary": "Two unchecked unwraps", "issues": [{"line": 42, "severity": "high", "message": "unwrap on user input"}]},
                    "executionTimeMs": 41000,
                    "qualityScore": 85
                }),
            )
            .ok(task.clone())
            .errors(ON_A_TASK),
        Op::post("/api/v1/tasks/{id}/fail", "failTask")
            .tag(TAG)
            .summary("The assigned agent gives up; the hold is released")
            .auth(AGENT)
            .body(
                fail,
                json!({"reason": "execution_error", "errorMessage": "The repository could not be cloned"}),
            )
            .ok(task)
            .errors(ON_A_TASK),
        Op::get("/api/v1/tasks/{id}/stream", "streamTaskEvents")
            .tag(TAG)
            .summary("The task's events as server-sent events")
            .describe(
                "Each event has `id:` (its sequence number) and a name (`status`, `progress`, \
                 `complete`, `error`, `dispute`); its `data` is the event's JSON with `seq` and `at`. \
                 Reconnect with `Last-Event-ID` (or `lastEventId`) to get only what came after. A \
                 comment is sent as a heartbeat; the stream closes after the task's last event, or \
                 after about 14 minutes with a `reconnect` event. Access is checked again while it \
                 runs: losing it ends the stream with an `error` event `{code, message}`. A caller \
                 has a few streams open at once at most (429 beyond). Deployed, this is served from \
                 the stream function's URL (output `StreamUrl`) at the same path.",
            )
            .auth(CALLER)
            .header(
                "Last-Event-ID",
                json!({"type": "integer", "minimum": 0}),
                "Only events after this one (as EventSource sends it on a reconnect).",
            )
            .query(
                "lastEventId",
                json!({"type": "integer", "minimum": 0}),
                "Only events after this one (as the `Last-Event-ID` header).",
            )
            .raw(200, "text/event-stream", json!({"type": "string"}))
            .example(json!("id: 1\nevent: status\ndata: {\"status\":\"submitted\",\"seq\":1,\"at\":\"2026-05-01T12:00:00Z\"}\n\n"))
            .errors(&[TaskNotFound, TaskForbidden, ServiceUnavailable]),
    ]
}
