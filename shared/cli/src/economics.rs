//! How `aicity tasks estimate` and `aicity agents profitability` print their answers.

use aicity_sdk::economics::{Estimate, ProfitLine, Profitability};

fn cents(amount: Option<i64>) -> String {
    match amount {
        None => "-".into(),
        Some(c) => {
            let sign = if c < 0 { "-" } else { "" };
            let abs = c.unsigned_abs();
            format!("{sign}${}.{:02}", abs / 100, abs % 100)
        }
    }
}

pub fn estimate_text(e: &Estimate) -> String {
    let budget = e.max_budget.map_or_else(
        || "any budget".to_owned(),
        |b| format!("a budget of {}", cents(Some(b))),
    );
    let h = &e.history;
    let history = if h.completed == 0 {
        "no completed tasks yet".to_owned()
    } else {
        format!(
            "{} completed, {} charged on average, quality {}, {} ms",
            h.completed,
            cents(h.avg_charged),
            h.avg_quality_score.map_or("-".into(), |s| s.to_string()),
            h.avg_execution_time_ms
                .map_or("-".into(), |ms| ms.to_string())
        )
    };
    format!(
        "{} within {budget}: {} eligible agents\n  price  min {}  p50 {}  p90 {}  max {}\n  history  {history}",
        e.task_type,
        e.eligible_agents,
        cents(e.price.min),
        cents(e.price.p50),
        cents(e.price.p90),
        cents(e.price.max),
    )
}

fn row(name: &str, l: &ProfitLine) -> String {
    format!(
        "{name:<18} {:>6} {:>12} {:>12} {:>12} {:>12}",
        l.tasks,
        cents(Some(l.revenue)),
        cents(Some(l.fees)),
        cents(Some(l.refunds)),
        cents(Some(l.net))
    )
}

pub fn profitability_text(p: &Profitability) -> String {
    let since = p
        .since
        .as_deref()
        .map_or_else(|| "all time".to_owned(), |d| format!("since {d}"));
    let mut lines = vec![
        format!("{} ({}, {since})", p.agent_id, p.period),
        format!(
            "{:<18} {:>6} {:>12} {:>12} {:>12} {:>12}",
            "category", "tasks", "revenue", "fees", "refunds", "net"
        ),
    ];
    lines.extend(p.categories.iter().map(|(c, l)| row(c, l)));
    lines.push(row("total", &p.totals));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use aicity_sdk::economics::{EstimateHistory, PriceSpread};

    use super::*;

    #[test]
    fn prints_the_figures_in_dollars() {
        let e = Estimate {
            task_type: "code_review".into(),
            max_budget: Some(2_500),
            eligible_agents: 2,
            price: PriceSpread {
                min: Some(1_000),
                p50: Some(1_000),
                p90: Some(2_000),
                max: Some(2_000),
            },
            history: EstimateHistory {
                completed: 4,
                avg_charged: Some(1_750),
                avg_quality_score: Some(84),
                avg_execution_time_ms: Some(2_500),
            },
        };
        assert_eq!(
            estimate_text(&e),
            "code_review within a budget of $25.00: 2 eligible agents\n  price  min $10.00  p50 $10.00  p90 $20.00  max $20.00\n  history  4 completed, $17.50 charged on average, quality 84, 2500 ms"
        );
        let line = ProfitLine {
            tasks: 2,
            revenue: 2_000,
            fees: 150,
            refunds: 1_000,
            net: 850,
        };
        let p = Profitability {
            agent_id: "ag_1".into(),
            period: "30d".into(),
            since: Some("2026-03-02".into()),
            categories: BTreeMap::from([("code_review".to_owned(), line)]),
            totals: line,
        };
        let text = profitability_text(&p);
        assert!(text.starts_with("ag_1 (30d, since 2026-03-02)\n"), "{text}");
        assert!(
            text.contains(
                "code_review             2       $20.00        $1.50       $10.00        $8.50"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(
                "total                   2       $20.00        $1.50       $10.00        $8.50"
            ),
            "{text}"
        );
    }
}
