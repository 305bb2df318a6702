//! How the end of a log is judged, once the process has ended (live) or the whole log is
//! read (`triage`): what explains the exit — the last fatal-looking evidence still standing,
//! else what the program stated before it stopped, else the exit classifier's verdict — and
//! what becomes a warning (everything, after an exit 0; the launcher's summary and the other
//! ranks' failed collectives, once a rank's own failure is stated). A scheduler's end
//! (`ExitOutcome::Scheduler`) is the scheduler's statement of the cause: the exit
//! classifier's verdict for it is the error, and what the log printed while the job was
//! being stopped becomes warnings.

use super::classify::{self, TbContext, Verdict};
use super::{
    cut, exit, rise, rules, Detector, Finding, Meta, CAUSE_WITHIN, MAX_LINE_CHARS, SURVIVE_AFTER, TAIL,
};
use crate::model::{Category, ExitOutcome, Incident, Severity};

impl Detector {
    /// End of the log / the process ended with this outcome (None = unknown, e.g. triage
    /// without --exit-code).
    pub fn finish(&mut self, exit: Option<ExitOutcome>) -> Vec<Finding> {
        let mut out = Vec::new();
        self.settle(true);
        if self.finished {
            return out;
        }
        self.finished = true;
        self.settle_eval_nan(&mut out);
        match exit {
            Some(ExitOutcome::Code(0)) => {
                // The run ended by itself: nothing it printed ended it. What it said it
                // handled stays a note, and so does an exception it visibly outlived: one its
                // output went on after, or any before a log that ends in its ordinary output
                // (a launcher restarted the group, and the job then went on to succeed).
                // Everything else (a warning, a NaN loss, a traceback at the very end that a
                // wrapper's status hid) is a warning.
                // An interrupt (SIGINT's KeyboardInterrupt) in a run that then exits 0 stopped a
                // process of the job (a sampler, a helper it stops itself), not the run.
                let tail_ordinary = self.tail_ordinary >= SURVIVE_AFTER;
                for i in 0..self.meta.len() {
                    let m = &self.meta[i];
                    let interrupt = self.incidents[i].reason == classify::INTERRUPTED;
                    let outlived = m.looks_fatal && !m.caught && (m.survived || tail_ordinary || interrupt);
                    if outlived {
                        self.meta[i].outlived = true;
                        self.set_forced(i, Severity::Note, &mut out);
                    } else if !m.outlived {
                        self.set_forced(i, Severity::Warning, &mut out);
                    }
                }
                self.error_logged_at_success(&mut out);
                self.shell_complained_at_success(&mut out);
                self.learnt_nothing(&mut out);
            }
            Some(outcome @ ExitOutcome::Scheduler(_)) => {
                // The scheduler states why it ended the job (its time limit, a failed node, a
                // cancel): what the log printed while it was being stopped — the SIGTERM's
                // traceback, slurmstepd's "CANCELLED AT … DUE TO TIME LIMIT", the other
                // ranks' broken collectives — is its consequence, not its cause.
                for i in 0..self.meta.len() {
                    if self.incidents[i].severity == Severity::Fatal {
                        self.set_forced(i, Severity::Warning, &mut out);
                    }
                }
                self.unexplained_exit(outcome, &mut out);
            }
            Some(outcome) if self.killed_after_preemption(outcome).is_some() => {
                // The scheduler said it preempts the job, then its grace ran out and the step
                // was killed: the kill is the preemption's, the cluster's doing.
                let (line, said) = self.killed_after_preemption(outcome).expect("checked");
                for i in 0..self.meta.len() {
                    if self.incidents[i].severity == Severity::Fatal {
                        self.set_forced(i, Severity::Warning, &mut out);
                    }
                }
                let excerpt = vec![said.clone()];
                self.push_preempted(line, said, excerpt, &mut out);
            }
            Some(ExitOutcome::Code(_)) if self.handled_then_failed() => {
                // A traceback the program said it would recover from, then only other
                // processes' relays of the failure: the retry raised again.
                if let Some(h) = self.handled.take() {
                    let mut inc = h.incident;
                    if let Some((n, l)) = h.first_attempt {
                        inc.excerpt.insert(0, l.clone());
                        inc.line = n;
                        inc.text = l;
                    }
                    self.push_cause(inc, &mut out);
                }
                self.demote_consequences(&mut out);
            }
            Some(outcome @ ExitOutcome::Code(_)) => {
                let cause = self
                    .last_fatal
                    .filter(|&i| !self.meta[i].caught && self.tail_ordinary <= CAUSE_WITHIN)
                    .or_else(|| self.stated_death(outcome, None));
                // Nothing but the launcher's relay (and the other ranks' broken collectives).
                let relayed = (0..self.meta.len()).all(|i| self.meta[i].consequence);
                if let Some((line, said, v)) = self.relay_words.take().filter(|_| relayed) {
                    // Only the launcher's relay stands: the rank's own last words are the cause.
                    let exit = exit::judge_exit(outcome, self.log_disk.as_ref());
                    self.stated_incident(line, said, v, exit.as_ref(), &mut out);
                } else if let Some(i) = cause {
                    self.set_forced(i, Severity::Fatal, &mut out);
                } else if !self.has_fatal() {
                    self.unexplained_exit(outcome, &mut out);
                }
                self.rank_deaths_stated(&mut out);
                self.demote_consequences(&mut out);
                for i in 0..self.incidents.len() {
                    if self.incidents[i].severity == Severity::Fatal {
                        self.at_first_attempt(i, &mut out);
                    }
                }
            }
            // A signal or an unknown end: only what the log said can explain it.
            Some(outcome) if !self.has_fatal() => match self.stated_death(outcome, None) {
                Some(i) => self.set_forced(i, Severity::Fatal, &mut out),
                None => self.unexplained_exit(outcome, &mut out),
            },
            Some(_) => self.demote_consequences(&mut out),
            None => {}
        }
        if exit.is_some_and(|e| !e.success()) {
            self.diverged_first(&mut out);
        }
        out
    }

