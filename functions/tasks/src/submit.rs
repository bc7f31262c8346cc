//! `POST /api/v1/tasks`: the task and the hold of its budget in one transaction.

use aicity_domain::identity::Category;
use aicity_domain::ids::{OwnerId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::task::TaskStatus;
use aicity_domain::task::model::{EventType, SubmitTask, Task};
use aicity_domain::task::routing::{Ineligible, could_take};
use aicity_domain::timestamps;
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::auth::{self, Caller};
use aicity_http::idempotency::idempotent;
use aicity_http::{created, json_body};
use aicity_store::transact::Transaction;
use aicity_store::{StoreError, agents, faults, tasks as task_store, vault};
use aicity_tasks::messages;
use aicity_vault::service::{self, Spending};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use time::OffsetDateTime;

use crate::Tasks;

/// Input limits are per field; this bounds the whole body.
const MAX_BODY: usize = 256 * 1024;

pub async fn submit(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let scope = format!("{}:tasks", caller.owner_id());
    idempotent(ctx, request, &scope, |operation| async {
        let body: SubmitTask = json_body(request, MAX_BODY)?;
        // Under an Idempotency-Key the task id is the key's operation id: a try after a
        // crash that had committed finds that task instead of holding the budget twice.
        let keyed = operation.and_then(|op| ulid::Ulid::from_string(&op).ok());
        if let Some(id) = keyed.map(TaskId::from_ulid) {
            if let Some(existing) = earlier_try(tasks, &caller, &id).await? {
                return created(existing);
            }
        }
        let id = keyed.map_or_else(TaskId::new, TaskId::from_ulid);
        submit_checked(tasks, &caller, body, id).await
    })
    .await
}

async fn submit_checked(
    tasks: &Tasks,
    caller: &Caller,
    body: SubmitTask,
    id: TaskId,
) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let owner = caller.owner_id();
    let caller_agent = match caller {
        Caller::Agent(record) => Some(record.agent.id),
        Caller::Owner(_) => None,
    };
    if let Some(parent) = &body.parent_task_id {
        let readable = match task_store::get(ctx.db(), &ctx.table, parent).await {
            Ok(record) => aicity_tasks::access::may_read(caller, &record.task),
            Err(StoreError::NotFound) => false,
            Err(err) => return Err(err.into()),
        };
        if !readable {
            return Err(ApiError::invalid_field(
                "parentTaskId",
                "no such task of yours",
            ));
        }
    }
    let budget = Cents(body.max_budget);
    match body.agent_id {
        Some(agent_id) => {
            check_direct_hire(tasks, &agent_id, body.task_type, budget, owner).await?
        }
        None => check_someone_could(tasks, body.task_type, budget, owner).await?,
    }

    service::auto_top_up_before_hold(
        ctx.db(),
        &ctx.table,
        tasks.payments.as_ref(),
        &owner,
        budget,
    )
    .await?;
    let now = OffsetDateTime::now_utc();
    let task = Task {
        id,
        task_type: body.task_type,
        status: TaskStatus::Submitted,
        input: body.input,
        max_budget: budget,
        agent_id: None,
        caller_owner_id: owner,
        caller_agent_id: caller_agent,
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
        created_at: timestamps::format(now),
        updated_at: timestamps::format(now),
        completed_at: None,
        assigned_at: None,
        started_at: None,
        settled_at: None,
        dispute_id: None,
        dispute_status: None,
    };
    let requested_agent = body.agent_id;
    vault::pool(ctx.db(), &ctx.table, &owner).await?;
    let (task_items, record) = task_store::create_items(
        &ctx.table,
        task,
        vec![(
            EventType::Status,
            json!({ "status": "submitted", "requestedAgentId": requested_agent }),
        )],
        now,
    )?;
    let (hold_items, transfers) = vault::hold_items(&ctx.table, &owner, &id, budget, now)
        .map_err(|err| service::api_error(err, Spending::TaskHold))?;
    let mut transaction = Transaction::new();
    transaction.extend(task_items).extend(hold_items);
    if let Err(err) = transaction.commit(ctx.db()).await {
        if err.failed_labels().contains(&"task") {
            // An earlier try of this operation committed meanwhile.
            if let Some(existing) = earlier_try(tasks, caller, &id).await? {
                return created(existing);
            }
        }
        return Err(service::api_error(
            vault::explain(err, &transfers),
            Spending::TaskHold,
        ));
    }
    if faults::fires(&ctx.table, faults::point::AFTER_COMMIT_BEFORE_SEND) {
        return Err(ApiError::internal());
    }
    messages::send(&tasks.sqs, &tasks.routing_queue_url, id).await;
    created(record.task)
}

/// The task an earlier try of the same operation created, if any (re-sent to routing,
/// in case that try died before sending it: routing it twice changes nothing twice).
async fn earlier_try(
    tasks: &Tasks,
    caller: &Caller,
    id: &TaskId,
) -> Result<Option<Task>, ApiError> {
    let ctx = &tasks.ctx;
    match task_store::get(ctx.db(), &ctx.table, id).await {
        Ok(record) if record.task.caller_owner_id == caller.owner_id() => {
            if record.task.status == TaskStatus::Submitted && record.task.agent_id.is_none() {
                messages::send(&tasks.sqs, &tasks.routing_queue_url, *id).await;
            }
            Ok(Some(record.task))
        }
        Ok(_) => Err(ApiError::internal()),
        Err(StoreError::NotFound) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

async fn check_direct_hire(
    tasks: &Tasks,
    agent_id: &aicity_domain::ids::AgentId,
    task_type: Category,
    budget: Cents,
    owner: OwnerId,
) -> Result<(), ApiError> {
    let ctx = &tasks.ctx;
    let record = match agents::get(ctx.db(), &ctx.table, agent_id).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => {
            return Err(ApiError::with_message(
                ErrorCode::AgentNotFound,
                format!("No agent {agent_id}"),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    match could_take(&record.agent, task_type, budget, owner) {
        Ok(_) => Ok(()),
        Err(Ineligible::SameOwner) => Err(ApiError::with_message(
            ErrorCode::SameOwnerNotAllowed,
            "You cannot hire an agent you own",
        )),
        Err(reason) => Err(ApiError::with_message(
            ErrorCode::AgentNotEligible,
            reason.to_string(),
        )),
    }
}

/// Refused up front only when no agent could ever take it (availability and load
/// aside): a bounded read of the category's best agents.
async fn check_someone_could(
    tasks: &Tasks,
    task_type: Category,
    budget: Cents,
    owner: OwnerId,
) -> Result<(), ApiError> {
    let ctx = &tasks.ctx;
    if agents::someone_could_take(ctx.db(), &ctx.table, task_type, budget, &owner, 4).await? {
        Ok(())
    } else {
        Err(ApiError::with_message(
            ErrorCode::NoAgentsAvailable,
            format!("No agent of another owner offers {task_type} within this budget"),
        ))
    }
}
