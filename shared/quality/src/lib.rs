//! The quality gate behind one trait, selected by `QUALITY_GATE`:
//!
//! - `rules` (default): `aicity_domain::task::quality::rule_based`, no network.
//! - `llm`: an LLM judge over any OpenAI-compatible chat completions endpoint.

mod llm;

use std::future::Future;
use std::pin::Pin;

use aicity_domain::task::model::Task;
use aicity_domain::task::quality::{
    self, DEFAULT_PASS_MARK, MAX_PASS_MARK, MIN_PASS_MARK, Verdict,
};
use serde_json::Value;

pub use llm::LlmJudge;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The judge could not be reached or answered nonsense: try again later.
    #[error("quality gate unavailable: {0}")]
    Unavailable(String),
    #[error("quality gate not configured: {0}")]
    NotConfigured(String),
}

pub type GateFuture<'a> = Pin<Box<dyn Future<Output = Result<Verdict, GateError>> + Send + 'a>>;

pub trait QualityGate: Send + Sync {
    fn name(&self) -> &'static str;
    /// Scores the task's delivered output (0–100) with reasons.
    fn assess<'a>(&'a self, task: &'a Task, output: &'a Value) -> GateFuture<'a>;
}

/// A shared gate is a gate (tests and callers that keep a handle on theirs).
impl<G: QualityGate + ?Sized> QualityGate for std::sync::Arc<G> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn assess<'a>(&'a self, task: &'a Task, output: &'a Value) -> GateFuture<'a> {
        (**self).assess(task, output)
    }
}

/// The rule-based gate.
pub struct RuleBasedGate;

impl QualityGate for RuleBasedGate {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn assess<'a>(&'a self, task: &'a Task, output: &'a Value) -> GateFuture<'a> {
        let verdict = quality::rule_based(
            task.task_type,
            &task.input,
            output,
            task.self_reported_score,
        );
        Box::pin(async move { Ok(verdict) })
    }
}

/// `QUALITY_PASS_MARK`, 30–100, default 70.
pub fn pass_mark_from_env() -> Result<u8, GateError> {
    match std::env::var("QUALITY_PASS_MARK") {
        Err(_) => Ok(DEFAULT_PASS_MARK),
        Ok(raw) if raw.trim().is_empty() => Ok(DEFAULT_PASS_MARK),
        Ok(raw) => raw
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|m| (MIN_PASS_MARK..=MAX_PASS_MARK).contains(m))
            .ok_or_else(|| {
                GateError::NotConfigured(format!(
                    "QUALITY_PASS_MARK must be {MIN_PASS_MARK}..={MAX_PASS_MARK}, got {raw}"
                ))
            }),
    }
}

/// The gate `QUALITY_GATE` selects, with the judge's key from `LLM_JUDGE_API_KEY`.
pub fn from_env() -> Result<Box<dyn QualityGate>, GateError> {
    from_env_with_key(std::env::var("LLM_JUDGE_API_KEY").ok())
}

/// [`from_env`] with the judge's key given (the quality function resolves it at start,
/// from `LLM_JUDGE_API_KEY` or the SSM parameter `LLM_JUDGE_API_KEY_PARAM` names).
pub fn from_env_with_key(
    llm_judge_api_key: Option<String>,
) -> Result<Box<dyn QualityGate>, GateError> {
    match std::env::var("QUALITY_GATE").as_deref() {
        Ok("llm") => {
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let base = var("LLM_JUDGE_BASE_URL")
                .ok_or_else(|| GateError::NotConfigured("LLM_JUDGE_BASE_URL is not set".into()))?;
            let model = var("LLM_JUDGE_MODEL").unwrap_or_else(|| "gpt-4o-mini".into());
            Ok(Box::new(LlmJudge::new(
                base,
                llm_judge_api_key.filter(|k| !k.is_empty()),
                model,
            )))
        }
        Ok("rules") | Err(_) => Ok(Box::new(RuleBasedGate)),
        Ok(other) => Err(GateError::NotConfigured(format!(
            "unknown QUALITY_GATE {other}"
        ))),
    }
}
