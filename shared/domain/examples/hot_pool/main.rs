//! `cargo run --release -p aicity-domain --example hot_pool [-- --seed 19 --quick]`
//!
//! How many holds per second one owner's pool sustains, today (one pool item) and
//! sharded over N items, without ever overdrawing; printed as markdown tables for
//! `docs/performance-hot-key.md`. Deterministic for a seed.

mod sim;

use sim::{Budget, Outcome, Params, Sim};

/// Holds answered 503/500 because of contention that we still call "sustained".
const MAX_FAILED_SHARE: f64 = 0.01;
const SHARDS: [u8; 6] = [1, 2, 4, 8, 16, 32];
/// Our assumption for how long a committed transaction keeps its items from others
/// (DynamoDB does not publish it; the sensitivity table shows what it changes).
const LOCK_MS: f64 = 10.0;

struct Options {
    seed: u64,
    seconds: f64,
    steps: u32,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let seed = args
        .iter()
        .position(|a| a == "--seed")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(19);
    let quick = args.iter().any(|a| a == "--quick");
    Options {
        seed,
        seconds: if quick { 6.0 } else { 12.0 },
        steps: if quick { 5 } else { 8 },
    }
}

/// Credits a hold keeps in flight at `rate` holds/s (mean 2,550 held for 3 s), and
/// what the owner spends per second (80 % posted at 30–100 %: about 1,326 a hold).
fn in_flight(rate: f64) -> f64 {
    rate * 3.0 * 2_550.0
}

fn spend_per_s(rate: f64) -> f64 {
    rate * 1_326.0
}

