//! `aicity workflows`: what the commands parse and print (the pure parts).

use std::path::Path;

use aicity_sdk::workflows::{
    CreateWorkflow, MAX_STEPS, StepSpec, Workflow, WorkflowStatus, WorkflowStep,
};

use crate::embassy::dollars;

/// `--step <taskType>:<maxBudget>:<description>`: one step, its budget in cents (the
/// description may hold colons).
pub fn parse_step(text: &str) -> Result<StepSpec, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(task_type), Some(budget), Some(description)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "expected <taskType>:<maxBudget in cents>:<description>, got {text:?}"
        ));
    };
    let task_type = task_type.trim();
    if task_type.is_empty() {
        return Err(format!("the step has no task type: {text:?}"));
    }
    let max_budget = match budget.trim().parse::<i64>() {
        Ok(cents) if cents > 0 => cents,
        _ => {
            return Err(format!(
                "the budget must be whole cents above 0 (e.g. 2500), got {budget:?}"
            ));
        }
    };
    let description = description.trim();
    if description.is_empty() {
        return Err(format!("the step has no description: {text:?}"));
    }
    Ok(StepSpec::new(task_type, max_budget, description))
}

/// `--agent-for <step>=<agentId>`: hire this agent directly for that step (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentFor {
    /// From 1, as the steps are numbered.
    pub step: usize,
    pub agent_id: String,
}

pub fn parse_agent_for(text: &str) -> Result<AgentFor, String> {
    let (step, agent) = text
        .split_once('=')
        .ok_or_else(|| format!("expected <step>=<agentId> (e.g. 2=ag_…), got {text:?}"))?;
    let step = match step.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_STEPS).contains(&n) => n,
        _ => {
            return Err(format!(
                "the step is numbered from 1 to {MAX_STEPS}, got {step:?}"
            ));
        }
    };
    let agent_id = agent.trim();
    if agent_id.is_empty() {
        return Err(format!("no agent id for step {step}"));
    }
    Ok(AgentFor {
        step,
        agent_id: agent_id.to_owned(),
    })
}

/// `--status active|completed|failed|cancelled`.
pub fn parse_status(text: &str) -> Result<WorkflowStatus, String> {
    WorkflowStatus::parse(text.trim()).ok_or_else(|| {
        format!("expected one of active, completed, failed, cancelled, got {text:?}")
    })
}

/// The body of `workflows create` from `--name`, the `--step`s in order and the
/// `--agent-for`s.
pub fn request(
    name: &str,
    steps: Vec<StepSpec>,
    agents: &[AgentFor],
) -> Result<CreateWorkflow, String> {
    let mut steps = steps;
    for hire in agents {
        let count = steps.len();
        let step = steps
            .get_mut(hire.step - 1)
            .ok_or_else(|| format!("--agent-for {}=…: there are only {count} steps", hire.step))?;
        if step.agent_id.is_some() {
            return Err(format!("--agent-for names step {} twice", hire.step));
        }
        step.agent_id = Some(hire.agent_id.clone());
    }
    Ok(CreateWorkflow {
        name: name.to_owned(),
        steps,
    })
}

/// The body of `workflows create --file`: the whole request as JSON.
pub fn read_request(path: &Path) -> Result<CreateWorkflow, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a workflow ({{\"name\": …, \"steps\": [{{\"taskType\", \"description\", \
             \"maxBudget\", \"agentId\"?, \"input\"?}}]}}): {e}",
            path.display()
        )
    })
}

fn step_line(step: &WorkflowStep) -> String {
    let status = step.status.map(|s| s.as_str()).unwrap_or("-");
    let mut line = format!(
        "  {:>2}. {:<16} {:>10}  {:<13} {}",
        step.order,
        step.task_type,
        dollars(step.max_budget),
        status,
        step.task_id
    );
    if let Some(agent) = step.assigned_agent_id.as_ref().or(step.agent_id.as_ref()) {
        line.push_str(&format!("  agent {agent}"));
    }
    if let Some(score) = step.quality_score {
        line.push_str(&format!("  quality {score}"));
    }
    if let Some(charged) = step.credits_charged {
        line.push_str(&format!("  charged {}", dollars(charged)));
    }
    line.push_str(&format!("\n      {}", step.description));
    line
}

/// A workflow and its steps, for people.
pub fn workflow_text(workflow: &Workflow) -> String {
    let mut head = format!(
        "{}  {}  {}  budget {}",
        workflow.id,
        workflow.status,
        workflow.name,
        dollars(workflow.total_budget)
    );
    if let Some(charged) = workflow.credits_charged {
        head.push_str(&format!("  charged {}", dollars(charged)));
    }
    if let Some(step) = workflow.failed_step {
        head.push_str(&format!("  (step {step} failed)"));
    }
    let mut lines = vec![head];
    lines.extend(workflow.steps.iter().map(step_line));
    lines.join("\n")
}

/// One workflow of a list on one line.
pub fn workflow_line(workflow: &Workflow) -> String {
    format!(
        "{}  {:<9} {:>2} steps {:>10}  {}  {}",
        workflow.id,
        workflow.status.as_str(),
        workflow.steps.len(),
        dollars(workflow.total_budget),
        workflow.created_at,
        workflow.name
    )
}

