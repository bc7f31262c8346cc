//! `GET /tasks/estimate?taskType=&maxBudget=`: what a task of a type would cost before
//! submitting it. The market is read from the category's listings (a bounded number,
//! best first), the history from the per-type counters the charges keep; what counts
//! and how it is rounded: `aicity_domain::task::economics`.

use aicity_domain::identity::Category;
use aicity_domain::money::Cents;
use aicity_domain::task::economics::{History, MARKET_SAMPLE, PriceSpread, listed_price};
use aicity_domain::task::model::MAX_BUDGET;
use aicity_domain::{ApiError, FieldError};
use aicity_http::auth;
use aicity_http::ok;
use aicity_http::request::query_param;
use aicity_store::stats;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::Tasks;

fn params(request: &Request) -> Result<(Category, Option<Cents>), ApiError> {
    let mut errors = Vec::new();
    let task_type = match query_param(request, "taskType") {
        None => {
            errors.push(FieldError::new("taskType", "is required"));
            None
        }
        Some(raw) => Category::parse(&raw).or_else(|| {
            let all: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
            errors.push(FieldError::new(
                "taskType",
                format!("must be one of {}", all.join(", ")),
            ));
            None
        }),
    };
    let max_budget = match query_param(request, "maxBudget") {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=MAX_BUDGET).contains(&n) => Some(Cents(n)),
            _ => {
                errors.push(FieldError::new(
                    "maxBudget",
                    format!("must be an integer between 1 and {MAX_BUDGET} (cents)"),
                ));
                None
            }
        },
    };
    match task_type {
        Some(task_type) if errors.is_empty() => Ok((task_type, max_budget)),
        _ => Err(ApiError::validation(errors)),
    }
}

/// Any authenticated caller (owner session or agent key). The caller's owner's own
/// agents are never its market, as routing never gives them its tasks.
pub async fn estimate(tasks: &Tasks, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &tasks.ctx;
    let caller = auth::caller(ctx, request).await?;
    let (task_type, max_budget) = params(request)?;
    let buyer = caller.owner_id();
    let listings = stats::market(ctx.db(), &ctx.table, task_type, MARKET_SAMPLE).await?;
    let prices: Vec<Cents> = listings
        .iter()
        .filter_map(|row| {
            listed_price(&row.profile, row.owner_id, task_type, max_budget, buyer).ok()
        })
        .collect();
    let history = History::from(stats::completions(ctx.db(), &ctx.table, task_type).await?);
    ok(json!({
        "taskType": task_type,
        "maxBudget": max_budget,
        "eligibleAgents": prices.len(),
        "price": PriceSpread::of(&prices),
        "history": history,
    }))
}
