//! `POST /workflows`, `GET /workflows`, `GET /workflows/{id}`,
//! `POST /workflows/{id}/cancel`: tasks run one after another, the whole budget held
//! at creation (the engine is `aicity_tasks::workflows`).

use aicity_domain::embassy::{AuditTarget, Verdict};
use aicity_domain::ids::{AgentId, TaskId, WorkflowId};
use aicity_domain::money::Cents;
use aicity_domain::task::model::{EventType, SubmitTask, Task};
use aicity_domain::task::{Actor, TaskEvent, TaskStatus, transition};
use aicity_domain::timestamps;
use aicity_domain::workflow::{CreateWorkflow, Workflow, WorkflowStatus, WorkflowStep};
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::audit::Auditor;
use aicity_http::auth::{self, Caller};
use aicity_http::idempotency::idempotent;
use aicity_http::request::query_param;
use aicity_http::{PageRequest, created, json_body, listed, ok, path_param};
use aicity_store::transact::Transaction;
use aicity_store::{StoreError, tasks as task_store, vault, workflows as workflow_store};
use aicity_tasks::budgets::Gate;
use aicity_tasks::change::{Change, Money, apply};
use aicity_tasks::{messages, outcomes, workflows as engine};
use aicity_vault::service::{self, Spending};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::Tasks;
use crate::submit::{check_direct_hire, check_someone_could};

/// Ten steps of at most 32 KiB of input each, and their descriptions.
const MAX_BODY: usize = 512 * 1024;
/// Tries of a create whose budget counter lost to racing submits of the same agent.
const BUDGET_ATTEMPTS: usize = 8;

/// A step as shown: what it is and where its task stands.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StepView {
    #[serde(flatten)]
    step: WorkflowStep,
    status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    assigned_agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credits_charged: Option<Cents>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quality_score: Option<u8>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkflowView {
    /// The workflow's own fields but its `steps`, which are shown as [`StepView`]s
    /// (flattening the `Workflow` itself would send `steps` twice).
    #[serde(flatten)]
    workflow: serde_json::Map<String, serde_json::Value>,
    steps: Vec<StepView>,
    /// What the steps were charged so far.
    credits_charged: Cents,
}

fn view(mut workflow: Workflow, tasks: &[Task]) -> WorkflowView {
    let steps: Vec<StepView> = std::mem::take(&mut workflow.steps)
        .into_iter()
        .zip(tasks)
        .map(|(step, task)| StepView {
            step,
            status: task.status,
            assigned_agent_id: task.agent_id,
            credits_charged: task.credits_charged,
            quality_score: task.quality_score,
        })
        .collect();
    let credits_charged = Cents(
        tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Completed)
            .filter_map(|t| t.credits_charged)
            .map(|c| c.0)
            .sum(),
    );
    let mut fields = match serde_json::to_value(&workflow) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    fields.remove("steps");
    WorkflowView {
        workflow: fields,
        steps,
        credits_charged,
    }
}

fn not_found() -> ApiError {
    ApiError::with_message(
        ErrorCode::WorkflowNotFound,
        "No workflow of yours with this id",
    )
}

/// Whether the caller created the workflow (its owner's session, or the agent itself).
fn is_creator(caller: &Caller, workflow: &Workflow) -> bool {
    match caller {
        Caller::Owner(owner) => owner.owner.id == workflow.caller_owner_id,
        Caller::Agent(record) => workflow.caller_agent_id == Some(record.agent.id),
    }
}

async fn load(tasks: &Tasks, caller: &Caller, request: &Request) -> Result<Workflow, ApiError> {
    let id: WorkflowId = path_param(request, "id")?
        .parse()
        .map_err(|_| not_found())?;
    let ctx = &tasks.ctx;
    match workflow_store::get(ctx.db(), &ctx.table, &id).await {
        Ok(record) if is_creator(caller, &record.workflow) => Ok(record.workflow),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found()),
        Err(err) => Err(err.into()),
    }
}

