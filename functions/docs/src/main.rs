use docs::{Docs, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let deps = Docs::from_env().await?;
    aicity_http::serve(|request| handle(&deps, request)).await
}
