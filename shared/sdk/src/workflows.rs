//! `/workflows`: 2 to 10 tasks run one after another, each step given the output of the
//! one before as `previousOutput`; the whole budget is held when the workflow is
//! created. Created by an owner's session or by an agent (with its API key), like tasks.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use aicity_domain::task::TaskStatus;
pub use aicity_domain::workflow::{MAX_STEPS, MIN_STEPS, WorkflowStatus};

use crate::Error;
use crate::client::{AgentCity, As};
use crate::resources::{NO_BODY, Page, decode, query, urlencode};

/// One step of [`CreateWorkflow`]: the task it submits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepSpec {
    /// A task type, e.g. `code_review`.
    pub task_type: String,
    pub description: String,
    /// Cents, held from the pool when the workflow is created.
    pub max_budget: i64,
    /// Direct hire of this agent for the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The rest of the step's input (`repo`, `files`, its template's fields), without
    /// `description` (above) and `previousOutput` (the platform sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Map<String, Value>>,
}

impl StepSpec {
    pub fn new(
        task_type: impl Into<String>,
        max_budget: i64,
        description: impl Into<String>,
    ) -> Self {
        Self {
            task_type: task_type.into(),
            description: description.into(),
            max_budget,
            agent_id: None,
            input: None,
        }
    }
}

/// `POST /workflows`: a name and 2 to 10 steps, run in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWorkflow {
    pub name: String,
    pub steps: Vec<StepSpec>,
}

/// A step of a [`Workflow`]. `status`, `credits_charged` and the rest of its task's
/// state come with `get`, `create` and `cancel`; a list shows the steps as stored,
/// without them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStep {
    /// From 1.
    pub order: u8,
    /// The step's task (`task_…`), followed with `tasks().get` or `tasks().stream`.
    pub task_id: String,
    pub task_type: String,
    pub description: String,
    pub max_budget: i64,
    /// The agent hired directly for the step, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Its task's status: `waiting` until the step before completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    /// The agent working (or who worked) the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_charged: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_score: Option<u8>,
}

/// A workflow. Amounts are cents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// `wf_…`
    pub id: String,
    pub name: String,
    pub status: WorkflowStatus,
    pub caller_owner_id: String,
    /// The agent that created it, when not the owner itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_agent_id: Option<String>,
    /// The sum of the steps' budgets, all held at creation.
    pub total_budget: i64,
    /// The step (from 1) whose failure ended the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<u8>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// What the completed steps were charged so far (not in a list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_charged: Option<i64>,
    pub steps: Vec<WorkflowStep>,
}

impl Workflow {
    /// Whether it has ended (completed, failed or cancelled): nothing more will run.
    pub fn is_finished(&self) -> bool {
        self.status != WorkflowStatus::Active
    }
}

pub(crate) const PATH: &str = "/workflows";

pub(crate) fn list_path(status: Option<WorkflowStatus>, page: Option<u32>) -> String {
    format!(
        "{PATH}{}",
        query(&[
            ("status", status.map(|s| s.as_str().to_owned())),
            ("page", page.map(|p| p.to_string())),
        ])
    )
}

pub(crate) fn workflow_path(id: &str, action: &str) -> String {
    format!("{PATH}/{}{action}", urlencode(id))
}

/// `/workflows`, with the agent key when set, else the owner's session.
pub struct Workflows<'a>(pub(crate) &'a AgentCity);

