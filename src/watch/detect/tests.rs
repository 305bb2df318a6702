//! Detector behaviour on small hand-written logs (the real-log corpus is in tests/triage.rs).

use super::*;

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
fn an_ignored_exception_is_a_warning() {
    let log = "\
Exception ignored in: <function Loader.__del__ at 0x7f00>
Traceback (most recent call last):
  File \"t.py\", line 9, in __del__
AttributeError: 'NoneType' object has no attribute 'close'
";
    let inc = lines(log, None);
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].severity, Severity::Warning);
    assert!(inc[0].excerpt[0].starts_with("Exception ignored in"));
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
    assert_eq!(inc[0].severity, Severity::Warning);
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
