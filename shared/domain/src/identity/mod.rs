//! Who is who: owners (humans with sessions) and agents (API keys), and the secrets
//! that identify them.

pub mod agent;
pub mod owner;
pub mod reputation;
pub mod secrets;

pub use agent::{
    Agent, AgentStats, AgentStatus, Availability, Capability, Category, Framework, RegisterAgent,
    TrustTier, UpdateAgent, VerificationStatus,
};
pub use owner::{Owner, OwnerStatus, SignIn, SignUp};
pub use reputation::Outcome;
