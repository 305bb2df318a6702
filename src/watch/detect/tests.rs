//! Detector behaviour on small hand-written logs (the real-log corpus is in tests/triage.rs).

use super::*;
use crate::model::ExitOutcome;

fn run(log: &str, exit: Option<ExitOutcome>) -> (Vec<Finding>, Vec<Incident>) {
    let mut d = Detector::new(DetectConfig::default());
    let mut all = Vec::new();
    for (i, l) in log.split('\n').enumerate() {
        all.extend(d.push_line(i as u64 + 1, l));
    }
    all.extend(d.finish(exit));
    (all, d.incidents().to_vec())
}

#[test]
fn a_fatal_traceback_is_reported_at_its_exception_line() {
    let log = "epoch 1 loss 0.5\nTraceback (most recent call last):\n  File \"t.py\", line 3, in <module>\n    x.fit()\nAttributeError: 'NoneType' object has no attribute 'fit'";
    let (_, inc) = run(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].line, 5);
    assert_eq!(inc[0].category, Category::Implementation);
    assert_eq!(inc[0].severity, Severity::Fatal);
    assert_eq!(inc[0].excerpt.len(), 4);
}

fn lines(log: &str, exit: Option<ExitOutcome>) -> Vec<Incident> {
    run(log, exit).1
}

#[test]
fn a_dataloader_worker_traceback_points_at_the_original_error() {
    // The layout PyTorch's DataLoader uses to relay a worker's exception.
    let log = "\
Traceback (most recent call last):
  File \"train.py\", line 20, in <module>
    for batch in loader:
  File \"/v/torch/_utils.py\", line 694, in reraise
    raise exception
KeyError: Caught KeyError in DataLoader worker process 0.
Original Traceback (most recent call last):
  File \"/v/torch/utils/data/_utils/worker.py\", line 308, in _worker_loop
    data = fetcher.fetch(index)
  File \"train.py\", line 10, in __getitem__
    return self.df.loc[idx, \"label\"]
  File \"/v/pandas/core/indexes/base.py\", line 3812, in get_loc
    raise KeyError(key) from err
KeyError: 'label'
";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1);
    assert_eq!((inc[0].line, inc[0].text.as_str()), (14, "KeyError: 'label'"));
    assert_eq!(inc[0].category, Category::Data);
    assert_eq!(inc[0].severity, Severity::Fatal);
}

#[test]
fn output_interleaved_with_a_traceback_does_not_cut_it() {
    let log = "\
Traceback (most recent call last):
  File \"train.py\", line 5, in <module>
epoch 3 loss=0.41
Accuracy: 0.93
    run()
  File \"train.py\", line 3, in run
    torch.zeros(10**12, device=\"cuda\")
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.64 TiB. GPU 0 has a total capacity of 15.77 GiB
";
    let inc = lines(log, None);
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].line, 8);
    assert_eq!(inc[0].category, Category::Resource);
    assert_eq!(inc[0].excerpt.len(), 6, "{:?}", inc[0].excerpt);
}

#[test]
fn a_header_glued_after_a_progress_bar_is_found() {
    let log = "\r 10%|#         | 1/10\r 20%|##        | 2/10Traceback (most recent call last):\n  File \"t.py\", line 1, in <module>\nZeroDivisionError: division by zero\n";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].excerpt[0], "Traceback (most recent call last):");
    assert_eq!(inc[0].category, Category::Implementation);
}

#[test]
fn an_ignored_exception_is_a_note() {
    let log = "\
Exception ignored in: <function Loader.__del__ at 0x7f00>
Traceback (most recent call last):
  File \"t.py\", line 9, in __del__
AttributeError: 'NoneType' object has no attribute 'close'
";
    let inc = lines(log, None);
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].severity, Severity::Note);
    assert!(inc[0].excerpt[0].starts_with("Exception ignored in"));
    // Not a warning after a success either.
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc[0].severity, Severity::Note);
}

#[test]
fn the_same_caught_traceback_every_epoch_is_one_incident() {
    let one = "Traceback (most recent call last):\n  File \"t.py\", line 4, in step\nValueError: could not convert string to float: 'x'\n";
    let mut log = String::new();
    for e in 0..3 {
        log.push_str(&format!("epoch {e} start\n{one}epoch {e} done\nsaved\nok\n"));
    }
    let (findings, inc) = run(&log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].count, 3);
    // The run went on after each and succeeded: outlived, a note (issue 12: never a verdict
    // other than ok).
    assert_eq!(inc[0].severity, Severity::Note);
    assert_eq!(inc[0].line, 4);
    let news = findings
        .iter()
        .filter(|f| matches!(f, Finding::New { .. }))
        .count();
    assert_eq!(news, 1);
}

#[test]
fn a_killed_line_and_a_signal_make_one_incident() {
    let inc = lines("step 1\nKilled\n", Some(ExitOutcome::Signal(9)));
    assert_eq!(inc.len(), 1);
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Resource));
    assert_eq!(inc[0].severity, Severity::Fatal);
}

#[test]
fn an_rhat_table_above_the_threshold_is_a_convergence_warning() {
    let log = "\
        mean     sd  ess_bulk  ess_tail  r_hat
alpha  0.12  0.30     812.0     700.0   1.00
beta   2.40  1.10       5.0      11.0   1.42
sigma  1.00  0.10     900.0     800.0   1.01

done
";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].line, 3);
    assert_eq!(inc[0].category, Category::Convergence);
    assert_eq!(inc[0].severity, Severity::Warning);
    let strict = {
        let mut d = Detector::new(DetectConfig {
            rhat_threshold: 1.005,
            ..DetectConfig::default()
        });
        for (i, l) in log.lines().enumerate() {
            d.push_line(i as u64 + 1, l);
        }
        d.incidents()[0].excerpt.len()
    };
    assert_eq!(strict, 3, "header and both rows above 1.005");
}

#[test]
fn an_exception_group_is_read_inside_its_margin() {
    let log = "  + Exception Group Traceback (most recent call last):
  |   File \"g.py\", line 1, in <module>
  |     raise ExceptionGroup(\"several failures\", [ValueError(\"a\"), TypeError(\"b\")])
  | ExceptionGroup: several failures (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | ValueError: a
    +---------------- 2 ----------------
    | TypeError: b
    +------------------------------------";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].line, 4);
    assert_eq!(inc[0].text, "ExceptionGroup: several failures (2 sub-exceptions)");
    assert_eq!(inc[0].excerpt.len(), 9);
    assert_eq!(inc[0].severity, Severity::Fatal);
}

#[test]
fn text_settings_build_a_config_or_say_what_is_wrong() {
    let cfg = DetectConfig::from_patterns(1.05, &["resource = GPU \\d+ lost"], &["^DEBUG"]).unwrap();
    assert_eq!(cfg.extra[0].0, Category::Resource);
    assert_eq!(cfg.ignore.len(), 1);
    let e = DetectConfig::from_patterns(1.1, &["gpu=x"], &[]).unwrap_err();
    assert!(e.to_string().contains("unknown category"), "{e}");
    assert!(DetectConfig::from_patterns(1.1, &["no separator"], &[]).is_err());
    assert!(DetectConfig::from_patterns(1.1, &["data=("], &[]).is_err());
    assert!(DetectConfig::from_patterns(0.9, &[] as &[&str], &[]).is_err());
}

/// The shape of torchrun's output when one rank raises: the rank's own lines carry a
/// `[rankN]: ` prefix, then the elastic agent's summary and its `ChildFailedError`.
const TORCHRUN_TAIL: &str = "\
W1201 19:53:28.051000 28541 torch/distributed/elastic/multiprocessing/api.py:1028] Sending process 28989 closing signal SIGTERM
E1201 19:53:28.383000 28541 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: CODE) local_rank: 1 (pid: 28990) of binary: /v/bin/python3
Traceback (most recent call last):
  File \"/v/bin/torchrun\", line 8, in <module>
    sys.exit(main())
  File \"/v/torch/distributed/launcher/api.py\", line 386, in launch_agent
    raise ChildFailedError(
torch.distributed.elastic.multiprocessing.errors.ChildFailedError: 
============================================================
train.py FAILED";

fn primary(inc: &[Incident]) -> &Incident {
    inc.iter()
        .filter(|i| i.severity == Severity::Fatal)
        .min_by_key(|i| i.line)
        .expect("a fatal incident")
}

#[test]
fn a_failing_ranks_own_exception_beats_the_launchers_summary() {
    let log = format!(
        "rank 0 step 1 loss=1.3\n\
[rank1]: Traceback (most recent call last):\n\
[rank1]:   File \"train.py\", line 30, in <module>\n\
[rank1]:     schedule = config[\"lr_schedule\"]\n\
[rank1]: KeyError: 'lr_schedule'\n\
[rank0]: Traceback (most recent call last):\n\
[rank0]:   File \"train.py\", line 25, in <module>\n\
[rank0]:     dist.all_reduce(p.grad)\n\
[rank0]: RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:2432. This is typically caused by a remote worker crashing.\n{}",
        TORCHRUN_TAIL.replace("CODE", "1")
    );
    let inc = lines(&log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!((p.line, p.text.as_str()), (5, "[rank1]: KeyError: 'lr_schedule'"));
    assert_eq!(p.category, Category::Implementation);
    // The survivor's failed collective and the launcher's summary are kept, as warnings.
    let fatal = inc.iter().filter(|i| i.severity == Severity::Fatal).count();
    assert_eq!(fatal, 1, "{inc:#?}");
    assert!(inc.iter().any(|i| i.text.starts_with("[rank0]: RuntimeError")));
}

#[test]
fn a_rank_killed_by_sigkill_is_a_resource_problem_named_by_the_agents_summary() {
    let log = format!(
        "rank 1 step 3 loss=0.79\n\
[rank0]: Traceback (most recent call last):\n\
[rank0]:   File \"train.py\", line 21, in <module>\n\
[rank0]:     dist.all_reduce(p.grad)\n\
[rank0]: RuntimeError: [../gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:2432. This is typically caused by a remote worker crashing.\n{}",
        TORCHRUN_TAIL.replace("CODE", "-9")
    );
    let inc = lines(&log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!(p.line, 7, "{inc:#?}");
    assert!(p.text.contains("failed (exitcode: -9) local_rank: 1"));
    assert_eq!(p.category, Category::Resource);
}

#[test]
fn a_collective_timeout_alone_is_the_cause_and_a_resource_problem() {
    let log = "[rank0]: Traceback (most recent call last):
[rank0]:   File \"train.py\", line 9, in <module>
[rank0]:     dist.barrier()
[rank0]: torch.distributed.DistBackendError: [../gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 5000ms for recv operation to complete";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!(p.line, 4);
    assert_eq!(p.category, Category::Resource);
}

#[test]
fn an_exception_groups_leaf_traceback_is_the_error() {
    let log = "  + Exception Group Traceback (most recent call last):
  |   File \"g.py\", line 25, in <module>
  |     asyncio.run(main())
  | ExceptionGroup: unhandled errors in a TaskGroup (1 sub-exception)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File \"g.py\", line 14, in load
    |     values = [float(v) for v in shard]
    | ValueError: could not convert string to float: 'n/a'
    +------------------------------------";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0].line, 9);
    assert_eq!(
        inc[0].text,
        "| ValueError: could not convert string to float: 'n/a'"
    );
    assert_eq!(inc[0].category, Category::Data);
    assert_eq!(inc[0].severity, Severity::Fatal);
}

#[test]
fn a_rich_boxed_traceback_is_read() {
    let log = "config: {'lr': 0.001}
╭──────── Traceback (most recent call last) ────────╮
│ /w/train.py:17 in <module>                         │
│ ❱ 17 batches = build_loader(config)                │
╰────────────────────────────────────────────────────╯
FileNotFoundError: [Errno 2] No such file or directory: 'features/train.npy'";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0].line, 6);
    assert_eq!(inc[0].category, Category::Data);
}

#[test]
fn an_error_record_before_a_failing_exit_is_the_error() {
    let log = "INFO:prepare:loaded 200 rows
ERROR:prepare:validation split is empty after dropping rows without a target; refusing to train
INFO:prepare:bye";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].line, 2);
    assert_eq!(inc[0].category, Category::Data);
    let critical = "20:11:48 CRITICAL train: unknown optimizer 'adamw2'; aborting";
    let inc = lines(critical, Some(ExitOutcome::Code(1)));
    assert_eq!((inc[0].line, inc[0].category), (1, Category::Implementation));
    // A run that logs an error and ends well was not failed by it.
    assert!(lines(log, Some(ExitOutcome::Code(0))).is_empty());
}

#[test]
fn a_printed_message_before_exit_2_is_the_error() {
    let log = "epoch 1 done\n[Errno 2] No such file or directory: 'data/val.csv'";
    let inc = lines(log, Some(ExitOutcome::Code(2)));
    assert_eq!(inc.len(), 1);
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Data));
    // Nothing that states a failure: the exit classifier's verdict, with no line.
    let inc = lines("epoch 1 done\nbye", Some(ExitOutcome::Code(2)));
    assert_eq!(inc[0].line, 0);
}

#[test]
fn a_traceback_the_program_announced_it_recovers_from_is_not_an_incident() {
    let log = "upload attempt 1 failed, retrying
Traceback (most recent call last):
  File \"up.py\", line 3, in <module>
    sock.connect(sa)
ConnectionRefusedError: [Errno 111] Connection refused

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File \"up.py\", line 43, in <module>
    body = urlopen(req).read()
urllib.error.URLError: <urlopen error [Errno 111] Connection refused>
upload attempt 2: stored
run complete";
    assert!(lines(log, Some(ExitOutcome::Code(0))).is_empty());
    // Without the announcement the same traceback is a warning.
    let plain = log.replacen("upload attempt 1 failed, retrying\n", "", 1);
    let inc = lines(&plain, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].severity, Severity::Warning);
}

#[test]
fn a_non_finite_loss_in_a_metric_record_is_a_convergence_warning() {
    let log = "{'loss': '751.1', 'grad_norm': '994.2', 'epoch': '0.25'}
{'loss': '3.048e+34', 'grad_norm': 'inf', 'epoch': '0.5'}
{'loss': '0', 'grad_norm': 'nan', 'epoch': '0.75'}";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Convergence));
    assert_eq!(inc[0].severity, Severity::Warning);
    let health = "epoch 3 errors=0 nan_count=0 inf_steps: 0 loss=0.31 r_hat=1.01 divergences=0";
    assert!(lines(health, Some(ExitOutcome::Code(0))).is_empty());
}

#[test]
fn a_shell_reporting_its_child_killed_is_a_resource_problem() {
    let log = "epoch 2\njob.sh: line 5:  4242 Killed                  python -u train.py";
    let inc = lines(log, Some(ExitOutcome::Code(137)));
    assert_eq!(inc.len(), 1);
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Resource));
}

