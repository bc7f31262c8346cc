//! `courts`: disputes and the quality gate's assessments.
//!
//! - `GET  /api/v1/courts/disputes?role=buyer|seller&status=` (owner or agent): its own
//! - `GET  /api/v1/courts/disputes/{id}`: the buyer's side, the seller's side, admins
//! - `POST /api/v1/courts/disputes/{id}/respond` `{response}`: the seller's side, once
//! - `POST /api/v1/courts/disputes/{id}/withdraw`: the buyer's side
//! - `GET  /api/v1/courts/review-queue`, `POST /api/v1/courts/disputes/{id}/resolve`
//!   `{outcome, refundAmount?, note}`: admins (owners listed in `ADMIN_EMAILS`)
//! - `GET  /api/v1/courts/assessments/{taskId}`: the buyer's side, the seller's side, admins
//!
//! The buyer's side is the buyer's owner and, when an agent submitted the task, that
//! agent; the seller's side is the assigned agent and its owner. Every step on a
//! dispute is a step of its task (`aicity_tasks::disputes`): dispute, task, money and
//! agent in one transaction.

use std::sync::Arc;

use aicity_domain::identity::owner::normalize_email;
use aicity_domain::ids::{DisputeId, TaskId};
use aicity_domain::task::dispute::{
    Dispute, DisputeStatus, Party, ResolveDispute, RespondToDispute,
};
use aicity_domain::task::model::Task;
use aicity_domain::task::timing::Clock;
use aicity_domain::{ApiError, ErrorCode, FieldError};
use aicity_http::audit::Auditor;
use aicity_http::auth::{self, Caller};
use aicity_http::request::query_param;
use aicity_http::{Context, PageRequest, json_body, listed, ok, path_param, route_key};
use aicity_store::{
    StoreError, agents, assessments, disputes as dispute_store, tasks as task_store,
};
use aicity_tasks::disputes::{self, Request as Step, forbidden, not_found};
use lambda_http::{Body, Request, Response};

const MAX_BODY: usize = 16 * 1024;

pub struct Courts {
    pub ctx: Context,
    /// Injected so the response deadline is testable on both sides.
    pub clock: Arc<dyn Clock>,
    /// Normalised emails of the owners who rule on disputes.
    pub admins: Vec<String>,
}

/// `ADMIN_EMAILS`: comma- or space-separated; empty (the default) means no admins.
pub fn admins_from_env() -> Vec<String> {
    parse_admins(&std::env::var("ADMIN_EMAILS").unwrap_or_default())
}

pub fn parse_admins(list: &str) -> Vec<String> {
    list.split([',', ' ', ';', '\n'])
        .map(normalize_email)
        .filter(|email| !email.is_empty())
        .collect()
}

impl Courts {
    fn is_admin(&self, caller: &Caller) -> bool {
        match caller {
            Caller::Owner(owner) => self
                .admins
                .iter()
                .any(|admin| *admin == normalize_email(&owner.owner.email)),
            Caller::Agent(_) => false,
        }
    }

    /// Who the caller is to this dispute. A party is a party first: an admin who is the
    /// buyer or the seller does not rule on its own case.
    fn party(&self, caller: &Caller, dispute: &Dispute) -> Party {
        match caller {
            Caller::Owner(owner) if owner.owner.id == dispute.filed_by => Party::Buyer,
            Caller::Owner(owner) if Some(owner.owner.id) == dispute.seller_owner_id => {
                Party::Seller
            }
            Caller::Agent(agent) if Some(agent.agent.id) == dispute.buyer_agent_id => Party::Buyer,
            Caller::Agent(agent) if Some(agent.agent.id) == dispute.agent_id => Party::Seller,
            _ if self.is_admin(caller) => Party::Admin,
            _ => Party::Stranger,
        }
    }
}

