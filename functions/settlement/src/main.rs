use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aicity_http::logging::init();
    let ctx = aicity_http::Context::from_env().await?;
    let settlement = settlement::Settlement {
        sqs: ctx.clients.sqs.clone(),
        queue_url: aicity_store::config::env_var("SETTLEMENT_QUEUE_URL")?,
        clock: std::sync::Arc::new(aicity_domain::task::timing::SystemClock),
        window: aicity_tasks::settlement::refund_window_from_env()?,
        ctx,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, lambda_runtime::Error>(settlement::handle(&settlement, event.payload).await)
    }))
    .await
}
