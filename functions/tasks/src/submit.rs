//! `POST /api/v1/tasks`: the task and the hold of its budget in one transaction.

use aicity_domain::embassy::{
    Approval, ApprovalStatus, AuditTarget, NotificationType, Verdict, approval_id,
};
use aicity_domain::identity::Category;
use aicity_domain::ids::{OwnerId, TaskId};
use aicity_domain::money::Cents;
use aicity_domain::task::TaskStatus;
use aicity_domain::task::model::{EventType, SubmitTask, Task};
use aicity_domain::task::routing::{Ineligible, could_take};
use aicity_domain::timestamps;
use aicity_domain::webhooks::{WebhookEvent, WebhookEventType};
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::audit::Auditor;
use aicity_http::auth::{self, Caller};
use aicity_http::idempotency::idempotent;
use aicity_http::{created, json_body};
use aicity_store::transact::Transaction;
use aicity_store::{StoreError, agents, faults, tasks as task_store, vault};
use aicity_tasks::budgets::{self, Gate};
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
        submit_checked(tasks, request, &caller, body, id).await
    })
    .await
}

async fn submit_checked(
    tasks: &Tasks,
    request: &Request,
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
    // The owner's policy for a submitting agent first: refused before anything is held or
    // any card is charged for an automatic top-up.
    let now = OffsetDateTime::now_utc();
    let mut gate = match caller {
        Caller::Agent(record) => Some(Gate::load(ctx, &record.agent.id, now).await?),
        Caller::Owner(_) => None,
    };
    let mut approval = match &gate {
        Some(gate) => judged(ctx, &owner, gate, body.task_type, budget).await?,
        None => false,
    };

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
        service::auto_top_up_entry(
            &owner,
            aicity_http::serve::request_id(request),
            caller_agent,
            Some(&id),
        ),
    )
    .await?;
    vault::pool(ctx.db(), &ctx.table, &owner).await?;
    let auditor = Auditor::of(caller, request);
    let requested_agent = body.agent_id;
    for _ in 0..BUDGET_ATTEMPTS {
        let now = OffsetDateTime::now_utc();
        let status = if approval {
            TaskStatus::PendingApproval
        } else {
            TaskStatus::Submitted
        };
        let task = Task {
            budget_day: gate.as_ref().map(|g| g.today.clone()),
            ..Task::submitted(
                id,
                &body,
                (owner, caller_agent),
                status,
                &timestamps::format(now),
            )
        };
        let (task_items, record) = task_store::create_items(
            &ctx.table,
            task,
            vec![(
                EventType::Status,
                json!({ "status": status, "requestedAgentId": requested_agent }),
            )],
            now,
        )?;
        let (hold_items, transfers) = vault::hold_items(&ctx.table, &owner, &id, budget, now)
            .map_err(|err| service::api_error(err, Spending::TaskHold))?;
        let mut transaction = Transaction::new();
        transaction.extend(task_items).extend(hold_items);
        if let Some(gate) = &gate {
            transaction.extend(gate.items(&ctx.table, budget, now)?);
        }
        let mut event = None;
        if approval {
            let (items, requested) = approval_items(tasks, &record.task, now)?;
            transaction.extend(items);
            event = requested;
        }
        transaction.extend([auditor.item(
            &ctx.table,
            "task.submitted",
            AuditTarget::new("task", id),
            caller_agent,
            json!({ "taskType": body.task_type, "maxBudget": budget, "status": status,
                    "agentId": requested_agent }),
        )?]);
        match transaction.commit(ctx.db()).await {
            Ok(()) => {}
            Err(err) if err.failed_labels().contains(&"budget") => {
                // Racing submits committed this agent's budget meanwhile: judge again
                // on what they left.
                let reloaded =
                    Gate::load(ctx, &caller_agent.ok_or_else(ApiError::internal)?, now).await?;
                approval = judged(ctx, &owner, &reloaded, body.task_type, budget).await?;
                gate = Some(reloaded);
                continue;
            }
            Err(err) => {
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
        }
        if faults::fires(&ctx.table, faults::point::AFTER_COMMIT_BEFORE_SEND) {
            return Err(ApiError::internal());
        }
        if status == TaskStatus::Submitted {
            messages::send(&tasks.sqs, &tasks.routing_queue_url, id).await;
        }
        aicity_tasks::webhook_events::send(ctx, event.as_slice()).await;
        return created(record.task);
    }
    // The budget kept moving under us: retryable, nothing was written.
    Err(ApiError::new(ErrorCode::ServiceUnavailable))
}

/// Tries of a submit whose budget counter lost to racing submits of the same agent.
const BUDGET_ATTEMPTS: usize = 8;

/// The policy's verdict: a refusal (with the owner told when a budget was reached), or
/// whether the task waits for approval.
async fn judged(
    ctx: &aicity_http::Context,
    owner: &OwnerId,
    gate: &Gate,
    task_type: Category,
    budget: Cents,
) -> Result<bool, ApiError> {
    let verdict = gate.verdict(task_type, budget);
    if let Some(refusal) = verdict.refusal() {
        budgets::notify_reached(ctx, owner, gate, verdict).await;
        return Err(refusal);
    }
    Ok(matches!(verdict, Verdict::Allowed { approval: true }))
}

/// The approval a task over its agent's threshold waits on, and the owner's notice.
fn approval_items(
    tasks: &Tasks,
    task: &Task,
    now: OffsetDateTime,
) -> Result<(Vec<aicity_store::vault::Labeled>, Option<WebhookEvent>), ApiError> {
    let agent = task.caller_agent_id.ok_or_else(ApiError::internal)?;
    let approval = Approval {
        id: approval_id(&task.id),
        task_id: task.id,
        agent_id: agent,
        owner_id: task.caller_owner_id,
        task_type: task.task_type,
        amount: task.max_budget,
        status: ApprovalStatus::Pending,
        created_at: timestamps::format(now),
        expires_at: timestamps::format(now + tasks.approval_ttl),
        decided_at: None,
        reason: None,
    };
    let event = WebhookEvent::new(
        WebhookEventType::ApprovalRequested,
        json!({ "approvalId": approval.id, "taskId": task.id, "agentId": agent,
                "amount": task.max_budget, "expiresAt": approval.expires_at }),
        vec![task.caller_owner_id.to_string()],
    );
    let notice = aicity_tasks::notices::item(
        &tasks.ctx.table,
        &task.caller_owner_id,
        NotificationType::ApprovalRequested,
        format!(
            "Approval requested: {} cents for {}",
            task.max_budget.0, task.task_type
        ),
        format!(
            "Agent {agent} submitted a task over its approval threshold; approve or deny it by {}.",
            approval.expires_at
        ),
        json!({ "approvalId": approval.id, "taskId": task.id, "agentId": agent,
                "amount": task.max_budget }),
    )?;
    let mut items = vec![
        aicity_store::embassy::approval_item_new(&tasks.ctx.table, &approval)?,
        notice,
    ];
    items.extend(aicity_tasks::webhook_events::items(
        &tasks.ctx.table,
        std::slice::from_ref(&event),
    )?);
    Ok((items, Some(event)))
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

pub(crate) async fn check_direct_hire(
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
pub(crate) async fn check_someone_could(
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
