use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aicity_http::logging::init();
    let deliverer = webhook_delivery::Deliverer::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, lambda_runtime::Error>(webhook_delivery::handle(&deliverer, event.payload).await)
    }))
    .await
}
