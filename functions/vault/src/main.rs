#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let ctx = aicity_http::Context::from_env().await?;
    let payments =
        aicity_vault::payments::from_env(ctx.clients.dynamodb.clone(), ctx.table.clone()).await?;
    let vault = vault::Vault { ctx, payments };
    aicity_http::serve(|request| vault::handle(&vault, request)).await
}
