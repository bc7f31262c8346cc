#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let trust = trust::Trust {
        ctx: aicity_http::Context::from_env().await?,
        clock: std::sync::Arc::new(aicity_domain::task::timing::SystemClock),
        daily_limit: trust::daily_limit_from_env()?,
    };
    aicity_http::serve(|request| trust::handle(&trust, request)).await
}
