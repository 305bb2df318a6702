//! The re-validation gate's evidence end to end, on real temp folders: design config → snapshot
//! → changes summary → comparison table, with and without git.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use trainwatch::review::{
    changes, compare, parse_design, render_changes, render_table, take_snapshot, watch_from_argv,
    DesignError, DesignParam, ParamValue, RawDesignParam, Snapshot, Tolerance, Verdict,
};

#[derive(Deserialize)]
struct Job {
    design: Vec<RawDesignParam>,
}

fn design(toml_text: &str) -> Vec<DesignParam> {
    let job: Job = toml::from_str(toml_text).expect("config parses");
    parse_design(&job.design).expect("design is valid")
}

fn design_err(toml_text: &str) -> String {
    let job: Job = toml::from_str(toml_text).expect("config parses");
    parse_design(&job.design).unwrap_err().to_string()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn set(items: &[&str]) -> ParamValue {
    ParamValue::Set(items.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>())
}

const MODEL_V1: &str = "import pymc as pm\n\
features = [\"age\", \"income\"]\n\
\n\
def fit(data):\n\
    step = pm.NUTS()\n\
    return pm.sample(draws=2000, tune=1000, chains=4, step=step)\n";

const DESIGN: &str = r#"
[[design]]
name = "draws"
expected = 2000
tolerance = "±10%"
from = { pattern = 'draws\s*=\s*(\d+)', files = ["model_*.py"] }

[[design]]
name = "tune"
expected = 1000
tolerance = "±50"
from = { pattern = 'tune\s*=\s*(\d+)', files = ["model_*.py"] }

[[design]]
name = "chains"
expected = 4
from = { file = "params.yaml", key = "sampler.chains" }

[[design]]
name = "algorithm"
expected = "NUTS"
from = { pattern = 'pm\.(\w+)\(\)', files = ["model_*.py"] }

[[design]]
name = "features"
expected = ["age", "income"]
tolerance = "same set"
from = { pattern = 'features\s*=\s*(\[[^\]]*\])', files = ["model_*.py"] }
"#;

fn job_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model_3.py", MODEL_V1);
    write(dir.path(), "params.yaml", "sampler:\n  chains: 4\n");
    write(dir.path(), "README.md", "notes\n");
    dir
}

