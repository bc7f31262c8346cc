#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    aicity_http::serve(|request| async move { Ok(exchange::handle(&request)) }).await
}
