//! The Slurm executor's pieces against a real cluster: the generated batch script and sbatch
//! argv submitted through the client, and Slurm's own verdict read back and mapped. Needs the
//! daemons of `.ci/slurm up` and `SLURM_CONF` set (`eval "export $(.ci/slurm env)"`); without
//! them each test prints why it did not run and returns — a skip, not a pass (the README says
//! how to tell). Every job a test submits is cancelled when the test ends, pass or fail.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trainwatch::exec::slurm::client::AcctSource;
use trainwatch::exec::slurm::{
    JobState, JobStatus, Launch, Outcome, PendingReason, SlurmClient, SlurmJobId, SlurmSettings, Submission,
};

/// The cluster to test against, or None (with the reason printed) when there is none
/// (`support::slurm::cluster`).
fn cluster(test: &str) -> Option<SlurmClient> {
    let conf = support::slurm::cluster(test)?;
    // The CI cluster has no slurmdbd: finished jobs are read from the job completion file.
    Some(
        SlurmClient::new()
            .with_conf(conf)
            .with_acct(AcctSource::Completion),
    )
}

/// Cancels every job it holds when dropped, so a failing assertion leaves nothing queued.
struct Jobs(Vec<SlurmJobId>);

impl Drop for Jobs {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let ids: Vec<String> = self.0.iter().map(|i| i.to_string()).collect();
        let _ = std::process::Command::new("scancel").args(&ids).status();
    }
}

struct Job {
    dir: tempfile::TempDir,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    settings: SlurmSettings,
}

impl Job {
    fn new(argv: &[&str]) -> Job {
        Job {
            dir: tempfile::tempdir().unwrap(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::new(),
            settings: SlurmSettings::default(),
        }
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("logs/train.log")
    }
    fn script_path(&self) -> PathBuf {
        self.dir.path().join("job.sbatch")
    }
    fn submission<'a>(&'a self, log: &'a Path, script: &'a Path) -> Submission<'a> {
        Submission {
            name: "tw_test",
            argv: &self.argv,
            env: &self.env,
            workdir: self.dir.path(),
            log,
            script_path: script,
            settings: &self.settings,
        }
    }
    async fn submit(&self, c: &SlurmClient, jobs: &mut Jobs) -> SlurmJobId {
        let (log, script) = (self.log(), self.script_path());
        let id = c.submit(&self.submission(&log, &script)).await.expect("sbatch");
        jobs.0.push(id);
        id
    }
}

