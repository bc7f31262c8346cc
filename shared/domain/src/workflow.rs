//! Workflows: 2–10 tasks run one after another. The whole budget is held when the
//! workflow is created (one hold per step, so each ends exactly once like any task's);
//! each step is a task whose `parentTaskId` is the step before it and whose input
//! carries that step's output as `previousOutput`. What happens next is one pure
//! function of the workflow and its steps' statuses ([`next`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::FieldError;
use crate::identity::Category;
use crate::ids::{AgentId, OwnerId, TaskId, WorkflowId};
use crate::money::Cents;
use crate::task::TaskStatus;
use crate::task::model::{SubmitTask, TaskInput};
use crate::validate::{Validate, check_length};

pub const MIN_STEPS: usize = 2;
pub const MAX_STEPS: usize = 10;
pub const MAX_NAME_CHARS: usize = 200;
/// A step's own input, as JSON. Smaller than a task's (`MAX_INPUT_BYTES`) because the
/// step before adds its output (up to `MAX_OUTPUT_BYTES`) as `previousOutput`, and the
/// task item must still fit DynamoDB's 400 KB with the step's own output beside it.
pub const MAX_STEP_INPUT_BYTES: usize = 32 * 1024;

/// `POST /workflows`
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWorkflow {
    /// Not blank.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub name: String,
    /// Run in this order, each step's output given to the next as `previousOutput`.
    #[cfg_attr(feature = "openapi", schema(min_items = 2, max_items = 10))]
    pub steps: Vec<StepSpec>,
}

/// One step as the buyer writes it: what a task needs, the description at the top.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepSpec {
    pub task_type: Category,
    /// What this step does (not blank): its task's `input.description`.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 10_000, pattern = r"\S")
    )]
    pub description: String,
    /// Cents, held with the others when the workflow is created.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub max_budget: i64,
    /// Hire this agent directly for the step.
    #[serde(default)]
    pub agent_id: Option<AgentId>,
    /// The rest of the step's input (repo, code, files, its template's fields).
    #[serde(default)]
    pub input: Option<serde_json::Map<String, Value>>,
}

impl StepSpec {
    /// The task this step submits, or the field errors that stop it (named
    /// `steps[i].…`). `previousOutput` is the platform's to set.
    pub fn task(&self, index: usize) -> Result<SubmitTask, Vec<FieldError>> {
        let prefix = format!("steps[{index}]");
        let mut fields = self.input.clone().unwrap_or_default();
        if fields.contains_key("previousOutput") {
            return Err(vec![FieldError::new(
                format!("{prefix}.input.previousOutput"),
                "is set by the platform from the step before",
            )]);
        }
        if fields.contains_key("description") {
            return Err(vec![FieldError::new(
                format!("{prefix}.input.description"),
                "goes in the step's description",
            )]);
        }
        fields.insert(
            "description".into(),
            Value::String(self.description.clone()),
        );
        let input: TaskInput = serde_json::from_value(Value::Object(fields))
            .map_err(|err| vec![FieldError::new(format!("{prefix}.input"), err.to_string())])?;
        let task = SubmitTask {
            task_type: self.task_type,
            max_budget: self.max_budget,
            input,
            agent_id: self.agent_id,
            parent_task_id: None,
        };
        let mut errors = Vec::new();
        task.validate(&mut errors);
        let size = serde_json::to_vec(&task.input).map_or(usize::MAX, |b| b.len());
        if size > MAX_STEP_INPUT_BYTES {
            errors.push(FieldError::new(
                "input",
                format!("a workflow step's input must be at most {MAX_STEP_INPUT_BYTES} bytes"),
            ));
        }
        if errors.is_empty() {
            return Ok(task);
        }
        Err(errors
            .into_iter()
            .map(|mut e| {
                e.field = match e.field.strip_prefix("input.description") {
                    Some(rest) => format!("{prefix}.description{rest}"),
                    None => format!("{prefix}.{}", e.field),
                };
                e
            })
            .collect())
    }
}

impl CreateWorkflow {
    /// Every step's task, in order, or every field error of the request.
    pub fn tasks(&self) -> Result<Vec<SubmitTask>, Vec<FieldError>> {
        let mut errors = Vec::new();
        check_length(&mut errors, "name", self.name.trim(), 1, MAX_NAME_CHARS);
        if !(MIN_STEPS..=MAX_STEPS).contains(&self.steps.len()) {
            errors.push(FieldError::new(
                "steps",
                format!("must have {MIN_STEPS} to {MAX_STEPS} steps"),
            ));
        }
        let mut tasks = Vec::new();
        for (i, step) in self.steps.iter().enumerate().take(MAX_STEPS) {
            match step.task(i) {
                Ok(task) => tasks.push(task),
                Err(errs) => errors.extend(errs),
            }
        }
        if errors.is_empty() {
            Ok(tasks)
        } else {
            Err(errors)
        }
    }
}