#[test]
fn srun_labels_name_the_rank_whose_exception_ended_the_job_only_when_asked_for() {
    // `srun --label` with two tasks: rank 0 goes on printing while rank 1 raises.
    let log = "0: step 1 loss=1.30\n\
1: step 1 loss=1.31\n\
1: Traceback (most recent call last):\n\
0: step 2 loss=1.20\n\
1:   File \"train.py\", line 30, in <module>\n\
1:     schedule = config[\"lr_schedule\"]\n\
1: KeyError: 'lr_schedule'\n\
srun: error: n2: task 1: Exited with exit code 1\n";
    let labelled = |rank_labels: bool| {
        let mut d = Detector::new(DetectConfig {
            rank_labels,
            ..DetectConfig::default()
        });
        for (i, l) in log.split('\n').enumerate() {
            d.push_line(i as u64 + 1, l);
        }
        d.finish(Some(ExitOutcome::Code(1)));
        d.incidents().to_vec()
    };
    let inc = labelled(true);
    let p = primary(&inc);
    assert_eq!(
        (p.line, p.text.as_str()),
        (7, "1: KeyError: 'lr_schedule' (rank 1 on n2)"),
        "{inc:#?}"
    );
    assert_eq!(
        inc.iter().filter(|i| i.severity == Severity::Fatal).count(),
        1,
        "{inc:#?}"
    );
    // Without labels a `1: ` is text like any other (a numbered list, a step counter).
    assert_eq!(srun_label_len("12: x"), Some(4));
    assert_eq!(srun_label_len(" 3: x"), Some(4));
    assert_eq!(srun_label_len("3:x"), None);
    assert_eq!(srun_label_len("step 3: x"), None);
    assert_eq!(
        srun_task_failure("srun: error: n2: task 1: Exited with exit code 1"),
        Some(("n2", 1, 1))
    );
    assert_eq!(
        srun_task_failure("srun: error: gpu-07: tasks 0-3: Killed"),
        Some(("gpu-07", 0, 3))
    );
    assert_eq!(srun_task_failure("srun: error: Node failure on n2"), None);
}

/// What a job prints while a scheduler stops it (the SIGTERM's traceback, slurmstepd's
/// notice) is not why it ended: the scheduler's end is, as the exit classifier words it.
#[test]
fn a_scheduler_end_is_judged_by_the_scheduler_not_by_what_the_log_printed_while_stopping() {
    use crate::model::SchedulerEnd;
    use crate::watch::detect::exit::exit_verdict;
    let log = "\
step 900 of 1000 loss 0.2
slurmstepd: error: *** JOB 4242 ON n1 CANCELLED AT 2026-12-01T10:00:00 DUE TO TIME LIMIT ***
Traceback (most recent call last):
  File \"train.py\", line 40, in <module>
    loss.backward()
RuntimeError: Terminated by signal SIGTERM";
    for end in [
        SchedulerEnd::TimeLimit,
        SchedulerEnd::NodeFailure,
        SchedulerEnd::Preempted,
    ] {
        let outcome = ExitOutcome::Scheduler(end);
        let (_, inc) = run(log, Some(outcome));
        let fatal: Vec<&Incident> = inc.iter().filter(|i| i.severity == Severity::Fatal).collect();
        let (category, text) = exit_verdict(outcome, None).unwrap();
        assert_eq!(fatal.len(), 1, "{end:?}: {inc:#?}");
        assert_eq!((fatal[0].category, &fatal[0].text), (category, &text), "{end:?}");
        assert!(
            inc.iter()
                .any(|i| i.text.contains("SIGTERM") && i.severity == Severity::Warning),
            "{end:?}: the traceback stays, as a warning: {inc:#?}"
        );
    }
    // The same log ended by the job itself (exit code 1): the traceback is the error.
    let (_, inc) = run(log, Some(ExitOutcome::Code(1)));
    assert!(inc
        .iter()
        .any(|i| i.text.contains("SIGTERM") && i.severity == Severity::Fatal));
}

/// An uncaught C++ exception's report — its `what():` and a native backtrace of dozens of
/// `frame #N:` lines — belongs to it: the process's abort is explained by that line, not by
/// an exit classifier's "no traceback". A backtrace through torch's checkpoint writer is a
/// failed save (`torch.jit.save` onto a full disk aborts so); a `what():` that names a known
/// cause is classified like an exception's message.
#[test]
fn a_cpp_exception_report_explains_the_abort_and_says_what_failed() {
    let mut log = String::from(
        "epoch 1 loss=0.5\n\
terminate called after throwing an instance of 'c10::Error'\n\
  what():  [enforce fail at inline_container.cc:671] . unexpected pos 64 vs 0\n\
frame #0: c10::ThrowEnforceNotMet(char const*, int, char const*) + 0x6a (0x7f in libc10.so)\n\
frame #1: <unknown function> + 0x4fb0d10 (0x7f in libtorch_cpu.so)\n\
frame #2: mz_zip_writer_add_mem_ex_v2 + 0x5f4 (0x7f in libtorch_cpu.so)\n\
frame #3: caffe2::serialize::PyTorchStreamWriter::writeRecord(std::string const&, void const*, unsigned long, bool) + 0x42f (0x7f in libtorch_cpu.so)\n",
    );
    for k in 4..24 {
        if k == 9 {
            log.push_str("<omitting python frames>\n");
        }
        log.push_str(&format!(
            "frame #{k}: <unknown function> + 0x{k}ab (0x7f in libtorch_python.so)\n"
        ));
    }
    let inc = lines(&log, Some(ExitOutcome::Code(134)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!((inc[0].line, inc[0].severity), (2, Severity::Fatal));
    assert_eq!(inc[0].category, Category::Resource);
    assert_eq!(inc[0].reason, classify::SAVE_FAILED);
    // The same report without the writer in its backtrace stays the code's.
    let plain = log.replace(
        "caffe2::serialize::PyTorchStreamWriter::writeRecord",
        "at::native::foo",
    );
    let inc = lines(&plain, Some(ExitOutcome::Signal(6)));
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Implementation));
    // A `what():` naming a known cause decides.
    let oom = "terminate called after throwing an instance of 'c10::Error'\n  what():  CUDA out of memory. Tried to allocate 2.00 GiB\n";
    let inc = lines(oom, Some(ExitOutcome::Signal(6)));
    assert_eq!((inc[0].line, inc[0].category), (1, Category::Resource));
}

/// An exception right after which the program says it falls back is a note: not fatal, not a
/// warning after exit 0, not what explains a later failing exit.
#[test]
fn an_exception_the_program_says_it_handles_is_a_note() {
    let log = "Traceback (most recent call last):\n  File \"t.py\", line 7, in <module>\n    import orjson\nModuleNotFoundError: No module named 'orjson'\nnotice: orjson is not installed; falling back to the json module\nepoch 0 loss=0.9\nepoch 1 loss=0.8\ntraining finished";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1);
    assert_eq!((inc[0].line, inc[0].severity), (4, Severity::Note));
    // Unannounced, the same traceback is a note too after exit 0: the run visibly went on
    // after it (three lines of its output) and succeeded.
    let plain = log.replace(
        "notice: orjson is not installed; falling back to the json module",
        "loading data",
    );
    assert_eq!(
        lines(&plain, Some(ExitOutcome::Code(0)))[0].severity,
        Severity::Note
    );
}

/// A traceback at the very end of a log whose status is 0 (a wrapper's pipe, `| tee`, hid
/// the failure): nothing went on after it, so it is not outlived but a warning; a rank's
/// traceback and the agent's line before a log that ends in ordinary output (the launcher
/// restarted the group and the job then succeeded) are outlived.
#[test]
fn only_an_exception_the_run_went_on_after_is_outlived_at_exit_0() {
    let tb = "Traceback (most recent call last):\n  File \"t.py\", line 4, in <module>\nRuntimeError: Error(s) in loading state_dict for Net:\n";
    let hidden = format!("== step ==\nloading\n{tb}== step done ==\n");
    let inc = lines(&hidden, Some(ExitOutcome::Code(0)));
    assert_eq!(inc[0].severity, Severity::Warning, "{inc:?}");
    let restarted = "Traceback (most recent call last):\n  File \"t.py\", line 5, in <module>\nFileNotFoundError: [Errno 2] No such file or directory: 'shard-1.npy'\nE1203 06:36:02.947000 22895 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 1) local_rank: 1 (pid: 23082) of binary: /usr/bin/python3\nattempt 2 epoch 0 loss 0.38\nattempt 2 epoch 1 loss 0.01\nattempt 2 epoch 2 loss 0.0004\n";
    let inc = lines(restarted, Some(ExitOutcome::Code(0)));
    assert!(inc.iter().all(|i| i.severity == Severity::Note), "{inc:?}");
}

/// A script whose child was killed goes on printing (bash echoes the child's here-document,
/// then the script's own last words) and exits 128+N: the shell's line stating that death is
/// the cause — `Killed` for 137, `Segmentation fault` for 139.
#[test]
fn a_shells_report_of_its_childs_death_explains_the_scripts_exit() {
    let tail = "import time\nfor step in range(40):\n    time.sleep(0.5)\nprint(\"done\")\nPY\n\njob: step ended with status 137\n";
    let killed = format!("step 6 loss=0.286\n/tmp/job.sh: line 13: 26401 Killed                  timeout -s KILL 4 python -u - <<'PY'\n{tail}");
    let inc = lines(&killed, Some(ExitOutcome::Code(137)));
    let fatal: Vec<_> = inc.iter().filter(|i| i.severity == Severity::Fatal).collect();
    assert_eq!(fatal.len(), 1, "{inc:?}");
    assert_eq!((fatal[0].line, fatal[0].category), (2, Category::Resource));
    let segv = killed.replace("Killed                 ", "Segmentation fault     ");
    let inc = lines(&segv, Some(ExitOutcome::Code(139)));
    let fatal: Vec<_> = inc.iter().filter(|i| i.severity == Severity::Fatal).collect();
    assert_eq!(
        (fatal[0].line, fatal[0].category),
        (2, Category::Implementation),
        "{inc:?}"
    );
}

/// Evidence logged at an error level (`[CRITICAL] loss is inf …`) and then a failing exit:
/// that line is the cause, in its own category, and not a second incident.
#[test]
fn evidence_logged_at_an_error_level_before_a_failing_exit_is_the_cause() {
    let log = "[INFO] step 44 loss 1.806e+35\n[CRITICAL] loss is inf at step 46; stopping the run";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!((inc[0].line, inc[0].severity), (2, Severity::Fatal));
    assert_eq!(inc[0].category, Category::Convergence);
}

