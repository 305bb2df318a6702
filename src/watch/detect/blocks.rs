//! The detector inside a multi-line block: a traceback being read, the lines after its
//! exception (is the run surviving it? is it the same story again?), skipped lines and
//! summary tables.

use super::*;

/// Most lines a rich-drawn sub-exception box is read for its exception line.
const RICH_LEAF_LINES: u32 = 400;

impl Detector {
    pub(super) fn in_block(&mut self, mut b: Block, n: u64, vis: &str, out: &mut Vec<Finding>) {
        let full = vis.trim_end();
        // Inside an exception group, read each line without its `  | ` margin.
        let t = if b.group {
            full.trim_start()
                .strip_prefix('|')
                .map(|r| r.strip_prefix(' ').unwrap_or(r))
                .unwrap_or(full)
        } else {
            full
        };
        if t.trim().is_empty() {
            self.mode = Mode::Block(b);
            return;
        }
        if t.ends_with("Traceback (most recent call last):") {
            // Another traceback began before this one ended (another process): the first
            // was cut off; follow the new one.
            let target = b.target;
            self.start_block(target, vis);
            return;
        }
        // Frames: indented, or inside rich's box (`│ …`, its bottom edge `╰──╯`).
        if t.starts_with([' ', '\t', '│', '╰']) {
            // (pandas' compiled frames show a relative path: `File "pandas/_libs/index.pyx"`)
            if t.contains("File \"")
                && (t.contains("/pandas/") || t.contains("\\pandas\\") || t.contains("File \"pandas/"))
            {
                b.ctx.pandas_frame = true;
            }
            if t.contains("File \"") {
                b.ctx.getitem_frame = t.ends_with(", in __getitem__");
                b.ctx.save_frame |= classify::saving_frame(t);
                b.ctx.collate_frame |= classify::collating_frame(t);
                b.ctx.fork_frame |= classify::forking_frame(t);
                b.ctx.network_frame |= classify::network_frame(t);
                b.ctx.futures_frame |= classify::futures_frame(t);
                b.ctx.optim_frame |= classify::optim_frame(t);
                b.ctx.reader_frame = classify::reader_frame(t);
                b.own_frame = classify::own_frame(t);
                b.source_next = true;
            } else if std::mem::take(&mut b.source_next) && b.own_frame {
                // The source line of a frame of the job's own code: the innermost one decides.
                b.ctx.converting = classify::converting_source(t);
                b.ctx.index_arithmetic = classify::index_arithmetic_source(t);
                b.ctx.count_divisor = classify::count_divisor_source(t);
                b.ctx.splitting = t.contains(".split(") || t.contains(".rsplit(");
                b.ctx.log_call =
                    t.contains("log(") || t.contains("log1p(") || t.contains("log10(") || t.contains("log2(");
                b.ctx.network_frame |= classify::socket_source(t);
                b.ctx.config_load = classify::config_load_source(t);
            }
            if b.lines.len() >= MAX_EXCERPT * 2 {
                b.lines.remove(EXCERPT_HEAD);
            }
            b.lines.push(cut(full, MAX_LINE_CHARS));
            self.mode = Mode::Block(b);
            return;
        }
        if let Some(e) = classify::parse_exception_line(t) {
            self.exception(b, n, full, e, out);
            return;
        }
        // Output of another thread or process between the frames.
        b.interleaved += 1;
        if b.interleaved <= 40 {
            self.mode = Mode::Block(b);
        }
    }

    /// Has the run's loss (or a metric record's) become NaN or infinite before now?
    fn loss_went_non_finite(&self) -> bool {
        self.incidents
            .iter()
            .any(|i| i.category == Category::Convergence && i.reason == classify::LOSS_NOT_FINITE)
    }

