//! Detection latency to Discord: the local Discord emulator runs inside this process, the
//! real `trainwatch serve` talks to it over loopback (the emulator as its REST proxy, rate
//! limiter off), the job is started with an injected `/train start` and each report is
//! answered with an injected `/decide … continue`. An injection's latency ends when the
//! emulator has recorded the POST that carries its error text (the emulator wakes waiters
//! on every recorded request, so the stamp is taken within microseconds of the record).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use discord_emulator::{CommandOpt, EmuUser, Emulator, EmulatorConfig, RecordedRequest};

use crate::gen::letters;
use crate::jobs::mkfifo;
use crate::probe::{mono_ns, status_kb};

const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAx.emulated.token-for-benchmarks";

#[derive(Debug, clap::Args)]
pub struct DiscordLatencyArgs {
    #[arg(long)]
    pub trainwatch: PathBuf,
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 200)]
    pub injections: u64,
    #[arg(long, value_parser = crate::jobs::parse_size, default_value = "1M")]
    pub rate: u64,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// A POST of a new message to `channel` whose body mentions `needle`.
fn posted(q: &RecordedRequest, channel: u64, needle: &str) -> bool {
    q.method == "POST"
        && q.path.contains(&format!("/channels/{channel}/messages"))
        && q.body.json().is_some_and(|b| b.to_string().contains(needle))
}

pub fn latency(a: &DiscordLatencyArgs) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(run(a))
}

async fn run(a: &DiscordLatencyArgs) -> io::Result<()> {
    fs::create_dir_all(&a.dir)?;
    let dir = fs::canonicalize(&a.dir)?;
    let emu = Emulator::start(EmulatorConfig {
        token: Some(TOKEN.into()),
        https_proxy: false,
        validate: false,
        ..EmulatorConfig::default()
    })
    .await
    .map_err(io_err)?;
    let ch = emu.config().channels[0].0;
    let role = emu.config().roles[0].0;
    let guild = emu.config().guild_id;
    let fifo = dir.join("trigger");
    let stamps = dir.join("stamps");
    let _ = fs::remove_file(&fifo);
    let _ = fs::remove_file(&stamps);
    mkfifo(&fifo)?;
    let mut trig = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)?;
    let me = std::env::current_exe()?.display().to_string();
    let argv = vec![
        me,
        "inject".to_string(),
        "--rate".into(),
        a.rate.to_string(),
        "--trigger".into(),
        fifo.display().to_string(),
        "--stamps".into(),
        stamps.display().to_string(),
    ];
    let cfg = format!(
        "[store]\npath = {:?}\n\n[roles]\ndirector = [\"role:{role}\"]\n\n[jobs.lat]\nargv = {argv:?}\nlog = {:?}\n\n\
[discord]\ntoken_env = \"TW_BENCH_DISCORD_TOKEN\"\nguild_id = \"{guild}\"\nchannel = \"{ch}\"\nproxy_url = {:?}\n",
        dir.join("state.db").display().to_string(),
        dir.join("job.log").display().to_string(),
        emu.proxy_url(),
    );
    let cfg_path = dir.join("discord.toml");
    fs::write(&cfg_path, cfg)?;
    let mut child = Command::new(fs::canonicalize(&a.trainwatch)?)
        .args(["serve", "--config"])
        .arg(&cfg_path)
        .current_dir(&dir)
        .env("TW_BENCH_DISCORD_TOKEN", TOKEN)
        .env_remove("TRAINWATCH_LOG")
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.join("serve.stdout"))?)
        .stderr(fs::File::create(dir.join("serve.stderr"))?)
        .spawn()?;
    let pid = child.id();
    let result = measure(a, &emu, ch, role, &mut trig, pid).await;
    let _ = trig.write_all(b"q");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // SAFETY: signalling the trainwatch we started, by its PID.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    for _ in 0..40 {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let retry_429 = emu.requests().iter().filter(|q| q.status == 429).count();
    let _ = emu.shutdown().await;
    let (reports, peak) = match result {
        Ok(r) => r,
        Err(e) => {
            println!("latency_discord_error={e}");
            return Ok(());
        }
    };
    println!("latency_discord_429={retry_429}");
    println!("latency_discord_rss_peak_kb={peak}");
    let injected: Vec<(u64, u64)> = fs::read_to_string(&stamps)?
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect();
    let mut lat = Vec::new();
    let mut missed = 0;
    for (k, t_in) in injected {
        match reports.get(k as usize).copied().flatten() {
            Some(t_out) if t_out >= t_in => lat.push((t_out - t_in) as f64 / 1e6),
            _ => missed += 1,
        }
    }
    println!("latency_discord_missed={missed}");
    crate::orch::stats("latency_discord", lat);
    Ok(())
}

async fn measure(
    a: &DiscordLatencyArgs,
    emu: &Emulator,
    ch: u64,
    role: u64,
    trig: &mut fs::File,
    pid: u32,
) -> Result<(Vec<Option<u64>>, u64), String> {
    emu.wait_ready(Duration::from_secs(30))
        .await
        .map_err(|e| format!("trainwatch serve did not connect to the emulator: {e}"))?;
    let director = EmuUser::new(42, "bench").with_roles([role]);
    emu.slash_command(
        ch,
        &director,
        "train",
        vec![CommandOpt::subcommand(
            "start",
            vec![CommandOpt::string("job", "lat")],
        )],
    )
    .map_err(|e| e.to_string())?;
    emu.wait_for(
        |r| r.iter().any(|q| posted(q, ch, "Training started")),
        Duration::from_secs(30),
    )
    .await
    .map_err(|e| format!("no 'Training started' post: {e}"))?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut peak = 0;
    let mut reports = Vec::new();
    for k in 0..a.injections {
        let from = emu.requests().len();
        let token = format!("feature_{}", letters(k));
        trig.write_all(b"i").map_err(|e| e.to_string())?;
        let got = emu
            .wait_for(
                |r| {
                    r.get(from..)
                        .is_some_and(|new| new.iter().any(|q| posted(q, ch, &token)))
                },
                Duration::from_secs(10),
            )
            .await
            .ok()
            .map(|_| mono_ns());
        reports.push(got);
        if let Some(h) = status_kb(pid, "VmHWM") {
            peak = peak.max(h);
        }
        let _ = emu.slash_command(
            ch,
            &director,
            "decide",
            vec![
                CommandOpt::string("job", "lat"),
                CommandOpt::string("decision", "continue"),
            ],
        );
        tokio::time::sleep(Duration::from_millis(40 + (k * 7) % 23)).await;
    }
    Ok((reports, peak))
}
