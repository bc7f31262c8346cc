//! What the assigned agent does: find its work, get a sandbox, start, report, finish.

use aicity_domain::embassy::AuditTarget;
use aicity_domain::identity::{Agent, Outcome};
use aicity_domain::task::model::{
    EventType, FailureReason, MAX_ERROR_CHARS, MAX_OUTPUT_BYTES, MAX_PROGRESS_CHARS,
};
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_domain::validate::{Validate, check_length, check_range};
use aicity_domain::{ApiError, ErrorCode, FieldError};
use aicity_http::audit::Auditor;
use aicity_http::auth;
use aicity_http::{json_body, ok, path_param};
use aicity_store::{Key, faults, tasks as task_store};
use aicity_tasks::change::{Change, Money, apply};
use aicity_tasks::{messages, outcomes};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Tasks, forbidden, refused, task_id};

const MAX_BODY: usize = 256 * 1024;
/// A day, in milliseconds.
const MAX_EXECUTION_MS: i64 = 86_400_000;
/// The longest sandbox id a step takes.
const MAX_SANDBOX_ID_CHARS: usize = 128;

/// `GET /tasks/submitted`: tasks assigned to the caller and waiting for it to start.
pub async fn list_submitted(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let agent = auth::agent(ctx, request).await?;
    // Polling for work is the agent's sign of life (written at most every 30 s).
    if let Err(err) = aicity_store::agents::mark_seen(
        ctx.db(),
        &ctx.table,
        &agent,
        time::OffsetDateTime::now_utc(),
        aicity_domain::identity::agent::LIVENESS_WRITE_EVERY,
    )
    .await
    {
        tracing::warn!(agent_id = %agent.agent.id, error = %err, "last seen not recorded");
    }
    // The newest 100 waiting, read as one bounded page.
    let filter = task_store::TaskFilter {
        submitted_by: None,
        assigned_to: Some(&agent.agent.id),
        status: Some(TaskStatus::Submitted),
    };
    let waiting = task_store::list(
        ctx.db(),
        &ctx.table,
        filter,
        &aicity_store::paging::PageAsk::new(1, 100, None),
    )
    .await?;
    ok(waiting.items)
}

/// Checked again inside each step: the task may have been re-routed since it was read.
fn still_assigned(
    task: &aicity_domain::task::model::Task,
    agent: &aicity_store::agents::AgentRecord,
) -> Result<(), ApiError> {
    if task.agent_id == Some(agent.agent.id) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// The caller must be the task's assigned agent.
async fn assigned(
    tasks: &Tasks,
    request: &Request,
) -> Result<(aicity_store::agents::AgentRecord, task_store::TaskRecord), ApiError> {
    let ctx = &tasks.ctx;
    let agent = auth::agent(ctx, request).await?;
    let id = task_id(request)?;
    let record = match task_store::get(ctx.db(), &ctx.table, &id).await {
        Ok(record) => record,
        Err(aicity_store::StoreError::NotFound) => {
            return Err(aicity_tasks::change::task_not_found());
        }
        Err(err) => return Err(err.into()),
    };
    still_assigned(&record.task, &agent)?;
    Ok((agent, record))
}

fn sandbox_key(task: &aicity_domain::ids::TaskId, sandbox: &str) -> Key {
    Key::new(format!("TASK#{task}"), format!("SANDBOX#{sandbox}"))
}

/// `POST /tasks/:id/sandbox` → `{sandboxId, provider, workdir, local | e2b}`; recorded on
/// the task so it can be checked and, if leaked, destroyed by the sweeper.
pub async fn create_sandbox(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let (_, record) = assigned(tasks, request).await?;
    if !matches!(
        record.task.status,
        TaskStatus::Submitted | TaskStatus::Executing
    ) {
        return Err(refused(
            aicity_domain::task::TransitionError::InvalidState {
                from: record.task.status,
                event: TaskEvent::ExecutionStarted,
            },
        ));
    }
    let sandbox = tasks
        .sandboxes
        .create(
            &record.task.id,
            record.task.task_type.as_str(),
            &record.task.input,
        )
        .await
        .map_err(sandbox_error)?;
    let mut item = sandbox_key(&record.task.id, &sandbox.id).to_map();
    item.insert("sandboxId".into(), AttributeValue::S(sandbox.id.clone()));
    item.insert(
        "provider".into(),
        AttributeValue::S(tasks.sandboxes.name().into()),
    );
    let now = time::OffsetDateTime::now_utc();
    item.insert(
        "createdAt".into(),
        AttributeValue::S(aicity_domain::timestamps::format(now)),
    );
    item.insert(
        "taskId".into(),
        AttributeValue::S(record.task.id.to_string()),
    );
    // The sweeper destroys sandboxes left behind by finished or abandoned tasks.
    item.insert(
        "GSI3PK".into(),
        AttributeValue::S(aicity_store::tasks::SANDBOX_WATCH.into()),
    );
    item.insert(
        "GSI3SK".into(),
        AttributeValue::S(aicity_store::tasks::watch_sort(
            now.unix_timestamp(),
            &sandbox.id,
        )),
    );
    ctx.db()
        .put_item()
        .table_name(&ctx.table)
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| ApiError::from(aicity_store::StoreError::aws(e)))?;
    // How the agent reaches it: the directory, or the E2B sandbox's envd with the
    // access token of that one sandbox (never the platform's E2B API key).
    ok(sandbox.answer())
}

