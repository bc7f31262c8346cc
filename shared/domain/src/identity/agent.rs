//! Agents: registered by an owner, identified by an API key, hired for tasks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::identity::reputation::{self, Outcome, Reputation};
use crate::ids::{AgentId, OwnerId};
use crate::money::Cents;
use crate::validate::{Validate, check_length, check_range};

/// At most this many active agents per owner (the seed's agent limit).
pub const MAX_ACTIVE_AGENTS_PER_OWNER: u32 = 10;
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
pub const MAX_MODEL_CHARS: usize = 100;
pub const MAX_CAPABILITIES: usize = 10;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 50;
/// Prices are per task, in cents: $10,000 at most.
pub const MAX_PRICE_CENTS: i64 = 1_000_000;
pub const DEFAULT_MAX_CONCURRENT_TASKS: u32 = 3;
pub const MAX_CONCURRENT_TASKS: u32 = 50;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        /// One of the wire names.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($wire),+]))
                    .into()
            }
        }
        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// The agent framework an agent is built with.
    Framework {
        CrewAi = "crewai",
        LangGraph = "langgraph",
        OpenClaw = "openclaw",
        AutoGen = "autogen",
        Adk = "adk",
        OpenAi = "openai",
        Custom = "custom",
    }
);

wire_enum!(
    /// Kinds of work; a task's `taskType` is one of these.
    Category {
        CodeGeneration = "code_generation",
        CodeReview = "code_review",
        /// Its own kind of work (not an alias of `code_generation`): priced and reputed apart.
        BugFix = "bug_fix",
        Testing = "testing",
        DataAnalysis = "data_analysis",
        ContentCreation = "content_creation",
        Research = "research",
        Design = "design",
        DevOps = "devops",
        Security = "security",
        General = "general",
    }
);

wire_enum!(
    /// Whether an agent takes new work right now.
    Availability {
        Available = "available",
        Busy = "busy",
        Offline = "offline",
    }
);

wire_enum!(
    /// Earned through reputation; new agents start `unverified`. Each tier maps to one
    /// of the Trust API's recommendations (not yet rated → highest trust).
    TrustTier {
        Unverified = "unverified",
        Provisional = "provisional",
        Established = "established",
        Trusted = "trusted",
        Elite = "elite",
    }
);

wire_enum!(
    /// `verified` once the agent has completed enough tasks to be judged.
    VerificationStatus {
        Unverified = "unverified",
        Verified = "verified",
    }
);

// The macro's enums derive no Default; this one starts unverified.
#[allow(clippy::derivable_impls)]
impl Default for VerificationStatus {
    fn default() -> Self {
        VerificationStatus::Unverified
    }
}

wire_enum!(
    /// Lifecycle of the registration itself.
    AgentStatus {
        Active = "active",
        Deactivated = "deactivated",
        /// Set by the platform (e.g. after consecutive failures); the owner reactivates.
        Suspended = "suspended",
    }
);

/// What an agent can do, with free-form tags for search.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capability {
    pub category: Category,
    /// Free-form search tags, 1–50 characters each.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = tags_schema))]
    pub tags: Vec<String>,
}

/// Counters the task lifecycle keeps up to date.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStats {
    pub completed: u32,
    pub failed: u32,
    pub consecutive_failures: u32,
    pub active_tasks: u32,
}

/// Buyers' thumbs up and down on completed tasks: reputation signals.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackCounts {
    pub up: u32,
    pub down: u32,
}

/// An agent as stored (without its key hash, which lives beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: AgentId,
    pub owner_id: OwnerId,
    pub display_name: String,
    pub framework: Framework,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub capabilities: Vec<Capability>,
    pub pricing: BTreeMap<Category, Cents>,
    pub max_concurrent_tasks: u32,
    pub availability: Availability,
    pub status: AgentStatus,
    pub trust_tier: TrustTier,
    pub overall_score: u32,
    pub stats: AgentStats,
    #[serde(default)]
    pub feedback: FeedbackCounts,
    /// What the reputation is computed from.
    #[serde(default)]
    pub record: reputation::Record,
    #[serde(default)]
    pub reputation: Reputation,
    #[serde(default)]
    pub verification_status: VerificationStatus,
    /// When it last polled for work or sent a heartbeat (at most every 30 s is written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
    /// When the platform suspended it (the owner may reactivate after a cool-down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_at: Option<String>,
    /// The last outcomes, newest first (at most [`RECENT_OUTCOMES`]).
    #[serde(default)]
    pub recent_outcomes: Vec<RecentOutcome>,
    pub created_at: String,
    pub updated_at: String,
}

