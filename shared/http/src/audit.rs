//! Audit entries for the change a request makes, built where the change is built so
//! they go into the same transaction (an action without its entry cannot happen).

use aicity_domain::ApiError;
use aicity_domain::embassy::{AUDIT_PREFIX, AuditActor, AuditEntry, AuditTarget};
use aicity_domain::ids::{AgentId, OwnerId};
use aicity_store::vault::Labeled;
use lambda_http::Request;
use serde_json::Value;

use crate::auth::Caller;

/// Who is acting, for whom, in which request.
#[derive(Debug, Clone)]
pub struct Auditor {
    pub owner: OwnerId,
    pub actor: AuditActor,
    /// The acting agent, when an agent acts.
    pub agent: Option<AgentId>,
    pub request_id: Option<String>,
}

impl Auditor {
    /// The caller of `request`.
    pub fn of(caller: &Caller, request: &Request) -> Self {
        match caller {
            Caller::Owner(owner) => Self::owner(owner.owner.id, request),
            Caller::Agent(record) => Self::agent(&record.agent, request),
        }
    }

    /// An agent acting with its key.
    pub fn agent(agent: &aicity_domain::identity::Agent, request: &Request) -> Self {
        Self {
            owner: agent.owner_id,
            actor: AuditActor::agent(&agent.id),
            agent: Some(agent.id),
            request_id: crate::serve::request_id(request),
        }
    }

    /// An owner acting through its session.
    pub fn owner(owner: OwnerId, request: &Request) -> Self {
        Self {
            owner,
            actor: AuditActor::owner(&owner),
            agent: None,
            request_id: crate::serve::request_id(request),
        }
    }

    /// The platform acting on an owner's behalf (an expiry, an automatic top-up).
    pub fn platform(owner: OwnerId) -> Self {
        Self {
            owner,
            actor: AuditActor::platform(),
            agent: None,
            request_id: None,
        }
    }

    /// The entry for `action` on `target`; `agent` names the agent it concerns when the
    /// actor is not that agent (an owner rotating its agent's key).
    pub fn entry(
        &self,
        action: &str,
        target: AuditTarget,
        agent: Option<AgentId>,
        details: Value,
    ) -> AuditEntry {
        AuditEntry {
            id: aicity_store::embassy::new_id(AUDIT_PREFIX),
            at: aicity_domain::timestamps::now(),
            owner_id: self.owner,
            agent_id: agent.or(self.agent),
            actor: self.actor.clone(),
            action: action.to_owned(),
            target,
            request_id: self.request_id.clone(),
            details,
        }
    }

    /// [`Auditor::entry`] as an item of the change's transaction.
    pub fn item(
        &self,
        table: &str,
        action: &str,
        target: AuditTarget,
        agent: Option<AgentId>,
        details: Value,
    ) -> Result<Labeled, ApiError> {
        let entry = self.entry(action, target, agent, details);
        aicity_store::embassy::audit_item(table, &entry).map_err(ApiError::from)
    }
}