#[test]
fn design_reads_from_config_toml_with_defaults_and_round_trips() {
    let d = design(DESIGN);
    assert_eq!(d.len(), 5);
    assert_eq!(d[0].expected, ParamValue::Number(2000.0));
    assert_eq!(d[0].tolerance, Tolerance::Relative(10.0));
    assert_eq!(d[1].tolerance, Tolerance::Absolute(50.0));
    assert_eq!(d[2].tolerance, Tolerance::Exact, "numbers default to exact");
    assert_eq!(d[4].expected, set(&["age", "income"]));
    // The config module may embed Vec<DesignParam> directly; it survives the store as JSON too.
    let job: std::collections::BTreeMap<String, Vec<DesignParam>> = toml::from_str(DESIGN).unwrap();
    assert_eq!(job["design"], d);
    let json = serde_json::to_string(&d).unwrap();
    let back: Vec<DesignParam> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn bad_design_entries_are_refused_naming_the_parameter_and_the_problem() {
    let cases = [
        (
            r#"[[design]]
name = "draws"
expected = 2000
tolerance = "about right"
from = { file = "p.toml", key = "draws" }"#,
            "tolerance \"about right\"",
        ),
        (
            r#"[[design]]
name = "draws"
expected = 2000
from = { pattern = 'draws=\d+', files = ["m.py"] }"#,
            "exactly one capture group",
        ),
        (
            r#"[[design]]
name = "algorithm"
expected = "NUTS"
tolerance = "±10%"
from = { file = "p.toml", key = "algo" }"#,
            "does not apply to a text value",
        ),
        (
            r#"[[design]]
name = "features"
expected = "age"
from = { file = "p.toml", key = "f" }"#,
            "must be a list",
        ),
        (
            r#"[[design]]
name = "draws"
expected = 1
from = { file = "p.toml", key = "a", pattern = '(x)' }"#,
            "both `file` and `pattern`",
        ),
        (
            r#"[[design]]
name = "draws"
expected = 1
from = { file = "../outside.toml", key = "a" }"#,
            "relative to the job's workdir",
        ),
        (
            r#"[[design]]
name = "draws"
expected = 1
from = { file = "params.ini", key = "a" }"#,
            ".toml, .json, .yaml or .yml",
        ),
    ];
    for (cfg, want) in cases {
        let e = design_err(cfg);
        assert!(e.contains(want), "{e:?} should mention {want:?}");
        assert!(e.contains("design parameter \""), "{e:?} names the parameter");
    }
    let dup = r#"[[design]]
name = "draws"
expected = 1
from = { file = "p.toml", key = "a" }
[[design]]
name = "draws"
expected = 2
from = { file = "p.toml", key = "b" }"#;
    let job: Job = toml::from_str(dup).unwrap();
    assert_eq!(
        parse_design(&job.design),
        Err(DesignError::Duplicate("draws".into()))
    );
}

#[test]
fn params_files_in_toml_json_and_yaml_are_read_by_dotted_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "cfg/p.toml",
        "[sampler]\ndraws = 2000\nalgo = \"NUTS\"\n",
    );
    write(
        dir.path(),
        "p.json",
        r#"{"sampler": {"chains": [4, 8], "tune": "1_000"}}"#,
    );
    write(
        dir.path(),
        "p.yml",
        "model:\n  features:\n    - age\n    - income\n  target_accept: 0.95\n",
    );
    let d = design(
        r#"
[[design]]
name = "draws"
expected = 2000
from = { file = "./cfg/p.toml", key = "sampler.draws" }
[[design]]
name = "algorithm"
expected = "NUTS"
from = { file = "cfg/p.toml", key = "sampler.algo" }
[[design]]
name = "chains"
expected = 8
from = { file = "p.json", key = "sampler.chains.1" }
[[design]]
name = "tune"
expected = 1000
from = { file = "p.json", key = "sampler.tune" }
[[design]]
name = "features"
expected = ["income", "age"]
from = { file = "p.yml", key = "model.features" }
[[design]]
name = "target_accept"
expected = 0.9
tolerance = "±0.05"
from = { file = "p.yml", key = "model.target_accept" }
"#,
    );
    let s = take_snapshot(dir.path(), &[], &d).unwrap();
    assert_eq!(s.params["draws"], Ok(ParamValue::Number(2000.0)));
    assert_eq!(s.params["algorithm"], Ok(ParamValue::Text("NUTS".into())));
    assert_eq!(s.params["chains"], Ok(ParamValue::Number(8.0)));
    assert_eq!(s.params["tune"], Ok(ParamValue::Number(1000.0)));
    assert_eq!(s.params["features"], Ok(set(&["age", "income"])));
    assert_eq!(s.params["target_accept"], Ok(ParamValue::Number(0.95)));
    let c = compare(&d, &s);
    assert!(c.all_within(), "{:?}", c.rows);
    assert_eq!(c.score, 1.0);
    // The params files are design sources, so they are hashed too.
    let files: Vec<&Path> = s.files.keys().map(PathBuf::as_path).collect();
    assert_eq!(
        files,
        [Path::new("cfg/p.toml"), Path::new("p.json"), Path::new("p.yml")]
    );
}

#[test]
fn regex_over_source_files_reads_numbers_text_and_lists() {
    let dir = job_dir();
    let d = design(DESIGN);
    let s = take_snapshot(dir.path(), &[], &d).unwrap();
    assert_eq!(s.params["draws"], Ok(ParamValue::Number(2000.0)));
    assert_eq!(s.params["tune"], Ok(ParamValue::Number(1000.0)));
    assert_eq!(s.params["chains"], Ok(ParamValue::Number(4.0)));
    assert_eq!(s.params["algorithm"], Ok(ParamValue::Text("NUTS".into())));
    assert_eq!(s.params["features"], Ok(set(&["age", "income"])));
    let table = render_table(&compare(&d, &s));
    assert_eq!(
        table[0],
        "Parameter | Design        | Actual        | Tolerance | Verdict"
    );
    assert!(table
        .iter()
        .any(|l| l.starts_with("draws ") && l.contains("±10%") && l.ends_with("✅ within")));
    assert_eq!(
        table.last().unwrap(),
        "Overall score: 100% (5/5 within tolerance)"
    );
}