/// An agent's `lastSeenAt` is written at most this often, however often it polls.
pub const LIVENESS_WRITE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// How many outcomes an agent keeps for `GET /agents/{id}/reputation`.
pub const RECENT_OUTCOMES: usize = 10;

/// One outcome as shown: what, on which task, when, and the score after it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentOutcome {
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<crate::ids::TaskId>,
    pub score_after: u32,
    pub at: String,
}

/// What anybody may see of an agent.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicProfile {
    pub id: AgentId,
    pub display_name: String,
    pub framework: Framework,
    pub description: String,
    pub capabilities: Vec<Capability>,
    pub pricing: BTreeMap<Category, Cents>,
    pub availability: Availability,
    pub trust_tier: TrustTier,
    pub overall_score: u32,
    #[serde(default)]
    pub verification_status: VerificationStatus,
    #[serde(default)]
    pub reputation: Reputation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<String>,
}

impl PublicProfile {
    /// As shown at `now`: `offline` once the agent has not been seen for `window`.
    pub fn live(mut self, now: time::OffsetDateTime, window: std::time::Duration) -> Self {
        if !is_live(self.last_seen_at.as_deref(), now, window) {
            self.availability = Availability::Offline;
        }
        self
    }
}

/// Whether an agent last seen at `last_seen` counts as live at `now`.
pub fn is_live(
    last_seen: Option<&str>,
    now: time::OffsetDateTime,
    window: std::time::Duration,
) -> bool {
    last_seen
        .and_then(crate::timestamps::parse)
        .is_some_and(|seen| now - seen <= window)
}

/// What the agent itself and its owner see.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateProfile {
    #[serde(flatten)]
    pub public: PublicProfile,
    pub owner_id: OwnerId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub status: AgentStatus,
    pub max_concurrent_tasks: u32,
    pub stats: AgentStats,
    pub feedback: FeedbackCounts,
    pub created_at: String,
    pub updated_at: String,
}

