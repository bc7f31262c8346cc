//! `functions/exchange`: retired on 2026-06-30. The template routes `ANY
//! /api/v1/exchange` and `ANY /api/v1/exchange/{proxy+}` answer every method with `410
//! EXCHANGE_SUNSET` and the `Sunset`, `Deprecation` and `Link` headers; OpenAPI has no
//! `ANY` nor greedy `{proxy+}`, so each is listed for GET, POST, PUT, PATCH and DELETE,
//! the second as `{proxy}`.

use aicity_domain::ErrorCode::ExchangeSunset;

use crate::{ANYONE, Op, Registry};

const DESCRIPTION: &str = "Retired on 2026-06-30: every method answers 410 EXCHANGE_SUNSET with `Sunset`, `Deprecation` and `Link` headers; `details` names the old SDK method (`method`), the Tasks route that replaced it (`replacement`, or null and a `reason`) and the `migrationGuide`, docs/migration-exchange-to-tasks.md.";

pub fn operations(_r: &mut Registry) -> Vec<Op> {
    let root = [
        ("GET", "exchangeGet"),
        ("POST", "exchangePost"),
        ("PUT", "exchangePut"),
        ("PATCH", "exchangePatch"),
        ("DELETE", "exchangeDelete"),
    ];
    let nested = [
        ("GET", "exchangePathGet"),
        ("POST", "exchangePathPost"),
        ("PUT", "exchangePathPut"),
        ("PATCH", "exchangePathPatch"),
        ("DELETE", "exchangePathDelete"),
    ];
    let sunset = |method: &'static str, path: &'static str, id: &'static str, summary| {
        Op::new(method, path, id)
            .tag("Exchange")
            .summary(summary)
            .describe(DESCRIPTION)
            .auth(ANYONE)
            .deprecated()
            .gone()
            .errors(&[ExchangeSunset])
    };
    root.into_iter()
        .map(|(method, id)| {
            sunset(
                method,
                "/api/v1/exchange",
                id,
                "The retired Exchange (410 EXCHANGE_SUNSET)",
            )
        })
        .chain(nested.into_iter().map(|(method, id)| {
            sunset(
                method,
                "/api/v1/exchange/{proxy}",
                id,
                "A route of the retired Exchange (410 EXCHANGE_SUNSET)",
            )
        }))
        .collect()
}