/// A rank that says why and calls `sys.exit(3)`: torchrun only relays its exit code; the
/// rank's own last words are the cause.
#[test]
fn a_rank_that_exits_with_a_code_is_explained_by_its_last_words() {
    let log = format!(
        "rank 0: shard 0 has 96 rows\nrank 1: shard 1 has 7 rows with label -1 (unlabelled); refusing to train\n{}",
        TORCHRUN_TAIL.replace("CODE", "3")
    );
    let inc = lines(&log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!((p.line, p.category), (2, Category::Data), "{inc:#?}");
    assert_eq!(
        inc.iter().filter(|i| i.severity == Severity::Fatal).count(),
        1,
        "{inc:#?}"
    );
}

/// A driver's `CalledProcessError` only relays its child's failure: the child's own stated
/// reason just before it is the cause (and its category).
#[test]
fn a_childs_stated_reason_beats_the_drivers_called_process_error() {
    let log = "driver: step 1/3 preprocess\npreprocess: error: column 'age' has 45% missing values (limit 5%)\nTraceback (most recent call last):\n  File \"d.py\", line 21, in <module>\n    subprocess.run(cmd, check=True)\nsubprocess.CalledProcessError: Command '['python', '-c', 'x']' returned non-zero exit status 1.";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!((p.line, p.category), (2, Category::Data), "{inc:#?}");
    assert_eq!(
        inc.iter().filter(|i| i.severity == Severity::Fatal).count(),
        1,
        "{inc:#?}"
    );
}

/// glibc's failed `assert()` in a rank, which torchrun reports as `exitcode: -6`: the
/// assertion line is the rank's own word on its death, and the line to look at.
#[test]
fn a_ranks_native_assertion_is_pointed_at_not_the_agents_signal_line() {
    let log = format!(
        "rank 1: building the index\npython3: csrc/bucket_index.cpp:118: void build(const long*, long): Assertion `bucket < num_buckets' failed.\nrank 0 step 3 loss=0.1\nrank 0 step 4 loss=0.1\nrank 0 step 5 loss=0.1\n{}",
        TORCHRUN_TAIL.replace("CODE", "-6")
    );
    let inc = lines(&log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!((p.line, p.category), (2, Category::Implementation), "{inc:#?}");
}

/// A traceback after the program logs, below error level, that it skips the record is
/// handled (no incident); logged as an ERROR, the skip is the program calling it an error.
#[test]
fn a_skip_logged_below_error_level_is_handled_one_logged_as_an_error_is_not() {
    let tb = "Traceback (most recent call last):\n  File \"l.py\", line 18, in <module>\n    rows.append(json.loads(line))\njson.decoder.JSONDecodeError: Expecting value: line 1 column 13 (char 12)\nINFO loader: kept 398 of 400 records\ntraining done\nok";
    let warned = format!("WARNING loader: skipping corrupt record 57\n{tb}");
    assert!(lines(&warned, Some(ExitOutcome::Code(0))).is_empty());
    let errored = format!("12:00:01 ERROR loader: record 57 skipped\n{tb}");
    let inc = lines(&errored, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1);
    // Not handled by its words, but outlived: the run went on after it and succeeded.
    assert_eq!(inc[0].severity, Severity::Note);
}

#[test]
fn a_traceback_logged_at_the_warning_level_is_handled_unless_the_run_then_fails_alone() {
    // `logger.warning(…, exc_info=True)`: the record, then the traceback it carries.
    let tb = "Traceback (most recent call last):\n  File \"r.py\", line 50, in <module>\n    trainer.push_to_hub()\nhuggingface_hub.errors.OfflineModeIsEnabled: Cannot reach https://hub/api/repos/create: offline mode is enabled.";
    let warned = format!("19:24:29 WARNING recipe: push_to_hub failed on this node; left for CI\n{tb}\n19:24:30 INFO recipe: done");
    assert!(lines(&warned, Some(ExitOutcome::Code(0))).is_empty());
    // Logged as a warning, then nothing else before a failing exit: it was the end after all.
    let inc = lines(
        &format!("19:24:29 WARNING recipe: push failed\n{tb}"),
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0].line, 5);
    assert_eq!(inc[0].severity, Severity::Fatal);
    // The same traceback after an error-level record is an error the run outlived: a note.
    let errored = format!("19:24:29 ERROR recipe: push failed\n{tb}\n19:24:30 INFO a\nb\nc");
    let inc = lines(&errored, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    // A level word inside a message is no level.
    assert!(rules::warning_record("saved to WARNINGS.md").is_none());
    assert!(rules::warning_record("loss 0.3, see warnings above").is_none());
    assert_eq!(rules::warning_record("[WARN] low disk"), Some("low disk"));
}

#[test]
fn bash_refusing_a_line_of_a_job_script_that_then_ends_well_is_an_implementation_warning() {
    // A script saved with CRLF line endings and no `set -e`: bash complains, the script goes
    // on and exits 0, its work not done.
    let log = "[submit] running repo/job.sh\nrepo/job.sh: line 4: $'\\r': command not found\n[train] epoch 1/4 loss 0.0192\n[train] saved model\n[job] done";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0].line, 2);
    assert_eq!(inc[0].severity, Severity::Warning);
    assert_eq!(inc[0].category, Category::Implementation);
    // Words alike that are not bash's complaint about its script are nothing.
    let ok = "json: Expecting value: line 1 column 1\nmodel: line search converged\ndone";
    assert!(lines(ok, Some(ExitOutcome::Code(0))).is_empty());
    // A failing exit after it is still judged as before: the complaint is the cause.
    let inc = lines(
        "run.sh: line 11: ROOT: unbound variable",
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0].line, 1);
    assert_eq!(inc[0].severity, Severity::Fatal);
}

#[test]
fn a_tools_failure_message_right_before_the_scripts_error_is_the_line() {
    let log = "[stage-in] run date 2026-12-03\ncurl: (22) The requested URL returned error: 404\n[stage-in] error: could not fetch forecast/features/dt=2026-12-02/features.npy";
    let inc = lines(log, Some(ExitOutcome::Code(66)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0].line, 2);
    // The tool's words name no cause: the category is the script's line's and exit's.
    let without = lines(
        &log.replace("curl: (22)", "[stage-in] (22)"),
        Some(ExitOutcome::Code(66)),
    );
    assert_eq!(inc[0].category, without[0].category);
    // A stage's own count before the error is not a tool's failure: the error line stays.
    let log = "prepare: loaded 1200 rows\nprepare: 0 rows after dropping duplicates\nerror: no labelled rows left; nothing to train on";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc[0].line, 3);
    assert!(rules::tool_message("tar: Unexpected EOF in archive").is_some());
    assert!(rules::tool_message("error: no labelled rows").is_none());
    assert!(rules::tool_message("2026-12-03 12:00:01 ERROR x: y").is_none());
}

#[test]
fn a_non_finite_loss_the_trainer_rolled_back_from_is_no_alarm() {
    let log = "ERROR trainer: non-finite loss (inf) at step 16; rolling back to step 0 and halving lr to 0.25\nstep 100 loss 1.15\nstep 200 loss 0.08\ndone";
    assert!(lines(log, Some(ExitOutcome::Code(0))).is_empty());
    // A rolling mean is no roll-back.
    let log = "step 300 rolling mean loss nan\nstep 400 rolling mean loss nan";
    assert_eq!(lines(log, Some(ExitOutcome::Code(0))).len(), 1);
}

#[test]
fn a_value_error_raised_inside_a_reader_of_data_files_is_the_files() {
    let tb = |frame: &str, exc: &str| {
        format!("Traceback (most recent call last):\n  File \"/w/load.py\", line 9, in <module>\n    x = read(p)\n  File \"{frame}\", line 383, in _read\n    raise Error(m)\n{exc}")
    };
    let inc = lines(
        &tb(
            "/usr/lib/python3.12/tarfile.py",
            "tarfile.ReadError: unexpected end of header block",
        ),
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(inc[0].category, Category::Data, "{inc:#?}");
    assert!(
        inc[0].reason.contains("a reader of data files refused the file"),
        "{inc:#?}"
    );
    // A wrong type handed to the reader is the calling code's.
    let inc = lines(
        &tb("/usr/lib/python3.12/wave.py", "TypeError: expected str, got int"),
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(inc[0].category, Category::Implementation);
    // The same error raised in the job's own code names no cause.
    let inc = lines(
        &tb("/w/mylib.py", "tarfile.ReadError: unexpected end of header block"),
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(inc[0].category, Category::Implementation);
}

#[test]
fn a_tools_summary_after_a_failing_line_gives_its_category() {
    let log = "stage-in: verifying checksums\nemb-0002.npy: OK\nemb-0003.npy: FAILED\nemb-0004.npy: OK\nsha256sum: WARNING: 1 computed checksum did NOT match";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0].line, 3);
    assert_eq!(inc[0].category, Category::Data);
    // Without the summary, only the exit code speaks.
    let inc = lines(
        "stage-in: verifying checksums\nemb-0003.npy: FAILED",
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(inc[0].category, Category::Implementation);
}

#[test]
fn a_redis_error_is_the_servers_unless_the_job_sent_what_it_cannot_take() {
    let v = |name: &str, msg: &str| classify::classify_exception(name, msg, &TbContext::default());
    assert_eq!(
        v("redis.exceptions.ResponseError", "LOADING Redis is loading").category,
        Category::Infrastructure
    );
    assert_eq!(
        v("redis.exceptions.BusyLoadingError", "busy").category,
        Category::Infrastructure
    );
    let misuse = v(
        "redis.exceptions.ResponseError",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    assert_eq!(misuse.category, Category::Implementation);
}

#[test]
fn an_exception_whose_message_starts_on_the_next_line_is_classified_by_it() {
    let log = "Traceback (most recent call last):\n  File \"/w/load.py\", line 9, in <module>\n    x = load(p)\nRuntimeError: \n            shard-7.bin is corrupted: crc mismatch at block 12\n            re-download it\n";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0].line, 4);
    assert_eq!(inc[0].category, Category::Data, "{inc:#?}");
    assert_eq!(inc[0].reason, classify::CORRUPT);
}

#[test]
fn a_line_saying_nothing_failed_is_not_the_stated_cause_of_a_failing_exit() {
    let log = "INFO retry policy: max_retries=3 on (ConnectionError, TimeoutError); no errors so far\nstep 10 loss 0.3";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_ne!(inc[0].line, 1, "{inc:#?}");
    assert!(!rules::states_failure("validation: 0 errors, 0 warnings"));
    assert!(!rules::states_failure(
        "data | rows loaded: 1048576 | Failed: 0 | skipped: 0"
    ));
    assert!(rules::states_failure("validation: 3 errors"));
    assert!(rules::states_failure("error rate: 0.5 on the last shard, failed"));
    assert!(rules::states_failure(
        "sweep failed: 0 of 4 trials finished; no best trial to export"
    ));
    assert!(!rules::states_failure("INFO errors=0 nan_count=0"));
}

#[test]
fn an_abort_is_explained_by_the_failing_words_printed_just_before_it() {
    let dump =
        "\nCurrent thread 0x00007f (most recent call first):\n  File \"load.py\", line 18 in <module>\n";
    // The loader says why, then aborts: its line is the error, classified by what it says.
    let log = format!(
        "record 2 at 512\nfatal: shard-7 index entry 3 has offset 4096 beyond the shard size 1024\nFatal Python error: Aborted\n{dump}"
    );
    let inc = lines(&log, Some(ExitOutcome::Code(134)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0].line, 2);
    assert_eq!(inc[0].category, Category::Data);
    assert_eq!(inc[0].reason, classify::CORRUPT);
    assert_eq!(inc[0].severity, Severity::Fatal);
    assert!(inc[0].excerpt.iter().any(|l| l == "Fatal Python error: Aborted"));
    // Nothing failing before it: the abort itself, with its own reason.
    let log = format!("record 2 at 512\nrecord 3 at 768\nFatal Python error: Aborted\n{dump}");
    let inc = lines(&log, Some(ExitOutcome::Code(134)));
    assert_eq!((inc.len(), inc[0].line), (1, 3));
    assert_eq!(inc[0].reason, rules::ABORTED);
    // Failing words further back than the few lines before the abort say nothing about it.
    let log =
        format!("error: retrying shard 3\nrecord 1\nrecord 2\nrecord 3\nFatal Python error: Aborted\n{dump}");
    let inc = lines(&log, Some(ExitOutcome::Code(134)));
    assert_eq!((inc.len(), inc[0].line), (1, 5));
}

#[test]
fn a_none_item_in_the_collate_function_is_data_another_wrong_type_is_code() {
    let tb = |msg: &str| {
        format!(
            "Traceback (most recent call last):\n  File \"train.py\", line 40, in <module>\n    for batch in loader:\n  File \"/v/torch/utils/data/_utils/collate.py\", line 155, in collate\n    return collate_fn_map[elem_type](batch)\n  File \"/v/torch/utils/data/_utils/collate.py\", line 275, in collate_tensor_fn\n    return torch.stack(batch, 0, out=out)\nTypeError: {msg}"
        )
    };
    let inc = lines(
        &tb("expected Tensor as element 5 in argument 0, but got NoneType"),
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(inc[0].category, Category::Data);
    assert_eq!(inc[0].reason, classify::NONE_ITEM);
    let inc = lines(
        &tb("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found <class 'PIL.Image.Image'>"),
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(inc[0].category, Category::Implementation);
    // A NoneType outside a collate function is the code's own.
    let inc = lines(
        "Traceback (most recent call last):\n  File \"train.py\", line 4, in <module>\n    f(x)\nTypeError: unsupported operand type(s) for +: 'int' and 'NoneType'",
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(inc[0].category, Category::Implementation);
}

#[test]
fn a_loss_non_finite_from_the_first_logging_window_is_the_datas_not_divergence() {
    let cat = |log: &str| {
        let inc = lines(log, Some(ExitOutcome::Code(0)));
        (inc[0].category, inc[0].line, inc[0].reason.clone())
    };
    // Every step of the first window (epoch 0.5 with records every 0.5) was already NaN.
    let (c, line, reason) = cat("loading\n{'loss': '0', 'grad_norm': 'nan', 'epoch': '0.5'}\n{'loss': '0', 'grad_norm': 'nan', 'epoch': '1'}\ndone");
    assert_eq!((c, line), (Category::Data, 2));
    assert_eq!(reason, nan_start::NAN_FROM_START);
    // The first NaN record comes after a finite one (at 0.25, unseen): it diverged.
    let (c, ..) = cat("{'loss': '0', 'grad_norm': 'nan', 'epoch': '0.5'}\n{'loss': '0', 'grad_norm': 'nan', 'epoch': '0.75'}");
    assert_eq!(c, Category::Convergence);
    // Some steps of the first window had a finite loss: it was finite once, then diverged.
    let (c, ..) = cat("{'loss': '0.864', 'grad_norm': 'nan', 'epoch': '0.3333'}\n{'loss': '0', 'grad_norm': 'nan', 'epoch': '0.6667'}");
    assert_eq!(c, Category::Convergence);
    // One record alone does not say where it is.
    let (c, ..) = cat("{'loss': nan, 'grad_norm': nan, 'epoch': 0.5}");
    assert_eq!(c, Category::Convergence);
}

#[test]
fn a_launcher_stopped_by_a_signal_is_pointed_at_its_agents_line_not_its_signal_exception() {
    let log = "\
epoch 7 loss 0.84
W1202 13:13:18.521000 29007 torch/distributed/elastic/agent/server/api.py:752] Received 15 death signal, shutting down workers
W1202 13:13:18.522000 29007 torch/distributed/elastic/multiprocessing/api.py:1028] Sending process 29032 closing signal SIGTERM
Traceback (most recent call last):
  File \"/v/bin/torchrun\", line 8, in <module>
    sys.exit(main())
  File \"/v/torch/distributed/elastic/multiprocessing/api.py\", line 86, in _terminate_process_handler
    raise SignalException(f\"Process {os.getpid()} got signal: {sigval}\", sigval=sigval)
torch.distributed.elastic.multiprocessing.api.SignalException: Process 29007 got signal: 15";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!((p.line, p.category), (2, Category::Resource));
    assert!(
        inc.iter().filter(|i| i.severity == Severity::Fatal).count() == 1,
        "{inc:#?}"
    );
}

#[test]
fn deaths_a_shell_or_glibc_states_are_the_lines_to_look_at() {
    let inc = lines(
        "alpha 0.001: cv mse 1.07\n/tmp/job.sh: line 26: 32378 CPU time limit exceeded python -u search.py",
        Some(ExitOutcome::Code(152)),
    );
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Resource));
    assert_eq!(inc[0].reason, classify::CPU_LIMIT);
    let inc = lines(
        "step 0: packed 8192 bytes\ndouble free or corruption (out)",
        Some(ExitOutcome::Code(134)),
    );
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Implementation));
    assert_eq!(inc[0].reason, rules::HEAP_CORRUPTED);
    // Words that only look alike are not a death.
    let inc = lines(
        "free(): done\nWARNING skipping corrupted size field in header",
        Some(ExitOutcome::Code(0)),
    );
    assert!(inc.is_empty(), "{inc:#?}");
}