impl Agent {
    /// A newly registered agent: active, available, unverified, score 0, zeroed stats.
    pub fn register(owner_id: OwnerId, request: RegisterAgent, now: &str) -> Self {
        Self {
            id: AgentId::new(),
            owner_id,
            display_name: request.display_name.trim().to_owned(),
            framework: request.framework,
            description: request.description.trim().to_owned(),
            model: request.model.map(|m| m.trim().to_owned()),
            capabilities: request.capabilities,
            pricing: request
                .pricing
                .into_iter()
                .map(|(category, cents)| (category, Cents(cents)))
                .collect(),
            max_concurrent_tasks: request
                .max_concurrent_tasks
                .unwrap_or(DEFAULT_MAX_CONCURRENT_TASKS),
            availability: Availability::Available,
            status: AgentStatus::Active,
            trust_tier: TrustTier::Unverified,
            overall_score: 0,
            stats: AgentStats::default(),
            feedback: FeedbackCounts::default(),
            record: reputation::Record::default(),
            reputation: reputation::reputation(&reputation::Record::default()),
            verification_status: VerificationStatus::Unverified,
            last_seen_at: None,
            suspended_at: None,
            recent_outcomes: Vec::new(),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    pub fn public(&self) -> PublicProfile {
        PublicProfile {
            id: self.id,
            display_name: self.display_name.clone(),
            framework: self.framework,
            description: self.description.clone(),
            capabilities: self.capabilities.clone(),
            pricing: self.pricing.clone(),
            availability: self.availability,
            trust_tier: self.trust_tier,
            overall_score: self.overall_score,
            verification_status: self.verification_status,
            reputation: self.reputation,
            last_seen_at: self.last_seen_at.clone(),
        }
    }

    /// Records one outcome: the record, the dimensions, the score, the tier and the
    /// verification all follow from it (demotion included), and it joins the recent
    /// outcomes. The caller commits it with the task change that caused it, so it is
    /// applied exactly once.
    pub fn record_outcome(
        &mut self,
        outcome: Outcome,
        task: Option<crate::ids::TaskId>,
        now: &str,
    ) {
        self.record.apply(outcome);
        self.reputation = reputation::reputation(&self.record);
        self.overall_score = reputation::overall(&self.reputation);
        self.trust_tier = reputation::tier(self.overall_score, self.record.completed);
        self.verification_status = if self.record.completed >= reputation::VERIFIED_AFTER {
            VerificationStatus::Verified
        } else {
            VerificationStatus::Unverified
        };
        self.recent_outcomes.insert(
            0,
            RecentOutcome {
                outcome: outcome.name().to_owned(),
                task_id: task,
                score_after: self.overall_score,
                at: now.to_owned(),
            },
        );
        self.recent_outcomes.truncate(RECENT_OUTCOMES);
    }

    /// Tasks it may run at once: what it asks for, within its tier's cap.
    pub fn concurrency_limit(&self) -> u32 {
        self.max_concurrent_tasks
            .min(reputation::concurrency_cap(self.trust_tier))
    }

    pub fn private(&self) -> PrivateProfile {
        PrivateProfile {
            public: self.public(),
            owner_id: self.owner_id,
            model: self.model.clone(),
            status: self.status,
            max_concurrent_tasks: self.max_concurrent_tasks,
            stats: self.stats,
            feedback: self.feedback,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }

    pub fn categories(&self) -> impl Iterator<Item = Category> + '_ {
        self.capabilities.iter().map(|c| c.category)
    }

    /// Applies a validated update; the result is checked as a whole again (a price
    /// for a category the agent no longer has is refused).
    pub fn apply(&mut self, update: UpdateAgent, now: &str) -> Result<(), Vec<FieldError>> {
        let mut next = self.clone();
        if let Some(name) = update.display_name {
            next.display_name = name.trim().to_owned();
        }
        if let Some(description) = update.description {
            next.description = description.trim().to_owned();
        }
        if let Some(model) = update.model {
            next.model = Some(model.trim().to_owned());
        }
        if let Some(capabilities) = update.capabilities {
            next.capabilities = capabilities;
        }
        if let Some(pricing) = update.pricing {
            next.pricing = pricing.into_iter().map(|(c, p)| (c, Cents(p))).collect();
        }
        if let Some(max) = update.max_concurrent_tasks {
            next.max_concurrent_tasks = max;
        }
        if let Some(availability) = update.availability {
            next.availability = availability;
        }
        let mut errors = Vec::new();
        let prices: BTreeMap<Category, i64> = next.pricing.iter().map(|(c, p)| (*c, p.0)).collect();
        check_pricing_matches(&mut errors, &next.capabilities, &prices);
        if !errors.is_empty() {
            return Err(errors);
        }
        next.updated_at = now.to_owned();
        *self = next;
        Ok(())
    }
}

/// `POST /agents`
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterAgent {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub display_name: String,
    pub framework: Framework,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2000))]
    pub description: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub model: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub capabilities: Vec<Capability>,
    /// Price per task in cents for each category it offers (each among its capabilities).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = pricing_schema))]
    pub pricing: BTreeMap<Category, i64>,
    /// Tasks it runs at once (default 3), within its trust tier's cap.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 50))]
    pub max_concurrent_tasks: Option<u32>,
}

/// `PATCH /agents/me` and `PATCH /agents/:id`: every field optional, at least one given.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(min_properties = 1))]
pub struct UpdateAgent {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub display_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2000))]
    pub description: Option<String>,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub model: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub capabilities: Option<Vec<Capability>>,
    /// Replaces every price; each must be for one of the agent's capabilities.
    #[cfg_attr(feature = "openapi", schema(schema_with = pricing_schema))]
    pub pricing: Option<BTreeMap<Category, i64>>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 50))]
    pub max_concurrent_tasks: Option<u32>,
    pub availability: Option<Availability>,
}

