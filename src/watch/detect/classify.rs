//! Classification rules: which of the protocol's four categories a piece of evidence
//! belongs to. The decision looks at the exception type *and* its message (and, for a
//! `KeyError`, where it was raised), because one word is not evidence: a `KeyError` on a
//! DataFrame column is a data problem, on a dict in the code an implementation one.

use crate::model::Category;

/// What we know about the traceback an exception came from.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TbContext {
    /// A frame of the traceback is inside pandas (a column / index lookup failed).
    pub pandas_frame: bool,
    /// The innermost frame is a `__getitem__`: a dataset's record lookup (a record that
    /// lacks a field is data, not code).
    pub getitem_frame: bool,
}

/// A category and whether the rule that chose it was specific (a strong rule beats the
/// fallback when a chained traceback brings better evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub category: Category,
    pub strong: bool,
}

const fn strong(category: Category) -> Verdict {
    Verdict {
        category,
        strong: true,
    }
}

/// The last dotted component of an exception name (`numpy.linalg.LinAlgError` → `LinAlgError`).
pub(crate) fn short_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn has_any(hay: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| hay.contains(n))
}

/// True when `msg` says a loss (or objective) became NaN or infinite.
pub(crate) fn loss_not_finite(msg: &str) -> bool {
    let b = msg.as_bytes();
    let non_finite = memchr::memmem::find(b, b"nan").is_some()
        || memchr::memmem::find(b, b"NaN").is_some()
        || memchr::memmem::find(b, b"inf").is_some()
        || memchr::memmem::find(b, b"Inf").is_some()
        || memchr::memmem::find(b, b"NAN").is_some()
        || memchr::memmem::find(b, b"INF").is_some();
    if !non_finite {
        return false;
    }
    let lower = msg.to_ascii_lowercase();
    let Some(pos) = lower.find("loss").or_else(|| lower.find("objective")) else {
        return false;
    };
    let rest = &lower[pos..];
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .take(12)
        .any(|w| matches!(w, "nan" | "inf" | "infinity" | "infinite"))
}

/// Resource problems: memory, disk, GPU, processes killed from outside.
fn resource(short: &str, msg: &str) -> bool {
    let lower = msg.to_ascii_lowercase();
    matches!(
        short,
        "MemoryError"
            | "_ArrayMemoryError"
            | "OutOfMemoryError"
            | "BrokenProcessPool"
            | "TerminatedWorkerError"
            | "KeyboardInterrupt"
    ) || lower.contains("out of memory")
        || has_any(
            msg,
            &[
                "Unable to allocate",
                "[Errno 28]",
                "No space left on device",
                "[Errno 12]",
                "Cannot allocate memory",
                "[Errno 122]",
                "Disk quota exceeded",
                "[Errno 24]",
                "Too many open files",
                "terminated abruptly",
                "unexpectedly terminated",
                "NVIDIA driver",
                "no CUDA-capable device",
                "CUDA driver version is insufficient",
                "not compiled with CUDA",
                "CUDA unavailable",
                "std::bad_alloc",
                // torch's C++ writer when a checkpoint cannot be written: the disk filled.
                "PytorchStreamWriter failed writing",
                "file write failed",
            ],
        )
        || collective_failure(msg)
}

/// A distributed collective that failed because a peer went away or did not answer in time
/// (gloo, NCCL, c10d): resource, and in a survivor only a consequence of another rank's end.
pub(crate) fn collective_failure(msg: &str) -> bool {
    let lower = msg.to_ascii_lowercase();
    let distributed = has_any(
        &lower,
        &[
            "gloo",
            "nccl",
            "c10d",
            "collective",
            "remote worker",
            "processgroup",
        ],
    );
    distributed
        && has_any(
            &lower,
            &[
                "connection closed by peer",
                "connection reset by peer",
                "timed out",
                "timeout",
                "remote worker crashing",
                "broken pipe",
            ],
        )
}

/// Evidence that only reports another process's failure: torchrun's `ChildFailedError`
/// summary, or a surviving rank's collective failing because a peer died. It names the
/// category only when nothing in the log states the failure itself.
pub(crate) fn is_consequence(name: &str, msg: &str) -> bool {
    short_name(name) == "ChildFailedError" || collective_failure(msg)
}

