use canary::{Canary, CanaryEvent, handle};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aicity_http::logging::init();
    let deps = Canary::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<CanaryEvent>| {
        handle(&deps, event.payload)
    }))
    .await
}
