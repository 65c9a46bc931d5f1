//! The `astreinte` command line: `run`, `check`, `validate`, `incidents` / `explain`, which
//! read a running daemon, and `demo`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use astreinte::client::{self, Request};
use astreinte::{app, telemetry};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    version,
    about = "The night shift for Patroni, Redis and HTTP services on Kubernetes"
)]
struct Cli {
    /// Directory holding probes.toml and remediations.toml (default: the embedded local example).
    #[arg(long, global = true, env = "ASTREINTE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        env = "ASTREINTE_LOG_FORMAT"
    )]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon until SIGTERM or SIGINT.
    Run {
        /// Listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Append every observation to FILE as JSON lines (replay it with `simulate`).
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
    },
    /// Replay recorded observations through scoring and policy; print every decision.
    /// Nothing is probed or acted on.
    Simulate {
        /// A recording made by `astreinte run --record FILE`.
        recording: PathBuf,
        /// Keep the configured modes (default: judge every rule as if enforced).
        #[arg(long)]
        as_configured: bool,
    },
    /// Run every probe once and print the results (exit 0 healthy, 1 degraded or unknown, 2 failed).
    Check {
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Check the configuration and list every problem (exit 1 if any).
    Validate,
    /// List the open and recently resolved incidents of a running daemon.
    Incidents {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[command(subcommand)]
        what: Option<IncidentsCommand>,
    },
    /// Show, for each rule of a running daemon, its last decision and why.
    Explain {
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Start a real local stack (Patroni + PostgreSQL, Redis, an HTTP service) and watch
    /// astreinte probe it; `demo fault <name>` breaks something from a second terminal.
    Demo(astreinte::demo::DemoArgs),
}

/// Where the running daemon is, and how to print what it says.
#[derive(Args)]
struct DaemonArgs {
    /// The daemon's URL, e.g. http://127.0.0.1:9464 (default: server.listen of the
    /// configuration, on loopback).
    #[arg(long, global = true)]
    url: Option<String>,
    /// Print a table (or a timeline) for people, or the daemon's JSON.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: Output,
}

#[derive(Subcommand)]
enum IncidentsCommand {
    /// One incident with its whole timeline.
    Show { id: String },
    /// The post-mortem draft (Markdown) of a resolved incident.
    Postmortem { id: String },
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

impl DaemonArgs {
    async fn query(
        self,
        config: &astreinte::config::Config,
        request: &Request,
    ) -> anyhow::Result<i32> {
        let output = match self.output {
            Output::Table => client::Output::Table,
            Output::Json => client::Output::Json,
        };
        app::query_daemon(config, self.url, request, output).await
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let config = match app::load_config(cli.config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("astreinte: {e}");
            return ExitCode::from(1);
        }
    };
    if let Command::Validate = cli.command {
        println!(
            "{}: {} probe(s), {} rule(s), mode {}: ok",
            config.source,
            config.probes.len(),
            config.rules.len(),
            config.policy.mode.as_str()
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("astreinte: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run { listen, record } => app::run(config, listen, record).await.map(|()| 0),
            Command::Simulate {
                recording,
                as_configured,
            } => app::simulate(&config, &recording, as_configured).await,
            Command::Check { output } => {
                app::check_once(&config, matches!(output, Output::Json)).await
            }
            Command::Validate => Ok(0),
            Command::Incidents { daemon, what } => {
                let request = match what {
                    None => Request::Incidents,
                    Some(IncidentsCommand::Show { id }) => Request::Incident(id),
                    Some(IncidentsCommand::Postmortem { id }) => Request::Postmortem(id),
                };
                daemon.query(&config, &request).await
            }
            Command::Explain { daemon } => daemon.query(&config, &Request::Explain).await,
            Command::Demo(args) => astreinte::demo::main(args).await.map_err(Into::into),
        }
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(2)),
        Err(e) => {
            eprintln!("astreinte: {e:#}");
            ExitCode::from(1)
        }
    }
}
