//! Estimates and profitability: what a task type costs on the market, what tasks of it
//! cost before, and what an agent made.
//!
//! Pure on purpose: the meaning of every figure (which agents count as the market, how
//! a percentile is taken, what "fees" and "refunds" are from an agent's side of the
//! ledger) is decided here, once, next to the ledger rules it must agree with
//! (`Cents::split_charge`, `Cents::split_refund`), and property-tested against the
//! ledger itself. The store only adds counters up (`aicity_store::stats`) and the
//! handlers only parse and serialise.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::identity::Category;
use crate::identity::agent::PublicProfile;
use crate::ids::{OwnerId, TaskId};
use crate::money::Cents;
use crate::task::routing::{Ineligible, tier_limit};

/// Per-category completion statistics are spread over this many items, so the
/// charges of one busy task type do not all contend on one item; read, they are summed.
pub const STATS_SHARDS: u8 = 4;

/// The estimate reads at most this many of the category's listings (best score
/// first): a bounded read, whatever the size of the market.
pub const MARKET_SAMPLE: usize = 100;

/// The stats shard a task's completion is counted in. From the task id alone, so a
/// replayed step would hit the same item (it never commits twice anyway: the counters
/// are in the transaction whose task transition is conditional).
pub fn stats_shard(task: &TaskId) -> u8 {
    // The ULID's random tail; the revenue shard uses the last byte, this one the one
    // before it, so the two spreads are independent.
    task.ulid().to_bytes()[14] % STATS_SHARDS
}

// ------------------------------------------------------------------------ the market

/// The price `listing` (an active agent's search row: its public profile and owner)
/// would charge a buyer of `buyer` for `task_type` within `max_budget`, by the rule
/// routing uses to refuse a task up front ([`crate::task::routing::could_take`]):
/// never the buyer's own agents, a price for the type at most the budget, and a trust
/// tier allowed that budget. Availability and load change from minute to minute and
/// are left out, as there. Without a budget, every price counts and the tier is not
/// asked about.
pub fn listed_price(
    listing: &PublicProfile,
    owner: OwnerId,
    task_type: Category,
    max_budget: Option<Cents>,
    buyer: OwnerId,
) -> Result<Cents, Ineligible> {
    if owner == buyer {
        return Err(Ineligible::SameOwner);
    }
    if !listing.capabilities.iter().any(|c| c.category == task_type) {
        return Err(Ineligible::NoCapability);
    }
    let price = *listing
        .pricing
        .get(&task_type)
        .ok_or(Ineligible::NotPriced)?;
    let Some(budget) = max_budget else {
        return Ok(price);
    };
    if price > budget {
        return Err(Ineligible::OverBudget { price });
    }
    let limit = tier_limit(listing.trust_tier);
    if budget > limit {
        return Err(Ineligible::TierTooLow { limit });
    }
    Ok(price)
}

/// The spread of the eligible agents' prices, in cents; all `None` without any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceSpread {
    pub min: Option<Cents>,
    pub p50: Option<Cents>,
    pub p90: Option<Cents>,
    pub max: Option<Cents>,
}

/// The `p`-th percentile (0 < p ≤ 100) of `sorted` by the nearest-rank method: the
/// smallest price at least `p` % of the prices are at or below (rank ⌈p·n/100⌉). So it
/// is always a price somebody asks, never an interpolation.
fn nearest_rank(sorted: &[Cents], p: usize) -> Option<Cents> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

impl PriceSpread {
    pub fn of(prices: &[Cents]) -> Self {
        let mut sorted = prices.to_vec();
        sorted.sort_unstable();
        Self {
            min: sorted.first().copied(),
            p50: nearest_rank(&sorted, 50),
            p90: nearest_rank(&sorted, 90),
            max: sorted.last().copied(),
        }
    }
}

// ----------------------------------------------------------------------- the history

/// Counters of completed (charged) tasks of one type, as stored in each shard and
/// summed on read. A completion adds one of each; the quality score and the execution
/// time are counted only when the task has them, each with its own denominator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompletionCounters {
    pub completed: i64,
    pub charged: i64,
    pub scored: i64,
    pub quality_sum: i64,
    pub timed: i64,
    pub execution_ms_sum: i64,
}

