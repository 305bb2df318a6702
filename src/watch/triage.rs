//! The post-mortem of a finished log, as a typed [`TriageReport`]: it streams the log through
//! the same [`Detector`] the live watcher uses (all lines, then the exit status), so a log
//! read after the fact gives the incidents the watcher reported while it ran. Memory stays
//! bounded whatever the size of the log: a fixed read buffer, over-long lines cut. Pure: no
//! command-line arguments, no printing (`trainwatch triage` does both in the binary).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde::Serialize;
use thiserror::Error;

use super::detect::{DetectConfig, Detector, LogDisk};
use crate::model::{Category, ExitOutcome, Incident, Severity};

/// Bytes read at a time; also the longest line kept whole (longer ones are cut).
const BUF: usize = 1 << 20;
/// How many of an incident's excerpt lines the human form shows.
const HUMAN_EXCERPT: usize = 12;

#[derive(Debug, Error)]
pub enum TriageError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// The overall verdict of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warning,
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warning => "warning",
            Verdict::Error => "error",
        }
    }
    /// The exit status of `trainwatch triage`: 0 ok, 1 an error, 3 warnings only.
    pub fn exit_status(self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Error => 1,
            Verdict::Warning => 3,
        }
    }
}

/// What triage concludes about a log.
#[derive(Debug, Clone, PartialEq)]
pub struct TriageReport {
    pub verdict: Verdict,
    pub category: Option<Category>,
    /// Index in `incidents` of the incident to look at first.
    pub primary: Option<usize>,
    pub incidents: Vec<Incident>,
}

#[derive(Serialize)]
struct JsonFirst<'a> {
    line: u64,
    text: &'a str,
}

#[derive(Serialize)]
struct JsonIncident<'a> {
    category: Category,
    severity: Severity,
    line: u64,
    text: &'a str,
    excerpt: &'a [String],
}

#[derive(Serialize)]
struct JsonReport<'a> {
    verdict: Verdict,
    category: Option<Category>,
    first_error: Option<JsonFirst<'a>>,
    incidents: Vec<JsonIncident<'a>>,
}

impl TriageReport {
    /// Verdict, category and the line to look at, from the incidents.
    pub fn from_incidents(mut incidents: Vec<Incident>) -> Self {
        // The report quotes the log: the same redaction as live watching, before any output.
        let redactor = crate::redact::Redactor::default();
        incidents.iter_mut().for_each(|i| redactor.incident(i));
        let fatal = incidents.iter().any(|i| i.severity == Severity::Fatal);
        let verdict = if fatal {
            Verdict::Error
        } else if incidents.is_empty() {
            Verdict::Ok
        } else {
            Verdict::Warning
        };
        let wanted = if fatal { Severity::Fatal } else { Severity::Warning };
        // The earliest line that states the problem among the incidents that make the
        // verdict; an incident with no line (an exit status) only when there is no other.
        let primary = incidents
            .iter()
            .enumerate()
            .filter(|(_, i)| i.severity == wanted)
            .min_by_key(|(_, i)| if i.line == 0 { u64::MAX } else { i.line })
            .map(|(k, _)| k);
        let category = primary.map(|k| incidents[k].category);
        Self {
            verdict,
            category,
            primary,
            incidents,
        }
    }

    /// The incident that states the problem with a log line, if any.
    pub fn first_error(&self) -> Option<&Incident> {
        self.primary.map(|k| &self.incidents[k]).filter(|i| i.line > 0)
    }

    /// The machine-readable form (exactly the documented schema).
    pub fn to_json(&self) -> String {
        let r = JsonReport {
            verdict: self.verdict,
            category: self.category,
            first_error: self.first_error().map(|i| JsonFirst {
                line: i.line,
                text: &i.text,
            }),
            incidents: self
                .incidents
                .iter()
                .map(|i| JsonIncident {
                    category: i.category,
                    severity: i.severity,
                    line: i.line,
                    text: &i.text,
                    excerpt: &i.excerpt,
                })
                .collect(),
        };
        serde_json::to_string_pretty(&r).expect("report serialises")
    }

