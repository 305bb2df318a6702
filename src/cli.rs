//! Command-line interface: the subcommands and their options, with the help text a user
//! reads. Parsing only; each subcommand is carried out by its module in the binary's `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "trainwatch",
    version,
    about = "Supervise long training jobs and run the Watch Mode Protocol in a terminal or in Discord",
    long_about = "trainwatch starts a training job, stays in watch mode for the whole run, reports \
errors the moment they appear (classified, with the traceback), posts status updates, timeout \
warnings and a completion report, and takes decisions (restart, kill, continue, investigate).\n\n\
With no config at all it wraps one command:  trainwatch run -- python train.py"
)]
pub struct Cli {
    /// Log filter for trainwatch's own diagnostics (e.g. `info`, `trainwatch=debug`);
    /// also read from TRAINWATCH_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Supervise jobs with the terminal as the chat, until every job has ended.
    ///
    /// Either the jobs of a config file (all of them, or the ones named), or one command
    /// given after `--` with no config at all. Exit status: 0 when every job completed,
    /// 1 when any failed or was killed, 2 on a usage or config error, or when another
    /// supervisor holds the store, 3 when writes the store never took were lost at stop
    /// (each named on stderr).
    ///
    /// One supervisor per store: `run` and `serve` lock the store (a lock file beside it,
    /// `STORE.lock`, naming the holder's PID and host) and its job state folder. A second one
    /// refuses at once (exit 2), naming that PID and host. A holder that crashed or was
    /// killed leaves no stale lock (the kernel releases it): the next start takes over and
    /// re-adopts the jobs. Read-only commands (status, audit, triage, check-config, send)
    /// take no lock.
    ///
    /// Nobody escapes a kill: `/kill` and a restart reach every process of the job, also
    /// workers that left its session or process group (`setsid`, a double fork). Each job is
    /// held in a cgroup v2 of its own where the machine allows it (a writable cgroup2 tree:
    /// root, or a delegated subtree), else by its shim as child subreaper; the log line
    /// "job started … held_by=…" says which. When a job's main process ends while other
    /// processes of it still run, those are ended (SIGTERM, then SIGKILL after the job's
    /// `kill_grace`) and a warning in the chat and the completion report names them.
    Run(RunArgs),
    /// Run the Discord bot: supervise the configured jobs and take decisions from Discord.
    ///
    /// Holds the store's lock like `run` (one supervisor per store; a second one refuses
    /// with exit status 2, naming the holder's PID and host).
    Serve(ServeArgs),
    /// Validate a config file and print the resolved jobs.
    ///
    /// Makes the same checks as `run` and `serve` (at least one job; a store path that can
    /// be a database file): exit status 0 when they would accept it, 2 when not.
    CheckConfig(CheckConfigArgs),
    /// Show what the store knows of runs, incidents and decisions.
    Status(StatusArgs),
    /// Send a command to the trainwatch that supervises a job, from another terminal — as
    /// yourself: the supervisor learns your login from the kernel (a Unix socket in its state
    /// folder, `runs/control.sock` beside the store) and gives it the personas of the
    /// supervisor's own `[roles]`. This is how a second person approves a fix at a console:
    /// four eyes need two logins. The socket is open to the supervisor's login and group
    /// (mode 0660): to let a colleague send, give the state folder a group you share, setgid
    /// (`chgrp trainers runs && chmod 2770 runs`). Nothing is queued: with no supervisor
    /// running, send fails at once.
    ///
    /// Example: trainwatch send --config jobs.toml -- /validate approve model_3 within tolerance
    Send(SendArgs),
    /// Print the audit log: every decision, fix submission, approval, rejection, kill and
    /// restart — with who, when, what, and the file hashes a review bound to. Append-only.
    Audit(AuditArgs),
    /// Analyse a finished log: verdict, category, the line to look at, each incident.
    ///
    /// Uses the same detectors as the live watcher. Exit status: 0 ok, 1 an error was
    /// found, 3 warnings only, 2 the log could not be read.
    Triage(TriageArgs),
    /// Holds one job process and records how it ended (internal; started by trainwatch).
    #[command(name = "__shim", hide = true)]
    Shim(crate::exec::shim::ShimArgs),
    /// A small training program for the demo: logs progress, writes checkpoints, fails once
    /// with a real-looking traceback, resumes from its checkpoint and completes.
    #[command(name = "demo-train", hide = true)]
    DemoTrain(crate::demo::DemoTrainArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file declaring the jobs (TOML).
    #[arg(short, long, value_name = "FILE", conflicts_with_all = ["log", "expected", "max", "stall"])]
    pub config: Option<PathBuf>,

    /// The store (SQLite) to use; default: the config's `store.path`, else ./.trainwatch/state.db.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,

    /// Log file of the wrapped command (default: ./trainwatch-<program>.log).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Expected duration of the wrapped command (e.g. 12h, 90m); drives percent complete.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration_arg)]
    pub expected: Option<std::time::Duration>,

    /// Maximum duration of the wrapped command; past it a TIMEOUT WARNING is posted.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration_arg)]
    pub max: Option<std::time::Duration>,

    /// No new output from the wrapped command for this long is a stall: the status update says
    /// whether it looks hung (no output) or just slow (steps slower than its usual pace).
    /// Default: 1/12 of --expected, between 10m and 2h; 30m without --expected.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration_arg)]
    pub stall: Option<std::time::Duration>,

    /// Status update interval for the wrapped command (default 30m).
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration_arg)]
    pub status_interval: Option<std::time::Duration>,

    /// Take decisions typed on standard input even when it is not a terminal.
    #[arg(long, conflicts_with = "unattended")]
    pub attended: bool,

    /// Never wait for typed decisions: each job's `on_error` policy decides.
    /// This is the default when standard input is not a terminal.
    #[arg(long)]
    pub unattended: bool,

    /// Colour the output: auto (when stdout is a terminal), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,

    /// Jobs to supervise (default: all jobs of the config) — or, after `--`, the command to wrap.
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,

    /// The command to wrap, with its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file declaring the jobs and the `[discord]` section.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// The store (SQLite) to use; default: the config's `store.path`, else ./.trainwatch/state.db.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Config file to validate.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub query: StoreQuery,
}