/// What `workflows watch` prints when the workflow is read again: a line per step whose
/// status moved, and one when the workflow's own status did (everything the first time).
pub fn changes(before: Option<&Workflow>, now: &Workflow) -> Vec<String> {
    let mut lines = Vec::new();
    for step in &now.steps {
        let was = before
            .and_then(|b| b.steps.iter().find(|s| s.order == step.order))
            .and_then(|s| s.status);
        if before.is_some() && was == step.status {
            continue;
        }
        let status = step.status.map(|s| s.as_str()).unwrap_or("?");
        let mut line = match was {
            Some(was) => format!("step {} {}: {was} → {status}", step.order, step.task_type),
            None => format!("step {} {}: {status}", step.order, step.task_type),
        };
        if let Some(score) = step.quality_score.filter(|_| status == "completed") {
            line.push_str(&format!(" (quality {score})"));
        }
        lines.push(line);
    }
    if before.map(|b| b.status) != Some(now.status) {
        let mut line = format!("workflow {}", now.status);
        if now.is_finished() {
            if let Some(charged) = now.credits_charged {
                line.push_str(&format!(
                    ": charged {} of {}",
                    dollars(charged),
                    dollars(now.total_budget)
                ));
            }
            if let Some(step) = now.failed_step {
                line.push_str(&format!(" (step {step} failed)"));
            }
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use aicity_sdk::workflows::TaskStatus;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_step_is_type_budget_and_description_which_may_hold_colons() {
        assert_eq!(
            parse_step("code_review:2500:Review src/auth: the login path").unwrap(),
            StepSpec::new("code_review", 2500, "Review src/auth: the login path")
        );
        assert_eq!(
            parse_step(" testing : 700 : Test it ").unwrap(),
            StepSpec::new("testing", 700, "Test it")
        );
        for bad in [
            "code_review:2500",
            "code_review",
            ":2500:d",
            "code_review:25.00:d",
            "code_review:0:d",
            "code_review:-5:d",
            "code_review:2500: ",
        ] {
            assert!(parse_step(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn agents_are_hired_for_steps_numbered_from_one() {
        assert_eq!(
            parse_agent_for("2=ag_1").unwrap(),
            AgentFor {
                step: 2,
                agent_id: "ag_1".into()
            }
        );
        for bad in ["ag_1", "0=ag_1", "11=ag_1", "x=ag_1", "2="] {
            assert!(parse_agent_for(bad).is_err(), "{bad}");
        }
        let steps = vec![
            StepSpec::new("code_review", 500, "Review"),
            StepSpec::new("testing", 700, "Test"),
        ];
        let body = request(
            "audit",
            steps.clone(),
            &[parse_agent_for("2=ag_t").unwrap()],
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"name": "audit", "steps": [
                {"taskType": "code_review", "description": "Review", "maxBudget": 500},
                {"taskType": "testing", "description": "Test", "maxBudget": 700, "agentId": "ag_t"},
            ]})
        );
        let err = request(
            "audit",
            steps.clone(),
            &[parse_agent_for("3=ag_t").unwrap()],
        )
        .unwrap_err();
        assert!(err.contains("only 2 steps"), "{err}");
        let twice = [
            parse_agent_for("1=a").unwrap(),
            parse_agent_for("1=b").unwrap(),
        ];
        assert!(request("audit", steps, &twice).is_err());
    }

    #[test]
    fn a_status_filter_is_one_of_the_four() {
        assert_eq!(parse_status("failed").unwrap(), WorkflowStatus::Failed);
        assert!(parse_status("done").is_err());
    }

    fn shown(status: &str, first: &str, second: &str) -> Workflow {
        serde_json::from_value(json!({
            "id": "wf_1", "name": "Full code audit", "status": status, "callerOwnerId": "usr_1",
            "totalBudget": 1200, "createdAt": "2026-03-01T10:00:00Z",
            "updatedAt": "2026-03-01T10:00:00Z", "creditsCharged": 425,
            "steps": [
                {"order": 1, "taskId": "task_1", "taskType": "code_review", "description": "Review",
                 "maxBudget": 500, "status": first, "assignedAgentId": "ag_r",
                 "creditsCharged": 425, "qualityScore": 88},
                {"order": 2, "taskId": "task_2", "taskType": "testing", "description": "Test",
                 "maxBudget": 700, "agentId": "ag_t", "status": second},
            ]
        }))
        .unwrap()
    }

    #[test]
    fn a_workflow_prints_its_steps_and_a_list_a_line_each() {
        let workflow = shown("active", "completed", "routing");
        let text = workflow_text(&workflow);
        assert!(
            text.starts_with("wf_1  active  Full code audit  budget $12.00  charged $4.25"),
            "{text}"
        );
        assert!(text.contains("1. code_review"), "{text}");
        assert!(text.contains("completed"), "{text}");
        assert!(
            text.contains("agent ag_r  quality 88  charged $4.25"),
            "{text}"
        );
        assert!(text.contains("2. testing"), "{text}");
        assert!(text.contains("task_2  agent ag_t"), "{text}");
        let line = workflow_line(&workflow);
        assert!(line.starts_with("wf_1  active"), "{line}");
        assert!(line.contains(" 2 steps"), "{line}");
        assert!(line.ends_with("Full code audit"), "{line}");
    }

    #[test]
    fn a_watch_prints_what_moved() {
        let first = shown("active", "executing", "waiting");
        assert_eq!(
            changes(None, &first),
            [
                "step 1 code_review: executing",
                "step 2 testing: waiting",
                "workflow active"
            ]
        );
        assert!(changes(Some(&first), &first).is_empty());
        let mut later = shown("failed", "completed", "failed");
        later.failed_step = Some(2);
        assert_eq!(later.steps[1].status, Some(TaskStatus::Failed));
        assert_eq!(
            changes(Some(&first), &later),
            [
                "step 1 code_review: executing → completed (quality 88)",
                "step 2 testing: waiting → failed",
                "workflow failed: charged $4.25 of $12.00 (step 2 failed)"
            ]
        );
    }
}