#[test]
fn unreadable_values_are_verdicts_that_count_against_the_score() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.json", r#"{"sampler": {"draws": "lots"}}"#);
    write(dir.path(), "bad.toml", "draws = [");
    write(dir.path(), "model.py", "print('no parameters here')\n");
    let d = design(
        r#"
[[design]]
name = "missing_file"
expected = 1
from = { file = "nope.yaml", key = "a" }
[[design]]
name = "missing_key"
expected = 1
from = { file = "p.json", key = "sampler.chains" }
[[design]]
name = "not_a_number"
expected = 1
from = { file = "p.json", key = "sampler.draws" }
[[design]]
name = "broken_file"
expected = 1
from = { file = "bad.toml", key = "draws" }
[[design]]
name = "no_match"
expected = 1
from = { pattern = 'tune=(\d+)', files = ["*.py"] }
[[design]]
name = "no_file"
expected = 1
from = { pattern = 'tune=(\d+)', files = ["src/*.py"] }
"#,
    );
    let s = take_snapshot(dir.path(), &[], &d).unwrap();
    let c = compare(&d, &s);
    assert_eq!(c.score, 0.0);
    let why = |name: &str| match &c.rows.iter().find(|r| r.name == name).unwrap().verdict {
        Verdict::CannotRead(w) => w.clone(),
        v => panic!("{name}: {v:?}"),
    };
    assert!(why("missing_file").contains("nope.yaml: file not found"));
    assert!(why("missing_key").contains("\"chains\""));
    assert!(why("not_a_number").contains("\"lots\" is not a number"));
    assert!(why("broken_file").contains("not valid TOML"));
    assert!(why("no_match").contains("matches nothing in model.py"));
    assert!(why("no_file").contains("no file matches src/*.py"));
    let table = render_table(&c);
    assert!(table
        .iter()
        .any(|l| l.contains("❌ cannot read: nope.yaml: file not found")));
    assert_eq!(table.last().unwrap(), "Overall score: 0% (0/6 within tolerance)");
}

#[test]
fn design_change_lists_files_params_algorithm_and_features() {
    let dir = job_dir();
    let d = design(DESIGN);
    let watch = vec!["*.md".to_string(), "data/*.csv".to_string()];
    write(dir.path(), "data/old.csv", "a,b\n");
    let before = take_snapshot(dir.path(), &watch, &d).unwrap();
    assert!(before.git.is_none(), "a plain folder is not a git repository");

    let v2 = MODEL_V1
        .replace("draws=2000", "draws=1500")
        .replace("pm.NUTS()", "pm.HamiltonianMC()")
        .replace("[\"age\", \"income\"]", "[\"age\", \"zip\"]");
    write(dir.path(), "model_3.py", &v2);
    fs::remove_file(dir.path().join("data/old.csv")).unwrap();
    write(dir.path(), "data/new.csv", "a,b\n");
    let after = take_snapshot(dir.path(), &watch, &d).unwrap();

    let s = changes(&before, &after, &d, dir.path());
    let files: Vec<(&Path, bool, bool)> = s
        .files_modified
        .iter()
        .map(|f| (f.path.as_path(), f.before.is_some(), f.after.is_some()))
        .collect();
    assert_eq!(
        files,
        [
            (Path::new("data/new.csv"), false, true),
            (Path::new("data/old.csv"), true, false),
            (Path::new("model_3.py"), true, true),
        ]
    );
    assert!(
        s.files_modified.iter().all(|f| f.lines.is_none()),
        "no git: hashes only"
    );
    let names: Vec<&str> = s.params_changed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["draws", "algorithm", "features"]);
    assert_eq!(s.params_changed[0].before, Ok(ParamValue::Number(2000.0)));
    assert_eq!(s.params_changed[0].after, Ok(ParamValue::Number(1500.0)));
    assert!(s.algorithm_changed);
    assert_eq!(s.features_added, ["zip"]);
    assert_eq!(s.features_removed, ["income"]);
    assert!(s.design_changed);
    assert!(
        s.compliance.starts_with("NOT compliant: 2 of 5"),
        "{}",
        s.compliance
    );
    assert!(s
        .compliance
        .contains("draws is 1500 (design 2000, tolerance ±10%)"));

    let text = render_changes(&s);
    assert_eq!(
        text,
        [
            "📋 CHANGES SUMMARY:",
            "- Files modified: data/new.csv (added), data/old.csv (removed), model_3.py (content changed)",
            "- Parameters changed: draws, algorithm, features",
            "  - draws: Before: 2000 → After: 1500",
            "  - algorithm: Before: NUTS → After: HamiltonianMC",
            "  - features: Before: {age, income} → After: {age, zip}",
            "- Algorithm changed: YES (NUTS → HamiltonianMC)",
            "- Features added/removed: YES (added: zip; removed: income)",
            &format!("- Design expectations compliance: {}", s.compliance),
        ]
    );
    // The approval binds to the reviewed hashes: any later edit voids it.
    assert!(!after.same_code_as(&before));
    let reviewed = after.clone();
    write(dir.path(), "model_3.py", &format!("{v2}# tweak\n"));
    let now = take_snapshot(dir.path(), &watch, &d).unwrap();
    assert!(!now.same_code_as(&reviewed));
}

