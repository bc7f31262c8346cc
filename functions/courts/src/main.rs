#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let courts = courts::Courts {
        ctx: aicity_http::Context::from_env().await?,
        clock: std::sync::Arc::new(aicity_domain::task::timing::SystemClock),
        admins: courts::admins_from_env(),
    };
    aicity_http::serve(|request| courts::handle(&courts, request)).await
}