    /// A numeric error that ended the run right after its loss rose many-fold (the log's
    /// last lines before it): the divergence's consequence, convergence (see [`rise`]).
    fn diverged_first(&mut self, out: &mut Vec<Finding>) {
        for i in 0..self.incidents.len() {
            let inc = &self.incidents[i];
            if inc.severity != Severity::Fatal
                || matches!(
                    inc.category,
                    Category::Convergence | Category::Resource | Category::Infrastructure
                )
                || !rise::numeric_failure(&inc.text)
            {
                continue;
            }
            let before = inc.line;
            if rise::loss_rose(
                self.tail
                    .iter()
                    .filter(|(n, _)| *n < before)
                    .map(|(_, l)| l.as_str()),
            ) {
                self.incidents[i].category = Category::Convergence;
                self.incidents[i].reason = rise::DIVERGED_FIRST.to_string();
                self.meta[i].strong = true;
                self.updated(i, out);
            }
        }
    }

    /// The run ended well, yet its latest error-level record names a cause it did not say it
    /// recovers from (`upload of model.pt failed after 3 attempts: HTTP 503 Service
    /// Unavailable`): a warning of that cause, unless it is evidence already.
    fn error_logged_at_success(&mut self, out: &mut Vec<Finding>) {
        let Some((n, text, v)) = self.error_record.clone() else {
            return;
        };
        // A record the program logged at an error level (not a printed message it kept).
        let logged = rules::error_record(&text).is_some();
        // (or says, in the last 40 lines, that what failed works again: a client's circuit
        // breaker closing once the gateway is back)
        let handled = rules::announces_recovery(&text)
            || rules::states_handled(&text)
            || self
                .tail
                .iter()
                .any(|(m, l)| *m > n && rules::states_recovered(l));
        if !v.strong || !logged || handled || self.incidents.iter().any(|i| i.line == n) {
            return;
        }
        let inc = Incident {
            category: v.category,
            severity: Severity::Warning,
            line: n,
            text: text.clone(),
            excerpt: vec![text],
            count: 1,
            reason: format!("the run logged an error and went on: {}", v.reason),
        };
        self.push_forced(inc, Severity::Warning, out);
    }

