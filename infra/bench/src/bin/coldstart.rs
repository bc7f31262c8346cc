//! Cold start and package size of every function against a hello-world binary.
//!
//! `coldstart <BIN_DIR>` runs each function binary of `BIN_DIR` (and hello-lambda) under a
//! minimal Runtime API, alternating binaries run by run, and prints markdown tables of
//! the medians and of the zipped packages. `scripts/bench-coldstart.sh` builds the
//! binaries, starts the emulators and runs it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aicity_bench::coldstart::{Launch, Sample, run_once};
use aicity_bench::events::{self, FUNCTIONS, HELLO};
use aicity_bench::package;
use aicity_bench::report;
use clap::Parser;

#[derive(Parser)]
#[command(
    about = "Cold start (init, first invocation, peak RSS) and zipped size of every function vs. hello-world"
)]
struct Cli {
    /// Directory holding the release binaries (`target/release`).
    bin_dir: PathBuf,
    /// The hello-world binary (default: BIN_DIR/hello-lambda).
    #[arg(long)]
    hello: Option<PathBuf>,
    /// KEY=value lines every function gets (`aicity-local provision --env-file`).
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// Measured runs of each binary.
    #[arg(long, env = "BENCH_RUNS", default_value_t = 15)]
    runs: u32,
    /// Unmeasured runs of each binary first (page cache, emulator warm-up).
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Only these functions (comma-separated); default every function.
    #[arg(long, value_delimiter = ',')]
    functions: Vec<String>,
    /// A title for the tables ("before", "after").
    #[arg(long, default_value = "")]
    label: String,
    /// Where the functions' logs go (one file per function, last run).
    #[arg(long, default_value = "/tmp/aicity-bench-logs")]
    logs: PathBuf,
    /// Seconds one run may take.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Only the package sizes.
    #[arg(long)]
    sizes_only: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let hello = cli.hello.clone().unwrap_or_else(|| cli.bin_dir.join(HELLO));
    let names: Vec<String> = if cli.functions.is_empty() {
        FUNCTIONS.iter().map(|(n, _)| (*n).to_owned()).collect()
    } else {
        cli.functions.clone()
    };
    for name in &names {
        if events::trigger(name).is_none() {
            return Err(format!("no bench event for function {name}").into());
        }
    }
    let mut subjects = vec![(HELLO.to_owned(), hello)];
    subjects.extend(names.iter().map(|n| (n.clone(), cli.bin_dir.join(n))));
    for (_, binary) in &subjects {
        if !binary.is_file() {
            return Err(format!("{} is missing (build it first)", binary.display()).into());
        }
    }
    let title = if cli.label.is_empty() {
        String::new()
    } else {
        format!(" ({})", cli.label)
    };
    let arch = package::architecture(&subjects[1.min(subjects.len() - 1)].1);
    println!(
        "{arch} release binaries from {} — the template ships arm64; this machine builds x86_64 only, so sizes and times are x86_64's.\n",
        cli.bin_dir.display()
    );
    if !cli.sizes_only {
        let env = match &cli.env_file {
            Some(file) => read_env_file(file)?,
            None => Vec::new(),
        };
        let summaries = coldstarts(&cli, &subjects, &env)?;
        println!(
            "### Cold start{title}: medians of {} runs each, alternating binaries\n",
            cli.runs
        );
        println!(
            "init = exec → first `GET /runtime/invocation/next`; first invocation = event handed out → response received.\n"
        );
        print!(
            "{}",
            report::coldstart_table(&summaries[0], &summaries[1..])
        );
        println!();
    }
    let mut sizes = Vec::new();
    for (name, binary) in &subjects {
        sizes.push((name.clone(), package::measure(binary)?));
    }
    println!("### Package size{title}: `bootstrap` in a deflated zip, as `sam build` ships it\n");
    print!("{}", report::size_table((HELLO, sizes[0].1), &sizes[1..]));
    Ok(())
}

/// Every subject `warmup + runs` times, alternating: hello, f1, f2, …, hello, f1, …
fn coldstarts(
    cli: &Cli,
    subjects: &[(String, PathBuf)],
    env: &[(String, String)],
) -> Result<Vec<report::Summary>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&cli.logs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let launches: Vec<Launch> = subjects
        .iter()
        .map(|(name, binary)| Launch {
            name: name.clone(),
            binary: std::fs::canonicalize(binary).unwrap_or_else(|_| binary.clone()),
            env: child_env(env),
            log: cli.logs.join(format!("{name}.log")),
            memory_mb: 256,
            timeout: Duration::from_secs(cli.timeout),
        })
        .collect();
    let mut results: Vec<Vec<Result<Sample, String>>> = vec![Vec::new(); launches.len()];
    for run in 0..cli.warmup + cli.runs {
        for (launch, results) in launches.iter().zip(results.iter_mut()) {
            let trigger = events::trigger(&launch.name).expect("checked above");
            let event = events::event(trigger, run + 1);
            let result = runtime.block_on(run_once(launch, &event));
            if let Err(err) = &result {
                eprintln!("{} run {}: {err}", launch.name, run + 1);
            }
            if run >= cli.warmup {
                results.push(result);
            }
        }
        eprintln!("run {} of {} done", run + 1, cli.warmup + cli.runs);
    }
    Ok(launches
        .iter()
        .zip(&results)
        .map(|(launch, results)| report::summarise(&launch.name, results))
        .collect())
}

/// The env file's variables, then this process's AWS settings (credentials, region,
/// emulator endpoints), which win: they say where the table really is.
fn child_env(file: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = file.to_vec();
    for (key, value) in std::env::vars() {
        let aws = matches!(
            key.as_str(),
            "AWS_ACCESS_KEY_ID"
                | "AWS_SECRET_ACCESS_KEY"
                | "AWS_SESSION_TOKEN"
                | "AWS_REGION"
                | "AWS_DEFAULT_REGION"
        ) || key.starts_with("AWS_ENDPOINT_URL");
        if aws {
            env.retain(|(k, _)| *k != key);
            env.push((key, value));
        }
    }
    for (key, default) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ] {
        if !env.iter().any(|(k, _)| k == key) {
            env.push((key.to_owned(), default.to_owned()));
        }
    }
    env
}

fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect())
}
