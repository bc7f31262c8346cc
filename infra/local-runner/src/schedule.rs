//! Schedules, locally: fires a function with an EventBridge "Scheduled Event".

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::invoke::Invoker;

/// The period of a `rate(N unit)` expression. `cron(…)` is not run locally.
pub fn rate_period(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(char::is_whitespace)?;
    let count: u64 = count.parse().ok().filter(|c| *c > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(count * seconds))
}

pub fn scheduled_event(rule: &str, region: &str, now: OffsetDateTime) -> Value {
    json!({
        "version": "0",
        "id": ulid::Ulid::generate().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": crate::resources::LOCAL_ACCOUNT,
        "time": now.replace_nanosecond(0).unwrap_or(now).format(&Rfc3339).unwrap_or_default(),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:{}:rule/{rule}", crate::resources::LOCAL_ACCOUNT)],
        "detail": {},
    })
}

/// One schedule of one function.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub function: String,
    pub rule: String,
    pub period: Duration,
    pub timeout: Duration,
}

/// Fires once now.
pub async fn fire(invoker: &dyn Invoker, schedule: &Schedule, region: &str) {
    let event = scheduled_event(&schedule.rule, region, OffsetDateTime::now_utc());
    match invoker
        .invoke(&schedule.function, event, schedule.timeout)
        .await
    {
        Ok(output) => tracing::info!(rule = schedule.rule, %output, "schedule fired"),
        Err(err) => {
            tracing::warn!(rule = schedule.rule, error = %err, "scheduled invocation failed")
        }
    }
}

/// Fires every period, the first time one period after start (as EventBridge does).
pub async fn run(invoker: Arc<dyn Invoker>, schedule: Schedule, region: String) {
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + schedule.period,
        schedule.period,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        fire(invoker.as_ref(), &schedule, &region).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(
            rate_period("rate(5 minutes)"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(rate_period("rate(1 hour)"), Some(Duration::from_secs(3600)));
        assert_eq!(
            rate_period("rate(2 days)"),
            Some(Duration::from_secs(172_800))
        );
        assert_eq!(rate_period("rate(0 minutes)"), None);
        assert_eq!(rate_period("cron(0 12 * * ? *)"), None);
    }

    #[test]
    fn the_event_parses_as_a_cloudwatch_event() {
        let event = scheduled_event("r", "us-east-1", OffsetDateTime::now_utc());
        let parsed: aws_lambda_events::cloudwatch_events::CloudWatchEvent =
            serde_json::from_value(event).unwrap();
        assert_eq!(parsed.detail_type.as_deref(), Some("Scheduled Event"));
    }
}
