//! What the runtime hands the engine and the log pipeline, taken from a job's spec.

use crate::config::JobSpec;
use crate::engine::JobSettings;
use crate::watch::metrics::MetricsConfig;
use crate::watch::pipeline::PipelineConfig;

/// The engine's settings: the config builds them; whether anyone can decide is the runtime's.
/// The engine shows the job's command ("Command: …") but never runs it (the runtime does,
/// from the spec): it gets the argv with the job's own secrets redacted, the built-in rules
/// being applied again where it is shown.
pub(crate) fn settings_of(spec: &JobSpec, unattended: bool) -> JobSettings {
    let argv = spec
        .engine
        .argv
        .iter()
        .map(|a| spec.redact.line(a).into_owned())
        .collect();
    JobSettings {
        unattended,
        argv,
        ..spec.engine.clone()
    }
}

/// The tracker's settings from the job's `[metrics]`: the loss is always charted.
pub(crate) fn metrics_config(spec: &JobSpec) -> MetricsConfig {
    let m = &spec.metrics;
    let mut chart = vec!["loss".to_string()];
    for c in &m.chart {
        if !chart.contains(c) {
            chart.push(c.clone());
        }
    }
    MetricsConfig {
        extra: m.patterns.clone(),
        step_key: m.step.clone(),
        total_key: m.total.clone(),
        chart,
        diverge_factor: m.diverge_factor,
    }
}

pub(crate) fn pipeline_config(spec: &JobSpec) -> PipelineConfig {
    PipelineConfig {
        log: spec.engine.log.clone(),
        detect: crate::watch::detect::DetectConfig {
            rank_labels: matches!(&spec.executor, crate::config::Executor::Slurm(s) if s.labelled()),
            ..spec.detect.clone()
        },
        metrics: metrics_config(spec),
        stall_timeout: spec.stall_timeout,
        redact: spec.redact.clone(),
    }
}