impl Validate for CreateWorkflow {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Err(found) = self.tasks() {
            errors.extend(found);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkflowStatus {
    /// Steps are running or waiting.
    Active,
    /// Every step completed.
    Completed,
    /// A step failed (or was cancelled, or refunded before the next one started):
    /// the steps after it were cancelled and their holds released.
    Failed,
    /// The buyer cancelled: the waiting steps were cancelled and their holds released.
    Cancelled,
}

impl WorkflowStatus {
    pub const ALL: [WorkflowStatus; 4] = [
        WorkflowStatus::Active,
        WorkflowStatus::Completed,
        WorkflowStatus::Failed,
        WorkflowStatus::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Active => "active",
            WorkflowStatus::Completed => "completed",
            WorkflowStatus::Failed => "failed",
            WorkflowStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == s)
    }
}

impl std::fmt::Display for WorkflowStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step as stored on the workflow: which task runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStep {
    /// From 1.
    pub order: u8,
    pub task_id: TaskId,
    pub task_type: Category,
    pub description: String,
    pub max_budget: Cents,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

/// A workflow as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    pub id: WorkflowId,
    pub name: String,
    pub status: WorkflowStatus,
    /// Who pays: the owner, directly or through one of its agents.
    pub caller_owner_id: OwnerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_agent_id: Option<AgentId>,
    pub steps: Vec<WorkflowStep>,
    /// The sum of the steps' budgets, all held at creation.
    pub total_budget: Cents,
    /// The step (from 1) whose failure ended the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<u8>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// What the workflow engine does next, given the workflow and its steps' statuses (in
/// step order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing until a step moves.
    Wait,
    /// The step at this index may start: the one before it completed.
    Release(usize),
    /// Every step completed.
    Complete,
    /// The step at this index ended without an output to go on with: the workflow
    /// ends as `status` (`failed`, or `cancelled` when the step was cancelled).
    End { status: WorkflowStatus, step: usize },
    /// The workflow has ended: these waiting steps are cancelled, their holds voided.
    CancelWaiting(Vec<usize>),
}

pub fn next(status: WorkflowStatus, steps: &[TaskStatus]) -> Next {
    if status != WorkflowStatus::Active {
        let waiting: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == TaskStatus::Waiting)
            .map(|(i, _)| i)
            .collect();
        return if waiting.is_empty() {
            Next::Wait
        } else {
            Next::CancelWaiting(waiting)
        };
    }
    for (i, step) in steps.iter().enumerate() {
        let next_waits = steps.get(i + 1) == Some(&TaskStatus::Waiting);
        match step {
            TaskStatus::Completed => {}
            // A thumbs-down after the next step started changes nothing here (the
            // refund is money, not flow); before it, there is no output to go on with.
            TaskStatus::Refunded if !next_waits => {}
            TaskStatus::Refunded | TaskStatus::Failed => {
                return Next::End {
                    status: WorkflowStatus::Failed,
                    step: i,
                };
            }
            TaskStatus::Cancelled => {
                return Next::End {
                    status: WorkflowStatus::Cancelled,
                    step: i,
                };
            }
            TaskStatus::Waiting => {
                return match i.checked_sub(1).map(|p| steps[p]) {
                    Some(TaskStatus::Completed | TaskStatus::Refunded) => Next::Release(i),
                    // The first step never waits; a waiting step after one in flight
                    // waits on.
                    _ => Next::Wait,
                };
            }
            _ => return Next::Wait,
        }
    }
    Next::Complete
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use TaskStatus as S;

    fn create(value: Value) -> Result<Vec<SubmitTask>, Vec<String>> {
        let body: CreateWorkflow = serde_json::from_value(value).unwrap();
        body.tasks()
            .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
    }

    fn step(budget: i64) -> Value {
        json!({"taskType": "code_review", "description": "Review it", "maxBudget": budget})
    }

