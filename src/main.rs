//! The `astreinte` command line: `run`, `check`, `validate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use astreinte::{app, telemetry};
use clap::{Parser, Subcommand, ValueEnum};

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
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
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