fn convergence(short: &str, msg: &str) -> bool {
    short == "FloatingPointError"
        || (short == "SamplingError" && !sampler_start_invalid(msg))
        // autograd's anomaly mode: a backward function produced NaN/inf (the optimisation
        // went numerically wrong, not the input).
        || (msg.contains("Backward") && has_any(msg, &["returned nan values", "returned inf values"]))
        || short.contains("Convergence")
        || loss_not_finite(msg)
        || (has_any(
            msg,
            &[
                "failed to converge",
                "did not converge",
                "not converged",
                "Maximum number of iterations",
                "maximum number of iterations",
                "ITERATIONS REACHED LIMIT",
            ],
        ) && !msg.contains("SVD did not converge"))
}

/// PyMC's `SamplingError` when the model cannot even be evaluated at its starting point
/// (a `-inf` initial log-probability): the observed data lie outside the likelihood's
/// support, a data problem rather than the sampler's.
fn sampler_start_invalid(msg: &str) -> bool {
    msg.contains("Initial evaluation of model at starting point failed") || msg.contains("-inf")
}

fn data(short: &str, msg: &str, ctx: &TbContext) -> bool {
    let lower = msg.to_ascii_lowercase();
    if short == "SamplingError" {
        return sampler_start_invalid(msg);
    }
    if short == "KeyError" {
        // A KeyError raised inside pandas is a column / index label that is not there; in a
        // dataset's `__getitem__`, a record without the field.
        return ctx.pandas_frame
            || ctx.getitem_frame
            || has_any(msg, &["not in index", "None of [", "columns]"]);
    }
    // A tensor / array indexed beyond its size (`index 7 is out of bounds for dimension 0
    // with size 5`): the index values come from the data (labels, ids), unlike a Python
    // list's `index out of range`.
    if short == "IndexError" && has_any(&lower, &["out of bounds for dimension", "out of bounds for axis"]) {
        return true;
    }
    if matches!(
        short,
        "ParserError" | "EmptyDataError" | "UnicodeDecodeError" | "FileNotFoundError"
    ) || msg.contains("No such file or directory")
    {
        return true;
    }
    // NaN / infinity in the input (a NaN *loss* was taken by `convergence` before).
    let words_nan = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| matches!(w, "nan" | "nans" | "infinity" | "inf"));
    if words_nan && !matches!(short, "FloatingPointError") {
        return true;
    }
    has_any(
        &lower,
        &[
            "column",
            "not in index",
            "inconsistent numbers of samples",
            "expected 2d array",
            "expected 1d array",
            "could not broadcast",
            "shapes (",
            "not aligned",
            "shape mismatch",
            "size mismatch",
            "dimension mismatch",
            "could not convert string to float",
            "invalid literal for int",
            "unknown label type",
            "previously unseen",
            "unseen label",
            "label must be in",
            "labels must be in",
            "found array with 0 sample",
            "singular matrix",
            "svd did not converge",
            "is expecting",
            "feature names",
            "features, but",
            "number of features",
            "missing values",
            "dtype object",
            // the input's features do not match the model's first layer
            "shapes cannot be multiplied",
            // a log / Box-Cox transform fed zeros or negatives
            "data must be positive",
            "strictly positive data",
            "non-positive values",
        ],
    ) || (has_any(&lower, &["label", "target", "class index", "class id"])
        && has_any(&lower, &["out of range", "out of bounds", "invalid"]))
        || (lower.contains("empty") && has_any(&lower, &["split", "dataset", "rows", "samples", "data "]))
        || (lower.contains("shape") && has_any(&lower, &["mismatch", "expected", "incompatible"]))
        || (lower.contains("does not match")
            && has_any(
                &lower,
                &["samples", "labels", "shape", "features", "length", "rows"],
            ))
}

/// Classify an exception `name: msg` (name may be empty for a native library's fatal line).
pub(crate) fn classify_exception(name: &str, msg: &str, ctx: &TbContext) -> Verdict {
    let short = short_name(name);
    if resource(short, msg) {
        return strong(Category::Resource);
    }
    if convergence(short, msg) {
        return strong(Category::Convergence);
    }
    if data(short, msg, ctx) {
        return strong(Category::Data);
    }
    if matches!(
        short,
        "AttributeError"
            | "NameError"
            | "TypeError"
            | "ImportError"
            | "ModuleNotFoundError"
            | "SyntaxError"
            | "IndentationError"
            | "TabError"
            | "UnboundLocalError"
            | "NotImplementedError"
            | "RecursionError"
            | "AssertionError"
            | "IndexError"
            | "KeyError"
            | "ZeroDivisionError"
    ) {
        return strong(Category::Implementation);
    }
    // Anything else (a ValueError about a parameter, a custom exception, sys.exit with a
    // message): the program's own logic refused to go on, which is the code's owner's call.
    Verdict {
        category: Category::Implementation,
        strong: false,
    }
}

