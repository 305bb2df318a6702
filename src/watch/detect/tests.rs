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