/// The budget levels, sized to the offered rate so each means the same at every N.
fn budgets(rate: f64) -> [(&'static str, Budget); 3] {
    [
        ("plenty", Budget::Plenty),
        // Covers what is in flight plus 10 s of spending; reloads 10 s of spending.
        (
            "enough (+10 s of spend, reloads)",
            Budget::Level {
                initial: (in_flight(rate) + 10.0 * spend_per_s(rate)) as i64,
                reload: (10.0 * spend_per_s(rate)) as i64,
            },
        ),
        // Half of what is in flight; reloads of 1 s of spending: always nearly empty.
        (
            "nearly drained (½ in flight, 1 s reloads)",
            Budget::Level {
                initial: (0.5 * in_flight(rate)) as i64,
                reload: spend_per_s(rate).max(500.0) as i64,
            },
        ),
    ]
}

/// The highest offered rate at which at most 1 % of holds fail on contention:
/// doubling, then a geometric bisection.
fn capacity(base: Params, steps: u32) -> (f64, Outcome) {
    let run = |rate: f64| {
        Sim::new(Params {
            offered_per_s: rate,
            ..base
        })
        .run()
    };
    let mut low = (0.0, Outcome::default());
    let mut high = 25.0;
    loop {
        let outcome = run(high);
        if outcome.failed_share() > MAX_FAILED_SHARE || high > 400_000.0 {
            break;
        }
        low = (high, outcome);
        high *= 2.0;
    }
    if low.0 == 0.0 {
        high = 25.0;
        low.0 = 1.0;
        low.1 = run(1.0);
    }
    for _ in 0..steps {
        let mid = (low.0 * high).sqrt();
        let outcome = run(mid);
        if outcome.failed_share() > MAX_FAILED_SHARE {
            high = mid;
        } else {
            low = (mid, outcome);
        }
    }
    low
}

fn row(label: &str, shards: &str, offered: f64, o: &Outcome) {
    println!(
        "| {label} | {shards} | {offered:.0} | **{:.0}** | {:.2} | {:.0} | {:.2} % | {:.1} | {:.1} | {:.1} | {:.0} | {} |",
        o.per_s(o.held),
        o.retries_per_hold(),
        o.per_s(o.conflicts),
        100.0 * o.failed_share(),
        o.per_s(o.refused),
        o.per_s(o.refused_with_total),
        o.per_s(o.rebalances),
        o.max_item_wcu_s,
        o.overdrafts + o.books_off,
    );
}

fn header() {
    println!(
        "| budget | shards | offered/s | sustained holds/s | retries/hold | conflicts/s | failed on contention | refused for funds/s | of which the total had it/s | rebalances/s | busiest item WCU/s | overdrafts |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
}

fn main() {
    let opts = options();
    let base = Params {
        shards: 1,
        offered_per_s: 1.0,
        seconds: opts.seconds,
        lock_ms: LOCK_MS,
        budget: Budget::Plenty,
        prewrites: false,
        unconditional: false,
        spread: true,
        seed: opts.seed,
    };
    println!(
        "hot_pool: seed {}, {} s simulated per run ({} s measured), lock {LOCK_MS} ms, at most {:.0} % of holds failing on contention\n",
        opts.seed,
        opts.seconds,
        opts.seconds - 2.0,
        100.0 * MAX_FAILED_SHARE
    );

    println!(
        "Capacity: the highest offered rate with at most 1 % of holds failing on contention\n"
    );
    header();
    let (offered, today) = capacity(
        Params {
            prewrites: true,
            ..base
        },
        opts.steps,
    );
    row("today: + 2 `vault::pool` writes", "1", offered, &today);
    let mut rates = Vec::new();
    for shards in SHARDS {
        let (offered, o) = capacity(Params { shards, ..base }, opts.steps);
        row("plenty", &shards.to_string(), offered, &o);
        rates.push((shards, offered));
    }

    println!("\nToday's layout (N = 1 with the two `vault::pool` writes) at fixed rates\n");
    header();
    for rate in [2.0, 5.0, 10.0, 20.0, 40.0] {
        let o = Sim::new(Params {
            offered_per_s: rate,
            prewrites: true,
            ..base
        })
        .run();
        row("plenty, today", "1", rate, &o);
    }

    println!(
        "\nBudgets: each N at its capacity rate from the first table, credits sized to that rate\n"
    );
    header();
    for (shards, rate) in &rates {
        for (name, budget) in budgets(*rate).into_iter().skip(1) {
            for spread in [true, false] {
                if !spread && (*shards == 1 || name.starts_with("enough")) {
                    continue;
                }
                let o = Sim::new(Params {
                    shards: *shards,
                    offered_per_s: *rate,
                    budget,
                    spread,
                    ..base
                })
                .run();
                let label = if spread {
                    name.to_owned()
                } else {
                    format!("{name}, top-ups not spread")
                };
                row(&label, &shards.to_string(), *rate, &o);
            }
        }
    }

    println!("\nSensitivity to the conflict window (plenty of credits): sustained holds/s\n");
    println!("| lock | N = 1 | N = 4 | N = 16 | N = 32 |");
    println!("|---|---|---|---|---|");
    for lock_ms in [2.0, 5.0, 10.0, 20.0] {
        let cells: Vec<String> = [1u8, 4, 16, 32]
            .iter()
            .map(|&shards| {
                let (_, o) = capacity(
                    Params {
                        shards,
                        lock_ms,
                        ..base
                    },
                    opts.steps,
                );
                format!("{:.0}", o.per_s(o.held))
            })
            .collect();
        println!("| {lock_ms} ms | {} |", cells.join(" | "));
    }

    println!(
        "\nControl: the same holds checked on a snapshot and written without a condition (N = 8, nearly drained, 400 offered/s)\n"
    );
    header();
    for unconditional in [false, true] {
        let o = Sim::new(Params {
            shards: 8,
            offered_per_s: 400.0,
            budget: budgets(400.0)[2].1,
            unconditional,
            ..base
        })
        .run();
        let label = if unconditional {
            "nearly drained, no condition"
        } else {
            "nearly drained, conditional"
        };
        row(label, "8", 400.0, &o);
    }
}