#[test]
fn a_fix_that_changes_no_design_value_is_a_simple_bug_fix() {
    let dir = job_dir();
    let d = design(DESIGN);
    let before = take_snapshot(dir.path(), &["*.md".into()], &d).unwrap();
    // Touch a design source without changing any design value, and a non-source file.
    write(
        dir.path(),
        "model_3.py",
        &MODEL_V1.replace("def fit(data):", "def fit(data):\n    data = data.dropna()"),
    );
    write(dir.path(), "README.md", "notes, fixed\n");
    let after = take_snapshot(dir.path(), &["*.md".into()], &d).unwrap();
    let s = changes(&before, &after, &d, dir.path());
    assert_eq!(s.files_modified.len(), 2);
    assert!(s.params_changed.is_empty());
    assert!(!s.design_changed);
    assert!(!s.algorithm_changed);
    let text = render_changes(&s);
    assert_eq!(text[2], "- Parameters changed: none");
    assert_eq!(text[3], "- Algorithm changed: NO");
    assert_eq!(text[4], "- Features added/removed: NO");
    assert_eq!(
        text[5],
        "- Design expectations compliance: compliant: all 5 design parameters within tolerance (score 100%)"
    );
}

#[test]
fn a_value_that_becomes_unreadable_counts_as_a_design_change() {
    let dir = job_dir();
    let d = design(DESIGN);
    let before = take_snapshot(dir.path(), &[], &d).unwrap();
    fs::remove_file(dir.path().join("params.yaml")).unwrap();
    let after = take_snapshot(dir.path(), &[], &d).unwrap();
    let s = changes(&before, &after, &d, dir.path());
    assert!(s.design_changed);
    assert_eq!(s.params_changed[0].name, "chains");
    assert!(render_changes(&s)
        .contains(&"  - chains: Before: 4 → After: (cannot read: params.yaml: file not found)".to_string()));
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(
        ok.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn in_a_git_repository_modified_files_get_line_ranges() {
    let dir = job_dir();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "v1"]);
    // A file already edited when the run starts: git's diff would mix in older edits, so it
    // gets hashes only.
    write(dir.path(), "README.md", "edited before the run\n");
    let d = design(DESIGN);
    let watch = vec!["*.md".to_string()];
    let before = take_snapshot(dir.path(), &watch, &d).unwrap();
    let base = before.git.as_ref().expect("the workdir is a repository");
    assert_eq!(base.head.len(), 40);
    assert!(base.clean.contains(Path::new("model_3.py")));
    assert!(!base.clean.contains(Path::new("README.md")));

    write(
        dir.path(),
        "model_3.py",
        &MODEL_V1
            .replace("draws=2000", "draws=2100")
            .replace("import pymc as pm\n", "import pymc as pm\nimport numpy as np\n"),
    );
    write(dir.path(), "README.md", "edited again\n");
    let after = take_snapshot(dir.path(), &watch, &d).unwrap();
    let s = changes(&before, &after, &d, dir.path());
    let model = s
        .files_modified
        .iter()
        .find(|f| f.path == Path::new("model_3.py"))
        .unwrap();
    let lines = model.lines.as_ref().expect("line stats from git");
    assert_eq!(lines.ranges, vec![(2, 2), (7, 7)]);
    assert_eq!((lines.added, lines.removed), (2, 1));
    let readme = s
        .files_modified
        .iter()
        .find(|f| f.path == Path::new("README.md"))
        .unwrap();
    assert!(readme.lines.is_none());
    // draws moved within ±10%: a design change (re-validation), but compliant.
    assert!(s.design_changed);
    assert!(s.compliance.starts_with("compliant"), "{}", s.compliance);
    assert_eq!(
        render_changes(&s)[1],
        "- Files modified: README.md (content changed), model_3.py (lines 2, 7; +2 −1)"
    );
    // Committing the fix does not change what changed since the run started.
    git(dir.path(), &["commit", "-qam", "fix"]);
    let s2 = changes(&before, &after, &d, dir.path());
    assert_eq!(s2.files_modified, s.files_modified);
}

#[test]
fn snapshots_round_trip_through_json_for_the_store() {
    let dir = job_dir();
    let d = design(DESIGN);
    fs::remove_file(dir.path().join("params.yaml")).unwrap();
    let s = take_snapshot(dir.path(), &["*.md".into()], &d).unwrap();
    let back: Snapshot = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    assert!(back.params["chains"].is_err());
}