    /// The run ended well, yet bash refused a line of its job script (`job.sh: line 4: $'\r':
    /// command not found`, a script saved with CRLF line endings; a typo in a command): what
    /// the script meant to do after it was not done. A warning, unless it is evidence already.
    fn shell_complained_at_success(&mut self, out: &mut Vec<Finding>) {
        let Some((n, text)) = self.shell_complaint.clone() else {
            return;
        };
        if self.incidents.iter().any(|i| i.line == n) {
            return;
        }
        let inc = Incident {
            category: Category::Implementation,
            severity: Severity::Warning,
            line: n,
            text: text.clone(),
            excerpt: vec![text],
            count: 1,
            reason: format!("the run ended well, yet {}", classify::SHELL_ERROR),
        };
        self.push_forced(inc, Severity::Warning, out);
    }

    /// Did the run stop after a traceback it said it would recover from, with nothing after
    /// it but ordinary lines too few to show it went on and other processes' relays of the
    /// failure (a rank's broken collective, the launcher's summary)?
    fn handled_then_failed(&self) -> bool {
        let Some(h) = &self.handled else {
            return false;
        };
        (0..self.meta.len())
            .filter(|&i| self.incidents[i].line > h.incident.line)
            .all(|i| self.meta[i].consequence)
    }

    /// When the log states a failure itself (a rank's exception, a rank killed by a signal),
    /// the launcher's summary and the other ranks' failed collectives are its consequences:
    /// warnings beside it, not the cause.
    fn demote_consequences(&mut self, out: &mut Vec<Finding>) {
        let stated = (0..self.meta.len())
            .any(|i| !self.meta[i].consequence && self.incidents[i].severity == Severity::Fatal);
        if !stated {
            return;
        }
        for i in 0..self.meta.len() {
            if self.meta[i].consequence && self.incidents[i].severity == Severity::Fatal {
                self.set_forced(i, Severity::Warning, out);
            }
        }
    }

    /// The line that states the death the exit reports: a process ended by signal N (or a
    /// shell exiting 128+N) and a line saying a process died of N — a shell's `…: line 12:
    /// 4242 Killed`, a `Segmentation fault` — is that death, even when the job script went on
    /// printing after it (bash echoes the child's here-document, then its own last words).
    /// torchrun's agent says a rank died of signal N (`exitcode: -6`): a line stating that
    /// death (glibc's `Assertion … failed.`, a `Segmentation fault`) is the rank's own word on
    /// it, and the earlier line to look at.
    fn rank_deaths_stated(&mut self, out: &mut Vec<Finding>) {
        for i in 0..self.meta.len() {
            if self.incidents[i].severity != Severity::Fatal {
                continue;
            }
            let Some(code) = rules::elastic_exit(&self.incidents[i].text).filter(|c| *c < 0) else {
                continue;
            };
            if let Some(j) = self.stated_death(ExitOutcome::Signal(-code), Some(i)) {
                self.set_forced(j, Severity::Fatal, out);
            }
        }
    }

    fn stated_death(&self, outcome: ExitOutcome, except: Option<usize>) -> Option<usize> {
        let signal = ended_by_signal(outcome)?;
        (0..self.meta.len())
            .rev()
            .filter(|&i| Some(i) != except)
            .find(|&i| {
                let m = &self.meta[i];
                m.looks_fatal && !m.caught && m.death.is_some_and(|d| d.signals().contains(&signal))
            })
    }

    /// A process killed (the shell's 128+N for a stop from outside) after the log's last
    /// lines said the job is being preempted, with nothing fatal since but deaths by signal:
    /// the first line that said so.
    fn killed_after_preemption(&self, outcome: ExitOutcome) -> Option<(u64, String)> {
        let signal = ended_by_signal(outcome)?;
        if rules::Death::Crash.signals().contains(&signal) {
            return None;
        }
        let (n, l) = self.tail.iter().find(|(_, l)| rules::announces_preemption(l))?;
        let only_deaths = (0..self.meta.len())
            .filter(|&i| self.incidents[i].severity == Severity::Fatal && self.incidents[i].line > *n)
            .all(|i| self.meta[i].death.is_some() || self.meta[i].consequence);
        only_deaths.then(|| (*n, cut(l.trim(), MAX_LINE_CHARS)))
    }

    fn has_fatal(&self) -> bool {
        self.incidents.iter().any(|i| i.severity == Severity::Fatal)
    }

