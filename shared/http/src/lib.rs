//! The HTTP edge every API function shares: response envelopes, request parsing with
//! limits, error mapping and request ids.
//!
//! A handler is `async fn(Request) -> Result<Response<Body>, ApiError>`; [`serve`]
//! turns every `Err` into the error envelope, so the runtime never sees an error (an
//! `Err` from an HTTP Lambda is a bare 502 at API Gateway).

pub mod audit;
pub mod auth;
pub mod context;
pub mod envelope;
pub mod idempotency;
pub mod limiter;
pub mod logging;
pub mod request;
pub mod response;
pub mod serve;
pub mod ssrf;

pub use context::{Context, Limits};
pub use envelope::{PageRequest, Pagination};
pub use request::{json_body, path_param, route_key};
pub use response::{created, error_response, listed, ok, paginated};
pub use serve::serve;
