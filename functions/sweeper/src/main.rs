use aws_lambda_events::cloudwatch_events::CloudWatchEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aicity_http::logging::init();
    let ctx = aicity_http::Context::from_env().await?;
    let env = aicity_store::config::env_var;
    let sweeper = sweeper::Sweeper {
        sqs: ctx.clients.sqs.clone(),
        routing_queue_url: env("ROUTING_QUEUE_URL")?,
        quality_queue_url: env("QUALITY_QUEUE_URL")?,
        sandboxes: // The E2B key is read from SSM on the first sandbox call, not in the cold start.
        aicity_sandbox::from_env_lazy(Box::new(|| {
            Box::pin(async {
                aicity_store::secrets::resolve("E2B_API_KEY")
                    .await
                    .map_err(|e| e.to_string())
            })
        }))?,
        payments: aicity_vault::payments::from_env(ctx.clients.dynamodb.clone(), ctx.table.clone())
            .await?,
        clock: std::sync::Arc::new(aicity_domain::task::timing::SystemClock),
        refund_window: aicity_tasks::settlement::refund_window_from_env()?,
        deadlines: sweeper::Deadlines {
            approval: aicity_tasks::budgets::approval_ttl_from_env()?,
            ..sweeper::Deadlines::default()
        },
        budget: 1_000,
        ctx,
    };
    lambda_runtime::run(service_fn(|_event: LambdaEvent<CloudWatchEvent>| async {
        let report = sweeper::sweep(&sweeper)
            .await
            .map_err(|e| format!("sweep failed: {}", e.code))?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
    }))
    .await
}