pub async fn handle(courts: &Courts, request: Request) -> Result<Response<Body>, ApiError> {
    match route_key(&request).as_deref() {
        Some("GET /api/v1/courts/disputes") => list(courts, &request).await,
        Some("GET /api/v1/courts/disputes/{id}") => get(courts, &request).await,
        Some("POST /api/v1/courts/disputes/{id}/respond") => respond(courts, &request).await,
        Some("POST /api/v1/courts/disputes/{id}/withdraw") => withdraw(courts, &request).await,
        Some("GET /api/v1/courts/review-queue") => review_queue(courts, &request).await,
        Some("POST /api/v1/courts/disputes/{id}/resolve") => resolve(courts, &request).await,
        Some("GET /api/v1/courts/assessments/{taskId}") => assessment(courts, &request).await,
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

/// The caller, the dispute named in the path, and who the caller is to it; strangers
/// are refused here (admins are not strangers).
async fn case(courts: &Courts, request: &Request) -> Result<(Caller, Dispute, Party), ApiError> {
    let caller = auth::caller(&courts.ctx, request).await?;
    let id: DisputeId = path_param(request, "id")?
        .parse()
        .map_err(|_| not_found())?;
    let dispute = disputes::get(&courts.ctx, &id).await?;
    let party = courts.party(&caller, &dispute);
    if party == Party::Stranger {
        return Err(forbidden());
    }
    Ok((caller, dispute, party))
}

/// `GET /courts/disputes/{id}`
async fn get(courts: &Courts, request: &Request) -> Result<Response<Body>, ApiError> {
    let (_, dispute, _) = case(courts, request).await?;
    ok(dispute)
}

fn caller_id(caller: &Caller) -> String {
    match caller {
        Caller::Owner(owner) => owner.owner.id.to_string(),
        Caller::Agent(agent) => agent.agent.id.to_string(),
    }
}

/// Runs one step for the caller, who must be `needed` to this dispute; a party's step
/// is written to the caller's audit trail with it.
async fn take(
    courts: &Courts,
    request: &Request,
    caller: &Caller,
    dispute: Dispute,
    party: Party,
    needed: Party,
    step: Step,
) -> Result<Response<Body>, ApiError> {
    if party != needed {
        return Err(forbidden());
    }
    let auditor = Auditor::of(caller, request);
    let after = disputes::act_as(
        &courts.ctx,
        dispute,
        |current| courts.party(caller, current),
        &step,
        courts.clock.now(),
        Some(&auditor),
    )
    .await?;
    ok(after)
}

/// `POST /courts/disputes/{id}/respond` `{response}`: the seller's side, once, while
/// `filed` and before the response deadline.
async fn respond(courts: &Courts, request: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, dispute, party) = case(courts, request).await?;
    if party != Party::Seller {
        return Err(forbidden());
    }
    let body: RespondToDispute = json_body(request, MAX_BODY)?;
    let step = Step::Respond {
        response: body.response,
        by: caller_id(&caller),
    };
    take(
        courts,
        request,
        &caller,
        dispute,
        party,
        Party::Seller,
        step,
    )
    .await
}

/// `POST /courts/disputes/{id}/withdraw`: the buyer's side, while open; the frozen
/// earning goes to the agent.
async fn withdraw(courts: &Courts, request: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, dispute, party) = case(courts, request).await?;
    take(
        courts,
        request,
        &caller,
        dispute,
        party,
        Party::Buyer,
        Step::Withdraw,
    )
    .await
}

/// `POST /courts/disputes/{id}/resolve` `{outcome, refundAmount?, note}`: admins, on a
/// dispute under review.
async fn resolve(courts: &Courts, request: &Request) -> Result<Response<Body>, ApiError> {
    let (caller, dispute, party) = case(courts, request).await?;
    if party != Party::Admin {
        return Err(forbidden());
    }
    let body: ResolveDispute = json_body(request, MAX_BODY)?;
    let refund = body
        .refund(dispute.amount)
        .map_err(|field| ApiError::validation(vec![field]))?;
    let Caller::Owner(admin) = &caller else {
        return Err(forbidden());
    };
    let step = Step::Resolve {
        outcome: body.outcome,
        refund,
        note: body.note,
        by: admin.owner.id,
    };
    take(courts, request, &caller, dispute, party, Party::Admin, step).await
}

fn status_filter(request: &Request) -> Result<Option<DisputeStatus>, ApiError> {
    query_param(request, "status")
        .map(|raw| {
            DisputeStatus::parse(&raw).ok_or_else(|| {
                let all: Vec<&str> = DisputeStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::validation(vec![FieldError::new(
                    "status",
                    format!("must be one of {}", all.join(", ")),
                )])
            })
        })
        .transpose()
}