    /// A failed exit that nothing in the log explains: the exit classifier's verdict.
    fn unexplained_exit(&mut self, outcome: ExitOutcome, out: &mut Vec<Finding>) {
        let Some(judged) = exit::judge_exit(outcome, self.log_disk.as_ref()) else {
            return;
        };
        let excerpt: Vec<String> = self
            .ring()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(_, l)| l.clone())
            .collect();
        // A stop from outside that the log says was a preemption (the scheduler or the cloud
        // taking the node back, the job checkpointing for its requeue): the cluster's doing.
        if let Some((line, said)) = self.preemption_stated(outcome) {
            self.push_preempted(line, said, excerpt, out);
            return;
        }
        // A failing exit code with no traceback: the program said why before it stopped — an
        // error-level log record, or failing words in its last lines (`print(e)` then
        // `sys.exit(2)`). That line, classified by what it says, is the error; the exit
        // status is the category only when nothing in the log says more.
        // A full log disk is the cause whatever the program printed last.
        let stated = match outcome {
            ExitOutcome::Code(_) if self.log_disk.is_none() => self.stated_cause(),
            _ => None,
        };
        if let Some((line, _, v)) = &stated {
            // The line is evidence already (a warning it logged at an error level): it is the
            // cause, not a second incident.
            if let Some(i) = (0..self.meta.len())
                .rev()
                .find(|&i| self.incidents[i].line == *line)
            {
                // Its words name no cause, but the exit code does (sysexits, timeout(1)).
                if v.strong || judged.reason != exit::EXIT_CODE_ALONE {
                    let (category, reason) = stated_reason(v, Some(&judged));
                    self.incidents[i].category = category;
                    self.incidents[i].reason = reason;
                }
                self.set_forced(i, Severity::Fatal, out);
                return;
            }
        }
        // Nothing states why, but the run's own evidence stands in its last lines (a trainer's
        // `loss is inf … stopping`, then only its supervisor's relays of the exit): the cause.
        // So is its evidence that the optimisation went wrong (every trial's loss nan, then
        // `sweep failed: 0 of 4 trials finished`) when the failure it states names no cause
        // and the exit code says nothing more.
        let weak = stated
            .as_ref()
            .is_some_and(|s| !s.2.strong && judged.reason == exit::EXIT_CODE_ALONE);
        if (stated.is_none() || weak) && !matches!(outcome, ExitOutcome::Scheduler(_)) {
            if let Some((i, at)) = self.last_evidence {
                let m = &self.meta[i];
                let within = if weak {
                    (self.incidents[i].category == Category::Convergence).then_some(TAIL as u64)
                } else {
                    Some(LAST_WORDS_WITHIN)
                };
                if m.strong
                    && !m.outlived
                    && !m.caught
                    && within.is_some_and(|w| self.seen.saturating_sub(at) <= w)
                {
                    // Of that evidence repeated in the tail (each trial's nan), the first.
                    let from = self.seen.saturating_sub(TAIL as u64);
                    let first = (0..self.incidents.len())
                        .filter(|&j| {
                            self.incidents[j].reason == self.incidents[i].reason
                                && self.incidents[j].line >= from
                                && !self.meta[j].outlived
                        })
                        .min_by_key(|&j| self.incidents[j].line)
                        .unwrap_or(i);
                    self.set_forced(first, Severity::Fatal, out);
                    return;
                }
            }
        }
        // Nothing in its last lines says why, but the log holds one piece of strong evidence,
        // however much ordinary output followed it (a burst of CUDA out-of-memory errors, then
        // seconds of a training loop's lines, then exit 1): that is the cause, not an exit the
        // log does not explain reported on its own.
        if stated.is_none() && matches!(outcome, ExitOutcome::Code(_)) {
            if let Some(i) = self.sole_evidence() {
                self.set_forced(i, Severity::Fatal, out);
                return;
            }
        }
        let (category, line, text, reason) = match stated {
            Some((line, said, v)) => {
                let (category, reason) = stated_reason(&v, Some(&judged));
                (category, line, said, reason)
            }
            None => (judged.category, 0, judged.text, judged.reason.to_string()),
        };
        let inc = Incident {
            category,
            severity: Severity::Fatal,
            line,
            text,
            excerpt,
            count: 1,
            reason,
        };
        self.push_cause(inc, out);
    }

    /// The one incident that is strong evidence of a failure that stops a run (not a
    /// warning), which the run did not say it handled, if there is exactly one.
    fn sole_evidence(&self) -> Option<usize> {
        let mut found = None;
        for (i, m) in self.meta.iter().enumerate() {
            if m.looks_fatal && m.strong && !m.outlived && !m.caught && !m.consequence {
                if found.is_some() {
                    return None;
                }
                found = Some(i);
            }
        }
        found
    }

    /// The line that announces a preemption, when the process ended by a signal that
    /// is not a crash (or a shell's 128+N for one).
    fn preemption_stated(&self, outcome: ExitOutcome) -> Option<(u64, String)> {
        let signal = ended_by_signal(outcome)?;
        if rules::Death::Crash.signals().contains(&signal) {
            return None;
        }
        // The first of the ring's lines that say so: where the notice arrived, before the
        // checkpoint and the exit it led to.
        self.ring()
            .find(|(_, l)| rules::announces_preemption(l))
            .map(|(n, l)| (*n, cut(l.trim(), MAX_LINE_CHARS)))
    }

    /// A new fatal incident for a stated cause (`line`, what it said, its verdict).
    fn stated_incident(
        &mut self,
        line: u64,
        text: String,
        v: Verdict,
        exit: Option<&exit::ExitJudgement>,
        out: &mut Vec<Finding>,
    ) {
        let (category, reason) = stated_reason(&v, exit);
        let inc = Incident {
            category,
            severity: Severity::Fatal,
            line,
            text,
            excerpt: Vec::new(),
            count: 1,
            reason,
        };
        self.push_cause(inc, out);
    }

    /// Add `inc` as the run's cause, judged at its end (fatal whatever follows).
    fn push_cause(&mut self, inc: Incident, out: &mut Vec<Finding>) {
        self.push_forced(inc, Severity::Fatal, out);
    }

    /// A new incident the end of the log decided, of severity `severity`.
    /// The cluster stopped the job, as line `line` of the log says (`said`): the cause.
    fn push_preempted(&mut self, line: u64, said: String, excerpt: Vec<String>, out: &mut Vec<Finding>) {
        let inc = Incident {
            category: Category::Infrastructure,
            severity: Severity::Fatal,
            line,
            text: said,
            excerpt,
            count: 1,
            reason: rules::PREEMPTED.to_string(),
        };
        self.push_cause(inc, out);
    }

    pub(super) fn push_forced(&mut self, mut inc: Incident, severity: Severity, out: &mut Vec<Finding>) {
        inc.severity = severity;
        self.meta.push(Meta {
            looks_fatal: true,
            strong: true,
            survived: false,
            outlived: false,
            caught: false,
            forced: Some(severity),
            omitted: 0,
            consequence: false,
            rank: false,
            leaf: false,
            death: None,
        });
        self.incidents.push(inc.clone());
        out.push(Finding::New {
            index: self.incidents.len() - 1,
            incident: inc,
        });
    }

    /// The line that says why the program stopped, when its exit code is all we have: the
    /// latest error-level log record near the end, else the last of its final lines (the
    /// tail's) that states a failure. Of lines naming the same cause, the first: a tool's own
    /// words (`mnt/datasets is not a mountpoint`) before the job script's ERROR lines that
    /// restate them.
    pub(super) fn stated_cause(&self) -> Option<(u64, String, Verdict)> {
        self.stated_words().map(|found| self.tool_said_first(found))
    }

    /// A tool's own failure message just before the line found (`curl: (22) The requested
    /// URL returned error: 404`, then the job script's `error: could not fetch …`): where it
    /// first went wrong. Its verdict if its words name a cause, else the found line's.
    fn tool_said_first(&self, found: (u64, String, Verdict)) -> (u64, String, Verdict) {
        let mut first = None;
        // The run of tool messages right before it (tar's `Unexpected EOF in archive`, then
        // its `Error is not recoverable`): the first of them.
        for nl in self.said_before(found.0) {
            if rules::tool_message(nl.1.trim()).is_none() {
                break;
            }
            // Its words say it failed (a stage's count, `prepare: 0 rows left`, is no tool's
            // failure).
            if !rules::states_failure(&nl.1) {
                break;
            }
            first = Some(judged(nl));
        }
        match first {
            Some(s) if s.2.strong => s,
            Some((n, text, _)) => (n, text, found.2),
            None => found,
        }
    }

    /// What the log says stopped the program (see [`Detector::stated_cause`]), before a
    /// tool's words just before it are looked for.
    fn stated_words(&self) -> Option<(u64, String, Verdict)> {
        if let Some((n, text, v)) = &self.error_record {
            if self.since_record <= CAUSE_WITHIN {
                let found = (*n, text.clone(), *v);
                return Some(if v.strong { self.first_saying(found) } else { found });
            }
        }
        // Of the last lines that state a failure or give its reason (a banner's `TRAINING
        // FAILED` then `reason : …`), the latest one whose words name a cause; else the latest.
        // A runner's relay of a command's exit (`FAILED (exit 7) at line 14: curl …`,
        // `train.py failed 3 times (last status 3)`) is not the cause, unless its own words
        // name one; of the same line repeated (a retried command), the first.
        let mut stated = self.stated_lines(u64::MAX);
        let Some(latest) = stated.next() else {
            // No line states a failure: the last lines may still name its cause in a tool's
            // own words (bash's `…: Argument list too long` before a 126).
            return self.named_just_before(u64::MAX);
        };
        if latest.2.strong {
            return Some(self.first_saying(latest));
        }
        // A tool's summary right after its failing line names the cause the line does not
        // (`emb-0003.npy: FAILED`, then `sha256sum: WARNING: 1 computed checksum did NOT
        // match`): the line, with the summary's verdict.
        if let Some(v) = self.named_just_after(latest.0) {
            return Some((latest.0, latest.1, v));
        }
        // None names a cause: the latest that calls itself an error (a loader's `error:
        // cannot parse config train.yaml:` heading over the parser's detail lines after it).
        let says_error = |l: &str| l.to_ascii_lowercase().contains("error");
        let want_heading = !says_error(&latest.1);
        let mut heading = None;
        for s in stated {
            if s.2.strong {
                return Some(self.first_saying(s));
            }
            if want_heading && heading.is_none() && says_error(&s.1) {
                heading = Some(s);
            }
        }
        // Nor any failure statement: the lines just before the last one may name the cause
        // in a tool's own words (`curl: (6) Could not resolve host: …` three times, then the
        // job script's `stage-in failed`).
        if let Some(named) = self.named_just_before(latest.0) {
            return Some(named);
        }
        Some(heading.unwrap_or(latest))
    }

    /// The verdict of a tool's summary among the few non-blank tail lines just after line
    /// `n`, if its words name a cause.
    fn named_just_after(&self, n: u64) -> Option<Verdict> {
        self.tail
            .iter()
            .filter(|(m, l)| *m > n && !l.trim().is_empty())
            .take(SUMMARY_AFTER_WITHIN)
            .filter(|(_, l)| rules::tool_message(l.trim()).is_some())
            .map(judged)
            .find(|j| j.2.strong)
            .map(|j| j.2)
    }

    /// The few non-blank tail lines just before line `n`, newest first.
    fn said_before(&self, n: u64) -> impl Iterator<Item = &(u64, String)> + '_ {
        self.tail
            .iter()
            .rev()
            .filter(move |(m, l)| *m < n && !l.trim().is_empty())
            .take(NAMED_BEFORE_WITHIN)
    }

    /// Of the few non-blank tail lines just before line `n`, the latest whose words name a
    /// cause — the first of a run of lines naming the same one (a retried command's).
    fn named_just_before(&self, n: u64) -> Option<(u64, String, Verdict)> {
        let before: Vec<&(u64, String)> = self.said_before(n).collect();
        let k = before.iter().position(|l| judged(l).2.strong)?;
        let found = judged(before[k]);
        // Evidence of that kind already (a burst of NaN records): the exit is judged from it.
        if self.incidents.iter().any(|i| i.category == found.2.category) {
            return None;
        }
        let first = before[k..]
            .iter()
            .take_while(|l| judged(l).2.reason == found.2.reason)
            .last()
            .map_or(found, |l| judged(l));
        Some(first)
    }

    /// The tail's lines before line `before` that state a failure, give its reason, or stop
    /// the run over its loss, newest first, judged; a runner's relay of an exit only if its
    /// words name a cause; of a repeated line, the first.
    fn stated_lines(&self, before: u64) -> impl Iterator<Item = (u64, String, Verdict)> + '_ {
        let tail = &self.tail;
        tail.iter()
            .enumerate()
            .rev()
            .filter(move |(_, (n, _))| *n < before)
            .filter(|(_, (_, l))| {
                rules::states_failure(l) || rules::gives_reason(l) || rules::stops_over_loss(l)
            })
            .map(|(k, nl)| {
                let first = tail
                    .iter()
                    .take(k)
                    .rev()
                    .take_while(|(_, e)| e == &nl.1)
                    .last()
                    .unwrap_or(nl);
                (judged(first), rules::relays_failure(&nl.1))
            })
            .filter(|(j, relay)| !relay || j.2.strong)
            .map(|(j, _)| j)
    }

    /// The first of the tail's stated lines up to `found` that names the same cause (one
    /// rule's reason) as `found`, not counting attempts the program said it retried (those
    /// it handled; the line that gave up is the failure).
    fn first_saying(&self, found: (u64, String, Verdict)) -> (u64, String, Verdict) {
        self.stated_lines(found.0)
            .filter(|s| s.2.strong && s.2.reason == found.2.reason && !rules::announces_recovery(&s.1))
            .last()
            .unwrap_or(found)
    }

    /// The program's own failing words among the last lines before an abort (read before
    /// the abort's line joins the ring), unless they are evidence already.
    pub(super) fn words_before_abort(&self) -> Option<(u64, String, Verdict)> {
        let line = self
            .ring()
            .rev()
            .filter(|(_, l)| !l.trim().is_empty())
            .take(ABORT_WORDS_WITHIN)
            .find(|(_, l)| rules::states_failure(l))?;
        if self.incidents.iter().any(|i| i.line == line.0) {
            return None;
        }
        Some(judged(line))
    }
}

