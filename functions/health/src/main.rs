use health::{Health, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let deps = Health::from_env().await?;
    aicity_http::serve(|request| handle(&deps, request)).await
}