/// Poll (the batched call) until the job is in `want`, or panic after `limit`.
async fn wait_state(c: &SlurmClient, id: SlurmJobId, limit: Duration, want: impl Fn(&JobState) -> bool) {
    let start = Instant::now();
    loop {
        let poll = c.poll(&[id]).await.expect("squeue");
        if let Some(e) = poll.get(id) {
            if want(&e.state) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "job {id} still {:?} ({}) after {limit:?}",
                e.state,
                e.reason
            );
        } else {
            assert!(start.elapsed() < limit, "job {id} not in the queue");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn outcome_within(c: &SlurmClient, id: SlurmJobId, limit: Duration) -> Outcome {
    wait_state(c, id, limit, JobState::is_final).await;
    c.outcome(id)
        .await
        .expect("scontrol")
        .expect("an ended job has an outcome")
}

const QUICK: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_job_that_exits_0_completes_and_its_output_is_in_the_log() {
    let Some(c) = cluster("completes") else { return };
    let mut jobs = Jobs(Vec::new());
    let mut job = Job::new(&["bash", "-c", "echo \"hello from $SLURM_JOB_ID: $GREETING\""]);
    job.env.insert("GREETING".into(), "it's a 'quoted' $value".into());
    let id = job.submit(&c, &mut jobs).await;
    assert_eq!(outcome_within(&c, id, QUICK).await, Outcome::Completed);
    let log = std::fs::read_to_string(job.log()).unwrap();
    assert!(
        log.contains(&format!("hello from {id}: it's a 'quoted' $value")),
        "{log}"
    );
}

#[tokio::test]
async fn a_job_that_exits_3_failed_with_exit_code_3() {
    let Some(c) = cluster("exit 3") else { return };
    let mut jobs = Jobs(Vec::new());
    let job = Job::new(&["bash", "-c", "echo failing; exit 3"]);
    let id = job.submit(&c, &mut jobs).await;
    let o = outcome_within(&c, id, QUICK).await;
    assert_eq!(o, Outcome::Failed { code: 3 });
    assert_eq!(o.to_string(), "failed with exit code 3");
    // What re-adoption reads once the controller has purged the job: sacct's record.
    let acct = c.accounting(&[id]).await.expect("sacct");
    assert_eq!(acct.len(), 1, "{acct:?}");
    assert_eq!(Outcome::from_acct(&acct[0]), Some(Outcome::Failed { code: 3 }));
}

#[tokio::test]
async fn a_launcher_killed_by_sigkill_from_inside_is_killed_by_signal_9() {
    let Some(c) = cluster("kill -9") else { return };
    let mut jobs = Jobs(Vec::new());
    let mut job = Job::new(&["bash", "-c", "echo about to die; kill -9 $$"]);
    job.settings.launch = Launch::Script;
    let id = job.submit(&c, &mut jobs).await;
    assert_eq!(
        outcome_within(&c, id, QUICK).await,
        Outcome::Signalled { signal: 9 }
    );
}

#[tokio::test]
async fn a_task_killed_by_sigkill_under_srun_is_reported_with_its_signal() {
    let Some(c) = cluster("srun kill -9") else { return };
    let mut jobs = Jobs(Vec::new());
    let job = Job::new(&["bash", "-c", "kill -9 $$"]);
    let id = job.submit(&c, &mut jobs).await;
    let o = outcome_within(&c, id, QUICK).await;
    // srun exits 128+9 for a task killed by SIGKILL: the batch script's status.
    assert_eq!(o, Outcome::Failed { code: 137 });
    assert_eq!(o.exit_outcome(), trainwatch::model::ExitOutcome::Signal(9));
}

#[tokio::test]
async fn a_cancelled_job_is_cancelled() {
    let Some(c) = cluster("scancel") else { return };
    let mut jobs = Jobs(Vec::new());
    let job = Job::new(&["sleep", "300"]);
    let id = job.submit(&c, &mut jobs).await;
    wait_state(&c, id, QUICK, |s| *s == JobState::Running).await;
    c.cancel(id).await.expect("scancel");
    assert_eq!(
        outcome_within(&c, id, QUICK).await,
        Outcome::Cancelled { by: None }
    );
}

/// Slurm's smallest time limit is one minute, and it checks limits on its own clock: about
/// 65 s, the slowest test here (under the 90 s at which it would be `#[ignore]`d).
#[tokio::test]
async fn a_job_over_its_time_limit_ends_in_timeout() {
    let Some(c) = cluster("time limit") else { return };
    let mut jobs = Jobs(Vec::new());
    let mut job = Job::new(&["sleep", "300"]);
    job.settings.time_limit = Some(Duration::from_secs(60));
    let id = job.submit(&c, &mut jobs).await;
    let o = outcome_within(&c, id, Duration::from_secs(150)).await;
    assert_eq!(o, Outcome::Timeout);
    assert_eq!(
        o.exit_outcome(),
        trainwatch::model::ExitOutcome::Scheduler(trainwatch::model::SchedulerEnd::TimeLimit)
    );
}

#[tokio::test]
async fn one_poll_sees_several_jobs_running_pending_held_and_ended() {
    let Some(c) = cluster("batched poll") else { return };
    let mut jobs = Jobs(Vec::new());
    let ends = Job::new(&["true"]);
    let runs = Job::new(&["sleep", "300"]);
    let mut held = Job::new(&["true"]);
    held.settings.extra_args = vec!["--hold".into()];
    let ends_id = ends.submit(&c, &mut jobs).await;
    let runs_id = runs.submit(&c, &mut jobs).await;
    let held_id = held.submit(&c, &mut jobs).await;
    wait_state(&c, ends_id, QUICK, JobState::is_final).await;
    wait_state(&c, runs_id, QUICK, |s| *s == JobState::Running).await;

    // Below Slurm's largest id (squeue refuses a list holding an impossible one), never reached here.
    let unknown = SlurmJobId(9_999_999);
    let poll = c
        .poll(&[ends_id, runs_id, held_id, unknown])
        .await
        .expect("one squeue call");
    assert_eq!(poll.entries.len(), 3, "{poll:#?}");
    assert_eq!(poll.missing, vec![unknown]);
    assert_eq!(poll.get(ends_id).unwrap().state, JobState::Completed);
    assert_eq!(poll.get(runs_id).unwrap().state, JobState::Running);
    let h = poll.get(held_id).unwrap();
    assert_eq!(h.state, JobState::Pending);
    assert!(PendingReason::parse(&h.reason).is_held(), "{}", h.reason);

    // The same jobs as the runtime will follow them: one squeue, then only the ended ones
    // looked up.
    let st = c
        .statuses(&[ends_id, runs_id, held_id, unknown])
        .await
        .expect("statuses");
    let of = |id| st.iter().find(|(i, _)| *i == id).map(|(_, s)| s.clone()).unwrap();
    assert_eq!(of(ends_id), JobStatus::Ended(Outcome::Completed));
    // No limit asked for, on a partition without one: none, or — when Slurm's backfill
    // scheduler started the job (the nodes were busy with other tests' jobs) — the 365 days
    // it gives such a job (`_set_backfill_timelimits`, YEAR_MINUTES), seen in CI.
    let year = Duration::from_secs(365 * 24 * 3600);
    assert!(
        matches!(of(runs_id), JobStatus::Running { time_limit: None, .. })
            || matches!(of(runs_id), JobStatus::Running { time_limit: Some(t), .. } if t == year),
        "{st:?}"
    );
    assert!(
        matches!(of(held_id), JobStatus::Waiting { ref reason } if reason.is_held()),
        "{st:?}"
    );
    assert_eq!(of(unknown), JobStatus::Unknown);
}

#[tokio::test]
async fn two_tasks_write_one_log_each_line_labelled_with_its_rank() {
    let Some(c) = cluster("two tasks") else { return };
    let mut jobs = Jobs(Vec::new());
    let mut job = Job::new(&["bash", "-c", "echo \"rank $SLURM_PROCID of $SLURM_NTASKS\""]);
    job.settings.ntasks = Some(2);
    let id = job.submit(&c, &mut jobs).await;
    assert_eq!(outcome_within(&c, id, QUICK).await, Outcome::Completed);
    let text = std::fs::read_to_string(job.log()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(lines, ["0: rank 0 of 2", "1: rank 1 of 2"], "{text:?}");
}

#[tokio::test]
async fn a_two_node_job_runs_one_rank_per_node_into_one_labelled_log() {
    let Some(c) = cluster("two nodes") else { return };
    let mut jobs = Jobs(Vec::new());
    let mut job = Job::new(&["bash", "-c", "echo \"rank $SLURM_PROCID on $SLURMD_NODENAME\""]);
    job.settings.nodes = Some(2);
    let id = job.submit(&c, &mut jobs).await;
    assert_eq!(outcome_within(&c, id, QUICK).await, Outcome::Completed);
    let text = std::fs::read_to_string(job.log()).unwrap();
    let mut nodes: Vec<String> = (0..2)
        .map(|rank| {
            let prefix = format!("{rank}: rank {rank} on ");
            let line = text
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("{text:?}"));
            line[prefix.len()..].to_string()
        })
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2"], "one rank on each node");
}