#[test]
fn a_ray_workers_prefixed_traceback_is_read() {
    let log = "\
(train_worker pid=31428) region south: training done
(train_worker pid=31429) Traceback (most recent call last):
(train_worker pid=31429)   File \"<string>\", line 15, in <module>
(train_worker pid=31429) ZeroDivisionError: division by zero
driver: worker for region north exited with status 1";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc[0].line, 4);
    assert_eq!(inc[0].severity, Severity::Fatal);
    assert!(inc[0]
        .text
        .starts_with("(train_worker pid=31429) ZeroDivisionError"));
}

#[test]
fn a_failure_banner_is_explained_by_its_reason_line() {
    let log = "\
================================
  TRAINING FAILED at stage 'evaluate'
  reason : validation AUC undefined: 0 positive labels in 280 validation rows
  action : model not promoted; fix the validation split and rerun
================================";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!((inc[0].line, inc[0].category), (3, Category::Data));
}

#[test]
fn a_solver_warning_that_names_the_data_is_the_datas() {
    let w = "/v/sklearn/cluster/_kmeans.py:1416: ConvergenceWarning: Number of distinct clusters (3) found smaller than n_clusters (5). Possibly due to duplicate points in X.";
    let inc = lines(w, Some(ExitOutcome::Code(0)));
    assert_eq!(
        (inc[0].category, inc[0].severity),
        (Category::Data, Severity::Warning)
    );
    let w = "/v/sklearn/linear_model/_logistic.py:473: ConvergenceWarning: lbfgs failed to converge after 5 iteration(s)";
    assert_eq!(
        lines(w, Some(ExitOutcome::Code(0)))[0].category,
        Category::Convergence
    );
}

#[test]
fn faulthandlers_watchdog_is_a_stuck_program_with_its_stacks() {
    let log = "\
fetching batch 3 from feature service
Timeout (0:00:03)!
Thread 0x00007fa2c518fb80 (most recent call first):
  File \"/t/job.py\", line 37 in fetch
  File \"/t/job.py\", line 45 in <module>";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Resource));
    assert!(inc[0].excerpt.iter().any(|l| l.contains("line 37 in fetch")));
}

#[test]
fn a_stop_from_outside_the_log_calls_a_preemption_is_infrastructure() {
    let log = "\
12:00:01 INFO step 50 loss 5.07
12:00:02 WARNING received SIGTERM (preemption notice) at step 60: writing checkpoint before exit
12:00:02 WARNING checkpoint ckpt/step-60.pt written; exiting with 143 so the scheduler requeues the job";
    // Killed by the signal, or exiting 143 by its own handler: the notice is the line.
    for exit in [ExitOutcome::Signal(15), ExitOutcome::Code(143)] {
        let inc = lines(log, Some(exit));
        assert_eq!(inc.len(), 1, "{inc:#?}");
        assert_eq!((inc[0].line, inc[0].category), (2, Category::Infrastructure));
        assert_eq!(inc[0].reason, rules::PREEMPTED);
    }
    // The same stop without a word of preemption: someone stopped it, not the cluster.
    let plain = "12:00:01 INFO step 50 loss 5.07\n12:00:02 INFO step 60 loss 5.01";
    let inc = lines(plain, Some(ExitOutcome::Signal(15)));
    assert_eq!(inc[0].category, Category::Resource);
    // A crash is a crash, whatever the log said before it.
    let inc = lines(log, Some(ExitOutcome::Signal(11)));
    assert_eq!(inc[0].category, Category::Implementation);
}

#[test]
fn a_workers_own_failure_is_the_cause_not_the_drivers_count_of_failures() {
    let log = "\
[shard-0.bin] ok: 20000 values
[shard-2.bin] sha256 mismatch: expected f84edbd8fe43..., got 67eb965f2fe9... (48000 bytes)
driver: worker loader-shard-2.bin exited with code 3
driver: 1 of 4 shard loaders failed; not starting training";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Data));
    assert!(inc[0].reason.ends_with(classify::CORRUPT), "{}", inc[0].reason);
}

#[test]
fn a_run_that_says_its_model_did_not_learn_ends_with_a_convergence_warning() {
    let log = "\
{'eval_loss': 0.6927, 'eval_accuracy': 0.547, 'epoch': 3.0}
WARNING: model did not learn: eval_loss 0.6927 -> 0.6927, eval_accuracy 0.547 (chance 0.5) after 3 epochs";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(
        (inc[0].line, inc[0].category, inc[0].severity),
        (2, Category::Convergence, Severity::Warning)
    );
    // Learning-rate words are not the warning, nor a frozen layer that did not train.
    let ok = "learning_rate=0.0002 warmup 100\nthe model is learning: loss 0.69 -> 0.31\nbackbone did not train (frozen)";
    assert!(lines(ok, Some(ExitOutcome::Code(0))).is_empty());
}