impl CompletionCounters {
    /// What one completion adds.
    pub fn completion(charge: Cents, quality_score: Option<u8>, execution_ms: Option<u64>) -> Self {
        Self {
            completed: 1,
            charged: charge.get(),
            scored: i64::from(quality_score.is_some()),
            quality_sum: quality_score.map_or(0, i64::from),
            timed: i64::from(execution_ms.is_some()),
            execution_ms_sum: execution_ms.map_or(0, |ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        }
    }

    pub fn plus(self, other: Self) -> Self {
        Self {
            completed: self.completed.saturating_add(other.completed),
            charged: self.charged.saturating_add(other.charged),
            scored: self.scored.saturating_add(other.scored),
            quality_sum: self.quality_sum.saturating_add(other.quality_sum),
            timed: self.timed.saturating_add(other.timed),
            execution_ms_sum: self.execution_ms_sum.saturating_add(other.execution_ms_sum),
        }
    }
}

/// The mean of `sum` over `n`, rounded to the nearest integer (halves up); `None`
/// without anything counted.
pub fn rounded_mean(sum: i64, n: i64) -> Option<i64> {
    if n <= 0 {
        return None;
    }
    let (sum, n) = (i128::from(sum), i128::from(n));
    let mean = (2 * sum + n).div_euclid(2 * n);
    i64::try_from(mean).ok()
}

/// `history` of an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = EstimateHistory))]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub completed: i64,
    pub avg_charged: Option<i64>,
    pub avg_quality_score: Option<i64>,
    pub avg_execution_time_ms: Option<i64>,
}

impl From<CompletionCounters> for History {
    fn from(c: CompletionCounters) -> Self {
        Self {
            completed: c.completed,
            avg_charged: rounded_mean(c.charged, c.completed),
            avg_quality_score: rounded_mean(c.quality_sum, c.scored),
            avg_execution_time_ms: rounded_mean(c.execution_ms_sum, c.timed),
        }
    }
}

// ------------------------------------------------------------------ profitability

/// A money step that changes what an agent made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyStep {
    /// The buyer was charged `charge` for the agent's work (`ledger::post`).
    Charge { charge: Cents },
    /// `refund` of a `charge` went back to the buyer: a thumbs-down's full refund
    /// (`ledger::reverse`, `refund == charge`) or a dispute's ruling
    /// (`ledger::unfreeze`, any `0 ≤ refund ≤ charge`).
    Refund { charge: Cents, refund: Cents },
}

/// What an agent made, from its side of the ledger, in cents:
///
/// - `tasks`: tasks charged for its work (a later refund does not uncount it);
/// - `revenue`: what buyers were charged for its work;
/// - `fees`: the platform's 15 % of those charges, net of the fee parts given back
///   with refunds (`Cents::split_refund`: the fee is refunded pro rata);
/// - `refunds`: what was given back to buyers (thumbs-down and dispute rulings);
/// - `net = revenue − fees − refunds`: what the agent keeps, exactly its earnings
///   (85 % of each charge) less the earning parts of the refunds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profit {
    pub tasks: i64,
    pub revenue: i64,
    pub fees: i64,
    pub refunds: i64,
}

impl Profit {
    /// What `step` adds; `None` for an amount the ledger would refuse (a negative
    /// charge, a refund above its charge).
    pub fn of(step: MoneyStep) -> Option<Self> {
        match step {
            MoneyStep::Charge { charge } => {
                let (_, fee) = charge.split_charge()?;
                Some(Self {
                    tasks: 1,
                    revenue: charge.get(),
                    fees: fee.get(),
                    refunds: 0,
                })
            }
            MoneyStep::Refund { charge, refund } => {
                let (_, from_fee) = charge.split_refund(refund)?;
                Some(Self {
                    tasks: 0,
                    revenue: 0,
                    fees: -from_fee.get(),
                    refunds: refund.get(),
                })
            }
        }
    }

    /// Whether there is nothing to count (a ruling for the seller refunds nothing).
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn net(&self) -> i64 {
        self.revenue - self.fees - self.refunds
    }

    pub fn plus(self, other: Self) -> Self {
        Self {
            tasks: self.tasks.saturating_add(other.tasks),
            revenue: self.revenue.saturating_add(other.revenue),
            fees: self.fees.saturating_add(other.fees),
            refunds: self.refunds.saturating_add(other.refunds),
        }
    }
}