    fn exception(&mut self, b: Block, n: u64, full: &str, e: ExcLine<'_>, out: &mut Vec<Finding>) {
        let mut v = classify::classify_exception(e.name, e.msg, &b.ctx);
        // NaN in a step's input after the run's own loss went NaN or infinite: the NaN came
        // out of the diverged optimisation (embeddings, predictions), not from the data.
        // So is an error no rule explains after it (a loss refusing the NaN probabilities:
        // `all elements of input should be between 0 and 1`).
        let after_divergence = match v.reason {
            classify::NAN_INPUT => Some(classify::NAN_FROM_DIVERGENCE),
            classify::FALLBACK => Some(classify::ERROR_AFTER_DIVERGENCE),
            _ => None,
        };
        if let Some(reason) = after_divergence.filter(|_| self.loss_went_non_finite()) {
            v = classify::Verdict {
                category: Category::Convergence,
                strong: true,
                reason,
            };
        }
        let mut lines = b.lines;
        lines.push(cut(full, MAX_LINE_CHARS));
        // The exception line itself, without an exception group's margin.
        let t = &full[full.len() - e.line.len()..];
        let group = b.group;
        let logged_as_info = b
            .info_intro
            .as_deref()
            .is_some_and(|intro| rules::quotes_exception(intro, e.name, e.msg));
        if (b.recovered || logged_as_info) && b.target == Target::Fresh {
            // The program said it handles this and goes on: the run outlives it, so it is not
            // an incident; the tracebacks chained to it belong to it.
            self.recovering = true;
            let first_attempt = self
                .tail
                .iter()
                .find(|nl| {
                    // The same named cause: two lines that name none say nothing alike.
                    let said = super::ending::judged(nl).2;
                    rules::announces_recovery(&nl.1) && said.strong && said.reason == v.reason
                })
                .map(|(n, l)| (*n, cut(l.trim(), MAX_LINE_CHARS)));
            self.handled = Some(Handled {
                incident: Incident {
                    category: v.category,
                    severity: Severity::Fatal,
                    line: n,
                    text: cut(&self.quoted(t.trim()), MAX_LINE_CHARS),
                    excerpt: lines,
                    count: 1,
                    reason: format!(
                        "the program said it would recover, then stopped after this: {}",
                        v.reason
                    ),
                },
                first_attempt,
                ordinary_after: 0,
                evidence_after: false,
                prefix: self.rank_prefix.clone(),
            });
            self.count_ordinary(1, out);
            return;
        }
        let (idx, append) = match b.target {
            Target::Fresh => {
                let key = burst::key(v.category, t);
                let Some(r) = self.occurrence(key, n, v, !b.ignored, b.ignored, t, lines, out) else {
                    return;
                };
                if r.1 {
                    self.meta[r.0].consequence = classify::is_consequence(e.name, e.msg);
                    if self.meta[r.0].consequence && self.relay_words.is_none() {
                        self.relay_words = b.stated.clone();
                    }
                }
                if b.ignored {
                    // `Exception ignored in …`: the interpreter says it swallowed it and went
                    // on (a `__del__` at shutdown, a callback): the run outlived it, a note.
                    self.meta[r.0].outlived = true;
                    self.sync_severity(r.0, out);
                }
                r
            }
            Target::Leaf(i, append) => {
                if append {
                    for l in &lines {
                        self.append(i, l);
                    }
                    // The first leaf that is not itself a group is what went wrong.
                    let nested = classify::short_name(e.name).ends_with("ExceptionGroup");
                    if !self.meta[i].leaf && !nested {
                        self.meta[i].leaf = true;
                        self.incidents[i].line = n;
                        self.incidents[i].text = cut(&self.quoted(full.trim()), MAX_LINE_CHARS);
                        self.incidents[i].category = v.category;
                        self.incidents[i].reason = format!("the exception group's first leaf: {}", v.reason);
                        self.meta[i].strong = v.strong;
                    }
                    self.updated(i, out);
                }
                (i, append)
            }
            Target::Chained(i, append) => {
                if append {
                    for l in &lines {
                        self.append(i, l);
                    }
                    let restated = restates(&self.incidents[i].text, &e);
                    if restated {
                        self.incidents[i].line = n;
                        self.incidents[i].text = cut(&self.quoted(t.trim()), MAX_LINE_CHARS);
                    }
                    // (A restatement says what the lookup meant: its verdict is the cause's.)
                    if (restated || !self.meta[i].strong) && v.strong {
                        self.meta[i].strong = true;
                        self.incidents[i].category = v.category;
                        self.incidents[i].reason = v.reason.to_string();
                    }
                    self.updated(i, out);
                }
                (i, append)
            }
            Target::Original(i, append) => {
                if append {
                    for l in &lines {
                        self.append(i, l);
                    }
                    // The worker's exception is the root cause; the wrapper only relays it.
                    self.incidents[i].line = n;
                    self.incidents[i].text = cut(&self.quoted(t.trim()), MAX_LINE_CHARS);
                    if v.strong || !self.meta[i].strong {
                        self.incidents[i].category = v.category;
                        self.incidents[i].reason = format!("relayed from a worker: {}", v.reason);
                        self.meta[i].strong = v.strong;
                    }
                    self.updated(i, out);
                }
                (i, append)
            }
        };
        self.mode = Mode::After(After {
            idx,
            append,
            kind: AfterKind::Exception,
            left: if group { 200 } else { 10 },
            blank: false,
            chain: false,
            group,
        });
    }

