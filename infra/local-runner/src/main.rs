use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aicity_local::invoke::InvokeApi;
use aicity_local::resources;
use aicity_local::runner::{self, Clients, RunnerConfig, anyhow_like};
use aicity_local::template::Template;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    about = "Run the SAM template locally: emulator resources, HTTP API, queue pollers, schedules"
)]
struct Cli {
    /// The SAM template.
    #[arg(long, default_value = "infra/template.yaml", global = true)]
    template: PathBuf,
    /// Prefix of every table and queue name.
    #[arg(
        long,
        env = "AICITY_LOCAL_PREFIX",
        default_value = "aicity-local-",
        global = true
    )]
    prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the tables and queues, write the functions' environment file, exit.
    Provision {
        /// Where to write KEY=value lines for `cargo lambda watch --env-file`.
        #[arg(long, default_value = ".local/functions.env")]
        env_file: PathBuf,
    },
    /// Provision, then serve the HTTP API and run the pollers and schedules.
    Serve {
        #[arg(long, env = "AICITY_LOCAL_LISTEN", default_value = "127.0.0.1:4000")]
        listen: SocketAddr,
        /// The Lambda Invoke API (`cargo lambda watch`).
        #[arg(
            long,
            env = "AICITY_LOCAL_INVOKE_URL",
            default_value = "http://127.0.0.1:9000"
        )]
        invoke_url: String,
        /// Extra seconds an invocation may take: the first call of a function compiles it.
        #[arg(long, default_value_t = 600)]
        invoke_grace_seconds: u64,
        /// SQS long-poll wait in seconds (0 to 20).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(0..=20))]
        sqs_wait_seconds: i32,
        /// Fire every schedule once right after start, then at its rate.
        #[arg(long)]
        fire_schedules_now: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow_like::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
    let cli = Cli::parse();
    // A parameter is overridden by the environment variable named after it
    // (`AdminEmails` by `ADMIN_EMAILS`): how `make dev` sets local values.
    let template = Template::load_with(&cli.template, |parameter| {
        let name = aicity_local::template::parameter_env_name(parameter);
        let value = std::env::var(&name).ok().filter(|v| !v.is_empty())?;
        tracing::info!(
            parameter,
            from = name,
            "template parameter set from the environment"
        );
        Some(value)
    })?;
    let clients = Clients::from_env().await;
    match cli.command {
        Command::Provision { env_file } => {
            let resources = resources::provision(
                &template,
                &clients.dynamodb,
                &clients.sqs,
                &cli.prefix,
                &clients.region,
            )
            .await?;
            let environment = runner::shared_environment(&template, &resources)?;
            if let Some(dir) = env_file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&env_file, runner::env_file(&environment))?;
            println!(
                "provisioned; functions' environment in {}",
                env_file.display()
            );
        }
        Command::Serve {
            listen,
            invoke_url,
            invoke_grace_seconds,
            sqs_wait_seconds,
            fire_schedules_now,
        } => {
            let running = runner::start(
                &clients,
                RunnerConfig {
                    template,
                    prefix: cli.prefix,
                    listen,
                    invoker: Arc::new(InvokeApi::new(invoke_url)),
                    invoke_grace: Duration::from_secs(invoke_grace_seconds),
                    sqs_wait_seconds,
                },
            )
            .await?;
            if fire_schedules_now {
                for schedule in &running.schedules {
                    aicity_local::schedule::fire(
                        running.invoker.as_ref(),
                        schedule,
                        &clients.region,
                    )
                    .await;
                }
            }
            println!("AI City API on {}/api/v1", running.base_url);
            tokio::signal::ctrl_c().await?;
            println!("stopping");
        }
    }
    Ok(())
}
