//! `tasks`: the task API.
//!
//! Any caller: `GET /tasks/templates`, `GET /tasks/templates/:taskType`.
//! Buyer (owner token or agent key): `POST /tasks`, `GET /tasks`, `GET /tasks/:id`,
//! `POST /tasks/:id/cancel`, `GET /tasks/estimate`. Assigned agent (agent key):
//! `GET /tasks/submitted`, `POST /tasks/:id/sandbox`,
//! `DELETE /tasks/:id/sandbox/:sandboxId`, `POST /tasks/:id/executing`, `/progress`,
//! `/complete`, `/fail`.
//! Workflows (owner or agent): `POST /workflows`, `GET /workflows`,
//! `GET /workflows/:id`, `POST /workflows/:id/cancel`.

mod after_completion;
mod agent_side;
mod buyer_side;
mod estimate;
mod submit;
mod templates;
mod workflows;

use aicity_domain::ids::TaskId;
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::{Context, path_param, route_key};
use aicity_sandbox::SandboxProvider;
use aicity_store::config::{MissingEnv, env_var};
use aicity_vault::PaymentProvider;
use lambda_http::{Body, Request, Response};

pub struct Tasks {
    pub ctx: Context,
    /// Injected so the refund window is testable on both sides.
    pub clock: std::sync::Arc<dyn aicity_domain::task::timing::Clock>,
    pub refund_window: std::time::Duration,
    /// How long after completion a dispute may be filed, and the seller's time to answer.
    pub disputes: aicity_tasks::disputes::DisputeRules,
    /// How long a task over its agent's approval threshold waits for the owner.
    pub approval_ttl: std::time::Duration,
    pub sqs: aws_sdk_sqs::Client,
    pub payments: Box<dyn PaymentProvider>,
    pub sandboxes: Box<dyn SandboxProvider>,
    pub routing_queue_url: String,
    pub quality_queue_url: String,
}

/// Queue URLs from the environment the template sets.
pub fn queues_from_env() -> Result<(String, String), MissingEnv> {
    Ok((env_var("ROUTING_QUEUE_URL")?, env_var("QUALITY_QUEUE_URL")?))
}

pub async fn handle(tasks: &Tasks, request: Request) -> Result<Response<Body>, ApiError> {
    match route_key(&request).as_deref() {
        Some("POST /api/v1/tasks") => submit::submit(tasks, &request).await,
        Some("GET /api/v1/tasks") => buyer_side::list(tasks, &request).await,
        Some("GET /api/v1/tasks/submitted") => agent_side::list_submitted(tasks, &request).await,
        Some("GET /api/v1/tasks/templates") => templates::list(tasks, &request).await,
        Some("GET /api/v1/tasks/templates/{taskType}") => templates::get(tasks, &request).await,
        Some("GET /api/v1/tasks/estimate") => estimate::estimate(tasks, &request).await,
        Some("GET /api/v1/tasks/{id}") => buyer_side::get(tasks, &request).await,
        Some("POST /api/v1/tasks/{id}/cancel") => buyer_side::cancel(tasks, &request).await,
        Some("POST /api/v1/tasks/{id}/feedback") => {
            after_completion::feedback(tasks, &request).await
        }
        Some("POST /api/v1/tasks/{id}/dispute") => after_completion::dispute(tasks, &request).await,
        Some("POST /api/v1/tasks/{id}/sandbox") => {
            agent_side::create_sandbox(tasks, &request).await
        }
        Some("DELETE /api/v1/tasks/{id}/sandbox/{sandboxId}") => {
            agent_side::destroy_sandbox(tasks, &request).await
        }
        Some("POST /api/v1/tasks/{id}/executing") => agent_side::executing(tasks, &request).await,
        Some("POST /api/v1/tasks/{id}/progress") => agent_side::progress(tasks, &request).await,
        Some("POST /api/v1/tasks/{id}/complete") => agent_side::complete(tasks, &request).await,
        Some("POST /api/v1/tasks/{id}/fail") => agent_side::fail(tasks, &request).await,
        // Boxed: these two handlers' futures are several times the others', and
        // `handle`'s future is as large as its largest arm (a deep stack in debug builds).
        Some("POST /api/v1/workflows") => Box::pin(workflows::create(tasks, &request)).await,
        Some("GET /api/v1/workflows") => workflows::list(tasks, &request).await,
        Some("GET /api/v1/workflows/{id}") => workflows::get(tasks, &request).await,
        Some("POST /api/v1/workflows/{id}/cancel") => {
            Box::pin(workflows::cancel(tasks, &request)).await
        }
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

fn task_id(request: &Request) -> Result<TaskId, ApiError> {
    path_param(request, "id")?
        .parse()
        .map_err(|_| aicity_tasks::change::task_not_found())
}

fn forbidden() -> ApiError {
    ApiError::with_message(
        ErrorCode::TaskForbidden,
        "You are not the submitter or the assigned agent of this task",
    )
}

/// A transition the domain refused, as the API says it.
fn refused(err: aicity_domain::task::TransitionError) -> ApiError {
    match err {
        aicity_domain::task::TransitionError::Forbidden { .. } => forbidden(),
        aicity_domain::task::TransitionError::InvalidState { from, .. } => {
            ApiError::with_message(ErrorCode::InvalidTaskState, format!("The task is {from}"))
                .details(serde_json::json!({ "status": from }))
        }
    }
}
