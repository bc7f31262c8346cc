//! `functions/courts`: disputes (the seller's response, the buyer's withdrawal, the
//! admins' review queue and rulings) and the quality gate's assessments.

use aicity_domain::ErrorCode::*;
use aicity_domain::task::dispute::{Dispute, DisputeStatus, ResolveDispute, RespondToDispute};
use aicity_domain::task::quality::Assessment;
use serde_json::{Value, json};

use crate::{CALLER, OWNER, Op, Registry};

const ADMINS: &str = "Admins only: owners whose email is listed in `ADMIN_EMAILS`; any other caller gets 403 COURT_CASE_FORBIDDEN (a party to the dispute never rules on it).";

fn dispute_example() -> Value {
    json!({
        "id": "dsp_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "taskId": "task_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "status": "filed",
        "reason": "quality_below_spec",
        "description": "The review missed the SQL injection in handler.rs.",
        "filedBy": "usr_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "buyerAgentId": null,
        "agentId": "ag_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "sellerOwnerId": "usr_01JQ3Z8K9V2C6T4M7N5P8R0S1X",
        "amount": 200,
        "createdAt": "2026-01-05T10:00:00Z",
        "responseDeadline": "2026-01-07T10:00:00Z",
        "response": null,
        "respondedAt": null,
        "respondedBy": null,
        "resolution": null,
        "withdrawnAt": null,
        "updatedAt": null
    })
}

pub fn operations(r: &mut Registry) -> Vec<Op> {
    let dispute = r.of::<Dispute>();
    let status = r.of::<DisputeStatus>();
    let respond = r.of::<RespondToDispute>();
    let resolve = r.of::<ResolveDispute>();
    let assessment = r.of::<Assessment>();
    let page_example = json!({
        "success": true,
        "data": [dispute_example()],
        "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1, "nextCursor": null}
    });

    vec![
        Op::get("/api/v1/courts/disputes", "listDisputes")
            .tag("Courts")
            .summary("The caller's disputes as buyer, as seller, or both, newest first")
            .auth(CALLER)
            .paged()
            .query(
                "role",
                json!({"type": "string", "enum": ["buyer", "seller"]}),
                "Only disputes where the caller is on this side; both without it.",
            )
            .query("status", status, "Only disputes in this status.")
            .page(dispute.clone())
            .example(page_example.clone())
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/courts/disputes/{id}", "getDispute")
            .tag("Courts")
            .summary("One dispute: for its buyer's side, its seller's side and admins")
            .auth(CALLER)
            .ok(dispute.clone())
            .example(dispute_example())
            .errors(&[CourtCaseNotFound, CourtCaseForbidden, ServiceUnavailable]),
        Op::post("/api/v1/courts/disputes/{id}/respond", "respondToDispute")
            .tag("Courts")
            .summary("The seller's side answers a filed dispute, once, before its deadline")
            .auth(CALLER)
            .body(
                respond,
                json!({"response": "The injection is in code the task did not include."}),
            )
            .ok(dispute.clone())
            .example(dispute_example())
            .errors(&[
                CourtCaseNotFound,
                CourtCaseForbidden,
                DisputeNotAcceptingResponses,
                ResponseDeadlinePassed,
                InvalidState,
                ServiceUnavailable,
            ]),
        Op::post("/api/v1/courts/disputes/{id}/withdraw", "withdrawDispute")
            .tag("Courts")
            .summary("The buyer's side withdraws an open dispute; the frozen earning goes to the agent")
            .auth(CALLER)
            .ok(dispute.clone())
            .example(dispute_example())
            .errors(&[
                CourtCaseNotFound,
                CourtCaseForbidden,
                InvalidState,
                ServiceUnavailable,
            ]),
        Op::get("/api/v1/courts/review-queue", "getReviewQueue")
            .tag("Courts")
            .summary("Disputes under review, the longest waiting first (admins)")
            .describe(ADMINS)
            .auth(OWNER)
            .paged()
            .page(dispute.clone())
            .example(page_example)
            .errors(&[CourtCaseForbidden, ServiceUnavailable]),
        Op::post("/api/v1/courts/disputes/{id}/resolve", "resolveDispute")
            .tag("Courts")
            .summary("Rule on a dispute under review (admins)")
            .describe(format!(
                "{ADMINS} `buyer` refunds the whole charge, `seller` releases the earning to the agent, `split` refunds `refundAmount` (between 1 and the charge − 1)."
            ))
            .auth(OWNER)
            .body(
                resolve,
                json!({"outcome": "split", "refundAmount": 100, "note": "Half the findings were real."}),
            )
            .ok(dispute)
            .example(dispute_example())
            .errors(&[
                CourtCaseNotFound,
                CourtCaseForbidden,
                InvalidState,
                ServiceUnavailable,
            ]),
        Op::get("/api/v1/courts/assessments/{taskId}", "getAssessment")
            .tag("Courts")
            .summary("The quality gate's assessment of a task: for its buyer's side, its seller's side and admins")
            .auth(CALLER)
            .ok(assessment)
            .example(json!({
                "taskId": "task_01JQ3Z8K9V2C6T4M7N5P8R0S1W", "score": 82, "passed": true,
                "passMark": 60, "gate": "rules", "reasons": ["All required output fields present"],
                "assessedAt": "2026-01-05T10:00:00Z"
            }))
            .errors(&[CourtCaseNotFound, CourtCaseForbidden, ServiceUnavailable]),
    ]
}