#[test]
fn a_call_echoed_with_alarming_words_as_its_argument_is_not_evidence() {
    let log = "\
predict('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB') -> ERROR
classify(\"Killed\") -> ERROR
predict('INFO epoch 7 finished, loss 0.031') -> INFO";
    assert!(lines(log, Some(ExitOutcome::Code(0))).is_empty());
    // The run's own words are: a plain line, and a traceback's last line.
    let inc = lines("CUDA error: out of memory", Some(ExitOutcome::Code(1)));
    assert_eq!(inc[0].category, Category::Resource);
}

#[test]
fn a_shells_bus_error_for_its_child_is_the_line_to_look_at() {
    let log = "step 0 loss 0.32\nexport: rewriting features.f32\njob.sh: line 49: 19518 Bus error               python -u train.py";
    let inc = lines(log, Some(ExitOutcome::Signal(7)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!((inc[0].line, inc[0].category), (3, Category::Implementation));
}

#[test]
fn an_error_while_the_jobs_own_code_converts_values_is_the_datas() {
    let tb = |source: &str, exc: &str| {
        format!(
            "Traceback (most recent call last):\n  File \"/srv/job/load.py\", line 12, in <module>\n    {source}\n  File \"/v/lib/python3.12/site-packages/lib/core.py\", line 40, in helper\n    return impl(x)\n{exc}"
        )
    };
    let category = |source: &str, exc: &str| lines(&tb(source, exc), Some(ExitOutcome::Code(1)))[0].category;
    assert_eq!(
        category(
            "x = torch.tensor(readings)",
            "TypeError: new(): invalid data type 'str'"
        ),
        Category::Data
    );
    assert_eq!(
        category("ts = pd.to_datetime(df.when)", "ValueError: day out of range"),
        Category::Data
    );
    // The same errors where the code does something else are the code's.
    assert_eq!(
        category("print(model(x))", "TypeError: new(): invalid data type 'str'"),
        Category::Implementation
    );
    assert_eq!(
        category(
            "x = torch.tensor(batch)",
            "ValueError: only one element tensors can be converted to Python scalars"
        ),
        Category::Implementation
    );
}

#[test]
fn an_evaluation_loss_nan_while_training_stays_finite_is_the_evaluation_datas() {
    let eval = "{'eval_loss': 'nan', 'eval_runtime': '0.05', 'epoch': '1'}";
    let log =
        format!("{{'loss': '0.69', 'epoch': '0.5'}}\n{eval}\n{{'loss': '0.52', 'epoch': '1.5'}}\n{eval}");
    let inc = lines(&log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Data));
    assert_eq!(inc[0].reason, nan_start::EVAL_ONLY_NAN);
    // A training loss that went NaN as well: the optimisation diverged.
    let log = format!("{eval}\n{{'loss': 'nan', 'epoch': '1.5'}}");
    let inc = lines(&log, Some(ExitOutcome::Code(0)));
    assert!(
        inc.iter().all(|i| i.category == Category::Convergence),
        "{inc:#?}"
    );
}

#[test]
fn a_line_saying_a_process_was_killed_or_a_file_ends_early_explains_a_failing_exit() {
    let log = "step 40 loss 0.3\nrunner: trainer pid 2979 resident memory 308 MiB exceeds the budget of 300 MiB; killing it (SIGKILL)\nrunner: giving up";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(
        (inc[0].line, inc[0].category),
        (2, Category::Resource),
        "{inc:#?}"
    );
    let log = "train: streaming shard-000.csv.gz\n\ngzip: shard-000.csv.gz: unexpected end of file\ntrained on 11953 rows";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!((inc[0].line, inc[0].category), (3, Category::Data), "{inc:#?}");
}

#[test]
fn a_best_so_far_value_still_at_infinity_is_bookkeeping_not_a_loss_gone_infinite() {
    let log = "early stopping: best_val_loss=inf patience 0/3\nepoch 0: train_loss 8.49 val_loss 8.82 best_val_loss inf -> 8.82 patience 0/3\nepoch 1: train_loss 5.53 val_loss 5.46 best_val_loss 8.82 -> 5.46";
    assert!(lines(log, Some(ExitOutcome::Code(0))).is_empty());
    // A loss that is infinite is one, and a NaN best is no start value.
    assert_eq!(
        lines("epoch 3: val_loss=inf", Some(ExitOutcome::Code(0))).len(),
        1
    );
    assert_eq!(
        lines("epoch 3: best_val_loss=nan", Some(ExitOutcome::Code(0))).len(),
        1
    );
}

#[test]
fn a_traceback_quoted_in_a_warnings_message_is_a_note() {
    let log = "\
/v/sklearn/model_selection/_validation.py:493: FitFailedWarning: 
6 fits failed out of a total of 24.
The score on these train-test partitions for these parameters will be set to nan.

Below are more details about the failures:
--------------------------------------------------------------------------------
6 fits failed with the following error:
Traceback (most recent call last):
  File \"/v/sklearn/linear_model/_logistic.py\", line 83, in _check_solver
    raise ValueError(
ValueError: Solver lbfgs supports only 'l2' or None penalties, got l1 penalty.

  warnings.warn(some_fits_failed_message, FitFailedWarning)
candidates scored: 6 of 8";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert!(inc.iter().all(|i| i.severity == Severity::Note), "{inc:#?}");
    // Without the warning's source line after it, the same traceback is a warning.
    let cut = log.replace(
        "  warnings.warn(some_fits_failed_message, FitFailedWarning)\n",
        "",
    );
    let inc = lines(&cut, Some(ExitOutcome::Code(0)));
    assert!(inc.iter().any(|i| i.severity == Severity::Warning), "{inc:#?}");
}

#[test]
fn makes_word_that_a_recipe_failed_relays_the_steps_own_error() {
    let log = "features.py: dwell_time std 0.0000\nfeatures.py: error: feature 'dwell_time' is constant (std 0); refusing to standardise it\nmake: *** [Makefile:4: features] Error 1";
    let inc = lines(log, Some(ExitOutcome::Code(2)));
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Data));
}

#[test]
fn a_worker_killed_by_a_named_signal_takes_that_signals_category() {
    let tb = |msg: &str| {
        format!("Traceback (most recent call last):\n  File \"t.py\", line 9, in <module>\n    for b in loader:\nRuntimeError: {msg}")
    };
    let killed = lines(
        &tb("DataLoader worker (pid 30104) is killed by signal: Killed."),
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(killed[0].category, Category::Resource);
    let crashed = lines(
        &tb("DataLoader worker (pid 30104) is killed by signal: Segmentation fault."),
        Some(ExitOutcome::Code(1)),
    );
    assert_eq!(crashed[0].category, Category::Implementation);
}

#[test]
fn a_library_restating_its_cause_in_its_own_words_is_the_line_to_read() {
    // transformers' `raise KeyError(…) from e` around its lookup: same class, the cause's
    // message inside the explanation.
    let log = "\
Traceback (most recent call last):
  File \"/v/transformers/trainer.py\", line 3448, in _determine_best_metric
    metric_value = metrics[metric_to_check]
KeyError: 'eval_f1'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File \"train.py\", line 48, in <module>
    trainer.train()
  File \"/v/transformers/trainer.py\", line 3450, in _determine_best_metric
    raise KeyError(
KeyError: \"The `metric_for_best_model` training argument is set to 'eval_f1', which is not found in the evaluation metrics.\"";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].line, 13);
    // Another class, or a message that does not hold the cause's, leaves the root cause.
    for outer in [
        "RuntimeError: \"evaluation failed for 'eval_f1' after the first epoch of training\"",
        "KeyError: \"the evaluation metrics lack the one the best model is chosen by\"",
    ] {
        let log = log.rsplit_once('\n').unwrap().0.to_string() + "\n" + outer;
        let inc = lines(&log, Some(ExitOutcome::Code(1)));
        assert_eq!(inc[0].line, 4, "{outer}");
    }
    // A library raising a lookup's bare key again as the value that is wrong: the
    // restatement, its line and its category.
    let log = "\
Traceback (most recent call last):
  File \"/v/sklearn/utils/_encode.py\", line 161, in __missing__
    raise KeyError(key)
KeyError: 'kiosk'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File \"train.py\", line 21, in tensors
    fmt = enc.transform(df[\"store_format\"])
  File \"/v/sklearn/utils/_encode.py\", line 231, in _encode
    raise ValueError(f\"y contains previously unseen labels: {e}\")
ValueError: y contains previously unseen labels: 'kiosk'";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(
        (inc.len(), inc[0].line, inc[0].category),
        (1, 13, Category::Data),
        "{inc:#?}"
    );
}

#[test]
fn a_printed_validation_error_of_the_config_is_the_error_not_its_field_lines() {
    // pydantic's ValidationError printed, then sys.exit(2): the heading is out of the
    // context ring by the time the program exits.
    let log = "\
config: {'lr': '3e-4,', 'warmup_steps': -100}
2 validation errors for TrainConfig
lr
  Input should be a valid number, unable to parse string as a number [type=float_parsing, input_value='3e-4,', input_type=str]
    For further information visit https://errors.pydantic.dev/2.14/v/float_parsing
warmup_steps
  Input should be greater than or equal to 0 [type=greater_than_equal, input_value=-100, input_type=int]
    For further information visit https://errors.pydantic.dev/2.14/v/greater_than_equal";
    let inc = lines(log, Some(ExitOutcome::Code(2)));
    assert_eq!(inc.len(), 1);
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Implementation));
    assert!(inc[0].reason.contains("configuration"), "{}", inc[0].reason);
    // The same print in a run that exits 0 is no incident.
    assert!(lines(log, Some(ExitOutcome::Code(0))).is_empty());
}

#[test]
fn a_non_finite_loss_the_run_says_it_dealt_with_is_no_alarm() {
    for line in [
        "trial 2: lr=3.0 diverged (loss=nan), discarded",
        "step 40: loss is nan, batch skipped",
        "{'loss': nan, 'note': 'step dropped'}",
    ] {
        assert!(lines(line, Some(ExitOutcome::Code(0))).is_empty(), "{line}");
    }
    // Without the word, the same line is the convergence warning it always was.
    let inc = lines("trial 2: lr=3.0 diverged (loss=nan)", Some(ExitOutcome::Code(0)));
    assert_eq!(inc[0].category, Category::Convergence);
}

#[test]
fn a_warning_that_the_targets_hold_one_class_is_a_data_warning() {
    let log = "\
split counts: val positives 0/200
/v/torchmetrics/utilities/prints.py:43: UserWarning: No positive samples in targets, true positive value should be meaningless. Returning zero tensor in true positive score
  warnings.warn(*args, **kwargs)
epoch 1 val_auroc=0.000";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1);
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Data));
    assert_eq!(inc[0].severity, Severity::Warning);
}

#[test]
fn a_job_script_stopped_at_its_time_budget_is_a_resource_problem() {
    let log = "epoch 0 step 3 loss 0.25\njob: train step hit its 3s wall-clock budget and was stopped (timeout exit 124)";
    let inc = lines(log, Some(ExitOutcome::Code(124)));
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Resource));
    // Exit 124 with a silent log: timeout(1)'s status.
    let inc = lines("epoch 0 step 3 loss 0.25", Some(ExitOutcome::Code(124)));
    assert_eq!((inc[0].line, inc[0].category), (0, Category::Resource));
}

#[test]
fn bash_refusing_a_line_of_the_job_script_is_the_error() {
    let log = "job: preparing shards\n/srv/job/run.sh: line 11: SHARD_ROOT: unbound variable";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Implementation));
    assert!(inc[0].reason.contains("shell"), "{}", inc[0].reason);
}

/// An error-level record that names no cause, then a sysexits exit code: the code says what
/// kind of failure it was (EX_TEMPFAIL a service to retry, EX_DATAERR the input); any other
/// code is the code alone. Its words, when they name a cause, come first.
#[test]
fn a_sysexits_code_gives_the_category_the_programs_words_do_not() {
    let log = "INFO tracker: connecting\nERROR tracker: giving up; not starting the run\n";
    let one = |code| {
        let inc = lines(log, Some(ExitOutcome::Code(code)));
        assert_eq!(inc.len(), 1, "{inc:?}");
        assert_eq!(inc[0].line, 2);
        (inc[0].category, inc[0].reason.clone())
    };
    let (c, r) = one(75);
    assert_eq!(c, Category::Infrastructure);
    assert!(r.contains("EX_TEMPFAIL"), "{r}");
    assert_eq!(one(65).0, Category::Data);
    assert_eq!(one(78).0, Category::Implementation);
    assert_eq!(
        one(2),
        (
            Category::Implementation,
            format!(
                "the program's last error message names no known cause; {}",
                exit::EXIT_CODE_ALONE
            )
        )
    );
    // Words that name a cause decide, whatever the code.
    let named = "ERROR loader: cannot read data/train.csv: No such file or directory\n";
    assert_eq!(
        lines(named, Some(ExitOutcome::Code(75)))[0].category,
        Category::Data
    );
    // No words at all: the exit classifier alone.
    let inc = lines("step 1 of 10\n", Some(ExitOutcome::Code(69)));
    assert_eq!(inc[0].category, Category::Infrastructure);
}

/// NaN in a step's input is the data's, unless the run's own loss went NaN before it: then
/// the NaN came out of the diverged optimisation (its embeddings, its predictions).
#[test]
fn nan_in_the_input_after_the_loss_went_nan_is_convergence() {
    let tb = "Traceback (most recent call last):\n  File \"c.py\", line 40, in <module>\n    km.fit(emb)\nValueError: Input X contains NaN.\n";
    let inc = lines(&format!("epoch 0 loss 1.09\n{tb}"), Some(ExitOutcome::Code(1)));
    assert_eq!(inc.last().unwrap().category, Category::Data, "{inc:?}");
    let diverged = format!("epoch 0 loss 1.09\nepoch 0 batch 4 loss inf\nepoch 0 batch 5 loss nan\n{tb}");
    let inc = lines(&diverged, Some(ExitOutcome::Code(1)));
    let fatal = inc
        .iter()
        .find(|i| i.severity == Severity::Fatal)
        .expect("the error");
    assert_eq!(fatal.category, Category::Convergence, "{inc:?}");
    assert_eq!(fatal.reason, classify::NAN_FROM_DIVERGENCE);
}

