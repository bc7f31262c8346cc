//! `functions/tasks`: workflows, 2 to 10 tasks run one after another (each step's
//! output is the next one's `previousOutput`), the whole budget held at creation.

use aicity_domain::ErrorCode::*;
use aicity_domain::ids::AgentId;
use aicity_domain::money::Cents;
use aicity_domain::task::TaskStatus;
use aicity_domain::workflow::{CreateWorkflow, Workflow, WorkflowStatus, WorkflowStep};
use serde_json::{Value, json};

use crate::{CALLER, Op, Registry};

const TAG: &str = "Workflows";

fn workflow_example() -> Value {
    json!({
        "id": "wf_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "name": "Review then test",
        "status": "active",
        "callerOwnerId": "usr_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "steps": [
            {"order": 1, "taskId": "task_01JQ3Z8K9V2C6T4M7N5P8R0S1W", "taskType": "code_review",
             "description": "Review src/lib.rs", "maxBudget": 3000, "status": "submitted"},
            {"order": 2, "taskId": "task_01JQ3Z8K9V2C6T4M7N5P8R0S1X", "taskType": "testing",
             "description": "Write tests for what the review found", "maxBudget": 4000, "status": "waiting"}
        ],
        "totalBudget": 7000,
        "createdAt": "2026-05-01T12:00:00Z",
        "updatedAt": "2026-05-01T12:00:00Z",
        "creditsCharged": 0
    })
}

pub fn operations(r: &mut Registry) -> Vec<Op> {
    let create = r.of::<CreateWorkflow>();
    let workflow = r.of::<Workflow>();
    let step = r.of::<WorkflowStep>();
    let task_status = r.of::<TaskStatus>();
    let agent_id = r.of::<AgentId>();
    let cents = r.of::<Cents>();
    r.of::<WorkflowStatus>();
    let detail = r.named(
        "WorkflowDetail",
        json!({
            "description": "A workflow with where each step's task stands and what the completed steps were charged.",
            "allOf": [
                workflow.clone(),
                {
                    "type": "object",
                    "required": ["steps", "creditsCharged"],
                    "properties": {
                        "steps": {
                            "type": "array",
                            "items": {
                                "allOf": [
                                    step,
                                    {
                                        "type": "object",
                                        "required": ["status"],
                                        "properties": {
                                            "status": task_status,
                                            "assignedAgentId": agent_id,
                                            "creditsCharged": cents,
                                            "qualityScore": {"type": "integer", "minimum": 0}
                                        }
                                    }
                                ]
                            }
                        },
                        "creditsCharged": cents
                    }
                }
            ]
        }),
    );
    let statuses: Vec<&str> = WorkflowStatus::ALL.iter().map(|s| s.as_str()).collect();
    let listed_example = {
        let mut w = workflow_example();
        let map = w.as_object_mut().expect("an object");
        map.remove("creditsCharged");
        for step in map["steps"].as_array_mut().expect("steps") {
            step.as_object_mut().expect("a step").remove("status");
        }
        w
    };

    vec![
        Op::post("/api/v1/workflows", "createWorkflow")
            .tag(TAG)
            .summary("Create a workflow: every step's task made and its budget held at once")
            .describe(
                "The first step goes to routing; each next one waits until the step before it \
                 completes and then gets its output as `input.previousOutput`. An agent's workflow is \
                 judged by its owner's policy as if the steps were submitted one after another; a \
                 step over the approval threshold refuses it (a workflow does not wait for approval).",
            )
            .auth(CALLER)
            .idempotent()
            .body(
                create,
                json!({
                    "name": "Review then test",
                    "steps": [
                        {"taskType": "code_review", "description": "Review src/lib.rs", "maxBudget": 3000,
                         "input": {"repo": "https://github.com/acme/widgets"}},
                        {"taskType": "testing", "description": "Write tests for what the review found", "maxBudget": 4000}
                    ]
                }),
            )
            .created(detail.clone())
            .example(workflow_example())
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
        Op::get("/api/v1/workflows", "listWorkflows")
            .tag(TAG)
            .summary("The caller's workflows, newest first")
            .describe("An owner sees its own and its agents'; an agent, the ones it created.")
            .auth(CALLER)
            .paged()
            .query(
                "status",
                json!({"type": "string", "enum": statuses}),
                "Only workflows in this status.",
            )
            .page(workflow)
            .example(json!({
                "success": true,
                "data": [listed_example],
                "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1, "nextCursor": null}
            }))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/workflows/{id}", "getWorkflow")
            .tag(TAG)
            .summary("A workflow of the caller's, with each step's status")
            .auth(CALLER)
            .ok(detail.clone())
            .example(workflow_example())
            .errors(&[WorkflowNotFound, ServiceUnavailable]),
        Op::post("/api/v1/workflows/{id}/cancel", "cancelWorkflow")
            .tag(TAG)
            .summary("Cancel a workflow: its waiting and unstarted steps cancelled, their holds released")
            .describe("A step already executing runs to its end.")
            .auth(CALLER)
            .ok(detail)
            .errors(&[
                WorkflowNotFound,
                InvalidWorkflowState,
                InvalidTaskState,
                ServiceUnavailable,
            ]),
    ]
}
