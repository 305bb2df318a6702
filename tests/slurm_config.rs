//! A job's `executor` and `[jobs.NAME.slurm]` table as a user meets them: resolved values
//! with `[defaults.slurm]` applied key by key, every bad value reported at its file, line
//! and key, `check-config` printing the exact sbatch command line and batch script, and
//! `trainwatch run` refusing a Slurm job it cannot supervise yet (never pretending to).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use trainwatch::config::{Config, Executor, Located};
use trainwatch::exec::slurm::{Launch, SlurmSettings};

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("/proj/conf/tw.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn slurm(cfg: &Config, job: &str) -> SlurmSettings {
    match &cfg.job(job).unwrap().executor {
        Executor::Slurm(s) => s.clone(),
        Executor::Local => panic!("{job} is local"),
    }
}

/// Parse text that must fail; where the error points, as the user reads it.
fn fail(text: &str) -> (Located, String) {
    match Config::parse(text, Path::new("conf/bad.toml")) {
        Ok(_) => panic!("should have been rejected:\n{text}"),
        Err(e) => {
            let loc = e
                .location()
                .unwrap_or_else(|| panic!("no location in {e}"))
                .clone();
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!(
                    "conf/bad.toml:{}:{}: {}: ",
                    loc.line.unwrap(),
                    loc.column.unwrap(),
                    loc.key.as_deref().unwrap()
                )),
                "{shown}"
            );
            (loc, shown)
        }
    }
}

#[test]
fn jobs_are_local_unless_they_say_slurm() {
    let cfg = parse("[jobs.a]\nargv = [\"x\"]\n[jobs.b]\nargv = [\"x\"]\nexecutor = \"local\"\n");
    assert_eq!(cfg.job("a").unwrap().executor, Executor::Local);
    assert_eq!(cfg.job("b").unwrap().executor, Executor::Local);
}

#[test]
fn every_slurm_key_resolves_and_defaults_apply_key_by_key() {
    let cfg = parse(
        r#"
[defaults]
executor = "slurm"
[defaults.slurm]
partition = "gpu"
account = "proj42"
time_limit = "24h"

[jobs.big]
argv = ["torchrun", "train.py"]
[jobs.big.slurm]
qos = "high"
time_limit = "2h 30m"
nodes = 2
ntasks = 8
ntasks_per_node = 4
gpus = "a100:4"
cpus_per_task = 6
mem = "64G"
extra_args = ["--exclusive", "--signal=B:USR1@300"]
launch = "script"

[jobs.small]
argv = ["python", "t.py"]
[jobs.small.slurm]
gpus = 1
mem = 16000

[jobs.here]
argv = ["python", "t.py"]
executor = "local"
"#,
    );
    assert_eq!(
        slurm(&cfg, "big"),
        SlurmSettings {
            partition: Some("gpu".into()),
            account: Some("proj42".into()),
            qos: Some("high".into()),
            time_limit: Some(Duration::from_secs(9000)),
            nodes: Some(2),
            ntasks: Some(8),
            ntasks_per_node: Some(4),
            gpus: Some("a100:4".into()),
            cpus_per_task: Some(6),
            mem: Some("64G".into()),
            extra_args: vec!["--exclusive".into(), "--signal=B:USR1@300".into()],
            launch: Launch::Script,
        }
    );
    let small = slurm(&cfg, "small");
    assert_eq!(small.partition.as_deref(), Some("gpu"));
    assert_eq!(small.time_limit, Some(Duration::from_secs(24 * 3600)));
    assert_eq!(
        (small.gpus.as_deref(), small.mem.as_deref()),
        (Some("1"), Some("16000"))
    );
    assert_eq!(small.launch, Launch::Srun);
    assert_eq!(cfg.job("here").unwrap().executor, Executor::Local);
}

