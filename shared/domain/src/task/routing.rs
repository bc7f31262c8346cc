//! Smart routing: which agents may take a task, and which is best.

use crate::identity::{Agent, AgentStatus, Availability, Category, TrustTier};
use crate::ids::OwnerId;
use crate::money::Cents;

/// The largest budget an agent of each tier may be trusted with, in cents. A new,
/// unverified agent can take up to $100 tasks; an elite one anything.
pub fn tier_limit(tier: TrustTier) -> Cents {
    Cents(match tier {
        TrustTier::Unverified => 10_000,
        TrustTier::Provisional => 50_000,
        TrustTier::Established => 250_000,
        TrustTier::Trusted => 1_000_000,
        TrustTier::Elite => i64::MAX,
    })
}

/// Why an agent cannot take a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    NotActive,
    NotAvailable,
    NoCapability,
    NotPriced,
    OverBudget {
        price: Cents,
    },
    AtCapacity,
    /// Anti-sybil: an owner's tasks never go to its own agents.
    SameOwner,
    TierTooLow {
        limit: Cents,
    },
}

/// The agent's price for the task if it may take it.
pub fn eligibility(
    agent: &Agent,
    task_type: Category,
    max_budget: Cents,
    buyer: OwnerId,
) -> Result<Cents, Ineligible> {
    if agent.owner_id == buyer {
        return Err(Ineligible::SameOwner);
    }
    if agent.status != AgentStatus::Active {
        return Err(Ineligible::NotActive);
    }
    if agent.availability != Availability::Available {
        return Err(Ineligible::NotAvailable);
    }
    if !agent.categories().any(|c| c == task_type) {
        return Err(Ineligible::NoCapability);
    }
    let price = *agent.pricing.get(&task_type).ok_or(Ineligible::NotPriced)?;
    if price > max_budget {
        return Err(Ineligible::OverBudget { price });
    }
    if agent.stats.active_tasks >= agent.concurrency_limit() {
        return Err(Ineligible::AtCapacity);
    }
    let limit = tier_limit(agent.trust_tier);
    if max_budget > limit {
        return Err(Ineligible::TierTooLow { limit });
    }
    Ok(price)
}

/// [`eligibility`] ignoring what changes from minute to minute (availability and
/// load): whether the agent could take the task at all. Submission checks this, so a
/// task is refused up front only when no agent could ever take it.
pub fn could_take(
    agent: &Agent,
    task_type: Category,
    max_budget: Cents,
    buyer: OwnerId,
) -> Result<Cents, Ineligible> {
    let mut idle = agent.clone();
    idle.availability = Availability::Available;
    idle.stats.active_tasks = 0;
    idle.max_concurrent_tasks = idle.max_concurrent_tasks.max(1);
    eligibility(&idle, task_type, max_budget, buyer)
}

impl std::fmt::Display for Ineligible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ineligible::NotActive => write!(f, "the agent is not active"),
            Ineligible::NotAvailable => write!(f, "the agent is not available"),
            Ineligible::NoCapability => write!(f, "the agent does not offer this task type"),
            Ineligible::NotPriced => write!(f, "the agent has no price for this task type"),
            Ineligible::OverBudget { price } => {
                write!(f, "the agent's price {} is above the budget", price.get())
            }
            Ineligible::AtCapacity => write!(f, "the agent is at its concurrent task limit"),
            Ineligible::SameOwner => write!(f, "the agent belongs to the same owner"),
            Ineligible::TierTooLow { limit } => {
                write!(
                    f,
                    "the agent's trust tier allows budgets up to {}",
                    limit.get()
                )
            }
        }
    }
}

/// Words of a description, lowercased, for matching capability tags.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A routing score in points (higher is better): reputation 0–600, capability match
/// 0–200 (share of the agent's tags for this category found in the description), and
/// free capacity 0–200.
pub fn score(agent: &Agent, task_type: Category, description: &str) -> u32 {
    let reputation = agent.overall_score.min(1000) * 6 / 10;
    let tags: Vec<String> = agent
        .capabilities
        .iter()
        .filter(|c| c.category == task_type)
        .flat_map(|c| c.tags.iter().map(|t| t.to_lowercase()))
        .collect();
    let described = words(description);
    let matched = tags.iter().filter(|t| described.contains(t)).count() as u32;
    let capability = if tags.is_empty() {
        100
    } else {
        200 * matched / tags.len() as u32
    };
    let max = agent.concurrency_limit().max(1);
    let free = max.saturating_sub(agent.stats.active_tasks);
    let capacity = 200 * free / max;
    reputation + capability + capacity
}