/// An exception line `Type: message` (or a bare `Type`), as the last line of a traceback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExcLine<'a> {
    pub name: &'a str,
    pub msg: &'a str,
    /// The whole exception line.
    pub line: &'a str,
}

/// Parse `line` as an exception line. Names must look like exception classes so that a line
/// of ordinary output interleaved with a traceback (`Accuracy: 0.93`) is not taken for one.
pub(crate) fn parse_exception_line(line: &str) -> Option<ExcLine<'_>> {
    let (name, msg) = match line.find(": ") {
        Some(i) => (&line[..i], &line[i + 2..]),
        None => (line.strip_suffix(':').unwrap_or(line).trim_end(), ""),
    };
    if name.is_empty() || name.len() > 120 {
        return None;
    }
    let ident_ok = name.split('.').all(|part| {
        let mut cs = part.chars();
        matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if !ident_ok {
        return None;
    }
    let short = short_name(name);
    const SUFFIXES: [&str; 10] = [
        "Error",
        "Exception",
        "Exit",
        "Interrupt",
        "Warning",
        "Iteration",
        "Failure",
        "Fault",
        "Timeout",
        "Group",
    ];
    let uppercase = short.chars().filter(|c| c.is_ascii_uppercase()).count();
    let plausible = SUFFIXES.iter().any(|s| short.ends_with(s))
        || (name.contains('.') && short.starts_with(|c: char| c.is_ascii_uppercase() || c == '_'))
        || (uppercase >= 2 && short.starts_with(|c: char| c.is_ascii_uppercase()));
    plausible.then_some(ExcLine { name, msg, line })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(line: &str, pandas: bool) -> Category {
        let e = parse_exception_line(line).expect("exception line");
        let ctx = TbContext {
            pandas_frame: pandas,
            getitem_frame: false,
        };
        classify_exception(e.name, e.msg, &ctx).category
    }

    #[test]
    fn exception_lines_are_recognised_but_output_is_not() {
        assert!(parse_exception_line("ValueError: Input contains NaN.").is_some());
        assert!(parse_exception_line("KeyboardInterrupt").is_some());
        assert!(parse_exception_line("numpy.linalg.LinAlgError: Singular matrix").is_some());
        assert!(parse_exception_line("DivergenceDetected: too many").is_some());
        assert!(parse_exception_line("Accuracy: 0.93").is_none());
        assert!(parse_exception_line("epoch 3 loss 0.5").is_none());
        assert!(parse_exception_line("Done").is_none());
    }

    #[test]
    fn categories_follow_the_evidence() {
        use Category::*;
        assert_eq!(cat("KeyError: 'price'", true), Data);
        assert_eq!(cat("KeyError: 'lr'", false), Implementation);
        assert_eq!(
            cat("AttributeError: 'X' object has no attribute 'y'", false),
            Implementation
        );
        assert_eq!(
            cat(
                "numpy._core._exceptions._ArrayMemoryError: Unable to allocate 7.28 TiB for an array",
                false
            ),
            Resource
        );
        assert_eq!(
            cat(
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
                false
            ),
            Resource
        );
        assert_eq!(
            cat("RuntimeError: Found no NVIDIA driver on your system.", false),
            Resource
        );
        assert_eq!(
            cat("OSError: [Errno 28] No space left on device", false),
            Resource
        );
        assert_eq!(cat("ValueError: Input X contains NaN.", false), Data);
        assert_eq!(
            cat(
                "ValueError: X has 5 features, but LinearRegression is expecting 4 features as input.",
                false
            ),
            Data
        );
        assert_eq!(
            cat("FloatingPointError: overflow encountered in exp", false),
            Convergence
        );
        assert_eq!(cat("RuntimeError: loss is nan at step 40", false), Convergence);
        assert_eq!(cat("ValueError: Unknown solver 'foo'", false), Implementation);
    }
}