/// The signal a process ended by, or a shell's 128+N for it.
fn ended_by_signal(outcome: ExitOutcome) -> Option<i32> {
    match outcome {
        ExitOutcome::Signal(s) => Some(s),
        ExitOutcome::Code(c) if (129..160).contains(&c) => Some(c - 128),
        _ => None,
    }
}

/// How many lines before the end the run's own latest evidence may be and still explain a
/// failing exit that nothing states (the log's last few lines: a supervisor's relays).
const LAST_WORDS_WITHIN: u64 = 5;

/// How many non-blank lines after a stated failure that names no cause a tool's summary
/// naming it may be.
const SUMMARY_AFTER_WITHIN: usize = 3;

/// How many non-blank lines before a stated failure that names no cause may name it.
const NAMED_BEFORE_WITHIN: usize = 5;

/// How many non-blank lines before an abort may hold the program's reason for it.
const ABORT_WORDS_WITHIN: usize = 3;

/// A line of the program's own from the ring, as a stated cause: its number, its text (cut),
/// and what its words say, classified like an exception's message.
pub(super) fn judged((n, l): &(u64, String)) -> (u64, String, Verdict) {
    let t = l.trim();
    (
        *n,
        cut(t, MAX_LINE_CHARS),
        classify::classify_exception("", t, &TbContext::default()),
    )
}

/// The category and reason of a failing exit explained by the program's own last words:
/// what they say, or, when no rule names a cause in them, what the exit code says (`exit`,
/// the exit classifier's judgement: a sysexits code, timeout(1)'s 124, else the code alone).
fn stated_reason(v: &Verdict, exit: Option<&exit::ExitJudgement>) -> (Category, String) {
    if v.strong {
        return (
            v.category,
            format!("the program's last error message: {}", v.reason),
        );
    }
    let (category, why) = exit.map_or((v.category, exit::EXIT_CODE_ALONE), |j| (j.category, j.reason));
    (
        category,
        format!("the program's last error message names no known cause; {why}"),
    )
}
