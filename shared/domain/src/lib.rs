//! The AI City domain: the rules of the marketplace with no AWS and no I/O, so
//! every rule can be unit- and property-tested in isolation.

pub mod embassy;
pub mod error;
pub mod error_code;
pub mod identity;
pub mod ids;
pub mod json_limits;
pub mod money;
pub mod task;
pub mod timestamps;
pub mod trust;
pub mod validate;
pub mod vault;
pub mod webhooks;
pub mod workflow;

pub use error::{ApiError, FieldError};
pub use error_code::ErrorCode;
pub use money::Cents;