/// Which store to read, and what of it: shared by `status` and `audit`.
#[derive(Debug, Args)]
pub struct StoreQuery {
    /// Only this job.
    #[arg(value_name = "JOB")]
    pub job: Option<String>,
    /// Config file (to find the store).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The store (SQLite) to read; default: the config's `store.path`, else ./.trainwatch/state.db.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Config file of the jobs (only to find the store, and with it the supervisor's socket).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// The store (SQLite) the supervisor uses; default: the config's `store.path`.
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// How long to wait for the supervisor's answer.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::config::parse_duration_arg)]
    pub wait: std::time::Duration,
    /// The command, as typed in the console: /decide JOB restart, /fix submit JOB SUMMARY,
    /// /validate approve|reject JOB [REASON], /status JOB …
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub query: StoreQuery,
}

#[derive(Debug, Args)]
pub struct TriageArgs {
    /// The log to analyse (read as a stream: any size).
    #[arg(value_name = "LOG")]
    pub log: PathBuf,
    /// The process's exit status: a number, or 128+signal as a shell reports it (137 = SIGKILL).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub exit_code: Option<i32>,
    /// Print the machine-readable JSON form.
    #[arg(long)]
    pub json: bool,
    /// R-hat above this is a convergence problem.
    #[arg(long, value_name = "X", default_value_t = 1.1)]
    pub rhat_threshold: f64,
    /// Extra evidence: a line matching REGEX is an incident of CATEGORY (implementation,
    /// data, resource, convergence). Repeatable, e.g. `--pattern 'resource=GPU \d+ fell off the bus'`.
    #[arg(long = "pattern", value_name = "CATEGORY=REGEX")]
    pub patterns: Vec<String>,
    /// Lines matching REGEX are never evidence. Repeatable.
    #[arg(long = "ignore", value_name = "REGEX")]
    pub ignore: Vec<String>,
    /// Text matching REGEX is redacted from the report, like the built-in secrets (a job's
    /// `redact` patterns). Repeatable.
    #[arg(long = "redact", value_name = "REGEX")]
    pub redact: Vec<String>,
}