    #[test]
    fn steps_become_tasks_with_their_input() {
        let tasks = create(json!({"name": "audit", "steps": [
            step(500),
            {"taskType": "testing", "description": "Test it", "maxBudget": 700,
             "input": {"repo": "https://github.com/o/r"}},
        ]}))
        .unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[1].input.description, "Test it");
        assert_eq!(
            tasks[1].input.repo.as_deref(),
            Some("https://github.com/o/r")
        );
        assert_eq!(tasks[1].max_budget, 700);
    }

    #[test]
    fn two_to_ten_steps_each_named_by_its_index() {
        assert_eq!(
            create(json!({"name": "x", "steps": [step(500)]})).unwrap_err(),
            ["steps"]
        );
        let eleven: Vec<Value> = (0..11).map(|_| step(500)).collect();
        assert_eq!(
            create(json!({"name": "x", "steps": eleven})).unwrap_err(),
            ["steps"]
        );
        assert_eq!(
            create(json!({"name": " ", "steps": [
                step(0),
                {"taskType": "code_review", "description": "", "maxBudget": 5},
                {"taskType": "code_review", "description": "d", "maxBudget": 5,
                 "input": {"previousOutput": {}}},
            ]}))
            .unwrap_err(),
            [
                "name",
                "steps[0].maxBudget",
                "steps[1].description",
                "steps[2].input.previousOutput"
            ]
        );
    }

    #[test]
    fn the_engine_releases_each_step_after_the_one_before_completes() {
        use WorkflowStatus::Active;
        assert_eq!(next(Active, &[S::Submitted, S::Waiting]), Next::Wait);
        assert_eq!(next(Active, &[S::Executing, S::Waiting]), Next::Wait);
        assert_eq!(next(Active, &[S::Completed, S::Waiting]), Next::Release(1));
        assert_eq!(
            next(Active, &[S::Completed, S::Completed, S::Waiting]),
            Next::Release(2)
        );
        assert_eq!(next(Active, &[S::Completed, S::Routing]), Next::Wait);
        assert_eq!(next(Active, &[S::Completed, S::Completed]), Next::Complete);
        // Refunded after the next step started: the flow goes on.
        assert_eq!(next(Active, &[S::Refunded, S::Executing]), Next::Wait);
        assert_eq!(next(Active, &[S::Refunded, S::Completed]), Next::Complete);
    }

    #[test]
    fn a_step_that_ends_without_output_ends_the_workflow() {
        use WorkflowStatus::*;
        assert_eq!(
            next(Active, &[S::Completed, S::Failed, S::Waiting]),
            Next::End {
                status: Failed,
                step: 1
            }
        );
        assert_eq!(
            next(Active, &[S::Refunded, S::Waiting]),
            Next::End {
                status: Failed,
                step: 0
            }
        );
        assert_eq!(
            next(Active, &[S::Cancelled, S::Waiting]),
            Next::End {
                status: Cancelled,
                step: 0
            }
        );
        assert_eq!(
            next(Failed, &[S::Completed, S::Failed, S::Waiting, S::Waiting]),
            Next::CancelWaiting(vec![2, 3])
        );
        assert_eq!(next(Cancelled, &[S::Executing, S::Cancelled]), Next::Wait);
    }

    fn any_status() -> impl Strategy<Value = TaskStatus> {
        prop::sample::select(TaskStatus::ALL.to_vec())
    }

    proptest! {
        /// Whatever the steps' statuses: a step is released only when it waits and the
        /// one before it has an output; an ended workflow only ever cancels waiting
        /// steps; `Complete` only when no step waits or runs.
        #[test]
        fn the_engine_never_releases_out_of_order(
            active in any::<bool>(),
            steps in prop::collection::vec(any_status(), MIN_STEPS..=MAX_STEPS)
        ) {
            let status = if active { WorkflowStatus::Active } else { WorkflowStatus::Failed };
            match next(status, &steps) {
                Next::Release(i) => {
                    prop_assert!(active);
                    prop_assert_eq!(steps[i], S::Waiting);
                    prop_assert!(i > 0);
                    prop_assert!(matches!(steps[i - 1], S::Completed | S::Refunded));
                    prop_assert!(steps[..i].iter().all(|s| matches!(s, S::Completed | S::Refunded)));
                }
                Next::CancelWaiting(list) => {
                    prop_assert!(!active);
                    prop_assert!(!list.is_empty());
                    prop_assert!(list.iter().all(|i| steps[*i] == S::Waiting));
                }
                Next::Complete => {
                    prop_assert!(active);
                    prop_assert!(steps.iter().all(|s| matches!(s, S::Completed | S::Refunded)));
                }
                Next::End { step, .. } => {
                    prop_assert!(active);
                    prop_assert!(matches!(steps[step], S::Failed | S::Cancelled | S::Refunded));
                }
                Next::Wait => {
                    if !active {
                        prop_assert!(!steps.contains(&S::Waiting));
                    }
                }
            }
        }
    }
}
