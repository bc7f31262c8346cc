//! `webhook-delivery`: consumes the webhooks queue, which carries two kinds of message.
//!
//! - `{"eventId"}` (sent by the step that recorded the event, or by the sweeper): the
//!   fan-out. One delivery per subscription of each recipient that asked for the
//!   event's type, created idempotently (its key is the pair), one delivery message per
//!   pending delivery, then the event is off the sweeper's watch.
//! - `{"subscriptionId","eventId","series"}`: one attempt. The event's body is POSTed,
//!   signed (`AICity-Signature`, a fresh timestamp each attempt) with `AICity-Event-Id`,
//!   10 s timeout, no redirects, only to the address the SSRF guard checked. The attempt
//!   goes into the delivery's log. A 2xx delivers it; anything else sets the message's
//!   visibility to the next backoff (`WEBHOOK_RETRY_SECONDS`) and reports it failed, so
//!   SQS brings it back; the last attempt marks the delivery `failed` and the queue's
//!   redrive policy moves the message to the DLQ. A subscription failing for
//!   `WEBHOOK_DISABLE_AFTER_HOURS` is disabled.
//!
//! Idempotent: a delivered (or superseded) delivery's message does nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aicity_domain::task::timing::{Clock, SystemClock};
use aicity_domain::webhooks::{
    self as domain, Attempt, Delivery, DeliveryStatus, RetrySchedule, SubscriptionStatus,
    WebhookEvent,
};
use aicity_http::Context;
use aicity_http::ssrf::{self, Resolver};
use aicity_store::StoreError;
use aicity_store::config::{MissingEnv, env_var};
use aicity_store::sealing::SecretSealer;
use aicity_store::webhooks::{self as store, DeliveryMessage, DeliveryRecord};
use aicity_tasks::webhook_events::EventMessage;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use time::OffsetDateTime;

pub struct Deliverer {
    pub ctx: Context,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// Opens signing secrets; `None`: nothing can be signed, attempts wait (and log).
    pub sealer: Option<Arc<dyn SecretSealer>>,
    pub allow_loopback: bool,
    pub resolver: Arc<dyn Resolver>,
    pub schedule: RetrySchedule,
    /// A subscription failing this long is disabled.
    pub disable_after: Duration,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Deliverer {
    /// `WEBHOOK_QUEUE_URL`, `WEBHOOK_SECRET_KEY`, `WEBHOOK_ALLOW_LOOPBACK`,
    /// `WEBHOOK_RETRY_SECONDS`, `WEBHOOK_DISABLE_AFTER_HOURS`.
    pub async fn from_env() -> Result<Self, MissingEnv> {
        let ctx = Context::from_env().await?;
        let schedule = match std::env::var("WEBHOOK_RETRY_SECONDS") {
            Ok(raw) if !raw.trim().is_empty() => {
                RetrySchedule::parse(&raw).map_err(|_| MissingEnv("WEBHOOK_RETRY_SECONDS"))?
            }
            _ => RetrySchedule::default(),
        };
        let hours = match std::env::var("WEBHOOK_DISABLE_AFTER_HOURS") {
            Ok(raw) if !raw.trim().is_empty() => raw
                .trim()
                .parse::<u64>()
                .map_err(|_| MissingEnv("WEBHOOK_DISABLE_AFTER_HOURS"))?,
            _ => domain::DEFAULT_DISABLE_AFTER_HOURS,
        };
        let sealer: Option<Arc<dyn SecretSealer>> =
            match aicity_store::sealing::AesGcmSealer::from_env() {
                Ok(Some(sealer)) => Some(Arc::new(sealer)),
                Ok(None) => {
                    tracing::error!("WEBHOOK_SECRET_KEY is not set: webhooks cannot be signed");
                    None
                }
                Err(err) => {
                    tracing::error!(error = %err, "WEBHOOK_SECRET_KEY is unusable: webhooks cannot be signed");
                    None
                }
            };
        Ok(Self {
            sqs: ctx.clients.sqs.clone(),
            queue_url: env_var("WEBHOOK_QUEUE_URL")?,
            sealer,
            allow_loopback: std::env::var("WEBHOOK_ALLOW_LOOPBACK")
                .is_ok_and(|v| matches!(v.trim(), "1" | "true")),
            resolver: Arc::new(ssrf::SystemResolver),
            schedule,
            disable_after: Duration::from_secs(hours * 3600),
            timeout: Duration::from_secs(domain::DELIVERY_TIMEOUT_SECONDS),
            clock: Arc::new(SystemClock),
            ctx,
        })
    }
}

/// What a message on the webhooks queue asks for.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Message {
    Deliver(DeliveryMessage),
    FanOut(EventMessage),
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    /// Try again after the queue's visibility timeout.
    Retry,
    /// Try again after this long (its visibility set to it).
    RetryAfter(Duration),
}