    /// A line of a rich-drawn sub-exception box (`│ ╭─ Traceback … ─╮`, `│ │ frames │`,
    /// `│ MemoryError: Unable to allocate … │`, `╰──╯`): the first exception line inside it,
    /// not itself a group, is the group's leaf, the error, as with plain `  | ` margins.
    pub(super) fn rich_leaf(&mut self, mut r: RichLeaf, n: u64, vis: &str, out: &mut Vec<Finding>) {
        let t = vis.trim_end();
        if t.starts_with('╰') || r.left == 0 {
            return;
        }
        r.left -= 1;
        let inner = t
            .strip_prefix('│')
            .map(|s| s.trim_end().trim_end_matches('│').trim());
        if let Some(x) = inner.filter(|x| !x.starts_with(['│', '╭', '╰'])) {
            if let Some(e) = classify::parse_exception_line(x) {
                let nested = classify::short_name(e.name).ends_with("ExceptionGroup");
                if !nested && !self.meta[r.idx].leaf {
                    let v = classify::classify_exception(e.name, e.msg, &TbContext::default());
                    let i = r.idx;
                    self.meta[i].leaf = true;
                    self.meta[i].strong = v.strong;
                    self.incidents[i].line = n;
                    self.incidents[i].text = cut(&self.quoted(x), MAX_LINE_CHARS);
                    self.incidents[i].category = v.category;
                    self.incidents[i].reason = format!("the exception group's first leaf: {}", v.reason);
                    if r.append {
                        self.append(i, x);
                    }
                    self.updated(i, out);
                }
            }
        }
        self.mode = Mode::RichLeaf(r);
    }

    pub(super) fn after(&mut self, mut a: After, n: u64, vis: &str, out: &mut Vec<Finding>) {
        let t = vis.trim_end();
        if t.trim().is_empty() {
            a.blank = true;
            if a.kind != AfterKind::Warning {
                self.mode = Mode::After(a);
            }
            return;
        }
        if t.starts_with("During handling of the above exception")
            || t.starts_with("The above exception was the direct cause")
        {
            a.chain = true;
            if a.append {
                self.append(a.idx, t);
                self.updated(a.idx, out);
            }
            self.mode = Mode::After(a);
            return;
        }
        if t.ends_with("Traceback (most recent call last):") {
            let target = if t.ends_with("Original Traceback (most recent call last):") {
                Target::Original(a.idx, a.append)
            } else if a.group && t.trim_start().starts_with('|') {
                Target::Leaf(a.idx, a.append)
            } else if a.chain || (a.kind == AfterKind::Native && !a.blank) {
                Target::Chained(a.idx, a.append)
            } else {
                Target::Fresh
            };
            self.start_block(target, vis);
            return;
        }
        if a.kind == AfterKind::Exception && t.starts_with('╭') && t.contains("Sub-exception #") {
            // rich draws an exception group's sub-exceptions in boxes after the group's line.
            self.mode = Mode::RichLeaf(RichLeaf {
                idx: a.idx,
                append: a.append,
                left: RICH_LEAF_LINES,
            });
            return;
        }
        if a.kind == AfterKind::Exception
            && !a.chain
            && !a.group
            && (rules::announces_recovery(t) || rules::closes_warning(t))
        {
            // Right after the exception the program says it handles it and goes on (`…;
            // falling back to json`), or the exception was quoted in a warning's message
            // (scikit-learn's FitFailedWarning lists the fits that failed, then its
            // `warnings.warn(…)` source line): it outlived it — a note, not what ends the run.
            self.outlive(a.idx, out);
            self.normal(n, vis, out);
            return;
        }
        let absorb = match a.kind {
            AfterKind::Exception => {
                if t.trim() == "\"\"\"" {
                    true
                } else if a.group {
                    a.left > 0 && t.trim_start().starts_with(['|', '+'])
                } else {
                    !a.blank && a.left > 0 && !looks_like_log_record(t) && self.same_story(&a, t)
                }
            }
            AfterKind::Warning => a.left > 0 && self.same_story(&a, t),
            AfterKind::Faulthandler => a.left > 0 && is_faulthandler_line(t),
            AfterKind::Native => a.left > 0 && is_native_report_line(t),
        };
        if !absorb {
            // The line after a warning's message says the program deals with it and goes on
            // (scikit-learn's ConvergenceWarning, then `lbfgs did not converge …; refitting
            // with max_iter=2000`): it outlived the warning.
            if a.kind == AfterKind::Warning && rules::announces_recovery(t) {
                self.outlive(a.idx, out);
            }
            self.normal(n, vis, out);
            return;
        }
        a.left = a.left.saturating_sub(1);
        if a.kind == AfterKind::Exception && !a.chain && !a.group {
            self.message_on_next_line(a.idx, t, out);
        }
        if a.kind == AfterKind::Native {
            let before = self.incidents[a.idx].category;
            self.native_detail(a.idx, t);
            if !a.append && self.incidents[a.idx].category != before {
                self.updated(a.idx, out);
            }
        }
        if a.append {
            self.append(a.idx, t);
            self.updated(a.idx, out);
        }
        // A warning's message ends with its source line, indented by two spaces.
        if a.kind == AfterKind::Warning && t.starts_with("  ") {
            return;
        }
        self.mode = Mode::After(a);
    }