/// One figure of the report: the counters and their `net`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfitLine {
    pub tasks: i64,
    pub revenue: i64,
    pub fees: i64,
    pub refunds: i64,
    pub net: i64,
}

impl From<Profit> for ProfitLine {
    fn from(p: Profit) -> Self {
        Self {
            tasks: p.tasks,
            revenue: p.revenue,
            fees: p.fees,
            refunds: p.refunds,
            net: p.net(),
        }
    }
}

/// `GET /agents/me/profitability`'s figures: per category with any activity in the
/// period, and their totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfitReport {
    pub categories: BTreeMap<Category, ProfitLine>,
    pub totals: ProfitLine,
}

impl ProfitReport {
    /// From the stored day rows (day, category, counters), in any order.
    pub fn from_rows(rows: impl IntoIterator<Item = (Category, Profit)>) -> Self {
        let mut by_category: BTreeMap<Category, Profit> = BTreeMap::new();
        for (category, profit) in rows {
            let entry = by_category.entry(category).or_default();
            *entry = entry.plus(profit);
        }
        let totals = by_category
            .values()
            .fold(Profit::default(), |sum, p| sum.plus(*p));
        Self {
            categories: by_category
                .into_iter()
                .map(|(c, p)| (c, ProfitLine::from(p)))
                .collect(),
            totals: totals.into(),
        }
    }
}

/// The report's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Days30,
    Days90,
    All,
}

impl Period {
    pub const ALL: &'static [Period] = &[Period::Days30, Period::Days90, Period::All];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Period::Days30 => "30d",
            Period::Days90 => "90d",
            Period::All => "all",
        }
    }

    /// The first UTC day counted on `today`: the period is that many UTC days ending
    /// with today (today included); `None` for everything.
    pub fn since(self, today: time::Date) -> Option<time::Date> {
        let days = match self {
            Period::Days30 => 30,
            Period::Days90 => 90,
            Period::All => return None,
        };
        today.checked_sub(time::Duration::days(days - 1))
    }
}

