//! The config file as a user meets it: the shipped examples load, every kind of mistake is
//! reported at its file, line and key, defaults and `{name}` are applied, relative paths
//! resolve against the config's folder, and `trainwatch check-config` exits 0 or 2.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use trainwatch::config::{
    format_duration, Config, ConfigError, JobSpec, Located, OnError, Principal, StatusMode,
};
use trainwatch::model::{Category, Persona};

const SRC: &str = "/proj/conf/tw.toml";

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new(SRC)).unwrap_or_else(|e| panic!("should parse: {e}"))
}

/// Parse text that must fail; return where the error points.
fn fail(text: &str) -> Located {
    match Config::parse(text, Path::new("conf/bad.toml")) {
        Ok(_) => panic!("should have been rejected:\n{text}"),
        Err(e) => {
            let loc = e
                .location()
                .unwrap_or_else(|| panic!("no location in {e}"))
                .clone();
            assert_eq!(loc.file, PathBuf::from("conf/bad.toml"));
            // The rendered form is what the user reads.
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
            loc
        }
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(name)
}

#[test]
fn example_config_loads_with_every_section() {
    let cfg = Config::load(&example("example.toml")).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let dir = dir.as_path();
    assert_eq!(cfg.store_path, dir.join(".trainwatch/state.db"));
    let names: Vec<&str> = cfg.jobs.iter().map(|j| j.engine.job.as_str()).collect();
    assert_eq!(names, ["baseline", "model_3"], "sorted by name");

    let m = cfg.job("model_3").unwrap();
    assert_eq!(m.engine.argv, ["python", "output/implementation/code/model_3.py"]);
    assert_eq!(m.workdir, dir);
    assert_eq!(m.env.get("PYTHONUNBUFFERED").map(String::as_str), Some("1"));
    assert_eq!(
        m.engine.log,
        dir.join("output/implementation/logs/training_model_3_full.log")
    );
    assert_eq!(m.engine.expected, Some(Duration::from_secs(12 * 3600)));
    assert_eq!(m.engine.max, Some(Duration::from_secs(24 * 3600)));
    assert_eq!(
        m.stall_timeout,
        Some(trainwatch::watch::progress::StallAfter::Fixed(
            Duration::from_secs(1800)
        ))
    );
    assert_eq!(m.engine.on_error, OnError::Restart { limit: 3 });
    assert_eq!(m.channel.as_deref(), Some("444444444444444444"));
    assert_eq!(
        m.checkpoint.as_deref(),
        Some(
            format!(
                "{}/checkpoints/model_model_3_*.ckpt",
                glob::Pattern::escape(dir.to_str().unwrap())
            )
            .as_str()
        )
    );
    assert!(m.detect.ignore[0].is_match("WARNING: harmless thing here"));
    assert!(m
        .detect
        .extra
        .iter()
        .any(|(c, re)| *c == Category::Data && re.is_match("bad row 17")));
    assert_eq!(m.metrics.step.as_deref(), Some("step"));
    assert_eq!(m.metrics.chart, ["loss", "val_loss"]);
    let (pname, re) = &m.metrics.patterns[0];
    assert_eq!(pname, "accuracy");
    assert_eq!(&re.captures("acc=0.93").unwrap()[1], "0.93");

    assert_eq!(
        cfg.roles.principals(Persona::Modeler),
        [Principal::Local("dave".into())]
    );
    let d = cfg.discord.as_ref().unwrap();
    assert_eq!(d.token_env, "DISCORD_TOKEN");
    assert_eq!(d.channel, "222222222222222222");
    assert_eq!(d.status_mode, StatusMode::Edit);
    assert!(cfg.job("nope").is_none());
}

#[test]
fn discord_example_loads_and_accepts_integer_ids() {
    let cfg = Config::load(&example("discord.toml")).unwrap();
    let d = cfg.discord.as_ref().unwrap();
    assert_eq!(d.guild_id.as_deref(), Some("555555555555555555"));
    let train = cfg.job("train").unwrap();
    assert!(train
        .resume_argv
        .as_ref()
        .unwrap()
        .contains(&"{checkpoint}".to_string()));
    let someone = [Principal::DiscordRole("222222222222222222".into())];
    assert_eq!(
        cfg.roles.personas_of(&someone),
        [Persona::CodeTranslator, Persona::DataEngineer]
    );
}

#[test]
fn unknown_key_is_reported_at_its_line() {
    let loc = fail("[jobs.a]\nargv = [\"x\"]\n\nmaxx = \"1h\"\n");
    assert_eq!((loc.line, loc.column), (Some(4), Some(1)));
    assert_eq!(loc.key.as_deref(), Some("jobs.a.maxx"));
    assert!(loc.message.contains("unknown field `maxx`"), "{}", loc.message);

    let loc = fail("[store]\npath = \"x\"\ncolour = 1\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(3), Some("store.colour")));
}

#[test]
fn bad_duration_names_line_column_and_key() {
    let loc = fail("[jobs.model_3]\nargv = [\"x\"]\nmax   =   \"12 hours-ish\"\n");
    assert_eq!((loc.line, loc.column), (Some(3), Some(11)));
    assert_eq!(loc.key.as_deref(), Some("jobs.model_3.max"));
    assert!(
        loc.message.contains("invalid duration \"12 hours-ish\""),
        "{}",
        loc.message
    );

    // A bad default is reported under [defaults], where it must be fixed — even when every
    // job sets its own value, or there is no job yet.
    let loc = fail("[defaults]\nstatus_interval = \"0s\"\n[jobs.a]\nargv = [\"x\"]\n");
    assert_eq!(
        (loc.line, loc.key.as_deref()),
        (Some(2), Some("defaults.status_interval"))
    );
    let loc = fail("[defaults]\nmax = \"1 fortnight\"\n[jobs.a]\nargv = [\"x\"]\nmax = \"1h\"\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(2), Some("defaults.max")));
    let loc = fail("[defaults]\n\n[defaults.detect]\nignore = [\"[\"]\n");
    assert_eq!(
        (loc.line, loc.key.as_deref()),
        (Some(4), Some("defaults.detect.ignore"))
    );
}

#[test]
fn empty_or_missing_argv_is_refused() {
    let loc = fail("[jobs.a]\nargv = []\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(2), Some("jobs.a.argv")));
    let loc = fail("[jobs.a]\nargv = [\"\", \"x\"]\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(2), Some("jobs.a.argv")));
    let loc = fail("[jobs.a]\nlog = \"x.log\"\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(1), Some("jobs.a")));
    assert!(loc.message.contains("argv is required"));
    let loc = fail("[defaults]\nargv = [\"x\"]\n");
    assert_eq!(loc.key.as_deref(), Some("defaults.argv"));
}

#[test]
fn bad_job_name_is_refused() {
    let loc = fail("[jobs.ok]\nargv = [\"x\"]\n\n[jobs.\"rm -rf /\"]\nargv = [\"x\"]\n");
    assert_eq!(loc.line, Some(4));
    assert_eq!(loc.key.as_deref(), Some("jobs.\"rm -rf /\""));
    assert!(loc.message.contains("invalid job name"), "{}", loc.message);
}

#[test]
fn resume_argv_needs_checkpoint_placeholder_and_glob() {
    let loc =
        fail("[jobs.a]\nargv = [\"x\"]\ncheckpoint = \"c/*.ckpt\"\nresume_argv = [\"x\", \"--resume\"]\n");
    assert_eq!(
        (loc.line, loc.key.as_deref()),
        (Some(4), Some("jobs.a.resume_argv"))
    );
    assert!(loc.message.contains("{checkpoint}"), "{}", loc.message);

    let loc = fail("[jobs.a]\nargv = [\"x\"]\nresume_argv = [\"x\", \"{checkpoint}\"]\n");
    assert_eq!(
        (loc.line, loc.key.as_deref()),
        (Some(3), Some("jobs.a.resume_argv"))
    );
    assert!(loc.message.contains("needs `checkpoint`"), "{}", loc.message);

    // {checkpoint} is not a path placeholder.
    let loc = fail("[jobs.a]\nargv = [\"x\"]\nlog = \"{checkpoint}.log\"\n");
    assert_eq!(loc.key.as_deref(), Some("jobs.a.log"));
}

#[test]
fn token_in_discord_section_is_refused_without_echoing_it() {
    let text = "[discord]\nchannel = \"1\"\ntoken = \"MTIz.secret-token-value\"\n";
    let loc = fail(text);
    assert_eq!((loc.line, loc.key.as_deref()), (Some(3), Some("discord.token")));
    assert!(loc.message.contains("token_env"), "{}", loc.message);
    assert!(!loc.message.contains("secret-token-value"));

    // Pasting the token into token_env is caught too, still without echoing it.
    let loc = fail("[discord]\nchannel = \"1\"\ntoken_env = \"MTIz.secret-token-value\"\n");
    assert_eq!(loc.key.as_deref(), Some("discord.token_env"));
    assert!(!loc.message.contains("secret-token-value"));
}

#[test]
fn bad_regex_is_reported_at_the_pattern() {
    let loc = fail("[jobs.a]\nargv = [\"x\"]\n[jobs.a.detect]\nignore = [\"ok\",\n  \"(unclosed\"]\n");
    assert_eq!((loc.line, loc.column), (Some(5), Some(3)));
    assert_eq!(loc.key.as_deref(), Some("jobs.a.detect.ignore"));
    assert!(
        loc.message.contains("invalid regex \"(unclosed\""),
        "{}",
        loc.message
    );

    let loc = fail("[jobs.a]\nargv = [\"x\"]\n[jobs.a.metrics.patterns]\nacc = \"acc=[0-9]+\"\n");
    assert_eq!(loc.key.as_deref(), Some("jobs.a.metrics.patterns.acc"));
    assert!(loc.message.contains("one capture group"), "{}", loc.message);

    let loc = fail("[jobs.a]\nargv = [\"x\"]\n[jobs.a.detect.extra]\nmemory = [\"x\"]\n");
    assert_eq!(loc.key.as_deref(), Some("jobs.a.detect.extra.memory"));
}

#[test]
fn unknown_persona_and_bad_principal_are_refused() {
    let loc = fail("[roles]\ndirector = [\"alice\"]\nboss = [\"bob\"]\n");
    assert_eq!((loc.line, loc.column), (Some(3), Some(1)));
    assert_eq!(loc.key.as_deref(), Some("roles.boss"));
    assert!(
        loc.message.contains("unknown persona \"boss\""),
        "{}",
        loc.message
    );

    let loc = fail("[roles]\ndirector = [\"alice\", \"role:admins\"]\n");
    assert_eq!((loc.line, loc.column), (Some(2), Some(22)));
    assert_eq!(loc.key.as_deref(), Some("roles.director"));
}

#[test]
fn wrong_types_name_the_key() {
    let loc = fail("[jobs.a]\nargv = \"python train.py\"\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(2), Some("jobs.a.argv")));
    assert!(loc.message.contains("expected a list"), "{}", loc.message);

    let loc = fail("[jobs.a]\nargv = [\"x\"]\nenv = { PYTHONUNBUFFERED = 1 }\n");
    assert_eq!(
        (loc.line, loc.key.as_deref()),
        (Some(3), Some("jobs.a.env.PYTHONUNBUFFERED"))
    );

    let loc = fail("[jobs.a]\nargv = [\"x\"]\non_error = \"restart\"\nrestart_limit = \"3\"\n");
    assert_eq!(
        (loc.line, loc.key.as_deref()),
        (Some(4), Some("jobs.a.restart_limit"))
    );

    let loc = fail("[jobs.a]\nargv = [\"x\"]\nchannel = \"#general\"\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(3), Some("jobs.a.channel")));
}

#[test]
fn syntax_errors_have_a_line() {
    let e = Config::parse("[jobs.a\nargv = [\"x\"]\n", Path::new("c.toml")).unwrap_err();
    let loc = e.location().unwrap();
    assert_eq!(loc.line, Some(1));
    assert!(!e.to_string().contains('\n'), "one line: {e}");
}

#[test]
fn defaults_apply_unless_a_job_sets_its_own() {
    let cfg = parse(
        r#"
[defaults]
status_interval = "10m"
max = "5h"
on_error = "restart"
restart_limit = 5
[defaults.detect]
rhat_threshold = 1.05
ignore = ["^noise"]

[jobs.a]
argv = ["a"]

[jobs.b]
argv = ["b"]
max = "6h"
on_error = "kill"
[jobs.b.detect]
rhat_threshold = 1.2
"#,
    );
    let a = cfg.job("a").unwrap();
    assert_eq!(a.engine.status_interval, Duration::from_secs(600));
    assert_eq!(a.engine.max, Some(Duration::from_secs(5 * 3600)));
    assert_eq!(a.engine.on_error, OnError::Restart { limit: 5 });
    assert_eq!(a.detect.rhat_threshold, 1.05);
    let b = cfg.job("b").unwrap();
    assert_eq!(b.engine.max, Some(Duration::from_secs(6 * 3600)));
    assert_eq!(b.engine.on_error, OnError::Kill);
    assert_eq!(b.detect.rhat_threshold, 1.2);
    // Detect keys fall back one by one.
    assert!(b.detect.ignore[0].is_match("noise line"));

    // Built-in defaults.
    let c = parse("[jobs.c]\nargv = [\"c\"]\n");
    let c = &c.jobs[0];
    assert_eq!(format_duration(c.engine.status_interval), "30m");
    assert_eq!(format_duration(c.kill_grace), "30s");
    assert_eq!(c.engine.on_error, OnError::Wait);
    assert_eq!(c.engine.expected, None);
    assert_eq!(c.detect.rhat_threshold, 1.1);
    assert_eq!(c.metrics.diverge_factor, 3.0);
    let r = parse("[jobs.r]\nargv = [\"r\"]\non_error = \"restart\"\n");
    assert_eq!(r.jobs[0].engine.on_error, OnError::Restart { limit: 3 });
}

#[test]
fn name_is_expanded_in_paths_and_defaults() {
    let cfg = parse(
        r#"
[defaults]
log = "logs/{name}.log"
outputs = ["out/{name}/trace.nc"]
[jobs.model_7]
argv = ["python", "m.py"]
checkpoint = "ckpt/{name}-*.pt"
resume_argv = ["python", "m.py", "--from", "{checkpoint}"]
"#,
    );
    let j = &cfg.jobs[0];
    assert_eq!(j.engine.log, PathBuf::from("/proj/conf/logs/model_7.log"));
    assert_eq!(j.outputs, [PathBuf::from("/proj/conf/out/model_7/trace.nc")]);
    assert_eq!(
        j.results,
        PathBuf::from("/proj/conf/output/results/results_model_7.csv")
    );
    assert_eq!(
        j.model,
        PathBuf::from("/proj/conf/output/implementation/models/model_model_7_full.pkl")
    );
    assert_eq!(j.checkpoint.as_deref(), Some("/proj/conf/ckpt/model_7-*.pt"));
    // `{checkpoint}` is kept for the executor to fill in (`exec::resolve_resume`).
    assert_eq!(
        j.resume_argv.as_deref().unwrap(),
        ["python", "m.py", "--from", "{checkpoint}"]
    );
    assert_eq!(
        j.output_files(),
        [j.results.clone(), j.model.clone(), j.outputs[0].clone()]
    );

    let loc = fail("[jobs.a]\nargv = [\"x\"]\nresults = \"out/{nmae}.csv\"\n");
    assert_eq!((loc.line, loc.key.as_deref()), (Some(3), Some("jobs.a.results")));
    assert!(loc.message.contains("{nmae}"), "{}", loc.message);
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("project");
    std::fs::create_dir(&sub).unwrap();
    let file = sub.join("tw.toml");
    std::fs::write(
        &file,
        r#"
[store]
path = "state/tw.db"
[jobs.a]
argv = ["python", "a.py"]
workdir = "runs/./a"
log = "a.log"
[jobs.b]
argv = ["b"]
log = "/var/log/b.log"
[discord]
channel = "1"
ca_cert = "certs/ca.pem"
"#,
    )
    .unwrap();
    let cfg = Config::load(&file).unwrap();
    assert_eq!(cfg.source, file);
    assert_eq!(cfg.store_path, sub.join("state/tw.db"));
    let a = cfg.job("a").unwrap();
    assert_eq!(a.workdir, sub.join("runs/a"));
    assert_eq!(
        a.engine.log,
        sub.join("runs/a/a.log"),
        "job files are relative to the workdir"
    );
    let b = cfg.job("b").unwrap();
    assert_eq!(b.workdir, sub);
    assert_eq!(b.engine.log, PathBuf::from("/var/log/b.log"));
    assert_eq!(cfg.discord.unwrap().ca_cert, Some(sub.join("certs/ca.pem")));

    // Default store: .trainwatch/state.db beside the config.
    let other = sub.join("min.toml");
    std::fs::write(&other, "").unwrap();
    let cfg = Config::load(&other).unwrap();
    assert_eq!(cfg.store_path, sub.join(".trainwatch/state.db"));
    assert!(cfg.jobs.is_empty() && cfg.roles.is_empty() && cfg.discord.is_none());
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let e = Config::load(Path::new("no/such/tw.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(e.to_string().starts_with("no/such/tw.toml: "), "{e}");
}

#[test]
fn wrap_mode_derives_name_and_log() {
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cwd = Path::new("/home/u/proj");
    let j = JobSpec::wrap(
        argv(&["python", "-u", "scripts/train model.py", "--epochs", "3"]),
        cwd,
        None,
        Some(Duration::from_secs(3600)),
        Some(Duration::from_secs(7200)),
        None,
        None,
    )
    .unwrap();
    assert_eq!(j.engine.job.as_str(), "train_model");
    assert_eq!(
        j.engine.log,
        PathBuf::from("/home/u/proj/trainwatch-train_model.log")
    );
    assert_eq!(j.workdir, cwd);
    assert_eq!(j.engine.argv[2], "scripts/train model.py", "argv untouched");
    assert_eq!(j.engine.expected, Some(Duration::from_secs(3600)));
    assert_eq!(j.engine.status_interval, Duration::from_secs(1800));
    assert_eq!(j.engine.on_error, OnError::Wait);

    let j = JobSpec::wrap(
        argv(&["./bin/fit", "--x"]),
        cwd,
        Some("logs/fit.log".into()),
        None,
        None,
        Some(Duration::from_secs(60)),
        None,
    )
    .unwrap();
    assert_eq!(j.engine.job.as_str(), "fit");
    assert_eq!(j.engine.log, PathBuf::from("/home/u/proj/logs/fit.log"));
    assert_eq!(j.engine.status_interval, Duration::from_secs(60));

    assert!(matches!(
        JobSpec::wrap(vec![], cwd, None, None, None, None, None),
        Err(ConfigError::Usage(_))
    ));
    let e = JobSpec::wrap(
        argv(&["x"]),
        cwd,
        None,
        Some(Duration::from_secs(7200)),
        Some(Duration::from_secs(60)),
        None,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("--max"), "{e}");
}

fn check_config(file: &Path, token: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainwatch"));
    cmd.arg("check-config").arg(file);
    match token {
        Some(t) => cmd.env("DISCORD_TOKEN", t),
        None => cmd.env_remove("DISCORD_TOKEN"),
    };
    cmd.output().unwrap()
}

#[test]
fn check_config_prints_resolved_jobs_and_exits_zero() {
    let out = check_config(&example("example.toml"), Some("MTIz.very-secret"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("[model_3]"), "{stdout}");
    assert!(stdout.contains("max:             24h"), "{stdout}");
    assert!(
        stdout.contains("on_error:        restart (at most 3 times)"),
        "{stdout}"
    );
    assert!(stdout.contains("DISCORD_TOKEN (set)"), "{stdout}");
    assert!(!stdout.contains("very-secret"), "the token never appears");

    let out = check_config(&example("example.toml"), None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("DISCORD_TOKEN (NOT set)"));
}

#[test]
fn check_config_exits_two_with_the_place_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[jobs.a]\nargv = [\"x\"]\nexpected = \"soon\"\n").unwrap();
    let out = check_config(&file, None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:3:12: jobs.a.expected: invalid duration \"soon\"",
        file.display()
    );
    assert!(stderr.contains(&want), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = check_config(&dir.path().join("missing.toml"), None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn truncated_configs_never_panic() {
    // Every prefix of the full example: each one either loads or names a place to fix.
    let text = std::fs::read_to_string(example("example.toml")).unwrap();
    let mut cut = 0;
    while cut <= text.len() {
        if text.is_char_boundary(cut) {
            if let Err(e) = Config::parse(&text[..cut], Path::new("t.toml")) {
                let loc = e.location().expect("a parse error has a location");
                assert_eq!(loc.file, PathBuf::from("t.toml"));
            }
        }
        cut += 7;
    }
}

/// The metrics' settings are checked here, where the config is read: the tracker takes them
/// as given (these checks moved from a test-only `MetricsConfig::add_extra`/`validate`).
#[test]
fn metric_settings_a_user_can_get_wrong_are_refused() {
    let loc = fail("[jobs.a]\nargv = [\"x\"]\n[jobs.a.metrics]\ndiverge_factor = 0.5\n");
    assert_eq!(loc.key.as_deref(), Some("jobs.a.metrics.diverge_factor"));
    assert!(loc.message.contains("above 1"), "{}", loc.message);
    let loc = fail("[jobs.a]\nargv = [\"x\"]\n[jobs.a.metrics.patterns]\nacc = \"(unclosed\"\n");
    assert_eq!(loc.key.as_deref(), Some("jobs.a.metrics.patterns.acc"));
    assert!(loc.message.contains("invalid regex"), "{}", loc.message);
}

/// R-hat's threshold and the divergence factor are both "this many times" ratios: each must
/// be a finite number above 1.0, and the error names the key it was written under.
#[test]
fn ratio_thresholds_must_be_above_one() {
    let loc = fail("[jobs.a]\nargv = [\"x\"]\n[jobs.a.detect]\nrhat_threshold = 1.0\n");
    assert_eq!(loc.key.as_deref(), Some("jobs.a.detect.rhat_threshold"));
    assert_eq!(loc.message, "rhat_threshold must be a number above 1.0, got 1");
    let loc = fail("[defaults.metrics]\ndiverge_factor = nan\n[jobs.a]\nargv = [\"x\"]\n");
    assert_eq!(
        loc.key.as_deref(),
        Some("defaults.metrics.diverge_factor"),
        "{}",
        loc.message
    );
    assert_eq!(loc.message, "diverge_factor must be a number above 1.0, got NaN");
}

/// A sub-table may be written before (or without) its parent's own header: TOML defines the
/// parent implicitly, and the config reads it like any other.
#[test]
fn sub_tables_need_no_header_of_their_parent() {
    let cfg = Config::parse(
        "[defaults.metrics]\ndiverge_factor = 4.0\n[jobs.a.detect]\nrhat_threshold = 1.3\n[jobs.a]\nargv = [\"x\"]\n",
        Path::new("conf/t.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let a = cfg.job("a").unwrap();
    assert_eq!(a.metrics.diverge_factor, 4.0);
    assert_eq!(a.detect.rhat_threshold, 1.3);
}

/// `stall_timeout = "auto"` learns the limit from the job's own output cadence (the fallback
/// until then comes from `expected`); a duration is a fixed limit; anything else is an error
/// at its line.
#[test]
fn stall_timeout_is_a_duration_or_auto() {
    use trainwatch::watch::progress::StallAfter;
    let c = parse(
        "[defaults]\nstall_timeout = \"auto\"\n[jobs.a]\nargv = [\"x\"]\nexpected = \"12h\"\n[jobs.b]\nargv = [\"x\"]\nstall_timeout = \"5m\"\n",
    );
    assert_eq!(
        c.job("a").unwrap().stall_timeout,
        Some(StallAfter::Cadence {
            until_known: Duration::from_secs(3600)
        })
    );
    assert_eq!(
        c.job("b").unwrap().stall_timeout,
        Some(StallAfter::Fixed(Duration::from_secs(300)))
    );
    let loc = fail("[jobs.a]\nargv = [\"x\"]\nstall_timeout = \"automatic\"\n");
    assert_eq!(
        (loc.line, loc.key.as_deref()),
        (Some(3), Some("jobs.a.stall_timeout"))
    );
}