#[test]
fn argv_files_under_the_workdir_become_watch_globs() {
    let dir = job_dir();
    write(dir.path(), "conf [1].yaml", "a: 1\n");
    let argv: Vec<String> = [
        "python",
        "model_3.py",
        "--config=conf [1].yaml",
        "--epochs",
        "3",
        "/etc/hostname",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let watch = watch_from_argv(dir.path(), &argv);
    let s = take_snapshot(dir.path(), &watch, &[]).unwrap();
    let files: Vec<&Path> = s.files.keys().map(PathBuf::as_path).collect();
    assert_eq!(files, [Path::new("conf [1].yaml"), Path::new("model_3.py")]);
}

#[test]
fn a_missing_workdir_or_a_bad_glob_is_an_error_not_a_panic() {
    let d = design(DESIGN);
    let e = take_snapshot(Path::new("no/such/dir"), &[], &d).unwrap_err();
    assert!(e.to_string().starts_with("workdir no/such/dir"), "{e}");
    let dir = job_dir();
    let e = take_snapshot(dir.path(), &["../*".into()], &d).unwrap_err();
    assert!(e.to_string().contains("without \"..\""), "{e}");
    let e = take_snapshot(dir.path(), &["[".into()], &d).unwrap_err();
    assert!(e.to_string().starts_with("watch glob \"[\""), "{e}");
}

#[test]
fn a_symlink_out_of_the_workdir_is_neither_hashed_nor_read() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.toml", "draws = 2000\n");
    let dir = job_dir();
    std::os::unix::fs::symlink(outside.path().join("secret.toml"), dir.path().join("p.toml")).unwrap();
    let d = design(
        r#"
[[design]]
name = "draws"
expected = 2000
from = { file = "p.toml", key = "draws" }
"#,
    );
    let s = take_snapshot(dir.path(), &["*.toml".into()], &d).unwrap();
    assert!(s.files.is_empty(), "{:?}", s.files);
    assert!(s.params["draws"].is_err());
}

#[test]
fn a_design_template_binds_to_the_job_name() {
    let dir = job_dir();
    let d = design(
        r#"
[[design]]
name = "draws"
expected = 2000
from = { pattern = 'draws=(\d+)', files = ["{job}.py"] }
"#,
    );
    let job = trainwatch::model::JobName::new("model_3").unwrap();
    let bound = trainwatch::review::bind_job(&d, &job);
    let s = take_snapshot(dir.path(), &[], &bound).unwrap();
    assert_eq!(s.params["draws"], Ok(ParamValue::Number(2000.0)));
    assert!(s.files.contains_key(Path::new("model_3.py")));
    // Unbound, the placeholder matches no file and says so.
    let s = take_snapshot(dir.path(), &[], &d).unwrap();
    assert!(s.params["draws"].as_ref().unwrap_err().contains("{job}.py"));
}

#[test]
fn a_workdir_inside_a_larger_repository_gets_line_stats_for_its_own_files() {
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), "jobs/m3/model_3.py", MODEL_V1);
    write(repo.path(), "jobs/m3/params.yaml", "sampler:\n  chains: 4\n");
    write(repo.path(), "other/model_9.py", "draws=1\n");
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "v1"]);
    let workdir = repo.path().join("jobs/m3");
    let d = design(DESIGN);
    let before = take_snapshot(&workdir, &[], &d).unwrap();
    let clean: Vec<&Path> = before
        .git
        .as_ref()
        .unwrap()
        .clean
        .iter()
        .map(PathBuf::as_path)
        .collect();
    assert_eq!(clean, [Path::new("model_3.py"), Path::new("params.yaml")]);
    write(repo.path(), "jobs/m3/params.yaml", "sampler:\n  chains: 8\n");
    write(repo.path(), "other/model_9.py", "draws=2\n");
    let after = take_snapshot(&workdir, &[], &d).unwrap();
    let s = changes(&before, &after, &d, &workdir);
    assert_eq!(
        s.files_modified.len(),
        1,
        "files outside the workdir are not the job's"
    );
    let f = &s.files_modified[0];
    assert_eq!(f.path, Path::new("params.yaml"));
    assert_eq!(f.lines.as_ref().unwrap().ranges, vec![(2, 2)]);
    assert_eq!(s.params_changed[0].name, "chains");
    assert!(
        s.compliance.contains("chains is 8 (design 4, tolerance exact)"),
        "{}",
        s.compliance
    );
}