pub async fn handle(deliverer: &Deliverer, batch: SqsEvent) -> SqsBatchResponse {
    // Attempts wait on receivers (up to the timeout each): run the batch's side by side.
    let outcomes = futures::future::join_all(
        batch
            .records
            .iter()
            .map(|message| process(deliverer, message)),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    for (message, outcome) in batch.records.iter().zip(outcomes) {
        if outcome == Outcome::Done {
            continue;
        }
        if let (Outcome::RetryAfter(delay), Some(receipt)) = (outcome, &message.receipt_handle) {
            let changed = deliverer
                .sqs
                .change_message_visibility()
                .queue_url(&deliverer.queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(delay.as_secs().min(43_200) as i32)
                .send()
                .await;
            if let Err(err) = changed {
                tracing::warn!(error = %StoreError::aws(err), "backoff not set; the queue's visibility timeout applies");
            }
        }
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message.message_id.clone().unwrap_or_default();
        response.batch_item_failures.push(failure);
    }
    response
}

/// Which receive of its message this is (1 for the first).
fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

async fn process(deliverer: &Deliverer, message: &SqsMessage) -> Outcome {
    let body = message.body.as_deref().unwrap_or_default();
    let parsed: Result<Message, _> = serde_json::from_str(body);
    let result = match parsed {
        Ok(Message::FanOut(EventMessage { event_id })) => fan_out(deliverer, &event_id).await,
        Ok(Message::Deliver(request)) => attempt(deliverer, &request, receive_count(message)).await,
        Err(_) => {
            // It will never parse: leave it to the DLQ rather than lose it silently.
            // Its id and size, never its body.
            tracing::warn!(
                message_id = message.message_id.as_deref().unwrap_or_default(),
                bytes = body.len(),
                "unreadable webhooks message"
            );
            return Outcome::Retry;
        }
    };
    result.unwrap_or_else(|err| {
        tracing::error!(error = %err, "webhooks message failed; will retry");
        Outcome::Retry
    })
}

// ---------------------------------------------------------------- fan-out

async fn fan_out(deliverer: &Deliverer, event_id: &str) -> Result<Outcome, StoreError> {
    let ctx = &deliverer.ctx;
    let record = match aicity_store::webhook_events::get(ctx.db(), &ctx.table, event_id).await {
        Ok(record) => record,
        Err(StoreError::NotFound) => {
            tracing::warn!(event_id, "webhook event not found (expired?); dropping");
            return Ok(Outcome::Done);
        }
        Err(err) => return Err(err),
    };
    let event = record.event;
    let now = deliverer.clock.now();
    let stamp = aicity_domain::timestamps::format(now);
    let mut to_send = Vec::new();
    for recipient in &event.recipients {
        let subscriptions = store::of_principal(ctx.db(), &ctx.table, recipient).await?;
        for subscription in subscriptions.iter().filter(|s| s.wants(event.kind)) {
            let delivery = DeliveryRecord {
                delivery: Delivery {
                    id: domain::delivery_id(&event.id),
                    event_id: event.id.clone(),
                    event_type: event.kind,
                    status: DeliveryStatus::Pending,
                    attempts: Vec::new(),
                    created_at: stamp.clone(),
                    updated_at: stamp.clone(),
                },
                subscription_id: subscription.subscription.id.clone(),
                series: 1,
            };
            let created = store::create_delivery(ctx.db(), &ctx.table, &delivery, now).await?;
            // A fan-out that died after creating the delivery but before sending its
            // message: this one sends it. One that was attempted already needs none.
            let send = created || {
                let existing = store::get_delivery(
                    ctx.db(),
                    &ctx.table,
                    &delivery.subscription_id,
                    &delivery.delivery.id,
                )
                .await?;
                existing.delivery.status == DeliveryStatus::Pending
                    && existing.delivery.attempts.is_empty()
                    && existing.series == 1
            };
            if send {
                to_send.push(DeliveryMessage {
                    subscription_id: delivery.subscription_id,
                    event_id: event.id.clone(),
                    series: 1,
                });
            }
        }
    }
    for message in &to_send {
        aicity_store::queue::send_json(&deliverer.sqs, &deliverer.queue_url, message).await?;
    }
    aicity_store::webhook_events::mark_dispatched(ctx.db(), &ctx.table, &event.id, now).await?;
    tracing::info!(event_id = %event.id, kind = event.kind.as_str(), deliveries = to_send.len(), "webhook event fanned out");
    Ok(Outcome::Done)
}

// ---------------------------------------------------------------- attempts

async fn attempt(
    deliverer: &Deliverer,
    request: &DeliveryMessage,
    receive: u32,
) -> Result<Outcome, StoreError> {
    let ctx = &deliverer.ctx;
    let (db, table) = (ctx.db(), ctx.table.as_str());
    let delivery_id = domain::delivery_id(&request.event_id);
    let delivery =
        match store::get_delivery(db, table, &request.subscription_id, &delivery_id).await {
            Ok(delivery) => delivery,
            Err(StoreError::NotFound) => return Ok(Outcome::Done),
            Err(err) => return Err(err),
        };
    if delivery.delivery.status != DeliveryStatus::Pending || delivery.series != request.series {
        // Delivered or failed already, or redelivered since (that series has its own
        // message): nothing to do.
        return Ok(Outcome::Done);
    }
    let now = deliverer.clock.now();
    let subscription = match store::get(db, table, &request.subscription_id).await {
        Ok(subscription) => subscription,
        Err(StoreError::NotFound) => {
            store::fail_pending(db, table, &delivery, now).await?;
            return Ok(Outcome::Done);
        }
        Err(err) => return Err(err),
    };
    if subscription.subscription.status == SubscriptionStatus::Disabled {
        store::fail_pending(db, table, &delivery, now).await?;
        return Ok(Outcome::Done);
    }
    let event = match aicity_store::webhook_events::get(db, table, &request.event_id).await {
        Ok(record) => record.event,
        Err(StoreError::NotFound) => {
            store::fail_pending(db, table, &delivery, now).await?;
            return Ok(Outcome::Done);
        }
        Err(err) => return Err(err),
    };
    let Some(sealer) = &deliverer.sealer else {
        tracing::error!("no WEBHOOK_SECRET_KEY: cannot sign; the delivery waits");
        return Ok(Outcome::Retry);
    };
    let secret = match sealer
        .open(&subscription.secret_sealed, &subscription.subscription.id)
        .await
    {
        Ok(secret) => secret,
        Err(err) => {
            tracing::error!(error = %err, subscription = %subscription.subscription.id, "signing secret does not open");
            return Ok(Outcome::Retry);
        }
    };

    let tried = post(deliverer, &subscription.subscription.url, &event, &secret).await;
    let at = deliverer.clock.now();
    if tried.succeeded() {
        let recorded = store::record_attempt(
            db,
            table,
            &delivery,
            &tried,
            Some(DeliveryStatus::Delivered),
            at,
        )
        .await?;
        store::clear_failure(db, table, &subscription.subscription.id).await?;
        tracing::info!(event_id = %event.id, subscription = %subscription.subscription.id, recorded, "webhook delivered");
        return Ok(Outcome::Done);
    }

    let last = receive >= deliverer.schedule.max_attempts();
    let failing_since = store::record_failure(db, table, &subscription.subscription.id, at).await?;
    let too_long = failing_since
        .as_deref()
        .and_then(aicity_domain::timestamps::parse)
        .is_some_and(|since| at - since >= deliverer.disable_after);
    let disabled = too_long && store::disable(db, table, &subscription.subscription.id, at).await?;
    if disabled {
        tracing::warn!(subscription = %subscription.subscription.id, "webhook subscription failing too long; disabled");
    }
    let status = (last || too_long).then_some(DeliveryStatus::Failed);
    let recorded = store::record_attempt(db, table, &delivery, &tried, status, at).await?;
    tracing::info!(
        event_id = %event.id, subscription = %subscription.subscription.id, receive,
        status_code = ?tried.status_code, error = ?tried.error, recorded, "webhook attempt failed"
    );
    if !recorded || too_long {
        // Superseded by a redelivery, or no more attempts for a disabled subscription.
        return Ok(Outcome::Done);
    }
    if last {
        // The queue's redrive policy takes it to the DLQ on its next receive.
        return Ok(Outcome::RetryAfter(Duration::ZERO));
    }
    let delay = deliverer
        .schedule
        .delay_after(receive)
        .unwrap_or(Duration::ZERO);
    Ok(Outcome::RetryAfter(delay))
}

/// One POST of the event to `url`, as an attempt for the log. Errors say what happened
/// in words a subscriber can act on, nothing of our internals.
async fn post(deliverer: &Deliverer, url: &str, event: &WebhookEvent, secret: &[u8]) -> Attempt {
    let at = aicity_domain::timestamps::format(deliverer.clock.now());
    let started = Instant::now();
    let failed = |error: String, status_code: Option<u16>, started: Instant| Attempt {
        at: at.clone(),
        status_code,
        latency_ms: started.elapsed().as_millis() as u64,
        error: Some(error),
    };
    // Checked again at every attempt: the URL's host may resolve elsewhere by now.
    let checked =
        match ssrf::check(url, deliverer.allow_loopback, deliverer.resolver.as_ref()).await {
            Ok(checked) => checked,
            Err(refusal) => return failed(format!("refused: the URL {refusal}"), None, started),
        };
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(deliverer.timeout)
        .connect_timeout(deliverer.timeout)
        // A proxy would connect elsewhere than the address checked.
        .no_proxy();
    if let Some(name) = checked.name() {
        // Connect only to the address the guard checked (no second lookup to rebind).
        builder = builder.resolve(name, checked.addr);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "HTTP client not built");
            return failed("internal error before sending".into(), None, started);
        }
    };
    let body = event.body();
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let started = Instant::now();
    let sent = client
        .post(checked.target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "AICity-Webhooks/1.0")
        .header(domain::EVENT_ID_HEADER, &event.id)
        .header(
            domain::SIGNATURE_HEADER,
            domain::signature_header(secret, timestamp, &body),
        )
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let code = response.status().as_u16();
            let latency_ms = started.elapsed().as_millis() as u64;
            let error = match code {
                200..=299 => None,
                300..=399 => Some(format!("redirect (HTTP {code}) not followed")),
                _ => Some(format!("HTTP {code}")),
            };
            Attempt {
                at,
                status_code: Some(code),
                latency_ms,
                error,
            }
        }
        Err(err) => {
            let error = if err.is_timeout() {
                format!("no answer within {} s", deliverer.timeout.as_secs())
            } else if err.is_connect() {
                "could not connect".to_owned()
            } else {
                "the request failed".to_owned()
            };
            failed(error, None, started)
        }
    }
}