    /// The first line after an exception whose message is empty (`RuntimeError: ` then the
    /// message on its own lines, as safetensors and multiprocessing raise it): that line is
    /// its message, classified with the exception's type if no rule named a cause yet.
    fn message_on_next_line(&mut self, i: usize, t: &str, out: &mut Vec<Finding>) {
        if self.meta[i].strong {
            return;
        }
        let text = self.incidents[i].text.clone();
        let Some(e) = classify::parse_exception_line(text.trim()) else {
            return;
        };
        if !e.msg.trim().is_empty() {
            return;
        }
        let v = classify::classify_exception(e.name, t.trim(), &TbContext::default());
        if v.strong {
            self.incidents[i].category = v.category;
            self.incidents[i].reason = v.reason.to_string();
            self.meta[i].strong = true;
            self.updated(i, out);
        }
    }

    /// A line of a C++ exception's report (after `terminate called after throwing …`): its
    /// `what():` message says more than the exception's type, and a backtrace inside a
    /// checkpoint writer says the disk failed (the caller sends the update).
    fn native_detail(&mut self, i: usize, t: &str) {
        if self.meta[i].death != Some(Death::Uncaught { said: false }) {
            // Already judged by something more specific (or not a C++ exception at all).
            return;
        }
        let t = t.trim();
        let v = if let Some(msg) = t.strip_prefix("what():") {
            classify::classify_exception("", msg.trim(), &TbContext::default())
        } else if t.starts_with("frame #") && t.contains("StreamWriter::write") {
            // The backtrace runs through torch's checkpoint writer: a save that failed.
            Verdict {
                category: Category::Resource,
                strong: true,
                reason: classify::SAVE_FAILED,
            }
        } else {
            return;
        };
        if v.strong {
            self.incidents[i].category = v.category;
            self.incidents[i].reason = v.reason.to_string();
            self.meta[i].strong = true;
            self.meta[i].death = Some(Death::Uncaught { said: true });
        }
    }

    /// Can `t` continue the message of incident `a` (rather than be evidence of its own)?
    fn same_story(&self, a: &After, t: &str) -> bool {
        if self.lits == 0 {
            return true;
        }
        match rules::classify_line_with(t, self.cfg.rhat_threshold, self.lits) {
            LineKind::Hit(h) => {
                !h.looks_fatal && h.category == self.incidents[a.idx].category && h.kind == HitKind::Plain
            }
            LineKind::Nothing => true,
            _ => false,
        }
    }

    pub(super) fn skip(&mut self, left: u32, n: u64, vis: &str, out: &mut Vec<Finding>) {
        let t = vis.trim_end();
        let structural = t.ends_with("Traceback (most recent call last):")
            || (self.lits != 0
                && !matches!(
                    rules::classify_line_with(t, self.cfg.rhat_threshold, self.lits),
                    LineKind::Nothing
                ));
        if left == 0 || t.trim().is_empty() || structural {
            self.normal(n, vis, out);
            return;
        }
        self.count_ordinary(1, out);
        if !t.starts_with("  ") {
            self.mode = Mode::Skip(left - 1);
        }
    }