/// A rolling statistic of the loss printed as `nan` while its window fills is no alarm; the
/// loss itself `nan` is.
#[test]
fn a_rolling_loss_statistic_filling_its_window_is_no_alarm() {
    let log: String = (0..9)
        .map(|s| format!("step {s} loss 4.5{s} loss_ma10 nan loss_sd10 nan\n"))
        .collect();
    assert!(lines(&log, Some(ExitOutcome::Code(0))).is_empty());
    assert!(lines("step 3 rolling_loss=nan\n", Some(ExitOutcome::Code(0))).is_empty());
    let inc = lines("step 3 loss nan loss_ma10 4.1\n", Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(inc[0].category, Category::Convergence);
}

/// torch's broadcasting warning on a loss and numpy's `invalid value encountered` are
/// warnings with a category: the run goes on computing the wrong thing.
#[test]
fn a_loss_broadcast_warning_and_numpy_making_nan_are_warnings() {
    let bc = "/w/t.py:16: UserWarning: Using a target size (torch.Size([64])) that is different to the input size (torch.Size([64, 1])). This will likely lead to incorrect results due to broadcasting. Please ensure they have the same size.\nepoch 0 mse 14.3\n";
    let inc = lines(bc, Some(ExitOutcome::Code(0)));
    assert_eq!(
        (inc.len(), inc[0].category, inc[0].severity),
        (1, Category::Implementation, Severity::Warning),
        "{inc:?}"
    );
    let nan = "/w/prep.py:15: RuntimeWarning: invalid value encountered in divide\n  x = (x - mu) / sd\nepoch 0 loss 0.5\n";
    let inc = lines(nan, Some(ExitOutcome::Code(0)));
    assert_eq!(
        (inc.len(), inc[0].category, inc[0].severity),
        (1, Category::Data, Severity::Warning),
        "{inc:?}"
    );
    // numpy's overflow warning is not it (a clean run's `overflow encountered in exp`).
    let of = "/w/prep.py:15: RuntimeWarning: overflow encountered in exp\nepoch 0 loss 0.5\n";
    assert!(lines(of, Some(ExitOutcome::Code(0))).is_empty());
}

/// A job script's ERR trap or a supervisor relays a command's exit (`FAILED (exit 7) at line
/// 14: curl …`, `train.py failed 3 times (last status 3)`): the command's own words before
/// it are the cause — the first of a retried line — and, when they are evidence already
/// (a trainer's `loss is inf … stopping`), that evidence.
#[test]
fn a_runners_relay_of_an_exit_yields_to_the_commands_own_words() {
    let curl = "curl: (7) Failed to connect to 127.0.0.1 port 9000 after 0 ms: Couldn't connect to server";
    let log = format!("[stage-in] fetching manifest\n{curl}\n{curl}\n{curl}\n[stage-in] FAILED (exit 7) at line 14: curl -fsS -o m.json \"$URL\"\n");
    let inc = lines(&log, Some(ExitOutcome::Code(7)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        (inc[0].line, inc[0].category),
        (2, Category::Infrastructure),
        "{inc:?}"
    );
    let sup = "supervisor: attempt 1/2: python -u train.py\nstep 20 loss 5.8e+11\ntrain: loss is inf at step 22; stopping (exit 3)\nsupervisor: attempt 1 exited with status 3\nsupervisor: attempt 2/2: python -u train.py\nstep 20 loss 5.8e+11\ntrain: loss is inf at step 22; stopping (exit 3)\nsupervisor: attempt 2 exited with status 3\nsupervisor: train.py failed 2 times (last status 3), giving up\n";
    let inc = lines(sup, Some(ExitOutcome::Code(3)));
    let fatal: Vec<_> = inc.iter().filter(|i| i.severity == Severity::Fatal).collect();
    assert_eq!(fatal.len(), 1, "{inc:?}");
    assert_eq!(
        (fatal[0].line, fatal[0].category),
        (3, Category::Convergence),
        "{inc:?}"
    );
    // A relay whose own words name a cause is kept.
    let named = "job: train.py failed with exit code 1: CUDA out of memory\n";
    assert_eq!(
        lines(named, Some(ExitOutcome::Code(1)))[0].category,
        Category::Resource
    );
}

/// When no stated line names a cause, the heading that calls itself an error is the line,
/// not the parser's detail lines after it.
#[test]
fn an_error_heading_is_preferred_to_its_detail_lines() {
    let log = "loading config train.yaml\nerror: cannot parse config train.yaml:\nwhile scanning for the next token\nfound character '\\t' that cannot start any token\n  in \"train.yaml\", line 8, column 1\n";
    let inc = lines(log, Some(ExitOutcome::Code(2)));
    assert_eq!((inc.len(), inc[0].line), (1, 2), "{inc:?}");
}

/// A wrapper's report after the program's last words (`/usr/bin/time -v`'s two dozen lines)
/// does not hide them: the run's own guard stopping it over its loss is the cause.
#[test]
fn a_wrappers_report_after_the_stated_cause_does_not_hide_it() {
    let mut log = String::from("epoch 4 train_loss 10.9 val_loss 8.86\nguard: val_loss 32.52 is more than 10x the first epoch's 1.155; stopping\nCommand exited with non-zero status 4\n");
    for k in 0..24 {
        log.push_str(&format!("\tField {k} of the report (kbytes): {k}\n"));
    }
    log.push_str("\tExit status: 4\n");
    let inc = lines(&log, Some(ExitOutcome::Code(4)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        (inc[0].line, inc[0].category),
        (2, Category::Convergence),
        "{inc:?}"
    );
    // Beyond the tail the program's words are out of sight: the exit code alone.
    let mut far = log.replace("\tExit status: 4\n", "");
    for k in 0..40 {
        far.push_str(&format!("\tmore {k}\n"));
    }
    let inc = lines(&far, Some(ExitOutcome::Code(4)));
    assert_eq!((inc.len(), inc[0].line), (1, 0), "{inc:?}");
}

/// Of the last lines naming the same cause, the first: a tool's own words before the job
/// script's ERROR lines restating them; a retried attempt's failure is not it.
#[test]
fn of_lines_naming_one_cause_the_first_is_the_line() {
    let log = "[job] pre-flight: checking the shared data volume\nmnt/datasets is not a mountpoint\n[job] contents of mnt/datasets:\ntotal 0\n[job] ERROR: shared data volume is not mounted at mnt/datasets\n[job] ERROR: not starting training\n";
    let inc = lines(log, Some(ExitOutcome::Code(3)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        (inc[0].line, inc[0].category),
        (2, Category::Infrastructure),
        "{inc:?}"
    );
    let retried = "INFO tracker: connecting\nWARNING tracker: attempt 1/2 failed: [Errno 111] Connection refused; retrying in 0.2s\nERROR tracker: tracking server unreachable after 2 attempts: [Errno 111] Connection refused\n";
    let inc = lines(retried, Some(ExitOutcome::Code(75)));
    assert_eq!((inc.len(), inc[0].line), (1, 3), "{inc:?}");
}

/// A traceback the program said it would retry, then the run stopped: its exception line is
/// the last word, judged with its frames (a timeout inside the network client).
#[test]
fn a_retry_that_failed_again_is_judged_with_its_frames() {
    let log = "WARNING features: attempt 1 timed out after 3.0 s; retrying\nTraceback (most recent call last):\n  File \"/srv/feat.py\", line 36, in <module>\n    with urllib.request.urlopen(url, timeout=3) as r:\n  File \"/usr/lib/python3.12/socket.py\", line 707, in readinto\n    return self._sock.recv_into(b)\nTimeoutError: timed out\n";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        (inc[0].line, inc[0].category),
        (7, Category::Infrastructure),
        "{inc:?}"
    );
}

/// A bare exception that the chained one names (`StopIteration`, then `RuntimeError:
/// generator raised StopIteration`): the chained line says what happened.
#[test]
fn a_bare_exception_named_by_the_next_in_its_chain_yields_to_it() {
    let log = "Traceback (most recent call last):\n  File \"b.py\", line 18, in batched\n    yield [next(it) for _ in range(size)]\nStopIteration\n\nThe above exception was the direct cause of the following exception:\n\nTraceback (most recent call last):\n  File \"b.py\", line 26, in <module>\n    for batch in batched(rows, 64):\nRuntimeError: generator raised StopIteration\n";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(inc[0].line, 11, "{inc:?}");
}

/// `wall-clock` or `time limit` state a failure only with words that say the time ran out.
#[test]
fn a_time_budget_announced_is_no_failure_stated() {
    assert!(!rules::states_failure(
        "job: train step with wall-clock budget 3s"
    ));
    assert!(rules::states_failure(
        "job: train step hit its 3s wall-clock budget and was stopped"
    ));
    assert!(rules::states_failure(
        "*** JOB 12 CANCELLED AT 2026-01-01 DUE TO TIME LIMIT ***"
    ));
}

/// A traceback the program said it would retry, then only another rank's broken collective
/// and the launcher's summary: the retry raised again, and that traceback is the cause.
#[test]
fn a_retry_that_raised_again_before_the_other_ranks_failed_is_the_cause() {
    let log = "[rank0]: WARNING upload attempt 2/3 failed: HTTP Error 503: Service Unavailable; retrying in 1.0s\n[rank0]: Traceback (most recent call last):\n[rank0]:   File \"/srv/t.py\", line 65, in <module>\n[rank0]:     urllib.request.urlopen(req, timeout=5)\n[rank0]: urllib.error.HTTPError: HTTP Error 503: Service Unavailable\n[rank1]: Traceback (most recent call last):\n[rank1]:   File \"/srv/t.py\", line 72, in <module>\n[rank1]:     dist.barrier()\n[rank1]: RuntimeError: [/w/third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:38096. This is typically caused by a remote worker crashing. Check the logs of the remote worker.\n";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    let fatal: Vec<_> = inc.iter().filter(|i| i.severity == Severity::Fatal).collect();
    assert_eq!(fatal.len(), 1, "{inc:?}");
    // The line: the retried attempt that first said the same.
    assert_eq!(
        (fatal[0].line, fatal[0].category),
        (1, Category::Infrastructure),
        "{inc:?}"
    );
    // Without an attempt naming that cause, the traceback's own line.
    let unnamed = log.replace(
        "failed: HTTP Error 503: Service Unavailable; retrying",
        "did not go through; retrying",
    );
    let inc = lines(&unnamed, Some(ExitOutcome::Code(1)));
    let fatal: Vec<_> = inc.iter().filter(|i| i.severity == Severity::Fatal).collect();
    assert_eq!((fatal.len(), fatal[0].line), (1, 5), "{inc:?}");
    // The same retry followed by the run going on: handled, not the cause of a later stop.
    let went_on = "WARNING upload failed; retrying in 1.0s\nTraceback (most recent call last):\n  File \"t.py\", line 6, in <module>\n    up()\nOSError: upload failed\nupload ok on attempt 2\nepoch 1 loss 0.4\nepoch 2 loss 0.3\n";
    let inc = lines(went_on, Some(ExitOutcome::Code(1)));
    assert!(
        inc.iter()
            .all(|i| !i.reason.starts_with("the program said it would recover")),
        "{inc:?}"
    );
    assert!(lines(went_on, Some(ExitOutcome::Code(0))).is_empty());
}

/// A warning the program restates at once with its way out (scikit-learn's ConvergenceWarning,
/// then `… did not converge; refitting with max_iter=2000`): both are notes, the run ok.
#[test]
fn a_warning_the_program_says_it_deals_with_is_a_note() {
    let log = "/v/sklearn/linear_model/_logistic.py:599: ConvergenceWarning: lbfgs failed to converge after 100 iteration(s) (status=1):\nSTOP: TOTAL NO. OF ITERATIONS REACHED LIMIT\n\nIncrease the number of iterations.\n  n_iter_i = _check_optimize_result(\n2026-12-03 14:03:34,089 WARNING fit: lbfgs did not converge in 100 iterations; refitting with max_iter=2000\n2026-12-03 14:03:34,338 INFO fit: converged=True\n";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert!(!inc.is_empty());
    assert!(inc.iter().all(|i| i.severity == Severity::Note), "{inc:?}");
}

/// A failure stated without a cause (`sweep failed: 0 of 4 trials finished`) after the run's
/// own evidence that the optimisation went wrong in its last lines: that evidence, its first.
#[test]
fn the_runs_divergence_explains_a_failure_stated_without_a_cause() {
    let log = "sweep: 4 trials\ntrial 0 lr=0.01  last loss nan  diverged at epoch 1\ntrial 1 lr=0.03  last loss nan  diverged at epoch 1\n\nsweep failed: 0 of 4 trials finished; no best trial to export\n";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    let fatal: Vec<_> = inc.iter().filter(|i| i.severity == Severity::Fatal).collect();
    assert_eq!(fatal.len(), 1, "{inc:?}");
    assert_eq!(
        (fatal[0].line, fatal[0].category),
        (2, Category::Convergence),
        "{inc:?}"
    );
}

/// A systemd service's records carry sd-daemon(3) priorities: `<3>` is an error record.
#[test]
fn an_sd_daemon_error_priority_is_an_error_record() {
    let log = "<6>starting\n<4>fetch: attempt 1/2 got HTTP 502 (502 Bad Gateway); retrying in 1s\n<3>fetch: HTTP 502 Bad Gateway from registry proxy after 2 attempts\n<3>cannot start without the base checkpoint; exiting with status 1\n";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        (inc[0].line, inc[0].category),
        (3, Category::Infrastructure),
        "{inc:?}"
    );
}

/// numpy's NaN warning about one number (`… in scalar divide`: a rank's 0/0 recall) is no
/// alarm at exit 0; about the job's arrays it is a data warning.
#[test]
fn a_nan_made_of_one_number_is_no_alarm() {
    let scalar = "/srv/eval.py:41: RuntimeWarning: invalid value encountered in scalar divide\n  recall = tp / (tp + fn)\nlocal val recall nan (0/0)\nval recall 1.000 (12/12)\n";
    assert!(lines(scalar, Some(ExitOutcome::Code(0))).is_empty());
    let array = "/srv/prep.py:40: RuntimeWarning: invalid value encountered in divide\n  x = (x - mu) / sd\nepoch 1 loss 0.5\n";
    let inc = lines(array, Some(ExitOutcome::Code(0)));
    assert_eq!((inc.len(), inc[0].category), (1, Category::Data), "{inc:?}");
}

/// A NaN after the loss on one line is the loss's only when it is the loss's value: another
/// metric's key before it (`local val recall nan (0/0)`) makes it that metric's.
#[test]
fn a_nan_of_another_metric_on_the_loss_line_is_not_the_loss() {
    let other = "[rank2] epoch 1 loss 0.3244 local val recall nan (0/0)\nval recall 1.000 (12/12)\n";
    assert!(lines(other, Some(ExitOutcome::Code(0))).is_empty());
    for own in [
        "epoch 1 loss nan",
        "train: loss is inf at step 22; stopping",
        "step 3 | loss=nan | lr 0.1",
    ] {
        let inc = lines(own, Some(ExitOutcome::Code(0)));
        assert_eq!(inc.len(), 1, "{own}: {inc:?}");
        assert_eq!(inc[0].category, Category::Convergence, "{own}");
    }
}

#[test]
fn a_retried_failure_is_shown_at_its_first_attempt() {
    let log = "\
epoch 0 loss 0.9
lease: attempt 1/3 failed: timed out
lease: attempt 2/3 failed: timed out
lease: attempt 3/3 failed: timed out
Traceback (most recent call last):
  File \"train.py\", line 9, in <module>
    shard = lease()
  File \"/v/lib/python3.12/socket.py\", line 720, in recv_into
    return self._sock.recv_into(b)
TimeoutError: timed out";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!(p.line, 2, "{inc:?}");
    assert!(p.text.contains("attempt 1/3"), "{}", p.text);
    assert_eq!(p.category, Category::Infrastructure);
    // The exception is still in the excerpt, after the first attempt.
    assert!(p.excerpt.iter().any(|l| l == "TimeoutError: timed out"));
}

#[test]
fn attempts_long_before_or_saying_something_else_do_not_move_the_cause() {
    let mut log = String::from("WARNING lease: request timed out (attempt 1/3), retrying in 1s\n");
    for i in 0..100 {
        log.push_str(&format!("epoch {i} loss 0.5\n"));
    }
    log.push_str("WARNING upload: attempt 1/3 failed (HTTP 500), retrying\n");
    log.push_str("Traceback (most recent call last):\n  File \"t.py\", line 3, in <module>\n    f()\nTimeoutError: timed out");
    let inc = lines(&log, Some(ExitOutcome::Code(1)));
    assert_eq!(primary(&inc).text, "TimeoutError: timed out");
}

#[test]
fn a_tools_own_words_before_a_bare_failure_statement_are_the_cause() {
    let log = "\
[15:00:14] fetching tokenizer.json
curl: (6) Could not resolve host: artifacts.internal
curl: (6) Could not resolve host: artifacts.internal
[15:00:16] stage-in failed for tokenizer.json; not starting training";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!(p.line, 2);
    assert_eq!(p.category, Category::Infrastructure);
}

#[test]
fn a_keyerror_on_a_value_from_the_data_is_data() {
    for key in ["'refund '", "'Positive'", "'New York'"] {
        let log = format!(
            "Traceback (most recent call last):\n  File \"t.py\", line 3, in <module>\n    y = LABELS[row]\nKeyError: {key}"
        );
        let inc = lines(&log, Some(ExitOutcome::Code(1)));
        assert_eq!(primary(&inc).category, Category::Data, "{key}");
    }
    let log = "Traceback (most recent call last):\n  File \"t.py\", line 3, in <module>\n    lr = cfg['lr_schedule']\nKeyError: 'lr_schedule'";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(primary(&inc).category, Category::Implementation);
}

#[test]
fn an_exception_right_after_a_services_error_answer_is_the_services() {
    let tb = "Traceback (most recent call last):\n  File \"t.py\", line 45, in fetch_token\n    return reply[\"access_token\"]\nKeyError: 'access_token'";
    let answered = format!(
        "INFO auth: requesting a token\nINFO auth: token service replied HTTP 200: {{'error': 'temporarily_unavailable'}}\n{tb}"
    );
    let inc = lines(&answered, Some(ExitOutcome::Code(1)));
    assert_eq!(primary(&inc).category, Category::Infrastructure);
    let access_log = format!("127.0.0.1 - - [03/Dec/2026 06:33:09] \"GET /v1/token HTTP/1.1\" 503 -\n{tb}");
    let inc = lines(&access_log, Some(ExitOutcome::Code(1)));
    assert_eq!(primary(&inc).category, Category::Infrastructure);
    // A healthy answer, or one long before: the code's own dict.
    let fine = format!("INFO auth: token service replied HTTP 200 in 12 ms\n{tb}");
    let inc = lines(&fine, Some(ExitOutcome::Code(1)));
    assert_eq!(primary(&inc).category, Category::Implementation);
}

#[test]
fn a_kill_after_the_schedulers_preemption_notice_is_the_clusters() {
    let log = "\
job 88213 on partition shared (preemptible, grace 3 s)
step 50 loss 0.9663
slurmstepd: error: *** JOB 88213 ON node-a17 CANCELLED AT 2026-12-03T09:41:07 DUE TO PREEMPTION ***
trainer: got signal 15 (SIGTERM); writing resume checkpoint before exit
job.sh: line 65: 32132 Killed                  python train.py
job 88213: train step exited with status 137";
    let inc = lines(log, Some(ExitOutcome::Signal(9)));
    let p = primary(&inc);
    assert_eq!((p.line, p.category), (3, Category::Infrastructure), "{inc:?}");
    // Without the notice, the kill is the resource's.
    let alone = log.replace("DUE TO PREEMPTION", "BY 0");
    let inc = lines(&alone, Some(ExitOutcome::Signal(9)));
    assert_eq!(primary(&inc).category, Category::Resource, "{inc:?}");
}

#[test]
fn an_error_record_at_an_exit_0_is_a_warning_unless_handled() {
    let log = "epoch 3 val_acc 0.98\n18:18:19 ERROR upload | upload of model.pt failed after 3 attempts: HTTP 503 Service Unavailable\n18:18:20 INFO done";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        (inc[0].line, inc[0].severity, inc[0].category),
        (2, Severity::Warning, Category::Infrastructure)
    );
    let skipped = "epoch 3 val_acc 0.98\nERROR notify: could not post to http://127.0.0.1:9/hook: <urlopen error [Errno 111] Connection refused> (notification skipped)\nINFO done";
    assert!(lines(skipped, Some(ExitOutcome::Code(0))).is_empty());
}

#[test]
fn a_tools_words_are_the_cause_when_no_line_states_a_failure() {
    let log = "preparing 144000 shards\njob.sh: line 29: /usr/bin/python: Argument list too long";
    let inc = lines(log, Some(ExitOutcome::Code(126)));
    let p = primary(&inc);
    assert_eq!((p.line, p.category), (2, Category::Implementation), "{inc:?}");
}

#[test]
fn a_run_whose_every_evaluation_scores_the_same_learnt_nothing() {
    let mut log = String::new();
    for e in 0..8 {
        log.push_str(&format!(
            "epoch {e}: lr=4.77e-08 train_loss=1.0350 val_loss=1.0245 val_acc=0.465\n"
        ));
    }
    log.push_str("`Trainer.fit` stopped: `max_epochs=8` reached.\n");
    let inc = lines(&log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        (inc[0].line, inc[0].severity, inc[0].category),
        (1, Severity::Warning, Category::Implementation)
    );
    // A score that moves, even in its last digit, is a run that learns.
    let moving = log.replacen(
        "val_loss=1.0245 val_acc=0.465\n",
        "val_loss=1.0311 val_acc=0.462\n",
        1,
    );
    assert!(lines(&moving, Some(ExitOutcome::Code(0))).is_empty());
    // The same scores between the log's first lines and its last, a long run apart.
    let mut long = String::from("{'eval_loss': '0.6931', 'eval_accuracy': '0.625', 'epoch': '1'}\n");
    for i in 0..5000 {
        long.push_str(&format!("step {i} loss 0.69\n"));
    }
    long.push_str("{'eval_loss': '0.6931', 'eval_accuracy': '0.625', 'epoch': '2'}\n");
    long.push_str("{'eval_loss': '0.6931', 'eval_accuracy': '0.625', 'epoch': '3'}\n");
    let inc = lines(&long, Some(ExitOutcome::Code(0)));
    assert_eq!((inc.len(), inc[0].line), (1, 1), "{inc:?}");
    // A perfect score may stay perfect.
    assert!(lines(
        &log.replace("val_loss=1.0245 val_acc=0.465", "val_acc=1.000"),
        Some(ExitOutcome::Code(0))
    )
    .is_empty());
}

#[test]
fn a_rich_drawn_exception_groups_leaf_is_the_error() {
    let log = "\
╭──────── Traceback (most recent call last) ────────╮
│ /job/load.py:46 in main                           │
│ ❱ 46 │   async with asyncio.TaskGroup() as tg:    │
╰───────────────────────────────────────────────────╯
ExceptionGroup: unhandled errors in a TaskGroup (1 sub-exception)

╭──────────────── Sub-exception #1 ─────────────────╮
│ ╭───── Traceback (most recent call last) ─────╮   │
│ │ /job/load.py:31 in decode                    │   │
│ ╰──────────────────────────────────────────────╯   │
│ MemoryError: Unable to allocate 190. MiB for an array │
╰───────────────────────────────────────────────────╯";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    let p = primary(&inc);
    assert_eq!((p.line, p.category), (11, Category::Resource), "{inc:?}");
    assert!(
        p.text.starts_with("MemoryError: Unable to allocate"),
        "{}",
        p.text
    );
}

/// A burst of one failure, then long ordinary output, then a failing exit: the burst is the
/// cause (one report), not an exit the log does not explain beside it. With two different
/// failures in the log nothing says which ended the run: the exit stays its own.
#[test]
fn the_logs_one_failure_explains_a_failing_exit_after_long_ordinary_output() {
    let calm: String = (0..(CAUSE_WITHIN as usize + 50))
        .map(|i| format!("step {i} loss 0.41\n"))
        .collect();
    let oom =
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)\n";
    let log = format!("{calm}{}{calm}", oom.repeat(50));
    let inc = lines(&log, Some(ExitOutcome::Code(1)));
    let fatal: Vec<_> = inc.iter().filter(|i| i.severity == Severity::Fatal).collect();
    assert_eq!(fatal.len(), 1, "{inc:#?}");
    assert_eq!(
        (fatal[0].category, fatal[0].line),
        (Category::Resource, CAUSE_WITHIN + 51)
    );
    assert!(
        inc.iter().all(|i| !i.text.contains("log states no error")),
        "{inc:#?}"
    );

    let other = "Traceback (most recent call last):\n  File \"t.py\", line 3, in <module>\nValueError: could not convert string to float: 'n/a'\n";
    let log = format!("{calm}{oom}{calm}{other}{calm}");
    let inc = lines(&log, Some(ExitOutcome::Code(1)));
    assert!(
        inc.iter().any(|i| i.severity == Severity::Fatal && i.line == 0),
        "{inc:#?}"
    );
}

