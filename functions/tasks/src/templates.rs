//! `GET /api/v1/tasks/templates` and `GET /api/v1/tasks/templates/{taskType}`: what
//! each task type takes as input and returns as output. Any authenticated caller.

use aicity_domain::identity::Category;
use aicity_domain::task::templates;
use aicity_domain::{ApiError, ErrorCode};
use aicity_http::auth;
use aicity_http::{ok, path_param};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::Tasks;

/// Every template, one per task type, as a list.
pub async fn list(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    auth::caller(&tasks.ctx, request).await?;
    ok(templates::all())
}

/// One task type's template; an unknown type is `404 TEMPLATE_NOT_FOUND` naming the
/// known ones.
pub async fn get(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    auth::caller(&tasks.ctx, request).await?;
    let task_type = path_param(request, "taskType")?;
    match Category::parse(&task_type) {
        Some(category) => ok(templates::template(category)),
        None => Err(ApiError::with_message(
            ErrorCode::TemplateNotFound,
            format!("No task type {task_type:?}"),
        )
        .details(json!({
            "taskType": task_type,
            "allowed": Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        }))),
    }
}