    pub(super) fn table(&mut self, mut tb: Table, n: u64, vis: &str, out: &mut Vec<Finding>) {
        let t = vis.trim();
        let Some(v) = rules::rhat_row(t, tb.col, tb.ncols) else {
            if t == "..." || t.starts_with("...") {
                self.mode = Mode::Table(tb);
                return;
            }
            self.normal(n, vis, out);
            return;
        };
        if v.is_nan() || v > self.cfg.rhat_threshold {
            match tb.idx {
                None => {
                    let key = burst::key(Category::Convergence, "r_hat table above threshold");
                    let excerpt = vec![tb.header.clone(), cut(vis.trim_end(), MAX_LINE_CHARS)];
                    let verdict = Verdict {
                        category: Category::Convergence,
                        strong: true,
                        reason: rules::RHAT_HIGH,
                    };
                    tb.idx = self.occurrence(key, n, verdict, false, false, t, excerpt, out);
                }
                Some((_, false)) => {}
                Some((i, true)) => {
                    self.append(i, vis.trim_end());
                    self.updated(i, out);
                }
            }
        } else {
            self.count_ordinary(1, out);
        }
        self.mode = Mode::Table(tb);
    }
}

/// A line that starts a new log record rather than continuing an exception's message.
fn looks_like_log_record(t: &str) -> bool {
    let b = t.as_bytes();
    let dated = b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    dated
        || t.starts_with('[')
        || t.contains("%|")
        || [
            "INFO", "DEBUG", "WARNING", "ERROR", "CRITICAL", "epoch", "Epoch", "step", "Step",
        ]
        .iter()
        .any(|p| t.starts_with(p))
}

fn is_faulthandler_line(t: &str) -> bool {
    [
        "Current thread",
        "Thread 0x",
        "  File ",
        "Extension modules:",
        "Python runtime state:",
        "  <no Python frame>",
        "Stack (most recent call first)",
        "Fatal Python error",
        "Garbage-collecting",
    ]
    .iter()
    .any(|p| t.starts_with(p))
}

/// A line of a C++ exception's report after `terminate called after throwing …`: its
/// message, libc10's `Exception raised from …`, the native backtrace.
fn is_native_report_line(t: &str) -> bool {
    let t = t.trim_start();
    t.starts_with("what():")
        || t.starts_with("frame #")
        || t.starts_with("Exception raised from ")
        || t == "(no backtrace available)"
        // torch elides the interpreter's own frames
        || t == "<omitting python frames>"
}

/// Does the chained exception `e` restate the incident's exception `first` in its own words:
/// the same class, with the first one's message inside a longer one (`KeyError: 'eval_f1'`,
/// then the library's `KeyError: "The metric_for_best_model … 'eval_f1', which is not found
/// …"`)? Then it is the line a person reads: the cause, explained.
fn restates(first: &str, e: &ExcLine<'_>) -> bool {
    let t = first.trim();
    // (Past a rank's `[rank1]: ` prefix.)
    let t = match t.strip_prefix('[').and_then(|r| r.split_once("]: ")) {
        Some((_, rest)) => rest,
        None => t,
    };
    let Some(root) = classify::parse_exception_line(t) else {
        return false;
    };
    let cause = root.msg.trim().trim_matches(['\'', '"']);
    // A bare exception the chained one names (`StopIteration`, then Python's `RuntimeError:
    // generator raised StopIteration`): the chained line says what happened.
    let named = cause.is_empty() && e.msg.contains(classify::short_name(root.name));
    // A lookup's bare key that the library, handling it, raises again as the value it was
    // given that is wrong (sklearn's `KeyError: 'kiosk'`, then `ValueError: y contains
    // previously unseen labels: 'kiosk'`): another class, the same key. (A wrapper's
    // `RuntimeError: … failed for 'eval_f1'` only says that something failed.)
    let lookup = matches!(
        classify::short_name(root.name),
        "KeyError" | "IndexError" | "LookupError"
    ) && classify::short_name(e.name) == "ValueError";
    let same = classify::short_name(root.name) == classify::short_name(e.name);
    named
        || (same || lookup) && cause.len() >= 3 && e.msg.len() > root.msg.len() + 10 && e.msg.contains(cause)
}