/// Prices in cents per category, 1 to [`MAX_PRICE_CENTS`] each.
#[cfg(feature = "openapi")]
fn pricing_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    let price = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(1))
        .maximum(Some(MAX_PRICE_CENTS));
    let names = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Category::ALL.iter().map(|c| c.as_str())));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(names))
        .additional_properties(Some(AdditionalProperties::RefOr(price.into())))
        .description(Some("Price per task in cents, by category."))
        .build()
}

/// Tags of 1–50 characters.
#[cfg(feature = "openapi")]
fn tags_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let tag = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_TAG_CHARS));
    ArrayBuilder::new()
        .items(tag)
        .max_items(Some(MAX_TAGS))
        .build()
}

fn check_capabilities(errors: &mut Vec<FieldError>, capabilities: &[Capability]) {
    if capabilities.len() > MAX_CAPABILITIES {
        errors.push(FieldError::new(
            "capabilities",
            format!("at most {MAX_CAPABILITIES} capabilities"),
        ));
    }
    let mut seen = Vec::new();
    for (i, capability) in capabilities.iter().enumerate() {
        if seen.contains(&capability.category) {
            errors.push(FieldError::new(
                format!("capabilities[{i}].category"),
                format!("{} is listed twice", capability.category),
            ));
        }
        seen.push(capability.category);
        if capability.tags.len() > MAX_TAGS {
            errors.push(FieldError::new(
                format!("capabilities[{i}].tags"),
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        for (j, tag) in capability.tags.iter().enumerate() {
            check_length(
                errors,
                &format!("capabilities[{i}].tags[{j}]"),
                tag.trim(),
                1,
                MAX_TAG_CHARS,
            );
        }
    }
}

fn check_prices(errors: &mut Vec<FieldError>, pricing: &BTreeMap<Category, i64>) {
    for (category, cents) in pricing {
        check_range(
            errors,
            &format!("pricing.{category}"),
            *cents,
            1,
            MAX_PRICE_CENTS,
        );
    }
}

/// Every price must be for a category the agent offers.
fn check_pricing_matches(
    errors: &mut Vec<FieldError>,
    capabilities: &[Capability],
    pricing: &BTreeMap<Category, i64>,
) {
    for category in pricing.keys() {
        if !capabilities.iter().any(|c| c.category == *category) {
            errors.push(FieldError::new(
                format!("pricing.{category}"),
                "is priced but not among the agent's capabilities",
            ));
        }
    }
}

fn check_max_concurrent(errors: &mut Vec<FieldError>, value: Option<u32>) {
    if let Some(max) = value {
        check_range(
            errors,
            "maxConcurrentTasks",
            i64::from(max),
            1,
            i64::from(MAX_CONCURRENT_TASKS),
        );
    }
}

impl Validate for RegisterAgent {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(
            errors,
            "displayName",
            self.display_name.trim(),
            1,
            MAX_DISPLAY_NAME_CHARS,
        );
        check_length(
            errors,
            "description",
            self.description.trim(),
            1,
            MAX_DESCRIPTION_CHARS,
        );
        if let Some(model) = &self.model {
            check_length(errors, "model", model.trim(), 1, MAX_MODEL_CHARS);
        }
        check_capabilities(errors, &self.capabilities);
        check_prices(errors, &self.pricing);
        check_pricing_matches(errors, &self.capabilities, &self.pricing);
        check_max_concurrent(errors, self.max_concurrent_tasks);
    }
}

impl Validate for UpdateAgent {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        let UpdateAgent {
            display_name,
            description,
            model,
            capabilities,
            pricing,
            max_concurrent_tasks,
            availability,
        } = self;
        if display_name.is_none()
            && description.is_none()
            && model.is_none()
            && capabilities.is_none()
            && pricing.is_none()
            && max_concurrent_tasks.is_none()
            && availability.is_none()
        {
            errors.push(FieldError::new("body", "no field to update"));
        }
        if let Some(name) = display_name {
            check_length(
                errors,
                "displayName",
                name.trim(),
                1,
                MAX_DISPLAY_NAME_CHARS,
            );
        }
        if let Some(description) = description {
            check_length(
                errors,
                "description",
                description.trim(),
                1,
                MAX_DESCRIPTION_CHARS,
            );
        }
        if let Some(model) = model {
            check_length(errors, "model", model.trim(), 1, MAX_MODEL_CHARS);
        }
        if let Some(capabilities) = capabilities {
            check_capabilities(errors, capabilities);
        }
        if let Some(pricing) = pricing {
            check_prices(errors, pricing);
        }
        check_max_concurrent(errors, *max_concurrent_tasks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RegisterAgent {
        serde_json::from_value(serde_json::json!({
            "displayName": "Reviewer",
            "framework": "crewai",
            "description": "Reviews code",
            "capabilities": [{"category": "code_review", "tags": ["rust"]}],
            "pricing": {"code_review": 2500},
        }))
        .unwrap()
    }

    fn fields(v: &impl Validate) -> Vec<String> {
        let mut errors = Vec::new();
        v.validate(&mut errors);
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_new_agent_starts_unverified_with_zero_stats() {
        let agent = Agent::register(OwnerId::new(), request(), "t0");
        assert_eq!(agent.status, AgentStatus::Active);
        assert_eq!(agent.trust_tier, TrustTier::Unverified);
        assert_eq!(agent.overall_score, 0);
        assert_eq!(agent.stats, AgentStats::default());
        assert_eq!(agent.max_concurrent_tasks, DEFAULT_MAX_CONCURRENT_TASKS);
        assert_eq!(agent.pricing[&Category::CodeReview], Cents(2500));
    }

    #[test]
    fn the_public_profile_has_no_private_field() {
        let agent = Agent::register(OwnerId::new(), request(), "t0");
        let public = serde_json::to_value(agent.public()).unwrap();
        for private in ["ownerId", "stats", "model", "status", "maxConcurrentTasks"] {
            assert!(public.get(private).is_none(), "{private} leaked");
        }
        let private = serde_json::to_value(agent.private()).unwrap();
        assert_eq!(private["ownerId"], agent.owner_id.to_string());
        assert_eq!(private["stats"]["activeTasks"], 0);
        assert_eq!(private["displayName"], "Reviewer");
    }

    #[test]
    fn registration_limits_are_enforced() {
        assert!(fields(&request()).is_empty());
        let mut bad = request();
        bad.display_name = "x".repeat(MAX_DISPLAY_NAME_CHARS + 1);
        bad.description = " ".into();
        bad.pricing.insert(Category::Design, 0);
        bad.capabilities.push(Capability {
            category: Category::CodeReview,
            tags: vec![String::new()],
        });
        bad.max_concurrent_tasks = Some(0);
        assert_eq!(
            fields(&bad),
            [
                "displayName",
                "description",
                "capabilities[1].category",
                "capabilities[1].tags[0]",
                "pricing.design",
                "pricing.design",
                "maxConcurrentTasks"
            ]
        );
    }

    #[test]
    fn unknown_framework_or_category_does_not_parse() {
        let err = serde_json::from_value::<RegisterAgent>(serde_json::json!({
            "displayName": "x", "framework": "skynet", "description": "d"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("skynet"));
        assert!(
            serde_json::from_value::<Capability>(serde_json::json!({"category": "cooking"}))
                .is_err()
        );
    }

    #[test]
    fn an_update_must_keep_prices_and_capabilities_consistent() {
        let mut agent = Agent::register(OwnerId::new(), request(), "t0");
        let drop_capability = UpdateAgent {
            capabilities: Some(vec![Capability {
                category: Category::Testing,
                tags: vec![],
            }]),
            ..Default::default()
        };
        let errors = agent.apply(drop_capability, "t1").unwrap_err();
        assert_eq!(errors[0].field, "pricing.code_review");
        assert_eq!(agent.updated_at, "t0", "a refused update changes nothing");

        let go_busy = UpdateAgent {
            availability: Some(Availability::Busy),
            ..Default::default()
        };
        agent.apply(go_busy, "t2").unwrap();
        assert_eq!(agent.availability, Availability::Busy);
        assert_eq!(agent.updated_at, "t2");
        assert_eq!(fields(&UpdateAgent::default()), ["body"]);
    }
}
