//! Medians and the markdown tables `make bench` prints.

use std::fmt::Write;
use std::time::Duration;

use crate::coldstart::Sample;
use crate::package::PackageSize;

/// Init target: at most this many times hello-world's.
pub const INIT_RATIO_TARGET: f64 = 1.5;
/// Package target: at most this many bytes zipped (4 MB, decimal).
pub const ZIPPED_TARGET: u64 = 4_000_000;

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// One subject's runs, summarised.
#[derive(Debug, Clone)]
pub struct Summary {
    pub name: String,
    pub runs: usize,
    pub failures: usize,
    pub init_ms: Option<f64>,
    pub invoke_ms: Option<f64>,
    pub rss_mib: Option<f64>,
    /// The answers seen (deduplicated), to show what the first invocation did.
    pub answers: Vec<String>,
    pub last_error: Option<String>,
}

pub fn summarise(name: &str, results: &[Result<Sample, String>]) -> Summary {
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    let ok: Vec<&Sample> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut answers: Vec<String> = Vec::new();
    for sample in &ok {
        if !answers.contains(&sample.answer) {
            answers.push(sample.answer.clone());
        }
    }
    Summary {
        name: name.to_owned(),
        runs: results.len(),
        failures: results.len() - ok.len(),
        init_ms: median(&mut ok.iter().map(|s| ms(s.init)).collect::<Vec<_>>()),
        invoke_ms: median(
            &mut ok
                .iter()
                .map(|s| ms(s.first_invocation))
                .collect::<Vec<_>>(),
        ),
        rss_mib: median(
            &mut ok
                .iter()
                .map(|s| s.peak_rss_kib as f64 / 1024.0)
                .collect::<Vec<_>>(),
        ),
        answers,
        last_error: results.iter().rev().find_map(|r| r.as_ref().err().cloned()),
    }
}

fn ratio(value: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 => Some(v / b),
        _ => None,
    }
}

fn cell(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// The cold-start table: medians and ratios to `hello` (the first summary).
pub fn coldstart_table(hello: &Summary, functions: &[Summary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| function | init ms | init × hello | ≤ {INIT_RATIO_TARGET}× | first invocation ms | × hello | peak RSS MiB | answer |"
    );
    let _ = writeln!(out, "|---|---:|---:|:-:|---:|---:|---:|---|");
    for summary in std::iter::once(hello).chain(functions) {
        let init_ratio = ratio(summary.init_ms, hello.init_ms);
        let verdict = match init_ratio {
            _ if summary.name == hello.name => "",
            Some(r) if r <= INIT_RATIO_TARGET => "✓",
            Some(_) => "✗",
            None => "?",
        };
        let mut answer = summary.answers.join(", ");
        if summary.failures > 0 {
            let _ = write!(
                answer,
                " ({} of {} failed: {})",
                summary.failures,
                summary.runs,
                summary.last_error.as_deref().unwrap_or_default()
            );
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            summary.name,
            cell(summary.init_ms, 2),
            cell(init_ratio, 2),
            verdict,
            cell(summary.invoke_ms, 2),
            cell(ratio(summary.invoke_ms, hello.invoke_ms), 1),
            cell(summary.rss_mib, 1),
            answer.trim(),
        );
    }
    out
}

/// The package table: binary and zipped sizes, ratio to hello, the 4 MB target.
pub fn size_table(hello: (&str, PackageSize), functions: &[(String, PackageSize)]) -> String {
    let mb = |bytes: u64| bytes as f64 / 1_000_000.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| function | binary MB | zipped MB | zipped × hello | ≤ {} MB zipped |",
        ZIPPED_TARGET / 1_000_000
    );
    let _ = writeln!(out, "|---|---:|---:|---:|:-:|");
    let rows =
        std::iter::once((hello.0, hello.1)).chain(functions.iter().map(|(n, s)| (n.as_str(), *s)));
    for (name, size) in rows {
        let verdict = if name == hello.0 {
            ""
        } else if size.zipped <= ZIPPED_TARGET {
            "✓"
        } else {
            "✗"
        };
        let _ = writeln!(
            out,
            "| {name} | {:.2} | {:.2} | {:.1} | {verdict} |",
            mb(size.binary),
            mb(size.zipped),
            size.zipped as f64 / hello.1.zipped.max(1) as f64,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn the_size_table_marks_the_target() {
        let hello = PackageSize {
            binary: 3_000_000,
            zipped: 1_000_000,
        };
        let small = PackageSize {
            binary: 9_000_000,
            zipped: 3_900_000,
        };
        let big = PackageSize {
            binary: 19_000_000,
            zipped: 7_000_000,
        };
        let table = size_table(
            ("hello-lambda", hello),
            &[("small".into(), small), ("big".into(), big)],
        );
        assert!(
            table.contains("| small | 9.00 | 3.90 | 3.9 | ✓ |"),
            "{table}"
        );
        assert!(
            table.contains("| big | 19.00 | 7.00 | 7.0 | ✗ |"),
            "{table}"
        );
    }
}
