//! What the runtime hands the engine and the log pipeline, taken from a job's spec. Small
//! separate functions, so that a spec carrying these settings directly replaces each one.

use crate::config::JobSpec;
use crate::engine::JobSettings;
use crate::watch::detect::DetectConfig;
use crate::watch::metrics::MetricsConfig;
use crate::watch::pipeline::PipelineConfig;

pub(crate) fn settings_of(spec: &JobSpec, unattended: bool) -> JobSettings {
    JobSettings {
        job: spec.name.clone(),
        argv: spec.argv.clone(),
        log: spec.log.clone(),
        expected: spec.expected,
        max: spec.max,
        status_interval: spec.status_interval,
        on_error: spec.on_error,
        unattended,
        approval_ttl: spec.approval_ttl,
    }
}

pub(crate) fn detect_config(spec: &JobSpec) -> DetectConfig {
    DetectConfig {
        rhat_threshold: spec.detect.rhat_threshold,
        extra: spec.detect.extra.clone(),
        ignore: spec.detect.ignore.clone(),
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
        log: spec.log.clone(),
        detect: detect_config(spec),
        metrics: metrics_config(spec),
        stall_timeout: spec.stall_timeout,
    }
}
