use std::convert::Infallible;

use lambda_http::{Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    aicity_http::logging::init();
    let streamer = stream::Streamer {
        ctx: aicity_http::Context::from_env().await?,
        limits: stream::StreamLimits::from_env()?,
    };
    let streamer = &streamer;
    lambda_http::run_with_streaming_response(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(Box::pin(stream::handle(streamer, request)).await)
    }))
    .await
}