/// `GET /courts/disputes?role=buyer|seller&status=&page=&pageSize=&cursor=`: the
/// caller's disputes as buyer, as seller, or both (no `role`), newest first.
async fn list(courts: &Courts, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &courts.ctx;
    let caller = auth::caller(ctx, request).await?;
    let status = status_filter(request)?;
    let role = query_param(request, "role");
    let (as_buyer, as_seller) = match role.as_deref() {
        None => (true, true),
        Some("buyer") => (true, false),
        Some("seller") => (false, true),
        Some(_) => {
            return Err(ApiError::invalid_field("role", "must be buyer or seller"));
        }
    };
    let page = PageRequest::from_request(request)?;
    let agent = match &caller {
        Caller::Owner(_) => None,
        Caller::Agent(agent) => Some(agent.agent.id),
    };
    let filter = dispute_store::DisputeFilter {
        as_buyer,
        as_seller,
        agent: agent.as_ref(),
        status,
    };
    let found = dispute_store::of_owner(
        ctx.db(),
        &ctx.table,
        &caller.owner_id(),
        filter,
        &page.ask(),
    )
    .await?;
    listed(found)
}

/// `GET /courts/review-queue?page=&pageSize=&cursor=`: admins; disputes under review,
/// the longest waiting first.
async fn review_queue(courts: &Courts, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &courts.ctx;
    let caller = auth::caller(ctx, request).await?;
    if !courts.is_admin(&caller) {
        return Err(ApiError::with_message(
            ErrorCode::CourtCaseForbidden,
            "Only Courts admins see the review queue",
        ));
    }
    let page = PageRequest::from_request(request)?;
    listed(dispute_store::review_queue(ctx.db(), &ctx.table, &page.ask()).await?)
}

/// Whether the caller is on the buyer's or the seller's side of `task`, or an admin.
async fn may_see_assessment(
    courts: &Courts,
    caller: &Caller,
    task: &Task,
) -> Result<bool, ApiError> {
    let ctx = &courts.ctx;
    let party = match caller {
        Caller::Owner(owner) if owner.owner.id == task.caller_owner_id => true,
        Caller::Agent(agent) => {
            Some(agent.agent.id) == task.caller_agent_id || Some(agent.agent.id) == task.agent_id
        }
        Caller::Owner(owner) => match task.agent_id {
            Some(seller) => match agents::get(ctx.db(), &ctx.table, &seller).await {
                Ok(record) => record.agent.owner_id == owner.owner.id,
                Err(StoreError::NotFound) => false,
                Err(err) => return Err(err.into()),
            },
            None => false,
        },
    };
    Ok(party || courts.is_admin(caller))
}

/// `GET /courts/assessments/{taskId}`: the quality gate's record
/// `{taskId, score, passed, passMark, gate, reasons, assessedAt}`.
async fn assessment(courts: &Courts, request: &Request) -> Result<Response<Body>, ApiError> {
    let ctx = &courts.ctx;
    let caller = auth::caller(ctx, request).await?;
    let missing =
        || ApiError::with_message(ErrorCode::CourtCaseNotFound, "No assessment for this task");
    let task_id: TaskId = path_param(request, "taskId")?
        .parse()
        .map_err(|_| missing())?;
    let task = match task_store::get(ctx.db(), &ctx.table, &task_id).await {
        Ok(record) => record.task,
        Err(StoreError::NotFound) => return Err(missing()),
        Err(err) => return Err(err.into()),
    };
    if !may_see_assessment(courts, &caller, &task).await? {
        return Err(ApiError::with_message(
            ErrorCode::CourtCaseForbidden,
            "You are neither the buyer nor the seller of this task",
        ));
    }
    match assessments::get(ctx.db(), &ctx.table, &task_id).await {
        Ok(record) => ok(record),
        Err(StoreError::NotFound) => Err(missing()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_emails_are_normalised_and_blank_means_none() {
        assert_eq!(
            parse_admins(" Admin@AICity.local, ops@example.com ;"),
            ["admin@aicity.local", "ops@example.com"]
        );
        assert!(parse_admins("").is_empty());
        assert!(parse_admins(" , ").is_empty());
    }
}