fn sandbox_error(err: aicity_sandbox::SandboxError) -> ApiError {
    tracing::error!(error = %err, "sandbox provider failed");
    match err {
        aicity_sandbox::SandboxError::Invalid(reason) => {
            ApiError::invalid_field("sandboxId", reason)
        }
        _ => ApiError::new(ErrorCode::ServiceUnavailable),
    }
}

async fn sandbox_recorded(
    tasks: &Tasks,
    task: &aicity_domain::ids::TaskId,
    sandbox: &str,
) -> Result<bool, ApiError> {
    let ctx = &tasks.ctx;
    let found = ctx
        .db()
        .get_item()
        .table_name(&ctx.table)
        .set_key(Some(sandbox_key(task, sandbox).to_map()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| ApiError::from(aicity_store::StoreError::aws(e)))?
        .item
        .is_some();
    Ok(found)
}

/// `DELETE /tasks/:id/sandbox/:sandboxId` → `{destroyed}`.
pub async fn destroy_sandbox(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let (_, record) = assigned(tasks, request).await?;
    let sandbox = path_param(request, "sandboxId")?;
    // Longer than any sandbox id `executing` takes: not one of this task's (and too
    // long for the sort key it would be looked up by).
    if sandbox.chars().count() > MAX_SANDBOX_ID_CHARS
        || !sandbox_recorded(tasks, &record.task.id, &sandbox).await?
    {
        return Err(ApiError::with_message(
            ErrorCode::NotFound,
            "No such sandbox for this task",
        ));
    }
    let destroyed = tasks
        .sandboxes
        .destroy(&sandbox)
        .await
        .map_err(sandbox_error)?;
    ctx.db()
        .delete_item()
        .table_name(&ctx.table)
        .set_key(Some(sandbox_key(&record.task.id, &sandbox).to_map()))
        .send()
        .await
        .map_err(|e| ApiError::from(aicity_store::StoreError::aws(e)))?;
    ok(json!({ "destroyed": destroyed }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Executing {
    sandbox_id: String,
}

impl Validate for Executing {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(
            errors,
            "sandboxId",
            &self.sandbox_id,
            1,
            MAX_SANDBOX_ID_CHARS,
        );
    }
}

/// The assigned agent's role, checked by the status machine.
fn step(actor: Actor, from: TaskStatus, event: TaskEvent) -> Result<TaskStatus, ApiError> {
    transition(from, event, actor).map_err(refused)
}

/// `POST /tasks/:id/executing` {sandboxId}: submitted → executing.
pub async fn executing(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let (agent, record) = assigned(tasks, request).await?;
    let body: Executing = json_body(request, MAX_BODY)?;
    let auditor = Auditor::agent(&agent.agent, request);
    if !sandbox_recorded(tasks, &record.task.id, &body.sandbox_id).await? {
        return Err(ApiError::invalid_field(
            "sandboxId",
            "not a sandbox of this task",
        ));
    }
    let saved = apply(&tasks.ctx, &record.task.id, None, |loaded| {
        let current = &loaded.task.task;
        still_assigned(current, &agent)?;
        let status = step(
            Actor::AssignedAgent,
            current.status,
            TaskEvent::ExecutionStarted,
        )?;
        let mut task = current.clone();
        task.status = status;
        task.sandbox_id = Some(body.sandbox_id.clone());
        task.started_at = Some(aicity_domain::timestamps::now());
        Ok(Some(
            Change::new(task)
                .event(
                    EventType::Status,
                    json!({ "status": status, "sandboxId": body.sandbox_id }),
                )
                .with_item(auditor.item(
                    &tasks.ctx.table,
                    "task.started",
                    AuditTarget::new("task", current.id),
                    None,
                    json!({ "sandboxId": body.sandbox_id }),
                )?),
        ))
    })
    .await?;
    ok(saved.task)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Progress {
    message: String,
    #[serde(default)]
    percent: Option<i64>,
}

impl Validate for Progress {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(
            errors,
            "message",
            self.message.trim(),
            1,
            MAX_PROGRESS_CHARS,
        );
        if let Some(percent) = self.percent {
            check_range(errors, "percent", percent, 0, 100);
        }
    }
}

/// `POST /tasks/:id/progress` {message, percent?}: an event while executing.
pub async fn progress(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let (agent, record) = assigned(tasks, request).await?;
    let body: Progress = json_body(request, MAX_BODY)?;
    let saved = apply(&tasks.ctx, &record.task.id, None, |loaded| {
        let current = &loaded.task.task;
        still_assigned(current, &agent)?;
        if current.status != TaskStatus::Executing {
            return Err(ApiError::with_message(
                ErrorCode::InvalidTaskState,
                format!("The task is {}", current.status),
            )
            .details(json!({ "status": current.status })));
        }
        Ok(Some(Change::new(current.clone()).event(
            EventType::Progress,
            json!({ "message": body.message.trim(), "percent": body.percent }),
        )))
    })
    .await?;
    ok(json!({ "taskId": saved.task.id, "seq": saved.last_event_seq }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Complete {
    output: Value,
    execution_time_ms: i64,
    #[serde(default)]
    quality_score: Option<i64>,
}

impl Validate for Complete {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.output.is_null() {
            errors.push(FieldError::new("output", "is required"));
        }
        aicity_domain::json_limits::check(errors, "output", &self.output, MAX_OUTPUT_BYTES);
        if serde_json::to_vec(&self.output)
            .map(|b| b.len())
            .unwrap_or(usize::MAX)
            > MAX_OUTPUT_BYTES
        {
            errors.push(FieldError::new(
                "output",
                format!("must be at most {MAX_OUTPUT_BYTES} bytes"),
            ));
        }
        check_range(
            errors,
            "executionTimeMs",
            self.execution_time_ms,
            0,
            MAX_EXECUTION_MS,
        );
        if let Some(score) = self.quality_score {
            check_range(errors, "qualityScore", score, 0, 100);
        }
    }
}

/// `POST /tasks/:id/complete` {output, executionTimeMs, qualityScore?}: executing →
/// quality_check, then the quality gate decides.
pub async fn complete(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let (agent, record) = assigned(tasks, request).await?;
    let body: Complete = json_body(request, MAX_BODY)?;
    let auditor = Auditor::agent(&agent.agent, request);
    let saved = apply(&tasks.ctx, &record.task.id, None, |loaded| {
        let current = &loaded.task.task;
        still_assigned(current, &agent)?;
        let status = step(
            Actor::AssignedAgent,
            current.status,
            TaskEvent::OutputSubmitted,
        )?;
        let mut task = current.clone();
        task.status = status;
        task.output = Some(body.output.clone());
        task.execution_time_ms = Some(body.execution_time_ms as u64);
        task.self_reported_score = body.quality_score.map(|s| s as u8);
        Ok(Some(
            Change::new(task)
                .event(EventType::Status, json!({ "status": status }))
                .with_item(auditor.item(
                    &tasks.ctx.table,
                    "task.delivered",
                    AuditTarget::new("task", current.id),
                    None,
                    json!({ "executionTimeMs": body.execution_time_ms }),
                )?),
        ))
    })
    .await?;
    if faults::fires(&tasks.ctx.table, faults::point::AFTER_COMMIT_BEFORE_SEND) {
        return Err(ApiError::internal());
    }
    messages::send(&tasks.sqs, &tasks.quality_queue_url, saved.task.id).await;
    ok(saved.task)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Fail {
    reason: AgentFailure,
    #[serde(default)]
    error_message: Option<String>,
}

/// The reasons an agent may give (the seed's list).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AgentFailure {
    QualityGate,
    ExecutionError,
    Timeout,
    BudgetExceeded,
}

impl From<AgentFailure> for FailureReason {
    fn from(reason: AgentFailure) -> Self {
        match reason {
            AgentFailure::QualityGate => FailureReason::QualityGate,
            AgentFailure::ExecutionError => FailureReason::ExecutionError,
            AgentFailure::Timeout => FailureReason::Timeout,
            AgentFailure::BudgetExceeded => FailureReason::BudgetExceeded,
        }
    }
}

impl Validate for Fail {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Some(message) = &self.error_message {
            check_length(errors, "errorMessage", message, 0, MAX_ERROR_CHARS);
        }
    }
}

/// `POST /tasks/:id/fail` {reason, errorMessage?}: → failed, the hold released, the
/// agent's failure counted.
pub async fn fail(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let (agent, record) = assigned(tasks, request).await?;
    let body: Fail = json_body(request, MAX_BODY)?;
    let auditor = Auditor::agent(&agent.agent, request);
    let saved = apply(&tasks.ctx, &record.task.id, None, |loaded| {
        let current = &loaded.task.task;
        still_assigned(current, &agent)?;
        let status = step(Actor::AssignedAgent, current.status, TaskEvent::AgentFailed)?;
        let mut task = current.clone();
        task.status = status;
        task.failure_reason = Some(body.reason.into());
        task.error_message = body.error_message.clone();
        task.completed_at = Some(aicity_domain::timestamps::now());
        let mut change = Change::new(task)
            .event(EventType::Status, json!({ "status": status }))
            .event(EventType::Error, json!({ "reason": FailureReason::from(body.reason), "message": body.error_message }))
            .money(Money::Void)
            .with_item(auditor.item(
                &tasks.ctx.table,
                "task.failed",
                AuditTarget::new("task", current.id),
                None,
                json!({ "reason": FailureReason::from(body.reason) }),
            )?);
        if let Some(record) = &loaded.agent {
            let mut next: Agent = record.agent.clone();
            outcomes::failed(&mut next, current.id, Outcome::AgentFailed);
            change = change.agent(next);
        }
        Ok(Some(change))
    })
    .await?;
    ok(saved.task)
}
