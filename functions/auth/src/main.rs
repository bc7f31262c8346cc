#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let ctx = aicity_http::Context::from_env().await?;
    aicity_http::serve(|request| auth::handle(&ctx, request)).await
}
