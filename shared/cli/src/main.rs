//! `aicity`: the AI City command line.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aicity_cli::config::{self, Config};
use aicity_cli::embassy::{
    self as embassy_text, Limit, PolicyChanges, TaskTypes, parse_limit, parse_task_types,
};
use aicity_cli::messages::explain;
use aicity_cli::runner::{self, Outcome, RunnerConfig};
use aicity_cli::webhooks::{self as hooks, EventList, Received, parse_event_list};
use aicity_cli::workflows::{self as flows, AgentFor, parse_agent_for, parse_status, parse_step};
use aicity_sdk::embassy::AuditQuery;
use aicity_sdk::resources::{ListTasks, SearchAgents, SubmitTask};
use aicity_sdk::workflows::{StepSpec, Workflow, WorkflowStatus};
use aicity_sdk::{AgentCity, Error};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "aicity",
    version,
    about = "AI City from the command line: accounts, agents, credits, tasks, workflows, the Embassy, webhooks"
)]
struct Cli {
    /// The API's base URL.
    #[arg(long, global = true, env = "AICITY_BASE_URL")]
    base_url: Option<String>,
    /// Where task streams are read (`tasks watch`): the stack's `StreamUrl` output.
    /// Default: the base URL (what `make dev` serves).
    #[arg(long, global = true, env = "AICITY_STREAM_URL")]
    stream_url: Option<String>,
    /// Act as this agent (`ac_live_…`).
    #[arg(long, global = true, env = "AICITY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The config file (session token, saved key).
    #[arg(long, global = true, env = "AICITY_CONFIG")]
    config: Option<PathBuf>,
    /// Print JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an owner account.
    SignUp {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Sign in; the session is kept in the config file (mode 0600).
    SignIn {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// End the session.
    SignOut,
    #[command(subcommand)]
    Agents(AgentsCommand),
    #[command(subcommand)]
    Vault(VaultCommand),
    #[command(subcommand)]
    Tasks(TasksCommand),
    #[command(subcommand)]
    Agent(AgentCommand),
    /// The owner's say over its agents: spending policies, approvals, audit, notifications.
    #[command(subcommand)]
    Embassy(EmbassyCommand),
    /// Signed event deliveries to your URL (`listen` receives them here, for development).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Tasks run one after another, each given the output of the one before; the
    /// whole budget is held when the workflow is created.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
}

#[derive(Subcommand)]
enum WorkflowsCommand {
    /// Create a workflow of 2 to 10 steps (as the agent when an API key is given, else
    /// the owner): every step's budget is held now, the first step is routed at once.
    Create {
        #[arg(long, required_unless_present = "file", conflicts_with = "file")]
        name: Option<String>,
        /// `<taskType>:<maxBudget in cents>:<description>`, once per step, in order
        /// (e.g. --step code_review:2500:"Review src/auth").
        #[arg(long = "step", value_parser = parse_step, required_unless_present = "file", conflicts_with = "file")]
        steps: Vec<StepSpec>,
        /// `<step>=<agentId>`: hire this agent directly for that step (numbered from 1).
        #[arg(long = "agent-for", value_parser = parse_agent_for, conflicts_with = "file")]
        agent_for: Vec<AgentFor>,
        /// The whole request as JSON instead: {"name": …, "steps": [{"taskType",
        /// "description", "maxBudget", "agentId"?, "input"?: {…}}]}.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Repeat a create safely (one workflow, one hold); a fresh key by default.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Your workflows, newest first (an owner sees its agents' too).
    List {
        /// active, completed, failed or cancelled.
        #[arg(long, value_parser = parse_status)]
        status: Option<WorkflowStatus>,
        #[arg(long)]
        page: Option<u32>,
    },
    /// A workflow and where each step stands.
    Get { id: String },
    /// Cancel the steps not yet started and release their credits (a step already
    /// executing runs to its end).
    Cancel { id: String },
    /// Follow a workflow until it ends, printing each step as it moves.
    Watch {
        id: String,
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
        poll_seconds: u64,
    },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Subscribe a URL to events; prints the signing secret (shown only this once).
    Add {
        /// https to a public address (http://127.0.0.1:<port> where the API allows loopback).
        url: String,
        /// Comma-separated (task.assigned,task.completed), or `all` (the default: every
        /// event you may have; approval.requested is for owners).
        #[arg(long, value_parser = parse_event_list)]
        events: Option<EventList>,
    },
    /// Your subscriptions.
    List {
        #[arg(long)]
        page: Option<u32>,
    },
    /// Delete a subscription.
    #[command(alias = "delete")]
    Rm { id: String },
    /// Turn a disabled subscription (failing for days) back on.
    Enable { id: String },
    /// A subscription's delivery log, newest first, with every attempt.
    Deliveries {
        id: String,
        /// 1 to 100.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: Option<u32>,
        /// The `nextCursor` of the page before (older deliveries).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Send a delivery's event again (same event id).
    Redeliver { id: String, delivery_id: String },
    /// Receive events here: registers http://127.0.0.1:<port>/… for them, checks each
    /// signature, prints each event, and deletes the subscription on Ctrl-C.
    Listen {
        /// Comma-separated, or `all` (the default).
        #[arg(long, value_parser = parse_event_list)]
        events: Option<EventList>,
        /// 0: any free port.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Also POST each verified delivery, as received (body and signature), to this URL.
        #[arg(long)]
        forward_to: Option<String>,
    },
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// Register an agent; prints its API key once.
    Register {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "custom")]
        framework: String,
        #[arg(long)]
        description: String,
        /// `category=price_in_cents`, repeatable (e.g. code_review=2500).
        #[arg(long = "offer")]
        offers: Vec<String>,
        #[arg(long)]
        max_concurrent: Option<u32>,
        /// Keep the key in the config file for later commands.
        #[arg(long)]
        save_key: bool,
    },
    List,
    Search {
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        min_score: Option<u32>,
    },
    RotateKey {
        id: String,
    },
    /// The calling agent's revenue, fees, refunds and net per category (agent key).
    Profitability {
        /// 30d, 90d or all.
        #[arg(long, default_value = "30d")]
        period: String,
    },
    Deactivate {
        id: String,
    },
    Reactivate {
        id: String,
    },
}

#[derive(Subcommand)]
enum VaultCommand {
    Pool,
    /// Add credits (cents).
    TopUp {
        amount: i64,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    Transactions {
        #[arg(long = "type")]
        kind: Option<String>,
    },
    /// The calling agent's wallet.
    Wallet,
}

#[derive(Subcommand)]
enum TasksCommand {
    Submit {
        #[arg(long = "type")]
        task_type: String,
        /// Cents.
        #[arg(long)]
        budget: i64,
        #[arg(long)]
        description: String,
        #[arg(long)]
        repo: Option<String>,
        /// Files to include, repeatable.
        #[arg(long = "file")]
        files: Vec<PathBuf>,
        /// Direct hire.
        #[arg(long)]
        agent: Option<String>,
    },
    Get {
        id: String,
    },
    /// Your tasks, newest first (an agent sees both sides unless `--role`).
    List {
        #[arg(long)]
        status: Option<String>,
        /// submitted (your own) or assigned (to the agent).
        #[arg(long)]
        role: Option<String>,
        /// Page number, from 1.
        #[arg(long)]
        page: Option<u32>,
        /// Results per page, 1 to 100 (default 20).
        #[arg(long)]
        page_size: Option<u32>,
        /// The next cursor a page before printed.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// What each task type takes as input and returns (every type, or one).
    Templates {
        task_type: Option<String>,
    },
    /// What a task type would cost: eligible agents, their prices, past tasks.
    Estimate {
        #[arg(long = "type")]
        task_type: String,
        /// Cents.
        #[arg(long)]
        max_budget: Option<i64>,
    },
    /// Follow a task live until it finishes.
    Watch {
        id: String,
    },
    Feedback {
        id: String,
        feedback: String,
    },
    Dispute {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        description: String,
    },
    Cancel {
        id: String,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Work assigned tasks with a command: the task as JSON on stdin, its output on stdout.
    Run {
        #[arg(long = "exec")]
        command: String,
        /// Between polls: 2 by default, 30 with --webhook.
        #[arg(long)]
        poll_seconds: Option<u64>,
        /// The command is killed and the task failed with `timeout` after this.
        #[arg(long, default_value_t = 600)]
        timeout_seconds: u64,
        /// The command's memory (address space) limit in MiB; 0 for none.
        #[arg(long, default_value_t = 1024)]
        memory_mb: u64,
        /// Work what is waiting now, then exit.
        #[arg(long, conflicts_with = "webhook")]
        once: bool,
        /// Also take work as soon as a `task.assigned` webhook arrives, on a loopback
        /// receiver registered for the run (the API must allow http://127.0.0.1).
        #[arg(long)]
        webhook: bool,
        /// The receiver's port (0: any free port).
        #[arg(long, requires = "webhook", default_value_t = 0)]
        webhook_port: u16,
    },
}

#[derive(Subcommand)]
enum EmbassyCommand {
    /// An agent's spending policy (budgets, allowed task types, approval threshold).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Tasks over an agent's approval threshold, waiting for the owner.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Every state-changing action of the owner and its agents, newest first.
    Audit {
        #[arg(long = "agent")]
        agent: Option<String>,
        /// RFC 3339, e.g. 2026-03-01T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        /// 1 to 100.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: Option<u32>,
        /// The `nextCursor` of the page before (older entries).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// The owner's notifications, oldest first.
    Notifications {
        /// A notification id (`ntf_…`) or an RFC 3339 time: only what came after it.
        #[arg(long)]
        since: Option<String>,
        /// 1 to 100.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: Option<u32>,
        /// Keep polling every 2 s and print new ones until Ctrl-C.
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// The policy, and what the agent has committed today and over the last 7 days.
    Get { agent_id: String },
    /// Change some limits, keeping the others (amounts in cents; `none` = no limit).
    Set {
        agent_id: String,
        /// Per UTC day: what the agent's tasks hold plus what they were charged.
        #[arg(long, value_parser = parse_limit)]
        daily_budget: Option<Limit>,
        /// Over the rolling 7 days (today included).
        #[arg(long, value_parser = parse_limit)]
        weekly_budget: Option<Limit>,
        /// The largest budget of one task.
        #[arg(long, value_parser = parse_limit)]
        max_per_task: Option<Limit>,
        /// Tasks with a larger budget wait for your approval.
        #[arg(long, value_parser = parse_limit)]
        approval_threshold: Option<Limit>,
        /// Comma-separated (code_review,testing), or `any`.
        #[arg(long, value_parser = parse_task_types)]
        allowed_task_types: Option<TaskTypes>,
        /// Start from no limits: what is not given is cleared, not kept.
        #[arg(long)]
        clear: bool,
    },
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// The owner's approvals, all or those with one status.
    List {
        /// pending, approved, denied, expired or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        page: Option<u32>,
    },
    /// One approval.
    Get { id: String },
    /// Let the task go on to routing.
    Approve { id: String },
    /// Cancel the task and release its credits.
    Deny {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

struct Ctx {
    json: bool,
    /// The calls act as an agent (an API key is set), not the owner.
    agent: bool,
    config_path: PathBuf,
    config: Config,
    city: AgentCity,
}

impl Ctx {
    fn print(&self, human: impl FnOnce() -> String, value: &Value) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            println!("{}", human());
        }
    }
}

fn cents(value: &Value) -> String {
    let c = value.as_i64().unwrap_or(0);
    format!("${}.{:02}", c / 100, (c % 100).abs())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let config_path = cli.config.clone().unwrap_or_else(config::default_path);
    let config = match Config::load(&config_path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: cannot read {}: {err}", config_path.display());
            std::process::exit(2);
        }
    };
    let mut builder = AgentCity::builder().base_url(
        cli.base_url
            .clone()
            .or(config.base_url.clone())
            .unwrap_or_else(|| "http://127.0.0.1:4000".into()),
    );
    if let Some(stream_url) = cli.stream_url.clone().or(config.stream_url.clone()) {
        builder = builder.stream_url(stream_url);
    }
    if let Some(token) = &config.token {
        builder = builder.owner_token(token);
    }
    let api_key = cli.api_key.clone().or(config.api_key.clone());
    let agent = api_key.is_some();
    if let Some(key) = api_key {
        builder = builder.api_key(key);
    }
    let city = match builder.build() {
        Ok(city) => city,
        Err(err) => {
            eprintln!("error: {}", explain(&err));
            std::process::exit(2);
        }
    };
    let mut ctx = Ctx {
        json: cli.json,
        agent,
        config_path,
        config,
        city,
    };
    if let Err(err) = dispatch(&mut ctx, cli.command).await {
        if ctx.json {
            let failure = err.failure();
            eprintln!(
                "{}",
                json!({"error": {"code": failure.map(|f| f.code.clone()), "message": explain(&err)}})
            );
        } else {
            eprintln!("error: {}", explain(&err));
        }
        std::process::exit(1);
    }
}

async fn dispatch(ctx: &mut Ctx, command: Command) -> Result<(), Error> {
    let city = ctx.city.clone();
    match command {
        Command::SignUp {
            name,
            email,
            password,
        } => {
            let user = city.auth().sign_up(&name, &email, &password).await?;
            ctx.print(
                || format!("signed up {} ({})", user.email, user.id),
                &json!({"id": user.id, "email": user.email}),
            );
        }
        Command::SignIn { email, password } => {
            let signed = city.auth().sign_in(&email, &password).await?;
            ctx.config.token = Some(signed.token.clone());
            ctx.config.base_url = Some(city.base_url().to_owned());
            ctx.config.stream_url = (city.stream_base_url() != city.base_url())
                .then(|| city.stream_base_url().to_owned());
            ctx.config
                .save(&ctx.config_path)
                .map_err(|e| Error::Config(e.to_string()))?;
            ctx.print(
                || {
                    format!(
                        "signed in as {}; session until {}",
                        signed.user.email, signed.session.expires_at
                    )
                },
                &json!({"user": signed.user.id, "expiresAt": signed.session.expires_at}),
            );
        }
        Command::SignOut => {
            city.auth().sign_out().await?;
            ctx.config.token = None;
            ctx.config
                .save(&ctx.config_path)
                .map_err(|e| Error::Config(e.to_string()))?;
            ctx.print(|| "signed out".into(), &json!({"signedOut": true}));
        }
        Command::Agents(command) => agents(ctx, command).await?,
        Command::Vault(command) => vault(ctx, command).await?,
        Command::Tasks(command) => tasks(ctx, command).await?,
        Command::Embassy(command) => embassy(ctx, command).await?,
        Command::Webhooks(command) => webhooks(ctx, command).await?,
        Command::Workflows(command) => workflows(ctx, command).await?,
        Command::Agent(AgentCommand::Run {
            command,
            poll_seconds,
            timeout_seconds,
            memory_mb,
            once,
            webhook,
            webhook_port,
        }) => {
            let poll_seconds = poll_seconds.unwrap_or(if webhook { 30 } else { 2 });
            let config = RunnerConfig {
                poll: Duration::from_secs(poll_seconds),
                timeout: Duration::from_secs(timeout_seconds),
                memory_limit_mb: (memory_mb > 0).then_some(memory_mb),
                ..RunnerConfig::new(command)
            };
            let me = city.agents().me().await?;
            eprintln!(
                "running as {} ({}); Ctrl-C stops after the task in hand",
                me["displayName"], me["id"]
            );
            let report = |outcome: &Outcome| match outcome {
                Outcome::Completed(id) => println!("completed {id}"),
                Outcome::Failed(id) => println!("failed {id}"),
            };
            if once {
                for outcome in runner::run_once(&city, &config).await? {
                    report(&outcome);
                }
            } else {
                let stop = Arc::new(AtomicBool::new(false));
                let flag = stop.clone();
                tokio::spawn(async move {
                    shutdown_signal().await;
                    eprintln!("stopping after the task in hand…");
                    flag.store(true, Ordering::SeqCst);
                });
                if webhook {
                    let me = me["id"].as_str().unwrap_or_default().to_owned();
                    run_with_webhook(&city, &config, stop, &me, webhook_port, report).await?;
                } else {
                    runner::run(&city, &config, stop, report).await?;
                }
            }
        }
    }
    Ok(())
}

/// Binds a loopback receiver and registers it for `events`: the listener, and the
/// subscription with its secret.
async fn register_receiver(
    city: &AgentCity,
    port: u16,
    events: &[String],
) -> Result<
    (
        tokio::net::TcpListener,
        aicity_sdk::webhooks::CreatedWebhook,
    ),
    Error,
> {
    let (listener, port) = hooks::bind(port)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    match city
        .webhooks()
        .create(&hooks::callback_url(port), events)
        .await
    {
        Ok(created) => Ok((listener, created)),
        Err(err) => {
            let url_refused = err.failure().is_some_and(|f| {
                f.details["fields"]
                    .as_array()
                    .is_some_and(|fields| fields.iter().any(|field| field["field"] == "url"))
            });
            if url_refused {
                eprintln!(
                    "note: the API accepts http://127.0.0.1 receivers only when it runs with \
                     WEBHOOK_ALLOW_LOOPBACK=1 (make dev sets it)"
                );
            }
            Err(err)
        }
    }
}

/// Deletes the subscription of a receiver that is stopping.
async fn unregister(city: &AgentCity, id: &str) -> Result<(), Error> {
    match city.webhooks().delete(id).await {
        Ok(_) | Err(Error::NotFound(_)) => {
            eprintln!("deleted subscription {id}");
            Ok(())
        }
        Err(err) => {
            eprintln!("could not delete subscription {id}: aicity webhooks rm {id}");
            Err(err)
        }
    }
}

/// `agent run --webhook`: a `task.assigned` receiver feeding the runner, polling as a
/// safety net; the subscription is deleted when the runner stops.
async fn run_with_webhook(
    city: &AgentCity,
    config: &RunnerConfig,
    stop: Arc<AtomicBool>,
    me: &str,
    port: u16,
    report: impl FnMut(&Outcome),
) -> Result<(), Error> {
    let events = [aicity_sdk::webhooks::WebhookEventType::TaskAssigned
        .as_str()
        .to_owned()];
    let (listener, created) = register_receiver(city, port, &events).await?;
    let id = created.webhook.id.clone();
    eprintln!(
        "taking task.assigned webhooks at {} ({id}); polling every {} s as a safety net",
        created.webhook.url,
        config.poll.as_secs()
    );
    if config.poll > Duration::from_secs(90) {
        eprintln!(
            "warning: the API counts an agent offline when it has not polled for a while \
             (2 minutes by default); keep --poll-seconds below that"
        );
    }
    let (server, mut received) = hooks::serve(listener, created.secret, hooks::TOLERANCE);
    let (assigned, tasks) = tokio::sync::mpsc::unbounded_channel();
    let me_owned = me.to_owned();
    let bridge = tokio::spawn(async move {
        while let Some(item) = received.recv().await {
            match item {
                Received::Event(delivered) => {
                    if let Some(task_id) = hooks::assigned_to_me(&delivered.event, &me_owned) {
                        eprintln!("task.assigned {task_id} ({})", delivered.event.id);
                        if assigned.send(task_id).is_err() {
                            break;
                        }
                    }
                }
                Received::Rejected { reason } => {
                    eprintln!("rejected a webhook delivery (400): {reason}")
                }
            }
        }
    });
    let result = runner::run_with_assignments(city, config, stop, me, tasks, report).await;
    bridge.abort();
    server.abort();
    let deleted = unregister(city, &id).await;
    result.and(deleted)
}

/// Ctrl-C, or SIGTERM (what a service manager or a script sends).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn agents(ctx: &mut Ctx, command: AgentsCommand) -> Result<(), Error> {
    let city = ctx.city.clone();
    match command {
        AgentsCommand::Register {
            name,
            framework,
            description,
            offers,
            max_concurrent,
            save_key,
        } => {
            let mut capabilities = Vec::new();
            let mut pricing = serde_json::Map::new();
            for offer in offers {
                let (category, price) = offer.split_once('=').ok_or_else(|| {
                    Error::Config(format!("--offer takes category=cents, got {offer}"))
                })?;
                let price: i64 = price
                    .parse()
                    .map_err(|_| Error::Config(format!("not a price in cents: {price}")))?;
                capabilities.push(json!({"category": category, "tags": []}));
                pricing.insert(category.to_owned(), json!(price));
            }
            let mut body = json!({"displayName": name, "framework": framework, "description": description,
                "capabilities": capabilities, "pricing": pricing});
            if let Some(max) = max_concurrent {
                body["maxConcurrentTasks"] = json!(max);
            }
            let registered = city.agents().register(&body).await?;
            if save_key {
                ctx.config.api_key = Some(registered.api_key.clone());
                ctx.config
                    .save(&ctx.config_path)
                    .map_err(|e| Error::Config(e.to_string()))?;
            }
            ctx.print(
                || {
                    format!(
                        "registered {} ({})\nAPI key (shown once): {}",
                        registered.agent["displayName"], registered.agent["id"], registered.api_key
                    )
                },
                &json!({"agent": registered.agent, "apiKey": registered.api_key}),
            );
        }
        AgentsCommand::List => {
            let page = city.agents().list().await?;
            let lines = page
                .data
                .iter()
                .map(|a| {
                    format!(
                        "{}  {:<24} {:<11} score {}",
                        a["id"], a["displayName"], a["status"], a["overallScore"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            ctx.print(|| lines, &json!(page.data));
        }
        AgentsCommand::Search {
            category,
            min_score,
        } => {
            let page = city
                .agents()
                .search(&SearchAgents {
                    category,
                    min_score,
                    ..Default::default()
                })
                .await?;
            let lines = page
                .data
                .iter()
                .map(|a| {
                    format!(
                        "{}  {:<24} score {:>4}  {}",
                        a["id"], a["displayName"], a["overallScore"], a["pricing"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            ctx.print(
                || format!("{lines}\n({} found)", page.pagination.total),
                &json!(page.data),
            );
        }
        AgentsCommand::RotateKey { id } => {
            let key = city.agents().rotate_key(&id).await?;
            ctx.print(
                || format!("new API key (shown once): {key}"),
                &json!({"agentId": id, "apiKey": key}),
            );
        }
        AgentsCommand::Profitability { period } => {
            let report = city.agents().profitability(Some(&period)).await?;
            ctx.print(
                || aicity_cli::economics::profitability_text(&report),
                &to_json(&report),
            );
        }
        AgentsCommand::Deactivate { id } => {
            let agent = city.agents().deactivate(&id).await?;
            ctx.print(|| format!("{id} is {}", agent["status"]), &agent);
        }
        AgentsCommand::Reactivate { id } => {
            let agent = city.agents().reactivate(&id).await?;
            ctx.print(|| format!("{id} is {}", agent["status"]), &agent);
        }
    }
    Ok(())
}

async fn vault(ctx: &mut Ctx, command: VaultCommand) -> Result<(), Error> {
    let city = ctx.city.clone();
    match command {
        VaultCommand::Pool => {
            let pool = city.vault().pool().await?;
            ctx.print(
                || {
                    format!(
                        "balance {}  held {}  available {}",
                        cents(&pool["balance"]),
                        cents(&pool["held"]),
                        cents(&pool["available"])
                    )
                },
                &pool,
            );
        }
        VaultCommand::TopUp {
            amount,
            idempotency_key,
        } => {
            let key = idempotency_key.unwrap_or_else(|| format!("cli-{}", ulid::Ulid::generate()));
            let top_up = city.vault().top_up(amount, Some(&key)).await?;
            ctx.print(
                || format!("charged {}; balance {}", cents(&json!(top_up.amount_charged)), cents(&json!(top_up.new_balance))),
                &json!({"newBalance": top_up.new_balance, "amountCharged": top_up.amount_charged, "chargeId": top_up.charge_id}),
            );
        }
        VaultCommand::Transactions { kind } => {
            let page = city.vault().transactions(kind.as_deref(), None).await?;
            let lines = page
                .data
                .iter()
                .map(|e| {
                    format!(
                        "{}  {:<15} {:>10}  {}",
                        e["createdAt"],
                        e["type"],
                        cents(&e["amount"]),
                        e["counterparty"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            ctx.print(|| lines, &json!(page.data));
        }
        VaultCommand::Wallet => {
            let wallet = city.vault().wallet().await?;
            ctx.print(
                || {
                    format!(
                        "available {}  in escrow {}  earned {}",
                        cents(&wallet["available"]),
                        cents(&wallet["pendingEscrow"]),
                        cents(&wallet["lifetimeEarned"])
                    )
                },
                &wallet,
            );
        }
    }
    Ok(())
}

async fn tasks(ctx: &mut Ctx, command: TasksCommand) -> Result<(), Error> {
    let city = ctx.city.clone();
    let show =
        |task: &aicity_domain::task::model::Task| serde_json::to_value(task).unwrap_or(Value::Null);
    match command {
        TasksCommand::Submit {
            task_type,
            budget,
            description,
            repo,
            files,
            agent,
        } => {
            let mut input = json!({"description": description});
            if let Some(repo) = repo {
                input["repo"] = json!(repo);
            }
            let mut attached = Vec::new();
            for path in files {
                let content = std::fs::read_to_string(&path)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                attached.push(json!({"name": name, "content": content}));
            }
            if !attached.is_empty() {
                input["files"] = json!(attached);
            }
            let task = city
                .tasks()
                .submit(
                    &SubmitTask {
                        task_type,
                        max_budget: budget,
                        input,
                        agent_id: agent,
                        parent_task_id: None,
                    },
                    Some(&format!("cli-{}", ulid::Ulid::generate())),
                )
                .await?;
            ctx.print(
                || format!("submitted {} ({})", task.id, task.status),
                &show(&task),
            );
        }
        TasksCommand::Get { id } => {
            let task = city.tasks().get(&id).await?;
            ctx.print(
                || {
                    let mut text = format!("{}  {}  {}", task.id, task.task_type, task.status);
                    if let Some(score) = task.quality_score {
                        text.push_str(&format!("  quality {score}"));
                    }
                    if let Some(charged) = task.credits_charged {
                        text.push_str(&format!("  charged {charged}"));
                    }
                    if let Some(output) = &task.output {
                        text.push_str(&format!("\n{output}"));
                    }
                    text
                },
                &show(&task),
            );
        }
        TasksCommand::List {
            status,
            role,
            page,
            page_size,
            cursor,
        } => {
            let filter = ListTasks {
                page,
                page_size,
                status,
                role,
                cursor,
            };
            let page = city.tasks().list(&filter).await?;
            let lines = page_text(
                &page,
                |t| format!("{}  {:<16} {}", t.id, t.task_type, t.status),
                "no tasks",
            );
            ctx.print(
                || lines,
                &json!(page.data.iter().map(show).collect::<Vec<_>>()),
            );
        }
        TasksCommand::Watch { id } => {
            use std::io::IsTerminal;
            // A progress bar on a terminal; plain lines when piped.
            let plain = !ctx.json && !std::io::stdout().is_terminal();
            let spinner = (!ctx.json && !plain).then(|| {
                let bar = indicatif::ProgressBar::new(100);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos:>3}% {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            let mut stream = city.tasks().stream(&id);
            while let Some(event) = stream.next().await {
                let event = event?;
                if ctx.json {
                    println!(
                        "{}",
                        json!({"id": event.id, "event": event.event, "data": event.data})
                    );
                    continue;
                }
                if plain {
                    let detail = match event.event.as_str() {
                        "status" => event.data["status"].as_str().unwrap_or("?").to_owned(),
                        "progress" => {
                            let message = event.data["message"].as_str().unwrap_or("");
                            match event.data["percent"].as_u64() {
                                Some(percent) => format!("{percent}% {message}"),
                                None => message.to_owned(),
                            }
                        }
                        "complete" => format!(
                            "quality {}, charged {}",
                            event.data["qualityScore"],
                            cents(&event.data["creditsCharged"])
                        ),
                        _ => event.data.to_string(),
                    };
                    println!("[{}] {:<9} {detail}", event.id.unwrap_or(0), event.event);
                    continue;
                }
                let Some(bar) = &spinner else { continue };
                match event.event.as_str() {
                    "status" => {
                        bar.set_message(event.data["status"].as_str().unwrap_or("?").to_string())
                    }
                    "progress" => {
                        if let Some(percent) = event.data["percent"].as_u64() {
                            bar.set_position(percent);
                        }
                        bar.set_message(event.data["message"].as_str().unwrap_or("").to_owned());
                    }
                    "complete" => {
                        bar.set_position(100);
                        bar.finish_with_message(format!(
                            "completed: quality {}, charged {}",
                            event.data["qualityScore"],
                            cents(&event.data["creditsCharged"])
                        ));
                    }
                    "error" => {
                        bar.abandon_with_message(format!("failed: {}", event.data["reason"]))
                    }
                    other => bar.set_message(other.to_owned()),
                }
            }
            if let Some(bar) = spinner {
                bar.finish();
            }
        }
        TasksCommand::Feedback { id, feedback } => {
            let refunded = city.tasks().give_feedback(&id, &feedback).await?;
            ctx.print(
                || {
                    if refunded {
                        "refunded in full".into()
                    } else {
                        "feedback recorded".into()
                    }
                },
                &json!({"refunded": refunded}),
            );
        }
        TasksCommand::Dispute {
            id,
            reason,
            description,
        } => {
            let dispute = city.tasks().dispute(&id, &reason, &description).await?;
            ctx.print(|| format!("dispute {} filed", dispute["id"]), &dispute);
        }
        TasksCommand::Templates { task_type } => {
            let templates = match task_type {
                Some(task_type) => vec![city.tasks().template(&task_type).await?],
                None => city.tasks().templates().await?,
            };
            let field = |f: &aicity_sdk::resources::TemplateField| {
                format!(
                    "    {}{}: {}  {}",
                    f.name,
                    if f.required { "" } else { "?" },
                    f.kind,
                    f.description
                )
            };
            let text = templates
                .iter()
                .map(|t| {
                    let mut lines = vec![format!("{}  {}", t.task_type, t.description)];
                    lines.push("  input:".into());
                    lines.extend(t.fields.iter().map(field));
                    lines.push("  output:".into());
                    lines.extend(t.output.fields.iter().map(field));
                    lines.join("\n")
                })
                .collect::<Vec<_>>()
                .join("\n");
            let shown = if templates.len() == 1 {
                to_json(&templates[0])
            } else {
                to_json(&templates)
            };
            ctx.print(|| text, &shown);
        }
        TasksCommand::Estimate {
            task_type,
            max_budget,
        } => {
            let estimate = city.tasks().estimate(&task_type, max_budget).await?;
            ctx.print(
                || aicity_cli::economics::estimate_text(&estimate),
                &to_json(&estimate),
            );
        }
        TasksCommand::Cancel { id } => {
            let task = city.tasks().cancel(&id).await?;
            ctx.print(|| format!("{} is {}", task.id, task.status), &show(&task));
        }
    }
    Ok(())
}

/// A page of a list, one line per item, with where it is in the list when there are
/// more pages; `empty` when there is nothing.
fn page_text<T>(
    page: &aicity_sdk::resources::Page<T>,
    line: impl Fn(&T) -> String,
    empty: &str,
) -> String {
    if page.data.is_empty() {
        return empty.to_owned();
    }
    let lines = page.data.iter().map(line).collect::<Vec<_>>().join("\n");
    if let Some(cursor) = page.next_cursor() {
        // Before the last page the total is only a lower bound (lists are read a page
        // at a time); say that there is more and where it continues.
        format!(
            "{lines}\n(page {}, more after this one; next cursor {cursor})",
            page.pagination.page
        )
    } else if page.pagination.total_pages > 1 {
        format!(
            "{lines}\n(page {} of {}, {} in all)",
            page.pagination.page, page.pagination.total_pages, page.pagination.total
        )
    } else {
        lines
    }
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

async fn embassy(ctx: &mut Ctx, command: EmbassyCommand) -> Result<(), Error> {
    let city = ctx.city.clone();
    let embassy = city.embassy();
    match command {
        EmbassyCommand::Policy(PolicyCommand::Get { agent_id }) => {
            let mut policy = embassy.policy(&agent_id).await?;
            if policy.agent_id.is_empty() {
                policy.agent_id = agent_id;
            }
            ctx.print(|| embassy_text::policy_text(&policy), &to_json(&policy));
        }
        EmbassyCommand::Policy(PolicyCommand::Set {
            agent_id,
            daily_budget,
            weekly_budget,
            max_per_task,
            approval_threshold,
            allowed_task_types,
            clear,
        }) => {
            let changes = PolicyChanges {
                daily_budget,
                weekly_budget,
                max_per_task,
                approval_threshold,
                allowed_task_types,
                clear,
            };
            if changes.is_empty() {
                return Err(Error::Config(
                    "nothing to change: give a limit (e.g. --approval-threshold 3000) or --clear"
                        .into(),
                ));
            }
            // Read for the version, keep what is not given, write it back.
            let current = embassy.policy(&agent_id).await?;
            let mut policy = embassy
                .set_policy(&agent_id, &changes.update(&current))
                .await?;
            if policy.agent_id.is_empty() {
                policy.agent_id = agent_id;
            }
            ctx.print(|| embassy_text::policy_text(&policy), &to_json(&policy));
        }
        EmbassyCommand::Approvals(ApprovalsCommand::List { status, page }) => {
            let page = embassy.approvals(status.as_deref(), page).await?;
            ctx.print(
                || page_text(&page, embassy_text::approval_line, "no approvals"),
                &to_json(&page.data),
            );
        }
        EmbassyCommand::Approvals(ApprovalsCommand::Get { id }) => {
            let approval = embassy.approval(&id).await?;
            ctx.print(
                || embassy_text::approval_line(&approval),
                &to_json(&approval),
            );
        }
        EmbassyCommand::Approvals(ApprovalsCommand::Approve { id }) => {
            let decision = embassy.approve(&id).await?;
            ctx.print(
                || {
                    format!(
                        "approved {}; task {} is {}",
                        decision.approval.id, decision.task.id, decision.task.status
                    )
                },
                &to_json(&decision),
            );
        }
        EmbassyCommand::Approvals(ApprovalsCommand::Deny { id, reason }) => {
            let decision = embassy.deny(&id, reason.as_deref()).await?;
            ctx.print(
                || {
                    format!(
                        "denied {}; task {} is {}",
                        decision.approval.id, decision.task.id, decision.task.status
                    )
                },
                &to_json(&decision),
            );
        }
        EmbassyCommand::Audit {
            agent,
            since,
            limit,
            cursor,
        } => {
            let page = embassy
                .audit(&AuditQuery {
                    agent_id: agent,
                    since,
                    limit,
                    cursor,
                })
                .await?;
            ctx.print(
                || {
                    let mut lines: Vec<String> =
                        page.entries.iter().map(embassy_text::audit_line).collect();
                    if lines.is_empty() {
                        lines.push("no entries".into());
                    }
                    if let (true, Some(next)) = (page.has_more, &page.next_cursor) {
                        lines.push(format!("(older entries: --cursor {next})"));
                    }
                    lines.join("\n")
                },
                &to_json(&page),
            );
        }
        EmbassyCommand::Notifications {
            since,
            limit,
            follow: false,
        } => {
            let page = embassy.notifications(since.as_deref(), limit).await?;
            // With `since`, `hasMore` means newer ones wait beyond this page.
            let more_after = page.has_more && since.is_some();
            ctx.print(
                || {
                    let mut lines: Vec<String> = page
                        .notifications
                        .iter()
                        .map(embassy_text::notification_line)
                        .collect();
                    if lines.is_empty() {
                        lines.push("no notifications".into());
                    }
                    if let (true, Some(last)) = (more_after, page.last_id()) {
                        lines.push(format!("(more: --since {last})"));
                    }
                    lines.join("\n")
                },
                &to_json(&page),
            );
        }
        EmbassyCommand::Notifications {
            since,
            limit,
            follow: true,
        } => {
            let stop = shutdown_signal();
            tokio::pin!(stop);
            let mut since = since;
            if !ctx.json {
                eprintln!("following notifications; Ctrl-C stops");
            }
            loop {
                // Without `since`, `hasMore` means older ones: nothing to fetch at once.
                let asked_after = since.is_some();
                let fetched = tokio::select! {
                    _ = &mut stop => break,
                    fetched = embassy.notifications(since.as_deref(), limit) => fetched,
                };
                let has_more = match fetched {
                    Ok(page) => {
                        for notification in &page.notifications {
                            if ctx.json {
                                println!("{}", to_json(notification));
                            } else {
                                println!("{}", embassy_text::notification_line(notification));
                            }
                        }
                        if let Some(last) = page.last_id() {
                            since = Some(last.to_owned());
                        }
                        page.has_more && asked_after && !page.notifications.is_empty()
                    }
                    // The API is away for a moment (already retried): keep following.
                    Err(err) if err.is_retryable() => {
                        eprintln!("warning: {}", explain(&err));
                        false
                    }
                    Err(err) => return Err(err),
                };
                if has_more {
                    continue;
                }
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
    Ok(())
}

async fn webhooks(ctx: &mut Ctx, command: WebhooksCommand) -> Result<(), Error> {
    let city = ctx.city.clone();
    let webhooks = city.webhooks();
    match command {
        WebhooksCommand::Add { url, events } => {
            let events = EventList::resolve(events.as_ref(), ctx.agent);
            let created = webhooks.create(&url, &events).await?;
            ctx.print(
                || {
                    format!(
                        "created {}\n\nsigning secret (shown only now; keep it to verify deliveries):\n\n    {}\n",
                        hooks::webhook_line(&created.webhook),
                        created.secret
                    )
                },
                &to_json(&created),
            );
        }
        WebhooksCommand::List { page } => {
            let page = webhooks.list(page).await?;
            ctx.print(
                || page_text(&page, hooks::webhook_line, "no webhooks"),
                &to_json(&page.data),
            );
        }
        WebhooksCommand::Rm { id } => {
            let deleted = webhooks.delete(&id).await?;
            ctx.print(|| format!("deleted {}", deleted.id), &to_json(&deleted));
        }
        WebhooksCommand::Enable { id } => {
            let webhook = webhooks.enable(&id).await?;
            ctx.print(|| hooks::webhook_line(&webhook), &to_json(&webhook));
        }
        WebhooksCommand::Deliveries { id, limit, cursor } => {
            let page = webhooks.deliveries(&id, limit, cursor.as_deref()).await?;
            ctx.print(
                || {
                    let mut lines: Vec<String> =
                        page.deliveries.iter().map(hooks::delivery_text).collect();
                    if lines.is_empty() {
                        lines.push("no deliveries".into());
                    }
                    if let (true, Some(next)) = (page.has_more, &page.next_cursor) {
                        lines.push(format!("(older deliveries: --cursor {next})"));
                    }
                    lines.join("\n")
                },
                &to_json(&page),
            );
        }
        WebhooksCommand::Redeliver { id, delivery_id } => {
            let delivery = webhooks.redeliver(&id, &delivery_id).await?;
            ctx.print(
                || {
                    format!(
                        "redelivering {} ({} {}): {}",
                        delivery.id, delivery.event_type, delivery.event_id, delivery.status
                    )
                },
                &to_json(&delivery),
            );
        }
        WebhooksCommand::Listen {
            events,
            port,
            forward_to,
        } => {
            let events = EventList::resolve(events.as_ref(), ctx.agent);
            let (listener, created) = register_receiver(&city, port, &events).await?;
            let id = created.webhook.id.clone();
            eprintln!(
                "Ready: receiving {} at {} ({id}; Ctrl-C deletes it)",
                events.join(","),
                created.webhook.url
            );
            eprintln!(
                "signing secret for this session: {} (each delivery is checked with it)",
                created.secret
            );
            if let Some(target) = &forward_to {
                eprintln!("forwarding verified deliveries to {target}");
            }
            let (server, mut received) = hooks::serve(listener, created.secret, hooks::TOLERANCE);
            let forwarder = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| Error::Config(e.to_string()))?;
            let stop = shutdown_signal();
            tokio::pin!(stop);
            loop {
                let item = tokio::select! {
                    _ = &mut stop => break,
                    item = received.recv() => item,
                };
                match item {
                    None => break,
                    Some(Received::Event(delivered)) => {
                        let hooks::Delivered {
                            event,
                            body,
                            headers,
                            duplicate,
                        } = *delivered;
                        if ctx.json {
                            let raw = String::from_utf8_lossy(&body);
                            if raw.contains('\n') {
                                println!("{}", to_json(&event));
                            } else {
                                println!("{raw}");
                            }
                        } else {
                            println!("{}", hooks::event_line(&event, duplicate));
                        }
                        if let Some(target) = forward_to.clone() {
                            let client = forwarder.clone();
                            tokio::spawn(async move {
                                match hooks::forward(&client, &target, &headers, body).await {
                                    Ok(status) => {
                                        eprintln!("  {} → {target}: {status}", event.id)
                                    }
                                    Err(err) => {
                                        eprintln!("  {} → {target}: failed: {err}", event.id)
                                    }
                                }
                            });
                        }
                    }
                    Some(Received::Rejected { reason }) => {
                        eprintln!("rejected a delivery (400): {reason}");
                    }
                }
            }
            server.abort();
            unregister(&city, &id).await?;
        }
    }
    Ok(())
}

async fn workflows(ctx: &mut Ctx, command: WorkflowsCommand) -> Result<(), Error> {
    let city = ctx.city.clone();
    let workflows = city.workflows();
    let shown = |workflow: &Workflow| flows::workflow_text(workflow);
    match command {
        WorkflowsCommand::Create {
            name,
            steps,
            agent_for,
            file,
            idempotency_key,
        } => {
            let body = match file {
                Some(path) => flows::read_request(&path),
                None => flows::request(name.as_deref().unwrap_or_default(), steps, &agent_for),
            }
            .map_err(Error::Config)?;
            let workflow = workflows.create(&body, idempotency_key.as_deref()).await?;
            ctx.print(
                || format!("created {}\n{}", workflow.id, shown(&workflow)),
                &to_json(&workflow),
            );
        }
        WorkflowsCommand::List { status, page } => {
            let page = workflows.list(status, page).await?;
            ctx.print(
                || page_text(&page, flows::workflow_line, "no workflows"),
                &to_json(&page.data),
            );
        }
        WorkflowsCommand::Get { id } => {
            let workflow = workflows.get(&id).await?;
            ctx.print(|| shown(&workflow), &to_json(&workflow));
        }
        WorkflowsCommand::Cancel { id } => {
            let workflow = workflows.cancel(&id).await?;
            ctx.print(|| shown(&workflow), &to_json(&workflow));
        }
        WorkflowsCommand::Watch { id, poll_seconds } => {
            let stop = shutdown_signal();
            tokio::pin!(stop);
            let mut before: Option<Workflow> = None;
            loop {
                let fetched = tokio::select! {
                    _ = &mut stop => break,
                    fetched = workflows.get(&id) => fetched,
                };
                match fetched {
                    Ok(now) => {
                        if ctx.json {
                            if before.as_ref() != Some(&now) {
                                println!("{}", to_json(&now));
                            }
                        } else {
                            for line in flows::changes(before.as_ref(), &now) {
                                println!("{line}");
                            }
                        }
                        let finished = now.is_finished();
                        before = Some(now);
                        if finished {
                            break;
                        }
                    }
                    // The API is away for a moment (already retried): keep watching.
                    Err(err) if err.is_retryable() => eprintln!("warning: {}", explain(&err)),
                    Err(err) => return Err(err),
                }
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(Duration::from_secs(poll_seconds)) => {}
                }
            }
        }
    }
    Ok(())
}
