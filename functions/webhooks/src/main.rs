#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    aicity_http::logging::init();
    let webhooks = webhooks::Webhooks::from_env().await?;
    aicity_http::serve(|request| webhooks::handle(&webhooks, request)).await
}