async fn shown(tasks: &Tasks, workflow: Workflow) -> Result<Response<Body>, ApiError> {
    let steps = engine::load_steps(&tasks.ctx, workflow.steps.iter().map(|s| s.task_id)).await?;
    let steps: Vec<Task> = steps.into_iter().map(|r| r.task).collect();
    ok(view(workflow, &steps))
}

/// `GET /workflows/{id}`: the workflow with each step's status.
pub async fn get(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let caller = auth::caller(&tasks.ctx, request).await?;
    let workflow = load(tasks, &caller, request).await?;
    shown(tasks, workflow).await
}

/// `GET /workflows?status=&page=&pageSize=`: the caller's workflows, newest first (an
/// owner sees its own and its agents'; an agent, the ones it created).
pub async fn list(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let page = PageRequest::from_request(request)?;
    let status = match query_param(request, "status") {
        None => None,
        Some(raw) => Some(WorkflowStatus::parse(&raw).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                "must be one of active, completed, failed, cancelled",
            )
        })?),
    };
    let agent = match &caller {
        Caller::Agent(record) => Some(record.agent.id),
        Caller::Owner(_) => None,
    };
    let found = workflow_store::of_owner(
        ctx.db(),
        &ctx.table,
        &caller.owner_id(),
        agent.as_ref(),
        status,
        &page.ask(),
    )
    .await?;
    listed(found)
}

/// `POST /workflows/{id}/cancel`: the waiting steps cancelled and their holds released;
/// a step not yet started is cancelled too, one already executing runs to its end.
pub async fn cancel(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let workflow = load(tasks, &caller, request).await?;
    let now = OffsetDateTime::now_utc();
    let ended = workflow_store::end(
        ctx.db(),
        &ctx.table,
        &workflow.id,
        WorkflowStatus::Cancelled,
        None,
        now,
    )
    .await?;
    if !ended {
        let current = workflow_store::get(ctx.db(), &ctx.table, &workflow.id).await?;
        return Err(ApiError::with_message(
            ErrorCode::InvalidWorkflowState,
            format!("The workflow is {}", current.workflow.status),
        )
        .details(json!({ "status": current.workflow.status })));
    }
    let auditor = Auditor::of(&caller, request);
    for step in &workflow.steps {
        cancel_unstarted(tasks, &step.task_id, &auditor).await?;
    }
    engine::advance_boxed(ctx, &workflow.id).await?;
    let current = workflow_store::get(ctx.db(), &ctx.table, &workflow.id).await?;
    shown(tasks, current.workflow).await
}

/// A step routed or assigned but not started: cancelled like a buyer's cancel (the
/// hold voided, the agent's slot freed). Other statuses are left alone.
async fn cancel_unstarted(tasks: &Tasks, id: &TaskId, auditor: &Auditor) -> Result<(), ApiError> {
    let ctx = &tasks.ctx;
    apply(ctx, id, None, |loaded| {
        let current = &loaded.task.task;
        if !matches!(current.status, TaskStatus::Submitted | TaskStatus::Routing) {
            return Ok(None);
        }
        let Ok(status) = transition(current.status, TaskEvent::Cancelled, Actor::Submitter) else {
            return Ok(None);
        };
        let mut task = current.clone();
        task.status = status;
        task.completed_at = Some(timestamps::now());
        let mut change = Change::new(task)
            .event(
                EventType::Status,
                json!({ "status": status, "reason": "workflow cancelled" }),
            )
            .money(Money::Void)
            .by_workflow()
            .with_item(auditor.item(
                &ctx.table,
                "task.cancelled",
                AuditTarget::new("task", current.id),
                current.caller_agent_id,
                json!({ "from": current.status, "workflowId": current.workflow_id }),
            )?);
        if let (Some(_), Some(record)) = (current.agent_id, &loaded.agent) {
            let mut next = record.agent.clone();
            outcomes::released(&mut next);
            change = change.agent(next);
        }
        Ok(Some(change))
    })
    .await?;
    Ok(())
}

