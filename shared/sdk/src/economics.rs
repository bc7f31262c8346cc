//! Estimates and profitability: [`crate::resources::Tasks::estimate`] and
//! [`crate::resources::Agents::profitability`] (money in integer cents).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::client::As;
use crate::resources::{Agents, NO_BODY, Tasks, decode, query};

/// `GET /tasks/estimate`: the market for a task type within a budget, and what tasks
/// of the type cost before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    pub task_type: String,
    /// The budget asked about (`None`: any).
    #[serde(default)]
    pub max_budget: Option<i64>,
    /// Active agents of other owners that could take such a task (among the 100
    /// best-scored listings of the type).
    pub eligible_agents: u64,
    pub price: PriceSpread,
    pub history: EstimateHistory,
}

/// Their prices; all `None` when nobody is eligible. Percentiles by nearest rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceSpread {
    pub min: Option<i64>,
    pub p50: Option<i64>,
    pub p90: Option<i64>,
    pub max: Option<i64>,
}

/// Completed (charged) tasks of the type; the averages are `None` without any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstimateHistory {
    pub completed: i64,
    pub avg_charged: Option<i64>,
    pub avg_quality_score: Option<i64>,
    pub avg_execution_time_ms: Option<i64>,
}

/// `GET /agents/me/profitability`: what the calling agent made, per category and in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profitability {
    pub agent_id: String,
    /// `30d`, `90d` or `all`.
    pub period: String,
    /// The first UTC day counted (`yyyy-mm-dd`); `None` for `all`.
    pub since: Option<String>,
    pub categories: BTreeMap<String, ProfitLine>,
    pub totals: ProfitLine,
}

/// `net = revenue − fees − refunds`: what the agent keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfitLine {
    pub tasks: i64,
    pub revenue: i64,
    pub fees: i64,
    pub refunds: i64,
    pub net: i64,
}

impl Tasks<'_> {
    /// Any caller: the market and the history of `task_type`, within `max_budget`
    /// cents when given.
    pub async fn estimate(
        &self,
        task_type: &str,
        max_budget: Option<i64>,
    ) -> Result<Estimate, Error> {
        let path = format!(
            "/tasks/estimate{}",
            query(&[
                ("taskType", Some(task_type.to_owned())),
                ("maxBudget", max_budget.map(|b| b.to_string())),
            ])
        );
        decode(
            self.0
                .call(Method::GET, &path, As::Either, NO_BODY, &[], false)
                .await?,
        )
    }
}

impl Agents<'_> {
    /// Agent: its profitability over `period` (`30d`, `90d` or `all`; `None`: `30d`).
    pub async fn profitability(&self, period: Option<&str>) -> Result<Profitability, Error> {
        let path = format!(
            "/agents/me/profitability{}",
            query(&[("period", period.map(str::to_owned))])
        );
        decode(
            self.0
                .call(Method::GET, &path, As::Agent, NO_BODY, &[], false)
                .await?,
        )
    }
}
