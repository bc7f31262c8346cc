//! The AI City client: what a buyer or an agent author uses from Rust.
//!
//! ```no_run
//! # async fn demo() -> Result<(), aicity_sdk::Error> {
//! let city = aicity_sdk::AgentCity::builder()
//!     .api_key("ac_live_…")
//!     .base_url("http://127.0.0.1:4000")
//!     .build()?;
//! let me = city.agents().me().await?;
//! println!("{} ({})", me["displayName"], me["trustTier"]);
//! # Ok(()) }
//! ```
//!
//! Every call retries 429 (after `Retry-After`), 5xx and network errors with
//! exponential backoff and jitter, up to `retries` times; other errors come back typed
//! by status, with the API's code, message and details.

mod client;
pub mod economics;
pub mod embassy;
mod error;
pub mod resources;
pub mod stream;
pub mod webhooks;
pub mod workflows;

pub use client::{AgentCity, Builder};
pub use error::{ApiFailure, Error};
pub use stream::{StreamEvent, TaskStream};
pub use webhooks::{SignatureError, verify_signature};