/// An error the run logged, then its word that what failed works again, then exit 0: no
/// warning (a metrics client's circuit breaker opening on a gateway's 500s, then closing).
#[test]
fn an_error_record_then_its_recovery_is_no_warning_at_exit_0() {
    let log = "03:02:04 INFO    metrics: epoch 0 loss 0.3163 acc 0.945
03:02:04 ERROR   metrics: push failed (1/3): HTTP 500 gateway restarting
03:02:04 ERROR   metrics: circuit OPEN: buffering metrics locally (3 points)
03:02:05 INFO    metrics: epoch 1 loss 0.1286 acc 0.980
03:02:06 INFO    metrics: circuit CLOSED: gateway back, flushed 19 buffered points
03:02:06 INFO    metrics: epoch 2 loss 0.0738 acc 0.990";
    assert!(rules::states_recovered(
        "03:02:06 INFO    metrics: circuit CLOSED: gateway back, flushed 19 buffered points"
    ));
    assert!(
        lines(log, Some(ExitOutcome::Code(0))).is_empty(),
        "{:#?}",
        lines(log, Some(ExitOutcome::Code(0)))
    );
    // Without the recovery the error stands, a warning.
    let unrecovered: String = log
        .lines()
        .filter(|l| !l.contains("CLOSED"))
        .collect::<Vec<_>>()
        .join("\n");
    let inc = lines(&unrecovered, Some(ExitOutcome::Code(0)));
    assert_eq!(
        (inc.len(), inc[0].category, inc[0].severity),
        (1, Category::Infrastructure, Severity::Warning)
    );
}

/// A loss named by its metric (`train_mse`, `val_rmse`) that becomes NaN or infinite is the
/// loss's; another metric's NaN beside it is not.
#[test]
fn a_loss_named_by_its_metric_that_goes_non_finite_is_convergence() {
    let log =
        "INFO train: epoch 0 train_mse=inf\nINFO train: epoch 1 train_mse=nan\nINFO train: saved model.pt";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(
        (inc[0].line, inc[0].category),
        (1, Category::Convergence),
        "{inc:#?}"
    );
    assert_eq!(inc[0].reason, classify::LOSS_NOT_FINITE);
    assert!(classify::loss_not_finite("epoch 3 val_rmse nan"));
    assert!(!classify::loss_not_finite(
        "epoch 3 val_mae 0.31 recall nan (0/0)"
    ));
    assert!(!classify::loss_not_finite("epoch 3 msec=12 nan_count=0"));
}

