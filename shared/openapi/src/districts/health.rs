//! `functions/health`: open to anyone, 60 requests a minute per IP.

use aicity_domain::ErrorCode::*;
use serde_json::json;

use crate::{ANYONE, Op, Registry};

pub fn operations(r: &mut Registry) -> Vec<Op> {
    let probe = r.named(
        "Probe",
        json!({
            "type": "object",
            "required": ["probeId", "status", "source", "sentAt"],
            "properties": {
                "probeId": {"type": "string", "pattern": "^prb_"},
                "status": {"type": "string", "enum": ["sent", "received"]},
                "source": {"type": "string", "enum": ["api", "schedule"]},
                "sentAt": {"type": "string", "format": "date-time"},
                "receivedAt": {"type": "string", "format": "date-time"}
            }
        }),
    );
    let status = json!({
        "type": "object",
        "required": ["status", "checks", "canary"],
        "properties": {
            "status": {"type": "string", "const": "ok"},
            "checks": {"type": "object", "properties": {"dynamodb": {
                "type": "object",
                "required": ["status", "latencyMs"],
                "properties": {"status": {"type": "string", "const": "ok"}, "latencyMs": {"type": "integer", "minimum": 0}}
            }}},
            "canary": {"oneOf": [{"type": "null"}, {
                "type": "object",
                "required": ["lastProbeId", "lastReceivedAt"],
                "properties": {
                    "lastProbeId": {"type": "string"},
                    "lastReceivedAt": {"type": "string", "format": "date-time"}
                }
            }]}
        }
    });
    vec![
        Op::get("/api/v1/health", "getHealth")
            .tag("Health")
            .summary("Is the API up and can it reach its table")
            .auth(ANYONE)
            .ok(status)
            .example(json!({"status": "ok", "checks": {"dynamodb": {"status": "ok", "latencyMs": 4}}, "canary": null}))
            .errors(&[ServiceUnavailable]),
        Op::post("/api/v1/health/probes", "sendProbe")
            .tag("Health")
            .summary("Send a probe through the canary queue")
            .auth(ANYONE)
            .created(probe.clone())
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/health/probes/{probeId}", "getProbe")
            .tag("Health")
            .summary("Whether the queue consumer received a probe")
            .auth(ANYONE)
            .ok(probe)
            .errors(&[ValidationError, NotFound, ServiceUnavailable]),
    ]
}
