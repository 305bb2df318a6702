//! `twbench`: the measuring side of trainwatch's benchmark suite (`bench/run.sh` drives it).
//! Job programs that trainwatch supervises during a measurement (`gen-log`, `inject`,
//! `burst`), and orchestrators that start the real `trainwatch` binary, time and sample it
//! (`latency`, `latency-ref`, `follow`, `catchup`, `many`, `burst-run`, `measure`).
//! Benchmark-only: not part of the product.

mod discord;
mod gen;
mod jobs;
mod orch;
mod probe;
mod reference;
mod score;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "twbench",
    about = "Measurement helpers for trainwatch's benchmark suite"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write a realistic training log (a size as fast as possible, or a rate for a while).
    GenLog(jobs::GenLogArgs),
    /// A job: ordinary output at a rate; a fresh chained traceback on each trigger.
    Inject(jobs::InjectArgs),
    /// A job: calm output, a burst of error lines, calm output, exit.
    Burst(jobs::BurstArgs),
    /// Detection latency from an appended error line to trainwatch's console report.
    Latency(orch::LatencyArgs),
    /// Detection latency to the Discord emulator's REST endpoint, through `trainwatch serve`.
    LatencyDiscord(discord::DiscordLatencyArgs),
    /// Detection latency of the references: the protocol's polling watcher, `tail -F | grep`.
    LatencyRef(reference::RefLatencyArgs),
    /// Peak RSS while trainwatch follows one log growing to a given size.
    Follow(orch::FollowArgs),
    /// Live catch-up: a job prints a whole log at once; time to trainwatch's report of its end.
    Catchup(orch::CatchupArgs),
    /// Many jobs under one trainwatch: peak RSS, or CPU time while they are quiet.
    Many(orch::ManyArgs),
    /// A burst of error lines under trainwatch: reports, counts, memory.
    BurstRun(orch::BurstRunArgs),
    /// Run a command: wall time, CPU time, peak RSS, MB/s.
    Measure(orch::MeasureArgs),
    /// Score `trainwatch triage` on fixture manifests: category, first line, false alarms.
    TriageScore(score::ScoreArgs),
}

fn main() {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::GenLog(a) => jobs::gen_log(a),
        Cmd::Inject(a) => jobs::inject(a),
        Cmd::Burst(a) => jobs::burst(a),
        Cmd::Latency(a) => orch::latency(a).map(|()| 0),
        Cmd::LatencyDiscord(a) => discord::latency(a).map(|()| 0),
        Cmd::LatencyRef(a) => reference::latency(a).map(|()| 0),
        Cmd::Follow(a) => orch::follow(a).map(|()| 0),
        Cmd::Catchup(a) => orch::catchup(a).map(|()| 0),
        Cmd::Many(a) => orch::many(a).map(|()| 0),
        Cmd::BurstRun(a) => orch::burst_run(a).map(|()| 0),
        Cmd::Measure(a) => orch::measure(a).map(|()| 0),
        Cmd::TriageScore(a) => score::run(a).map(|()| 0),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("twbench: {e}");
            std::process::exit(1);
        }
    }
}