/// `POST /workflows`: every step's task created and its budget held in one
/// transaction; the first step goes to routing, the others wait.
pub async fn create(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let scope = format!("{}:workflows", caller.owner_id());
    idempotent(ctx, request, &scope, |operation| async {
        let body: CreateWorkflow = json_body(request, MAX_BODY)?;
        let steps = body.tasks().map_err(ApiError::validation)?;
        // Under an Idempotency-Key the workflow id is the key's operation id: a try after
        // a crash that had committed finds that workflow instead of holding twice.
        let keyed = operation.and_then(|op| ulid::Ulid::from_string(&op).ok());
        if let Some(id) = keyed.map(WorkflowId::from_ulid) {
            if let Some(existing) = earlier_try(tasks, &caller, &id).await? {
                return Ok(existing);
            }
        }
        let id = keyed.map_or_else(WorkflowId::new, WorkflowId::from_ulid);
        create_checked(tasks, request, &caller, &body.name, steps, id).await
    })
    .await
}

async fn earlier_try(
    tasks: &Tasks,
    caller: &Caller,
    id: &WorkflowId,
) -> Result<Option<Response<Body>>, ApiError> {
    let ctx = &tasks.ctx;
    match workflow_store::get(ctx.db(), &ctx.table, id).await {
        Ok(record) if record.workflow.caller_owner_id == caller.owner_id() => {
            let first = record.workflow.steps[0].task_id;
            messages::send(&tasks.sqs, &tasks.routing_queue_url, first).await;
            let steps =
                engine::load_steps(ctx, record.workflow.steps.iter().map(|s| s.task_id)).await?;
            let steps: Vec<Task> = steps.into_iter().map(|r| r.task).collect();
            Ok(Some(created(view(record.workflow, &steps))?))
        }
        Ok(_) => Err(ApiError::internal()),
        Err(StoreError::NotFound) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The owner's policy for a submitting agent, over the steps as if submitted one after
/// another: each step's type and per-task limit, the day's and week's budget for the
/// sum. A workflow does not wait for approval: a step over the approval threshold
/// refuses it (submit that step as a task instead).
fn judged(gate: &Gate, steps: &[SubmitTask]) -> Result<(), ApiError> {
    let mut committed = gate.counters.committed();
    for step in steps {
        let amount = Cents(step.max_budget);
        match gate.policy.judge(step.task_type, amount, committed) {
            Verdict::Allowed { approval: false } => {}
            Verdict::Allowed { approval: true } => {
                return Err(ApiError::with_message(
                    ErrorCode::AgentNotAuthorized,
                    "A step is over your owner's approval threshold; a workflow cannot wait \
                     for approval: submit that step as a task",
                ));
            }
            refused => return Err(refused.refusal().unwrap_or_else(ApiError::internal)),
        }
        committed.today = Cents(committed.today.0 + amount.0);
        committed.last7_days = Cents(committed.last7_days.0 + amount.0);
    }
    Ok(())
}

async fn create_checked(
    tasks: &Tasks,
    request: &Request,
    caller: &Caller,
    name: &str,
    steps: Vec<SubmitTask>,
    id: WorkflowId,
) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let owner = caller.owner_id();
    let caller_agent = match caller {
        Caller::Agent(record) => Some(record.agent.id),
        Caller::Owner(_) => None,
    };
    let total = Cents(steps.iter().map(|s| s.max_budget).sum());
    let mut gate = match caller {
        Caller::Agent(record) => {
            let gate = Gate::load(ctx, &record.agent.id, OffsetDateTime::now_utc()).await?;
            judged(&gate, &steps)?;
            Some(gate)
        }
        Caller::Owner(_) => None,
    };
    for step in &steps {
        match step.agent_id {
            Some(agent) => {
                check_direct_hire(tasks, &agent, step.task_type, Cents(step.max_budget), owner)
                    .await?
            }
            None => {
                check_someone_could(tasks, step.task_type, Cents(step.max_budget), owner).await?
            }
        }
    }
    service::auto_top_up_before_hold(
        ctx.db(),
        &ctx.table,
        tasks.payments.as_ref(),
        &owner,
        total,
        service::auto_top_up_entry(
            &owner,
            aicity_http::serve::request_id(request),
            caller_agent,
            None,
        ),
    )
    .await?;
    vault::pool(ctx.db(), &ctx.table, &owner).await?;
    let auditor = Auditor::of(caller, request);
    let ids: Vec<TaskId> = steps.iter().map(|_| TaskId::new()).collect();
    for _ in 0..BUDGET_ATTEMPTS {
        let now = OffsetDateTime::now_utc();
        let at = timestamps::format(now);
        let workflow = Workflow {
            id,
            name: name.trim().to_owned(),
            status: WorkflowStatus::Active,
            caller_owner_id: owner,
            caller_agent_id: caller_agent,
            steps: steps
                .iter()
                .zip(&ids)
                .enumerate()
                .map(|(i, (step, task_id))| WorkflowStep {
                    order: i as u8 + 1,
                    task_id: *task_id,
                    task_type: step.task_type,
                    description: step.input.description.clone(),
                    max_budget: Cents(step.max_budget),
                    agent_id: step.agent_id,
                })
                .collect(),
            total_budget: total,
            failed_step: None,
            created_at: at.clone(),
            updated_at: at.clone(),
            completed_at: None,
        };
        let mut transaction = Transaction::new();
        transaction.extend([workflow_store::create_item(&ctx.table, &workflow)?]);
        let mut created_tasks = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let status = if i == 0 {
                TaskStatus::Submitted
            } else {
                TaskStatus::Waiting
            };
            let task = step_task(step, &ids, i, &workflow, status, &at, &gate);
            let (items, record) = task_store::create_items(
                &ctx.table,
                task,
                vec![(
                    EventType::Status,
                    json!({ "status": status, "requestedAgentId": step.agent_id,
                            "workflowId": id, "step": i + 1 }),
                )],
                now,
            )?;
            transaction.extend(items);
            created_tasks.push(record.task);
        }
        let holds: Vec<(TaskId, Cents)> = steps
            .iter()
            .zip(&ids)
            .map(|(s, id)| (*id, Cents(s.max_budget)))
            .collect();
        let (hold_items, transfers) = vault::holds_items(&ctx.table, &owner, &holds, now)
            .map_err(|err| service::api_error(err, Spending::TaskHold))?;
        transaction.extend(hold_items);
        if let Some(gate) = &gate {
            transaction.extend(gate.items(&ctx.table, total, now)?);
        }
        transaction.extend([auditor.item(
            &ctx.table,
            "workflow.created",
            AuditTarget::new("workflow", id),
            caller_agent,
            json!({ "name": workflow.name, "steps": steps.len(), "totalBudget": total }),
        )?]);
        match transaction.commit(ctx.db()).await {
            Ok(()) => {}
            Err(err) if err.failed_labels().contains(&"budget") => {
                // Racing submits committed this agent's budget meanwhile: judge again.
                let agent = caller_agent.ok_or_else(ApiError::internal)?;
                let reloaded = Gate::load(ctx, &agent, now).await?;
                judged(&reloaded, &steps)?;
                gate = Some(reloaded);
                continue;
            }
            Err(err) => {
                if err.failed_labels().contains(&"workflow") {
                    if let Some(existing) = earlier_try(tasks, caller, &id).await? {
                        return Ok(existing);
                    }
                }
                return Err(service::api_error(
                    vault::explain(err, &transfers),
                    Spending::TaskHold,
                ));
            }
        }
        messages::send(&tasks.sqs, &tasks.routing_queue_url, ids[0]).await;
        return created(view(workflow, &created_tasks));
    }
    Err(ApiError::new(ErrorCode::ServiceUnavailable))
}

/// Step `i`'s task: its parent is the step before, it waits unless it is the first.
fn step_task(
    step: &SubmitTask,
    ids: &[TaskId],
    i: usize,
    workflow: &Workflow,
    status: TaskStatus,
    at: &str,
    gate: &Option<Gate>,
) -> Task {
    Task {
        parent_task_id: i.checked_sub(1).map(|p| ids[p]),
        budget_day: gate.as_ref().map(|g| g.today.clone()),
        workflow_id: Some(workflow.id),
        workflow_step: Some(i as u8 + 1),
        ..Task::submitted(
            ids[i],
            step,
            (workflow.caller_owner_id, workflow.caller_agent_id),
            status,
            at,
        )
    }
}
