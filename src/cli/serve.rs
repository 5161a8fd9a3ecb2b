//! `rulesaga serve`: the HTTP server of [`crate::serve`], with its files found as the
//! other commands find them (folders searched for `*.rules` and `*.yaml`), its
//! diagnostics rendered as theirs, and its bound address printed on standard output.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::ErrorFormat;
use super::files::{find, is_rule_file};
use super::saga::{DbArgs, LeaseArgs, print_diagnostics};
use crate::rules::RuleErrors;
use crate::saga::HandlerRegistry;
use crate::saga::validate::parse_duration;
use crate::serve::{Config, Files, LoadError, ServeError, Server};

/// `serve`
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Rule files or folders (their `*.rules` files), compiled together.
    #[arg(long)]
    rules: Vec<PathBuf>,
    /// Saga files or folders (their `*.yaml` and `*.yml` files).
    #[arg(long)]
    sagas: Vec<PathBuf>,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Sagas run at once; a start beyond that gets 503 with `Retry-After`.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// At SIGTERM or SIGINT: how long runs may take to finish their step in flight.
    #[arg(long, default_value = "10s", value_parser = parse_time)]
    grace: Duration,
    #[command(flatten)]
    lease: LeaseArgs,
    /// File holding the bearer token every route but `/healthz` and `/readyz` requires.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// Longest time a request may take (`?wait=` is capped below it).
    #[arg(long, default_value = "30s", value_parser = parse_time)]
    request_timeout: Duration,
    /// Longest time a client may take to send a request's headers (then its
    /// connection is closed).
    #[arg(long, default_value = "10s", value_parser = parse_time)]
    header_timeout: Duration,
    /// Also reload the rule and saga files when one changes (as SIGHUP does).
    #[arg(long)]
    watch: bool,
}

fn parse_time(text: &str) -> Result<Duration, String> {
    parse_duration(text).ok_or_else(|| format!("`{text}`: give a duration (`500ms`, `10s`, `1m`)"))
}

fn is_saga_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// Read the token: the file's first line, trimmed, never printed.
fn read_token(path: &Path) -> Result<String, String> {
    let bytes = crate::diag::read_bytes(path, 64 * 1024)
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8 text", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.is_empty() {
        return Err(format!("`{}` holds no token", path.display()));
    }
    Ok(token)
}

/// Run `serve`.
pub(crate) fn run(args: ServeArgs, handlers: HandlerRegistry, format: ErrorFormat) -> ExitCode {
    let fail = |msg: String| {
        errln!("error: {msg}");
        ExitCode::from(2)
    };
    let token = match args.token_file.as_deref().map(read_token).transpose() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let (rules, sagas) = (args.rules.clone(), args.sagas.clone());
    let discover = Arc::new(move || {
        Ok(Files {
            rules: find(&rules, is_rule_file)?,
            sagas: find(&sagas, is_saga_file)?,
        })
    });
    let config = Config {
        db: args.db.db.clone(),
        listen: args.listen,
        concurrency: args.concurrency,
        grace: args.grace,
        lease_ttl: args.lease.lease_ttl,
        token,
        body_limit: args.body_limit,
        request_timeout: args.request_timeout,
        header_timeout: args.header_timeout,
        watch: args.watch,
        discover,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let served = runtime.block_on(async {
        let server = Server::bind(config, handlers).await?;
        let signals = server.signals()?;
        outln!("listening on http://{}", server.local_addr()?);
        server.run(signals).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(ServeError::Load(LoadError::Rules(RuleErrors::Invalid(files)))) => {
            for d in &files {
                err!("{}", super::render::diagnostics(d, format));
            }
            ExitCode::from(1)
        }
        Err(ServeError::Load(LoadError::Sagas(files))) => {
            for d in &files {
                print_diagnostics(d, format);
            }
            ExitCode::from(1)
        }
        Err(e) => fail(e.to_string()),
    }
}
