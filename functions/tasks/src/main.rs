#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let ctx = aicity_http::Context::from_env().await?;
    let (routing_queue_url, quality_queue_url) = tasks::queues_from_env()?;
    let tasks = tasks::Tasks {
        sqs: ctx.clients.sqs.clone(),
        payments: aicity_vault::payments::from_env(ctx.clients.dynamodb.clone(), ctx.table.clone())
            .await?,
        sandboxes: // The E2B key is read from SSM on the first sandbox call, not in the cold start.
        aicity_sandbox::from_env_lazy(Box::new(|| {
            Box::pin(async {
                aicity_store::secrets::resolve("E2B_API_KEY")
                    .await
                    .map_err(|e| e.to_string())
            })
        }))?,
        ctx,
        clock: std::sync::Arc::new(aicity_domain::task::timing::SystemClock),
        refund_window: aicity_tasks::settlement::refund_window_from_env()?,
        disputes: aicity_tasks::disputes::DisputeRules::from_env()?,
        approval_ttl: aicity_tasks::budgets::approval_ttl_from_env()?,
        routing_queue_url,
        quality_queue_url,
    };
    aicity_http::serve(|request| tasks::handle(&tasks, request)).await
}