/// A UTC day as the counters name it: `yyyy-mm-dd`.
pub fn day_name(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::identity::{Capability, Framework, TrustTier};
    use crate::ids::AgentId;
    use crate::vault::ledger::{self, Account, EarningAt, Ledger};

    fn listing(price: i64, tier: TrustTier) -> PublicProfile {
        PublicProfile {
            id: AgentId::new(),
            display_name: "A".into(),
            framework: Framework::Custom,
            description: String::new(),
            capabilities: vec![Capability {
                category: Category::CodeReview,
                tags: vec![],
            }],
            pricing: BTreeMap::from([(Category::CodeReview, Cents(price))]),
            availability: crate::identity::Availability::Offline,
            trust_tier: tier,
            overall_score: 0,
            verification_status: Default::default(),
            reputation: Default::default(),
            last_seen_at: None,
        }
    }

    #[test]
    fn the_market_is_routing_s_rule_without_the_minute_to_minute_part() {
        let (me, them) = (OwnerId::new(), OwnerId::new());
        let l = listing(2_000, TrustTier::Unverified);
        let at = |budget: Option<i64>, buyer| {
            listed_price(&l, them, Category::CodeReview, budget.map(Cents), buyer)
        };
        assert_eq!(
            at(Some(2_000), me),
            Ok(Cents(2_000)),
            "offline still counts"
        );
        assert_eq!(at(None, me), Ok(Cents(2_000)));
        assert_eq!(
            at(Some(1_999), me),
            Err(Ineligible::OverBudget {
                price: Cents(2_000)
            })
        );
        assert_eq!(at(Some(2_000), them), Err(Ineligible::SameOwner));
        assert_eq!(
            at(Some(10_001), me),
            Err(Ineligible::TierTooLow {
                limit: Cents(10_000)
            })
        );
        assert_eq!(
            listed_price(&l, them, Category::Testing, None, me),
            Err(Ineligible::NoCapability)
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let spread = PriceSpread::of(&[Cents(3_000), Cents(1_000), Cents(2_000)]);
        assert_eq!(
            spread,
            PriceSpread {
                min: Some(Cents(1_000)),
                p50: Some(Cents(2_000)),
                p90: Some(Cents(3_000)),
                max: Some(Cents(3_000)),
            }
        );
        let ten: Vec<Cents> = (1..=10).map(|i| Cents(i * 100)).collect();
        let spread = PriceSpread::of(&ten);
        assert_eq!(
            (spread.p50, spread.p90),
            (Some(Cents(500)), Some(Cents(900)))
        );
        let one = PriceSpread::of(&[Cents(7)]);
        assert_eq!(
            (one.min, one.p50, one.p90, one.max),
            (
                Some(Cents(7)),
                Some(Cents(7)),
                Some(Cents(7)),
                Some(Cents(7))
            )
        );
        assert_eq!(PriceSpread::of(&[]), PriceSpread::default());
    }

    #[test]
    fn history_averages_round_to_the_nearest_and_say_null_without_data() {
        let c = CompletionCounters::completion(Cents(1_000), Some(80), Some(1_000))
            .plus(CompletionCounters::completion(Cents(2_001), Some(91), None));
        assert_eq!(
            History::from(c),
            History {
                completed: 2,
                avg_charged: Some(1_501),           // 1,500.5 rounds up
                avg_quality_score: Some(86),        // 85.5
                avg_execution_time_ms: Some(1_000), // one timed
            }
        );
        assert_eq!(
            History::from(CompletionCounters::default()),
            History {
                completed: 0,
                avg_charged: None,
                avg_quality_score: None,
                avg_execution_time_ms: None
            }
        );
        assert_eq!(rounded_mean(5, 3), Some(2));
        assert_eq!(rounded_mean(-3, 2), Some(-1)); // -1.5 rounds up
    }

    #[test]
    fn profit_of_each_step_matches_the_ledger_rules() {
        // 2,500 charged: 2,125 + 375.
        let charged = Profit::of(MoneyStep::Charge {
            charge: Cents(2_500),
        })
        .unwrap();
        assert_eq!(
            (charged.revenue, charged.fees, charged.net()),
            (2_500, 375, 2_125)
        );
        // Thumbs-down: all of it back, the fee with it; the agent keeps nothing.
        let full = charged.plus(
            Profit::of(MoneyStep::Refund {
                charge: Cents(2_500),
                refund: Cents(2_500),
            })
            .unwrap(),
        );
        assert_eq!(
            ProfitLine::from(full),
            ProfitLine {
                tasks: 1,
                revenue: 2_500,
                fees: 0,
                refunds: 2_500,
                net: 0
            }
        );
        // A split ruling, 1,000 back: 850 out of the earning, 150 out of the fee.
        let split = charged.plus(
            Profit::of(MoneyStep::Refund {
                charge: Cents(2_500),
                refund: Cents(1_000),
            })
            .unwrap(),
        );
        assert_eq!(
            ProfitLine::from(split),
            ProfitLine {
                tasks: 1,
                revenue: 2_500,
                fees: 225,
                refunds: 1_000,
                net: 1_275
            }
        );
        assert!(
            Profit::of(MoneyStep::Refund {
                charge: Cents(2_500),
                refund: Cents(0)
            })
            .unwrap()
            .is_zero()
        );
        assert_eq!(
            Profit::of(MoneyStep::Refund {
                charge: Cents(7),
                refund: Cents(8)
            }),
            None
        );
        assert_eq!(Profit::of(MoneyStep::Charge { charge: Cents(-1) }), None);
    }

    fn date(year: i32, month: u8, day: u8) -> time::Date {
        time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day).unwrap()
    }

    #[test]
    fn periods_are_whole_utc_days_ending_today() {
        let today = date(2026, 3, 31);
        assert_eq!(Period::parse("30d"), Some(Period::Days30));
        assert_eq!(Period::parse("7d"), None);
        assert_eq!(Period::Days30.since(today), Some(date(2026, 3, 2)));
        assert_eq!(Period::Days90.since(today), Some(date(2026, 1, 1)));
        assert_eq!(Period::All.since(today), None);
        assert_eq!(day_name(date(2026, 3, 2)), "2026-03-02");
    }

    /// What becomes of one charged task.
    #[derive(Debug, Clone, Copy)]
    enum End {
        Kept,
        ThumbsDown,
        /// A dispute filed before (`false`) or after (`true`) settlement, ruled with
        /// this share of the charge refunded (per mille).
        Disputed {
            settled: bool,
            refund_permille: i64,
        },
    }

    fn end() -> impl Strategy<Value = End> {
        prop_oneof![
            Just(End::Kept),
            Just(End::ThumbsDown),
            (any::<bool>(), 0i64..=1000).prop_map(|(settled, refund_permille)| End::Disputed {
                settled,
                refund_permille
            }),
        ]
    }

    proptest! {
        /// Driving the real ledger through charges, thumbs-down refunds and dispute
        /// rulings: the report's `net` is exactly what the agent's accounts hold
        /// (escrow + wallet + frozen + shortfall), its `fees` what revenue holds, its
        /// `refunds` what came back to the buyer's pool beyond the unused holds; and
        /// the totals are the sum of the categories.
        #[test]
        fn net_is_what_the_agent_s_accounts_received(
            tasks in proptest::collection::vec((1i64..=1_000_000, 0usize..3, end()), 1..25)
        ) {
            let (buyer, agent) = (OwnerId::new(), AgentId::new());
            let categories = [Category::CodeReview, Category::Testing, Category::Research];
            let mut books = Ledger::default();
            let mut rows = Vec::new();
            let mut given_back = 0i64;
            for (charge, category, end) in tasks {
                let (task, charge) = (TaskId::new(), Cents(charge));
                let category = categories[category];
                books.apply(&ledger::top_up(buyer, charge).unwrap()).unwrap();
                books.apply(&ledger::hold(buyer, task, charge).unwrap()).unwrap();
                books.apply(&ledger::post(buyer, task, agent, charge, charge).unwrap()).unwrap();
                rows.push((category, Profit::of(MoneyStep::Charge { charge }).unwrap()));
                let (earning, fee) = charge.split_charge().unwrap();
                let refund = match end {
                    End::Kept => None,
                    End::ThumbsDown => {
                        books.apply(&ledger::reverse(buyer, task, agent, earning, fee).unwrap()).unwrap();
                        Some(charge)
                    }
                    End::Disputed { settled, refund_permille } => {
                        let at = if settled {
                            let owed = Cents(-books.balance(Account::Shortfall(agent)).get());
                            books.apply(&ledger::release_escrow_repaying(agent, earning, owed).unwrap()).unwrap();
                            EarningAt::Wallet { available: books.balance(Account::Wallet(agent)) }
                        } else {
                            EarningAt::Escrow
                        };
                        books.apply(&ledger::freeze(agent, earning, at)).unwrap();
                        let refund = Cents(charge.get() * refund_permille / 1000);
                        let owed = Cents(-books.balance(Account::Shortfall(agent)).get());
                        books.apply(&ledger::unfreeze(buyer, task, agent, charge, earning, fee, refund, owed).unwrap()).unwrap();
                        Some(refund)
                    }
                };
                if let Some(refund) = refund {
                    given_back += refund.get();
                    let step = Profit::of(MoneyStep::Refund { charge, refund }).unwrap();
                    if !step.is_zero() {
                        rows.push((category, step));
                    }
                }
            }
            let report = ProfitReport::from_rows(rows);
            let agent_holds: i64 = [
                Account::Escrow(agent),
                Account::Wallet(agent),
                Account::Frozen(agent),
                Account::Shortfall(agent),
            ]
            .into_iter()
            .map(|a| books.balance(a).get())
            .sum();
            prop_assert_eq!(report.totals.net, agent_holds);
            let revenue: i64 = books
                .accounts()
                .filter(|(a, _)| matches!(a, Account::Revenue(_)))
                .map(|(_, b)| *b)
                .sum();
            prop_assert_eq!(report.totals.fees, revenue);
            prop_assert_eq!(report.totals.refunds, given_back);
            prop_assert_eq!(books.balance(Account::Pool(buyer)).get(), given_back, "holds were charged in full");
            let sum = report.categories.values().fold(ProfitLine::default(), |s, l| ProfitLine {
                tasks: s.tasks + l.tasks,
                revenue: s.revenue + l.revenue,
                fees: s.fees + l.fees,
                refunds: s.refunds + l.refunds,
                net: s.net + l.net,
            });
            prop_assert_eq!(sum, report.totals);
        }
    }
}
