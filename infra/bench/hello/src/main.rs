//! Hello world on `lambda_runtime`: what a Rust Lambda costs before it does anything.
//! `infra/bench` (coldstart) measures every function against this binary, built with
//! the same release profile.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
