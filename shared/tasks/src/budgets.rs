//! The Embassy's gate on an agent's submits: its owner's policy, judged against what
//! its submits already committed, and the counter writes that make the verdict hold
//! under racing submits (see `aicity_store::embassy`).

use aicity_domain::ApiError;
use aicity_domain::embassy::{
    NOTIFICATION_PREFIX, Notification, NotificationType, Policy, Verdict, Window, budget_day,
    past_six_days,
};
use aicity_domain::identity::Category;
use aicity_domain::ids::{AgentId, OwnerId};
use aicity_domain::money::Cents;
use aicity_http::Context;
use aicity_store::embassy::{self as store, Counters};
use aicity_store::vault::Labeled;
use time::OffsetDateTime;

/// An agent's policy and what its submits committed this week, as read.
#[derive(Debug, Clone)]
pub struct Gate {
    pub agent: AgentId,
    pub policy: Policy,
    pub counters: Counters,
    pub today: String,
}

impl Gate {
    pub async fn load(
        ctx: &Context,
        agent: &AgentId,
        now: OffsetDateTime,
    ) -> Result<Self, ApiError> {
        let policy = store::policy(ctx.db(), &ctx.table, agent).await?;
        let today = budget_day(now);
        let counters =
            store::counters(ctx.db(), &ctx.table, agent, &today, &past_six_days(now)).await?;
        Ok(Self {
            agent: *agent,
            policy,
            counters,
            today,
        })
    }

    pub fn verdict(&self, task_type: Category, amount: Cents) -> Verdict {
        self.policy
            .judge(task_type, amount, self.counters.committed())
    }

    /// The counter writes of a submit of `amount` the verdict allowed: they fail (label
    /// `"budget"`) if racing submits committed enough meanwhile to pass a budget.
    pub fn items(
        &self,
        table: &str,
        amount: Cents,
        now: OffsetDateTime,
    ) -> Result<Vec<Labeled>, ApiError> {
        let ceiling = self
            .policy
            .today_ceiling(amount, self.counters.past_total());
        let week = self.policy.weekly_budget.map(|_| &self.counters);
        store::commit_items(table, &self.agent, &self.today, amount, ceiling, week, now)
            .map_err(ApiError::from)
    }
}

/// Tells the owner once per agent, window and day that a budget stopped a submit
/// (best effort: the refusal stands whether or not the notice is written).
pub async fn notify_reached(ctx: &Context, owner: &OwnerId, gate: &Gate, verdict: Verdict) {
    let Verdict::OverLimit {
        limit,
        committed,
        window,
    } = verdict
    else {
        return;
    };
    if window == Window::Task {
        return;
    }
    let notification = Notification {
        id: store::new_id(NOTIFICATION_PREFIX),
        kind: NotificationType::BudgetReached,
        title: format!(
            "Agent {} reached its {} budget",
            gate.agent,
            window.as_str()
        ),
        body: format!(
            "A submit was refused: {} of {} cents committed.",
            committed.0, limit.0
        ),
        created_at: aicity_domain::timestamps::now(),
        data: serde_json::json!({
            "agentId": gate.agent, "window": window, "limit": limit, "committed": committed,
        }),
    };
    let marker = format!("budget#{}#{}#{}", gate.agent, window.as_str(), gate.today);
    if let Err(err) = store::notify_once(ctx.db(), &ctx.table, owner, &marker, &notification).await
    {
        tracing::warn!(agent_id = %gate.agent, error = %err, "budget notice not written");
    }
}

/// How long an approval waits for its owner: `APPROVAL_TTL_HOURS` (default 24).
pub fn approval_ttl_from_env() -> Result<std::time::Duration, aicity_store::config::MissingEnv> {
    const NAME: &str = "APPROVAL_TTL_HOURS";
    let hours = match std::env::var(NAME) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|h| (1..=24 * 30).contains(h))
            .ok_or(aicity_store::config::MissingEnv(NAME))?,
        _ => DEFAULT_APPROVAL_TTL_HOURS,
    };
    Ok(std::time::Duration::from_secs(hours * 3600))
}

pub const DEFAULT_APPROVAL_TTL_HOURS: u64 = 24;
