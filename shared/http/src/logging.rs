//! Structured logs: JSON lines in Lambda (CloudWatch), readable text locally.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once per cold start. `RUST_LOG` sets the filter
/// (default `info`); `LOG_FORMAT=text` switches to human-readable output.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second init (tests) is harmless; ignore the error.
    let _ = if text {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}
