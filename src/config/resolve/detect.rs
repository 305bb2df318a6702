//! How a job's log is read: the `detect` (error detection) and `metrics` tables.

use crate::model::Category;
use crate::watch::detect::DetectConfig;

use super::super::error::join;
use super::super::raw::{RawDetect, RawJob, RawMetrics, S};
use super::super::{MetricsSettings, DEFAULT_DIVERGE_FACTOR, DEFAULT_RHAT_THRESHOLD};
use super::job::JobCtx;
use super::R;

impl<'a> JobCtx<'a> {
    pub(super) fn detect(&self) -> R<DetectConfig> {
        let o = self.o;
        let d = |j: &'a RawJob| -> Option<&'a RawDetect> { j.detect.as_ref() };
        let rhat_threshold = self.above_one(
            "detect.rhat_threshold",
            |j| d(j)?.rhat_threshold.as_ref(),
            DEFAULT_RHAT_THRESHOLD,
        )?;
        let ignore = match self.pick("detect.ignore", |j| d(j)?.ignore.as_ref()) {
            None => Vec::new(),
            Some((list, key)) => list
                .get_ref()
                .iter()
                .map(|v| self.regex(v, &key))
                .collect::<R<Vec<_>>>()?,
        };
        let mut extra = Vec::new();
        if let Some((map, key)) = self.pick("detect.extra", |j| d(j)?.extra.as_ref()) {
            for (cat, list) in map {
                let k = join(&key, cat.get_ref());
                let category: Category = cat
                    .get_ref()
                    .parse()
                    .map_err(|m: String| o.at(cat.span(), &k, m))?;
                for v in list.get_ref() {
                    extra.push((category, self.regex(v, &k)?));
                }
            }
        }
        Ok(DetectConfig {
            rhat_threshold,
            ignore,
            extra,
            // Set from the executor (a Slurm job with several tasks labels its lines).
            rank_labels: false,
        })
    }

    pub(super) fn metrics(&self) -> R<MetricsSettings> {
        let o = self.o;
        let m = |j: &'a RawJob| -> Option<&'a RawMetrics> { j.metrics.as_ref() };
        let metric_name = |v: &S<String>, key: &str| -> R<String> {
            let s = v.get_ref().trim();
            if s.is_empty() {
                Err(o.at(v.span(), key, "a metric name must not be empty"))
            } else {
                Ok(s.to_string())
            }
        };
        let step = self
            .pick("metrics.step", |j| m(j)?.step.as_ref())
            .map(|(v, key)| metric_name(v, &key))
            .transpose()?;
        let total = self
            .pick("metrics.total", |j| m(j)?.total.as_ref())
            .map(|(v, key)| metric_name(v, &key))
            .transpose()?;
        let chart = match self.pick("metrics.chart", |j| m(j)?.chart.as_ref()) {
            None => Vec::new(),
            Some((list, key)) => list
                .get_ref()
                .iter()
                .map(|v| metric_name(v, &key))
                .collect::<R<Vec<_>>>()?,
        };
        let diverge_factor = self.above_one(
            "metrics.diverge_factor",
            |j| m(j)?.diverge_factor.as_ref(),
            DEFAULT_DIVERGE_FACTOR,
        )?;
        let mut patterns = Vec::new();
        if let Some((map, key)) = self.pick("metrics.patterns", |j| m(j)?.patterns.as_ref()) {
            for (name, v) in map {
                let k = join(&key, name.get_ref());
                if name.get_ref().trim().is_empty() {
                    return Err(o.at(name.span(), &k, "a metric name must not be empty"));
                }
                let re = self.regex(v, &k)?;
                let groups = re.captures_len() - 1;
                if groups != 1 {
                    return Err(o.at(
                        v.span(),
                        &k,
                        format!(
                            "the regex must have exactly one capture group (the value), it has {groups}; use (?:...) for grouping that is not the value"
                        ),
                    ));
                }
                patterns.push((name.get_ref().clone(), re));
            }
        }
        Ok(MetricsSettings {
            step,
            total,
            chart,
            diverge_factor,
            patterns,
        })
    }

    /// A threshold written as "this many times" (R-hat, the divergence factor): a finite
    /// number above 1.0, else `default` when not given.
    fn above_one(&self, field: &str, get: impl Fn(&'a RawJob) -> Option<&'a S<f64>>, default: f64) -> R<f64> {
        let Some((v, key)) = self.pick(field, get) else {
            return Ok(default);
        };
        let x = *v.get_ref();
        if !(x.is_finite() && x > 1.0) {
            let name = field.rsplit('.').next().unwrap_or(field);
            return Err(self.o.at(
                v.span(),
                key,
                format!("{name} must be a number above 1.0, got {x}"),
            ));
        }
        Ok(x)
    }
}
