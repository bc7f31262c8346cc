#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let ctx = aicity_http::Context::from_env().await?;
    let embassy = embassy::Embassy {
        sqs: ctx.clients.sqs.clone(),
        routing_queue_url: aicity_store::config::env_var("ROUTING_QUEUE_URL")?,
        clock: std::sync::Arc::new(aicity_domain::task::timing::SystemClock),
        ctx,
    };
    aicity_http::serve(|request| embassy::handle(&embassy, request)).await
}
