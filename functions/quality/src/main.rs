use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aicity_http::logging::init();
    let ctx = aicity_http::Context::from_env().await?;
    let settlement = (
        ctx.clients.sqs.clone(),
        aicity_store::config::env_var("SETTLEMENT_QUEUE_URL")?,
    );
    let quality = quality::Quality {
        settlement: Some(settlement),
        ctx,
        gate: aicity_quality::from_env_with_key(
            aicity_store::secrets::resolve_for("QUALITY_GATE", "llm", "LLM_JUDGE_API_KEY").await?,
        )?,
        pass_mark: aicity_quality::pass_mark_from_env()?,
        max_attempts: quality::max_attempts_from_env()?,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, lambda_runtime::Error>(quality::handle(&quality, event.payload).await)
    }))
    .await
}