/// Eligible agents, best first: by score, then lower price, then id (stable).
pub fn rank<'a>(
    agents: &'a [Agent],
    task_type: Category,
    max_budget: Cents,
    buyer: OwnerId,
    description: &str,
) -> Vec<(&'a Agent, Cents)> {
    let mut eligible: Vec<(&Agent, Cents, u32)> = agents
        .iter()
        .filter_map(|agent| {
            let price = eligibility(agent, task_type, max_budget, buyer).ok()?;
            Some((agent, price, score(agent, task_type, description)))
        })
        .collect();
    eligible.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)).then(a.0.id.cmp(&b.0.id)));
    eligible
        .into_iter()
        .map(|(agent, price, _)| (agent, price))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::identity::{Capability, Framework, RegisterAgent};

    fn agent(owner: OwnerId, score: u32, price: i64, tags: &[&str]) -> Agent {
        let mut agent = Agent::register(
            owner,
            RegisterAgent {
                display_name: "a".into(),
                framework: Framework::Custom,
                description: "d".into(),
                model: None,
                capabilities: vec![Capability {
                    category: Category::CodeReview,
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                }],
                pricing: BTreeMap::from([(Category::CodeReview, price)]),
                max_concurrent_tasks: Some(2),
            },
            "t",
        );
        agent.overall_score = score;
        agent
    }

    #[test]
    fn every_rule_of_eligibility() {
        let (buyer, seller) = (OwnerId::new(), OwnerId::new());
        let ok = agent(seller, 500, 1_000, &[]);
        assert_eq!(
            eligibility(&ok, Category::CodeReview, Cents(1_000), buyer),
            Ok(Cents(1_000))
        );
        assert_eq!(
            eligibility(&ok, Category::CodeReview, Cents(1_000), seller),
            Err(Ineligible::SameOwner)
        );
        assert_eq!(
            eligibility(&ok, Category::Testing, Cents(1_000), buyer),
            Err(Ineligible::NoCapability)
        );
        assert_eq!(
            eligibility(&ok, Category::CodeReview, Cents(999), buyer),
            Err(Ineligible::OverBudget {
                price: Cents(1_000)
            })
        );
        assert_eq!(
            eligibility(&ok, Category::CodeReview, Cents(20_000), buyer),
            Err(Ineligible::TierTooLow {
                limit: Cents(10_000)
            })
        );
        let mut busy = ok.clone();
        busy.availability = Availability::Busy;
        assert_eq!(
            eligibility(&busy, Category::CodeReview, Cents(1_000), buyer),
            Err(Ineligible::NotAvailable)
        );
        let mut full = ok.clone();
        full.stats.active_tasks = 2;
        assert_eq!(
            eligibility(&full, Category::CodeReview, Cents(1_000), buyer),
            Err(Ineligible::AtCapacity)
        );
        let mut suspended = ok.clone();
        suspended.status = AgentStatus::Suspended;
        assert_eq!(
            eligibility(&suspended, Category::CodeReview, Cents(1_000), buyer),
            Err(Ineligible::NotActive)
        );
        let mut unpriced = ok;
        unpriced.pricing.clear();
        assert_eq!(
            eligibility(&unpriced, Category::CodeReview, Cents(1_000), buyer),
            Err(Ineligible::NotPriced)
        );
    }

    #[test]
    fn reputation_capability_and_load_order_the_candidates() {
        let buyer = OwnerId::new();
        let strong = agent(OwnerId::new(), 900, 1_000, &[]);
        let weak = agent(OwnerId::new(), 100, 500, &[]);
        let matching = agent(OwnerId::new(), 600, 1_000, &["rust", "security"]);
        let mut loaded = agent(OwnerId::new(), 900, 1_000, &[]);
        loaded.stats.active_tasks = 1;
        let agents = [
            weak.clone(),
            strong.clone(),
            matching.clone(),
            loaded.clone(),
        ];
        let order: Vec<_> = rank(
            &agents,
            Category::CodeReview,
            Cents(5_000),
            buyer,
            "Review this Rust code for security",
        )
        .into_iter()
        .map(|(a, _)| a.id)
        .collect();
        // strong: 540+100+200=840; matching: 360+200+200=760; loaded: 540+100+100=740; weak: 60+100+200=360
        assert_eq!(order, [strong.id, matching.id, loaded.id, weak.id]);
    }
}