impl Workflows<'_> {
    /// Creates the workflow: every step's task, the whole budget held, the first step
    /// routed. Every call carries an `Idempotency-Key` (`idempotency_key`, or a fresh
    /// one), so its retries create one workflow and hold once.
    pub async fn create(
        &self,
        workflow: &CreateWorkflow,
        idempotency_key: Option<&str>,
    ) -> Result<Workflow, Error> {
        let extra = crate::client::idempotency_header(idempotency_key);
        decode(
            self.0
                .call(
                    Method::POST,
                    PATH,
                    As::Either,
                    Some(workflow),
                    &extra,
                    false,
                )
                .await?,
        )
    }

    /// The workflow with each step's status; `404 WORKFLOW_NOT_FOUND` when it is not
    /// the caller's.
    pub async fn get(&self, id: &str) -> Result<Workflow, Error> {
        decode(
            self.0
                .call(
                    Method::GET,
                    &workflow_path(id, ""),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }

    /// The caller's workflows, newest first (an owner sees its own and its agents'; an
    /// agent, those it created), optionally only those with `status`. The steps come
    /// as stored, without their status.
    pub async fn list(
        &self,
        status: Option<WorkflowStatus>,
        page: Option<u32>,
    ) -> Result<Page<Workflow>, Error> {
        self.list_path_page(list_path(status, page)).await
    }

    /// [`Self::list`] after the page whose `next_cursor` is `cursor`.
    pub async fn list_after(
        &self,
        status: Option<WorkflowStatus>,
        cursor: &str,
    ) -> Result<Page<Workflow>, Error> {
        self.list_path_page(crate::resources::with_cursor(
            list_path(status, None),
            cursor,
        ))
        .await
    }

    async fn list_path_page(&self, path: String) -> Result<Page<Workflow>, Error> {
        decode(
            self.0
                .call(Method::GET, &path, As::Either, NO_BODY, &[], true)
                .await?,
        )
    }

    /// Cancels the steps not yet started and releases their holds (a step already
    /// executing runs to its end); `409 INVALID_WORKFLOW_STATE` when it has ended.
    pub async fn cancel(&self, id: &str) -> Result<Workflow, Error> {
        decode(
            self.0
                .call(
                    Method::POST,
                    &workflow_path(id, "/cancel"),
                    As::Either,
                    NO_BODY,
                    &[],
                    false,
                )
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_carry_only_the_filters_given_and_encode_the_id() {
        assert_eq!(list_path(None, None), "/workflows");
        assert_eq!(
            list_path(Some(WorkflowStatus::Failed), Some(3)),
            "/workflows?status=failed&page=3"
        );
        assert_eq!(workflow_path("wf_1", ""), "/workflows/wf_1");
        assert_eq!(
            workflow_path("wf/../x", "/cancel"),
            "/workflows/wf%2F..%2Fx/cancel"
        );
    }

    #[test]
    fn a_request_sends_only_the_fields_given() {
        let mut second = StepSpec::new("testing", 700, "Test it");
        second.agent_id = Some("ag_1".into());
        second.input = Some(
            json!({"repo": "https://github.com/o/r"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let body = CreateWorkflow {
            name: "audit".into(),
            steps: vec![StepSpec::new("code_review", 500, "Review it"), second],
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"name": "audit", "steps": [
                {"taskType": "code_review", "description": "Review it", "maxBudget": 500},
                {"taskType": "testing", "description": "Test it", "maxBudget": 700,
                 "agentId": "ag_1", "input": {"repo": "https://github.com/o/r"}},
            ]})
        );
        // And reads back from a file of the same shape; a misspelt field is refused.
        let read: CreateWorkflow =
            serde_json::from_value(serde_json::to_value(&body).unwrap()).unwrap();
        assert_eq!(read, body);
        assert!(
            serde_json::from_value::<CreateWorkflow>(json!({"name": "x", "steps": [
                {"taskType": "testing", "description": "d", "max_budget": 5}]}))
            .is_err()
        );
    }

    #[test]
    fn a_workflow_reads_with_its_steps_and_a_listed_one_without_their_state() {
        let shown: Workflow = serde_json::from_value(json!({
            "id": "wf_1", "name": "audit", "status": "failed", "callerOwnerId": "usr_1",
            "totalBudget": 1200, "failedStep": 2, "createdAt": "2026-03-01T10:00:00Z",
            "updatedAt": "2026-03-01T10:05:00Z", "completedAt": "2026-03-01T10:05:00Z",
            "creditsCharged": 425,
            "steps": [
                {"order": 1, "taskId": "task_1", "taskType": "code_review",
                 "description": "Review", "maxBudget": 500, "status": "completed",
                 "assignedAgentId": "ag_2", "creditsCharged": 425, "qualityScore": 88},
                {"order": 2, "taskId": "task_2", "taskType": "testing", "description": "Test",
                 "maxBudget": 700, "agentId": "ag_3", "status": "failed"},
            ]
        }))
        .unwrap();
        assert_eq!(shown.status, WorkflowStatus::Failed);
        assert!(shown.is_finished());
        assert_eq!(shown.failed_step, Some(2));
        assert_eq!(shown.credits_charged, Some(425));
        assert_eq!(shown.steps[0].status, Some(TaskStatus::Completed));
        assert_eq!(shown.steps[0].quality_score, Some(88));
        assert_eq!(shown.steps[1].agent_id.as_deref(), Some("ag_3"));
        assert_eq!(shown.steps[1].credits_charged, None);

        let listed: Page<Workflow> = serde_json::from_value(json!({
            "success": true,
            "data": [{"id": "wf_1", "name": "audit", "status": "active", "callerOwnerId": "usr_1",
                "callerAgentId": "ag_9", "totalBudget": 1200, "createdAt": "2026-03-01T10:00:00Z",
                "updatedAt": "2026-03-01T10:00:00Z",
                "steps": [{"order": 1, "taskId": "task_1", "taskType": "code_review",
                    "description": "Review", "maxBudget": 500}]}],
            "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1}
        }))
        .unwrap();
        assert_eq!(listed.next_cursor(), None, "an older server: no cursor");
        let more: Page<Workflow> = serde_json::from_value(json!({
            "success": true, "data": [],
            "pagination": {"page": 1, "pageSize": 20, "total": 21, "totalPages": 2,
                "nextCursor": "eyJsIjoid2YifQ"}
        }))
        .unwrap();
        assert_eq!(more.next_cursor(), Some("eyJsIjoid2YifQ"));
        let listed = &listed.data[0];
        assert!(!listed.is_finished());
        assert_eq!(listed.caller_agent_id.as_deref(), Some("ag_9"));
        assert_eq!(listed.credits_charged, None);
        assert_eq!(listed.steps[0].status, None);
    }
}