#[test]
fn each_bad_slurm_value_is_reported_at_its_line_and_key() {
    let job = "[jobs.a]\nargv = [\"x\"]\nexecutor = \"slurm\"\n[jobs.a.slurm]\n";
    let cases: &[(&str, &str, &str)] = &[
        ("time_limit = \"30s\"", "jobs.a.slurm.time_limit", "one minute"),
        ("time_limit = \"soon\"", "jobs.a.slurm.time_limit", ""),
        ("nodes = 0", "jobs.a.slurm.nodes", "from 1"),
        ("cpus_per_task = -2", "jobs.a.slurm.cpus_per_task", "from 1"),
        ("nodes = 4\nntasks = 2", "jobs.a.slurm.ntasks", "fewer than nodes"),
        ("gpus = \"lots\"", "jobs.a.slurm.gpus", "type:count"),
        ("gpus = 0", "jobs.a.slurm.gpus", "type:count"),
        ("mem = \"16GB\"", "jobs.a.slurm.mem", "unit"),
        (
            "extra_args = [\"-C\", \"gpu\"]",
            "jobs.a.slurm.extra_args",
            "long options",
        ),
        (
            "extra_args = [\"--output=/tmp/x\"]",
            "jobs.a.slurm.extra_args",
            "set by trainwatch",
        ),
        (
            "extra_args = [\"--chdir\"]",
            "jobs.a.slurm.extra_args",
            "set by trainwatch",
        ),
        ("launch = \"mpirun\"", "jobs.a.slurm.launch", "\"srun\""),
        ("partition = \"gpu a100\"", "jobs.a.slurm.partition", "one word"),
    ];
    for (line, key, words) in cases {
        let (loc, shown) = fail(&format!("{job}{line}\n"));
        assert_eq!(loc.key.as_deref(), Some(*key), "{line}: {shown}");
        let last_line = 4 + line.lines().count();
        assert_eq!(loc.line, Some(last_line), "{line}: {shown}");
        assert!(shown.contains(words), "{line}: {shown}");
    }
}

#[test]
fn an_unknown_executor_or_a_slurm_table_on_a_local_job_is_refused() {
    let (loc, shown) = fail("[jobs.a]\nargv = [\"x\"]\nexecutor = \"k8s\"\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(3), Some("jobs.a.executor")));
    assert!(shown.contains("\"local\" or \"slurm\""), "{shown}");
    let (loc, shown) = fail("[jobs.a]\nargv = [\"x\"]\n[jobs.a.slurm]\npartition = \"gpu\"\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(4), Some("jobs.a.slurm")));
    assert!(shown.contains("executor = \"slurm\""), "{shown}");
    let (loc, _) = fail("[jobs.a]\nargv = [\"x\"]\n[jobs.a.slurm]\ncolour = 1\n");
    assert_eq!(loc.line, Some(4));
    // A cluster's defaults do not make a local job wrong.
    parse("[defaults.slurm]\npartition = \"gpu\"\n[jobs.a]\nargv = [\"x\"]\n");
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("tw.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const TWO_RANKS: &str = r#"
[jobs.ranks]
argv = ["python", "train.py", "--note", "it's $HOME"]
executor = "slurm"
log = "logs/train.log"
env = { PYTHONUNBUFFERED = "1", HF_TOKEN = "hf_abc123" }
[jobs.ranks.slurm]
partition = "debug"
ntasks = 2
time_limit = "90m"
"#;

#[test]
fn check_config_prints_the_exact_sbatch_command_and_batch_script() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), TWO_RANKS);
    let out = Command::new(env!("CARGO_BIN_EXE_trainwatch"))
        .args(["check-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = std::fs::canonicalize(dir.path()).unwrap_or_else(|_| dir.path().to_path_buf());
    let d = d.display();
    let expected_sbatch = format!(
        "  sbatch:          'HF_TOKEN=[REDACTED]' PYTHONUNBUFFERED=1 sbatch --parsable --job-name=ranks --chdir={d} --output={d}/logs/train.log --open-mode=append --partition=debug --time=0-01:30:00 --ntasks=2 {d}/.trainwatch/slurm/ranks.sbatch"
    );
    assert!(text.contains(&expected_sbatch), "{text}");
    assert!(
        text.contains("  ranks:           2 tasks, one log, each line labelled with its rank (srun --label)"),
        "{text}"
    );
    assert!(
        text.contains("    | exec srun --label -- python train.py --note 'it'\\''s $HOME'\n"),
        "{text}"
    );
    assert!(!text.contains("hf_abc123"), "a secret leaked: {text}");
    assert!(
        text.contains("  scheduler:       timeout warning 10m before the time limit; extend by 1h; after a cluster failure: resubmit (at most 3 times)"),
        "{text}"
    );
}