/// A division by a count of the data is read from the divisor only.
#[test]
fn a_count_divisor_is_read_from_the_right_of_the_division() {
    assert!(classify::count_divisor_source(
        "    weights = [len(df) / (len(CLASSES) * counts[c]) for c in CLASSES]"
    ));
    assert!(classify::count_divisor_source("    acc = correct / n_total"));
    assert!(!classify::count_divisor_source("    half = counts[c] / 2"));
    assert!(!classify::count_divisor_source("    ratio = a / b"));
}

/// A script's getopts refusing an option, and cmp finding two files apart, before a failing
/// exit: that line, with its category.
#[test]
fn getopts_refusals_and_cmps_differences_are_the_line_that_failed() {
    let log = "sweep trial 7/12: lr=0.003 batch=64\ntrain.sh: illegal option -- r\nusage: train.sh -e EPOCHS -b BATCH -l LR [-s SEED]";
    let inc = lines(log, Some(ExitOutcome::Code(2)));
    assert_eq!(
        (inc[0].line, inc[0].category),
        (2, Category::Implementation),
        "{inc:#?}"
    );
    let log = "[check] tokenizer vocabulary matches the base checkpoint\nbase-ckpt/vocab.txt tokenizer/vocab.txt differ: byte 11048, line 1383";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Data), "{inc:#?}");
}

/// A numeric error that ends the run right after its loss rose many-fold is the divergence's
/// consequence; the same error after a falling loss keeps its own category.
#[test]
fn a_numeric_error_after_the_loss_rose_many_fold_is_convergence() {
    let tb = "Traceback (most recent call last):\n  File \"fit.py\", line 52, in <module>\n    Lc = torch.linalg.cholesky(cov)\ntorch._C._LinAlgError: linalg.cholesky: The factorization could not be completed because the input is not positive-definite (the leading minor of order 2 is not positive-definite).";
    let rising = "epoch 0 step 0 nll 11.4\nepoch 0 step 2 nll 19.67\nepoch 0 step 14 nll 63.29\n";
    let inc = lines(&format!("{rising}{tb}"), Some(ExitOutcome::Code(1)));
    assert_eq!(
        (inc[0].category, inc[0].reason.as_str()),
        (Category::Convergence, rise::DIVERGED_FIRST),
        "{inc:#?}"
    );
    let falling = "epoch 0 step 0 nll 11.4\nepoch 0 step 2 nll 9.67\nepoch 0 step 14 nll 3.29\n";
    let inc = lines(&format!("{falling}{tb}"), Some(ExitOutcome::Code(1)));
    assert_eq!(inc[0].category, Category::Data, "{inc:#?}");
}

/// A job's own check that warns about its data or its replicas and lets the run go on: a
/// warning at exit 0. A warning that says what it does about it, or that is no check, is not.
#[test]
fn a_jobs_own_check_that_warns_is_a_warning_at_exit_0() {
    let log = "2026-12-04 02:59:52,694 INFO rank0.shards: part-00000.npz sha256 69c8572a
2026-12-04 02:59:52,696 WARNING rank0.shards: shards part-00000 and part-00001 have the same checksum: training on 1 distinct shard(s) of 2
epoch 0: train_mse 0.2804
saved model.pt";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(
        (inc.len(), inc[0].line, inc[0].category, inc[0].severity),
        (1, 2, Category::Data, Severity::Warning),
        "{inc:#?}"
    );
    let replicas = "19:20:11 [rank0] WARNING replica check: parameters differ across ranks (max abs diff 1.3068 over 738 values)";
    let share = "WARNING demand.weekly: dropped 5907 of 10000 rows with no parseable order_date";
    let inc = lines(share, Some(ExitOutcome::Code(0)));
    assert_eq!(
        (inc[0].category, inc[0].reason.as_str()),
        (Category::Data, rules::SHARE_LOST)
    );
    let inc = lines(replicas, Some(ExitOutcome::Code(0)));
    assert_eq!(
        (inc[0].category, inc[0].reason.as_str()),
        (Category::Implementation, rules::REPLICAS_DIFFER)
    );
    for handled in [
        "2026-12-03 11:44:30,668 WARNING resume.rank1: no checkpoint to resume from; starting at epoch 0",
        "2026-12-04 02:18:05,089 WARNING preflight: gradcheck in float32 failed; re-running in float64",
        "WARNING loader: checksum mismatch on shard 7; skipping it",
        "WARNING quality check of batch 3 failed, retrying in 2 s",
        "NCCL WARN Net : Connection closed by remote peer",
        "WARNING loader: skipped 3 of 5000 records with an empty text",
        "WARNING optional metadata: 2 of 3 services did not answer within 0.5 s; continuing without their annotations",
    ] {
        assert!(lines(handled, Some(ExitOutcome::Code(0))).is_empty(), "{handled}");
    }
}

/// A service's unhealthy status logged as a field just before an exception that names no
/// cause: the service's answer, infrastructure.
#[test]
fn a_service_status_logged_as_a_field_explains_the_exception_after_it() {
    let log =
        "INFO clicks.train: catalog listing: status=degraded shards=0 (search index rebuild in progress)
INFO clicks.train: fetched 0 shards
Traceback (most recent call last):
  File \"/v/torch/utils/data/dataset.py\", line 324, in __init__
    raise AssertionError(\"datasets should not be an empty iterable\")
AssertionError: datasets should not be an empty iterable";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    assert_eq!(
        (inc[0].line, inc[0].category),
        (6, Category::Infrastructure),
        "{inc:#?}"
    );
    assert!(rules::reports_service_error(
        "catalog listing: status: REINDEXING"
    ));
    assert!(!rules::reports_service_error("health: status=ok shards=24"));
}

/// bash unable to run the interpreter a job script names by a stale path is the script's;
/// tar lacking a member of the data's archive is the data's.
#[test]
fn a_stale_program_path_is_the_scripts_and_a_member_missing_from_an_archive_the_datas() {
    let log = "[job] stage 2/2 train with ./envs/ctr-2026.11/bin/python\n/w/job.sh: line 15: ./envs/ctr-2026.11/bin/python: No such file or directory";
    let inc = lines(log, Some(ExitOutcome::Code(127)));
    assert_eq!(
        (inc[0].line, inc[0].category),
        (2, Category::Implementation),
        "{inc:#?}"
    );
    let log = "[stagein] extracting shards listed in manifest.txt\ntar: shard-03.npy: Not found in archive\ntar: Exiting with failure status due to previous errors";
    let inc = lines(log, Some(ExitOutcome::Code(2)));
    assert_eq!((inc[0].line, inc[0].category), (2, Category::Data), "{inc:#?}");
}

/// A traceback that a record at the info level introduces, quoting its exception
/// (`logger.info("… raised %s; using the cached copy", e, exc_info=True)`), is logged as
/// information: the run outlives it, no warning at exit 0. An ordinary info line before an
/// unrelated traceback does not make that one handled.
#[test]
fn a_traceback_an_info_record_quotes_is_information_not_a_warning() {
    let tb = "Traceback (most recent call last):\n  File \"job.py\", line 56, in fetch_vocab\n    with urllib.request.urlopen(req, timeout=5) as r:\nurllib.error.HTTPError: HTTP Error 304: Not Modified\n";
    let log = format!("20:22:07 INFO topics: vocabulary fetch raised HTTP Error 304: Not Modified; cached copy is current, using it\n{tb}20:22:07 INFO topics: test accuracy 1.000\n");
    let inc = lines(&log, Some(ExitOutcome::Code(0)));
    assert!(inc.iter().all(|i| i.severity == Severity::Note), "{inc:?}");
    let unrelated = format!(
        "20:22:07 INFO topics: fetching the vocabulary\n{tb}20:22:07 INFO topics: test accuracy 1.000\n"
    );
    let inc = lines(&unrelated, Some(ExitOutcome::Code(0)));
    assert_eq!(inc[0].severity, Severity::Warning, "{inc:?}");
    assert!(!rules::quotes_exception(
        "INFO decode: Error rate 0.0 so far",
        "binascii.Error",
        "Incorrect padding"
    ));
    assert!(rules::quotes_exception(
        "INFO fetch raised HTTPError, using the cache",
        "urllib.error.HTTPError",
        "x"
    ));
}

/// A KeyboardInterrupt's traceback in a run that exits 0: SIGINT stopped a process of the job
/// (a sampler it stops itself), not the run — a note, not a warning. At a failing exit it is
/// still the interrupt that ended the run.
#[test]
fn an_interrupt_in_a_run_that_exits_0_stopped_a_process_of_the_job() {
    let log = "INFO job: model saved\nTraceback (most recent call last):\n  File \"rss_sampler.py\", line 19, in <module>\n    time.sleep(0.1)\nKeyboardInterrupt\nINFO job: rss sampler stopped by SIGINT\n";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert!(inc.iter().all(|i| i.severity == Severity::Note), "{inc:?}");
    let inc = lines(log, Some(ExitOutcome::Code(130)));
    assert!(
        inc.iter()
            .any(|i| i.severity == Severity::Fatal && i.category == Category::Resource),
        "{inc:?}"
    );
}

/// The job's own configuration parsed in its innermost frame (`cfg = json.load(f)`), not a
/// data file read the same way.
#[test]
fn a_config_load_is_told_from_a_data_load_by_its_source_line() {
    assert!(classify::config_load_source("    cfg = json.load(f)"));
    assert!(classify::config_load_source(
        "    settings = yaml.safe_load(open(path))"
    ));
    assert!(!classify::config_load_source(
        "    rows = [json.loads(l) for l in f]"
    ));
    assert!(!classify::config_load_source("    cfg = build(f)"));
}

/// An error no rule explains, after the run's loss went infinite (binary cross-entropy
/// refusing the NaN probabilities of a diverged trunk): the divergence's consequence.
#[test]
fn an_unexplained_error_after_the_loss_went_infinite_is_the_divergences() {
    let log = "step 6 bce 0.71 aux_mse 3.1e+30 total 3.1e+30\nstep 7 bce 25.1 aux_mse inf total inf\nTraceback (most recent call last):\n  File \"job.py\", line 80, in <module>\n    loss = F.binary_cross_entropy(p, y)\nRuntimeError: all elements of input should be between 0 and 1\n";
    let inc = lines(log, Some(ExitOutcome::Code(1)));
    let fatal: Vec<_> = inc.iter().filter(|i| i.severity == Severity::Fatal).collect();
    assert_eq!(fatal.len(), 1, "{inc:?}");
    assert_eq!(
        (fatal[0].line, fatal[0].category),
        (6, Category::Convergence),
        "{inc:?}"
    );
    // Without the infinite loss before it, the same error names no cause.
    let alone = log.lines().skip(2).collect::<Vec<_>>().join("\n");
    let inc = lines(&alone, Some(ExitOutcome::Code(1)));
    assert_eq!(inc[0].category, Category::Implementation, "{inc:?}");
}

/// A job's own WARNING that its policy collapsed, in a run that exits 0: a convergence
/// warning (the result is worth little), not a clean run.
#[test]
fn a_warning_record_that_the_model_collapsed_is_a_convergence_warning() {
    let log = "INFO offers: update 10 entropy 0.001\nWARNING offers: policy collapsed: entropy 0.0002 nats (max 1.609)\nINFO offers: saved offer_policy.pt\n";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        (inc[0].line, inc[0].category, inc[0].severity),
        (2, Category::Convergence, Severity::Warning)
    );
    assert_eq!(inc[0].reason, classify::POLICY_COLLAPSE);
    let fine = "WARNING offers: entropy bonus 0.01 keeps the policy from collapse\n";
    assert!(lines(fine, Some(ExitOutcome::Code(0))).is_empty());
}

/// A job's WARNING that it stops training for its time budget, then exit 0: a resource
/// warning (the model trained for less than planned). Stopping for another reason is not.
#[test]
fn a_warning_that_training_stops_for_its_time_budget_is_a_resource_warning() {
    let log = "step 200 loss 0.81\n20:20:34 WARNING intent: wall-time budget 4 s nearly used (3.6 s) at step 234/1504 (epoch 1.24 of 8); stopping training\neval_loss 0.78\n";
    let inc = lines(log, Some(ExitOutcome::Code(0)));
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert_eq!(
        (inc[0].line, inc[0].category, inc[0].severity),
        (2, Category::Resource, Severity::Warning)
    );
    let planned = "20:20:34 WARNING intent: stopping training at the planned step 1504\n";
    assert!(lines(planned, Some(ExitOutcome::Code(0))).is_empty());
}