    /// The human form: verdict first, then the line to look at, then each incident.
    pub fn to_human(&self) -> String {
        let mut s = String::new();
        match self.category {
            Some(c) => s.push_str(&format!("verdict: {} ({c})\n", self.verdict.as_str())),
            None => s.push_str(&format!("verdict: {}\n", self.verdict.as_str())),
        }
        match (self.first_error(), self.primary) {
            (Some(i), _) => s.push_str(&format!("look at line {}: {}\n", i.line, i.text)),
            (None, Some(k)) => s.push_str(&format!("look at: {}\n", self.incidents[k].text)),
            (None, None) => {
                s.push_str("no incidents: nothing in the log or the exit status points at a problem\n")
            }
        }
        if !self.incidents.is_empty() {
            s.push_str(&format!("\nincidents ({}):\n", self.incidents.len()));
        }
        for (k, i) in self.incidents.iter().enumerate() {
            let at = if i.line > 0 {
                format!("line {}", i.line)
            } else {
                "exit status".to_string()
            };
            let times = if i.count > 1 {
                format!(" (×{})", i.count)
            } else {
                String::new()
            };
            s.push_str(&format!(
                "{}. {} {} at {at}{times}: {}\n",
                k + 1,
                i.severity,
                i.category,
                i.text
            ));
            let skip = i.excerpt.len().saturating_sub(HUMAN_EXCERPT);
            if skip > 0 {
                s.push_str(&format!("     | [… {skip} lines …]\n"));
            }
            for l in &i.excerpt[skip..] {
                s.push_str(&format!("     | {l}\n"));
            }
        }
        s
    }
}

/// Run the detector over a whole log read from `r`, then the exit status.
pub fn analyse_reader<R: Read>(
    r: R,
    cfg: DetectConfig,
    exit: Option<ExitOutcome>,
) -> io::Result<TriageReport> {
    analyse(r, cfg, exit, None)
}

/// `disk`: the log's file system, when it is full (an exit the log is silent about is then
/// explained by that, as in live watching).
fn analyse<R: Read>(
    mut r: R,
    cfg: DetectConfig,
    exit: Option<ExitOutcome>,
    disk: Option<LogDisk>,
) -> io::Result<TriageReport> {
    let mut det = Detector::new(cfg);
    let mut findings = Vec::new();
    let mut buf = vec![0u8; BUF];
    let (mut start, mut end) = (0usize, 0usize);
    let mut line_no: u64 = 0;
    // Inside an over-long line whose head was already fed: drop bytes until its end.
    let mut discarding = false;
    loop {
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = loop {
            match r.read(&mut buf[end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            break;
        }
        end += n;
        if discarding {
            match memchr::memchr(b'\n', &buf[..end]) {
                Some(i) => {
                    discarding = false;
                    start = i + 1;
                }
                None => {
                    end = 0;
                    continue;
                }
            }
        }
        let Some(last_nl) = memchr::memrchr(b'\n', &buf[start..end]).map(|i| start + i) else {
            if end == buf.len() {
                // A line longer than the buffer: keep its head, skip the rest.
                line_no += 1;
                det.push_line(line_no, &String::from_utf8_lossy(&buf[start..end]));
                start = end;
                discarding = true;
            }
            continue;
        };
        line_no += det.push_region(line_no + 1, &buf[start..=last_nl], &mut findings);
        // Triage reads the incidents at the end, not the findings on the way.
        findings.clear();
        start = last_nl + 1;
    }
    if start < end && !discarding {
        line_no += 1;
        det.push_line(line_no, &String::from_utf8_lossy(&buf[start..end]));
    }
    det.note_log_disk(disk);
    det.finish(exit);
    Ok(TriageReport::from_incidents(det.incidents().to_vec()))
}

/// Triage the log at `path`.
pub fn triage_file(
    path: &Path,
    cfg: DetectConfig,
    exit: Option<ExitOutcome>,
) -> Result<TriageReport, TriageError> {
    let err = |source| TriageError::Read {
        path: path.display().to_string(),
        source,
    };
    let f = File::open(path).map_err(err)?;
    let disk = exit.filter(|o| !o.success()).and_then(|_| LogDisk::full_at(path));
    analyse(f, cfg, exit, disk).map_err(err)
}
