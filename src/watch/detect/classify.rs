//! Classification rules: which of the protocol's four categories a piece of evidence
//! belongs to. The decision looks at the exception type *and* its message (and, for a
//! `KeyError`, where it was raised), because one word is not evidence: a `KeyError` on a
//! DataFrame column is a data problem, on a dict in the code an implementation one.
//! Each rule carries its reason (why that category, in the user's words), which the
//! incident keeps and the report shows; the README's decision table quotes the same words.

use crate::model::Category;

/// What we know about the traceback an exception came from.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TbContext {
    /// A frame of the traceback is inside pandas (a column / index lookup failed).
    pub pandas_frame: bool,
    /// The innermost frame is a `__getitem__`: a dataset's record lookup (a record that
    /// lacks a field is data, not code).
    pub getitem_frame: bool,
    /// A frame of the traceback saves or writes a file (`torch.save`, `to_csv`, `write`…):
    /// a stream error there is the disk's, not the code's.
    pub save_frame: bool,
    /// A frame of the traceback is a DataLoader's collate function (`default_collate`, a
    /// `collate_fn`): what fails there is the batch's items, as the dataset returned them.
    pub collate_frame: bool,
    /// A frame of the traceback starts a process (multiprocessing's `popen_fork`,
    /// subprocess's `_fork_exec`): an EAGAIN there is fork meeting the process limit.
    pub fork_frame: bool,
    /// The job's own code, in its innermost frame, was converting values (`torch.tensor(…)`,
    /// `np.asarray(…)`, `.astype(…)`, `pd.to_datetime(…)`, `float(…)`): what fails there is
    /// the values it was given.
    pub converting: bool,
    /// A frame of the traceback is a network client's (socket, http.client, urllib, requests,
    /// urllib3, ssl, grpc…), or the job's own frame calls a socket's `sendall` / `recv`: a
    /// timeout there is a service that did not answer, a broken pipe its peer gone.
    pub network_frame: bool,
    /// The job's own code, in its innermost frame, indexes with arithmetic (`x[i + w]`): an
    /// index past the end there is the code's off-by-one, not a value from the data.
    pub index_arithmetic: bool,
    /// A frame of the traceback is concurrent.futures' (`as_completed`, `Future.result`): a
    /// timeout there is the time the job allowed its own work.
    pub futures_frame: bool,
    /// The innermost frame is inside a reader of data files (wave, tarfile, numpy's `.npy`
    /// reader, pandas' readers, PIL, soundfile…): a value or format error raised there is
    /// the file's.
    pub reader_frame: bool,
    /// A line just before the traceback reports a service's error answer (`token service
    /// replied HTTP 200: {'error': 'temporarily_unavailable', …}`): an exception that names
    /// no cause of its own is the job tripping over that answer.
    pub service_refused: bool,
    /// A frame of the traceback is torch's optimizers or learning-rate schedulers: a value
    /// they refuse (a wrong type, an invalid learning rate) is a hyperparameter of the job's.
    pub optim_frame: bool,
    /// The job's own code, in its innermost frame, divides by a count (`n / counts[c]`,
    /// `total / len(rows)`): a division by zero there is a class, group or split without rows.
    pub count_divisor: bool,
    /// The job's own code, in its innermost frame, splits text (`a, b = line.split("\t")`):
    /// too few values to unpack there is a line of the file with fewer fields.
    pub splitting: bool,
    /// The job's own code, in its innermost frame, takes a logarithm (`math.log(d)`,
    /// `np.log(x)`): a domain error there is a value at or below zero.
    pub log_call: bool,
    /// The job's own code, in its innermost frame, parses its configuration (`cfg =
    /// json.load(f)`, `yaml.safe_load(open("config.yaml"))`): a syntax error there is in
    /// the job's own file, not in its data.
    pub config_load: bool,
}

/// Is `source` (a traceback's source line of the job's code) a parse of a configuration: a
/// JSON, YAML or TOML load whose target or argument is named for one?
pub(crate) fn config_load_source(source: &str) -> bool {
    let s = source.trim().to_ascii_lowercase();
    const LOADS: [&str; 7] = [
        "json.load(",
        "json.loads(",
        "yaml.safe_load(",
        "yaml.load(",
        "tomllib.load(",
        "tomllib.loads(",
        "toml.load(",
    ];
    has_any(&s, &LOADS)
        && has_any(
            &s,
            &[
                "cfg", "config", "conf", "settings", "hparams", "params", "options",
            ],
        )
}

/// Is `source` (a traceback's source line) a call that converts values to a tensor, an
/// array, a number or a date?
pub(crate) fn converting_source(source: &str) -> bool {
    let s = source.trim();
    const CALLS: [&str; 16] = [
        "torch.tensor(",
        "torch.as_tensor(",
        "torch.from_numpy(",
        "np.array(",
        "np.asarray(",
        "numpy.array(",
        "numpy.asarray(",
        ".astype(",
        ".to_numpy(",
        "pd.to_datetime(",
        "pd.to_numeric(",
        "datetime.strptime(",
        "np.stack(",
        "torch.stack(",
        "np.frombuffer(",
        "np.fromfile(",
    ];
    if CALLS.iter().any(|c| s.contains(c)) {
        return true;
    }
    // `float(…)` / `int(…)` as a call of their own, not `print(` or `self.float(`
    ["float(", "int("].iter().any(|c| {
        s.match_indices(c).any(|(i, _)| {
            !s[..i]
                .bytes()
                .next_back()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        })
    })
}

/// Is a traceback frame line (`File "…", line N, in f`) in the job's own code, not in an
/// installed library or the standard library?
pub(crate) fn own_frame(frame: &str) -> bool {
    !has_any(
        frame,
        &[
            "site-packages",
            "dist-packages",
            "/lib/python3",
            "\\lib\\python3",
            "<frozen ",
            // the libraries themselves, wherever they are installed
            "/torch/",
            "/numpy/",
            "/pandas/",
            "/sklearn/",
            "/scipy/",
            "/transformers/",
            "/lightning/",
            "/datasets/",
        ],
    )
}

/// Is `frame` (a traceback's `File "…", line N, in FUNC` line, or a native `frame #N:`
/// line) inside a function that saves or writes a file?
pub(crate) fn saving_frame(frame: &str) -> bool {
    let lower = frame_function(frame).unwrap_or(frame).to_ascii_lowercase();
    has_any(
        &lower,
        &["save", "write", "dump", "to_csv", "to_parquet", "flush"],
    )
}

/// Is `frame` inside the code that starts a process (fork / fork_exec)?
pub(crate) fn forking_frame(frame: &str) -> bool {
    frame.contains("popen_fork.py") || frame_function(frame).is_some_and(|f| f.contains("fork"))
}

/// Is `frame` inside a collate function or a data collator (one that batches a dataset's
/// items: torch's `default_collate`, a `collate_fn`, transformers' `default_data_collator`)?
pub(crate) fn collating_frame(frame: &str) -> bool {
    frame_function(frame).is_some_and(|f| f.contains("collat"))
        || frame.contains("/_utils/collate.py")
        || frame.contains("/data_collator.py")
}

/// Is `frame` inside a reader of data files: the standard library's audio and archive
/// readers, numpy's `.npy` / text readers, pandas' and pyarrow's readers, PIL, soundfile,
/// librosa's and torchaudio's loaders, scipy.io, h5py?
pub(crate) fn reader_frame(frame: &str) -> bool {
    frame_in(
        frame,
        &[
            "/wave.py",
            "/aifc.py",
            "/sunau.py",
            "/tarfile.py",
            "/zipfile.py",
            "/gzip.py",
            "/bz2.py",
            "/lzma.py",
            "/numpy/lib/format.py",
            "/numpy/lib/_format_impl.py",
            "/numpy/lib/npyio.py",
            "/numpy/lib/_npyio_impl.py",
            "/soundfile.py",
            "/librosa/core/audio.py",
        ],
        &[
            "/zipfile/",
            "/pandas/io/",
            "/pyarrow/parquet/",
            "/PIL/",
            "/torchaudio/",
            "/scipy/io/",
            "/h5py/",
        ],
    )
}

/// Is the file of a traceback frame (`File "…", line N, in f`) one of `files` (by its end)
/// or inside one of `dirs`?
/// Is `frame` inside torch's optimizers or learning-rate schedulers?
pub(crate) fn optim_frame(frame: &str) -> bool {
    frame_in(frame, &[], &["/torch/optim/"])
}

/// Does `source` (a traceback's source line) divide by a count of things (`len(df) /
/// (k * counts[c])`, `correct / n_total`, `x // len(batch)`)? Only the divisor is read: a
/// count divided by something else is not one.
pub(crate) fn count_divisor_source(source: &str) -> bool {
    let Some(at) = source
        .find(" / ")
        .or_else(|| source.find(" // "))
        .or_else(|| source.find(" % "))
    else {
        return false;
    };
    let divisor = source[at..].to_ascii_lowercase();
    divisor.contains("count")
        || divisor.contains("len(")
        || divisor
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w.starts_with("n_") || w.starts_with("num_") || w.starts_with("total") || w == "n")
}

fn frame_in(frame: &str, files: &[&str], dirs: &[&str]) -> bool {
    let Some(path) = frame.split('"').nth(1) else {
        return false;
    };
    let path = path.replace('\\', "/");
    files.iter().any(|f| path.ends_with(f)) || dirs.iter().any(|d| path.contains(d))
}

/// Is `frame` inside concurrent.futures?
pub(crate) fn futures_frame(frame: &str) -> bool {
    frame.contains("/concurrent/futures/")
}

/// Does `source` (a traceback's source line) call a socket's send or receive?
pub(crate) fn socket_source(source: &str) -> bool {
    has_any(
        source,
        &[
            ".sendall(",
            ".send(",
            ".recv(",
            ".recv_into(",
            ".sendto(",
            ".connect(",
        ],
    )
}

/// Does `source` (a traceback's source line) index with arithmetic in the subscript
/// (`x[i + w]`, `seq[n-1]`)?
pub(crate) fn index_arithmetic_source(source: &str) -> bool {
    let mut rest = source;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            return false;
        };
        let inside = &after[..close];
        if !inside.contains(':')
            && inside.contains(['+', '-'])
            && inside.chars().any(|c| c.is_ascii_alphabetic())
        {
            return true;
        }
        rest = &after[close..];
    }
    false
}

/// Is `frame` inside a network client (the standard library's socket, ssl, http.client and
/// urllib, a multiprocessing manager's proxy, or requests, urllib3, httpx, aiohttp, grpc)?
pub(crate) fn network_frame(frame: &str) -> bool {
    // (a multiprocessing manager's proxy talks to its server, which may be another host)
    frame_in(
        frame,
        &[
            "/socket.py",
            "/ssl.py",
            "/http/client.py",
            "/multiprocessing/managers.py",
        ],
        &[
            "/urllib/",
            "/requests/",
            "/urllib3/",
            "/httpx/",
            "/httpcore/",
            "/aiohttp/",
            "/grpc/",
        ],
    )
}

/// The function a Python traceback frame (`File "…", line N, in FUNC`) is in.
fn frame_function(frame: &str) -> Option<&str> {
    frame.rfind(", in ").map(|i| &frame[i + 5..])
}

/// A category, whether the rule that chose it was specific (a strong rule beats the
/// fallback when a chained traceback brings better evidence), and why: the rule's reason,
/// one sentence in the user's terms ending with the category (see [`Incident::reason`]).
///
/// [`Incident::reason`]: crate::model::Incident::reason
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub category: Category,
    pub strong: bool,
    pub reason: &'static str,
}

const fn strong(category: Category, reason: &'static str) -> Verdict {
    Verdict {
        category,
        strong: true,
        reason,
    }
}

/// The last dotted component of an exception name (`numpy.linalg.LinAlgError` → `LinAlgError`).
pub(crate) fn short_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

pub(crate) fn has_any(hay: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| hay.contains(n))
}

/// The words of `lower` (letters, digits and `_`): a key such as `embedding_rows` is one
/// word, so it does not stand for `rows`.
fn words(lower: &str) -> impl Iterator<Item = &str> {
    lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

fn has_word(lower: &str, of: &[&str]) -> bool {
    words(lower).any(|w| of.contains(&w))
}

/// A rule that fires on any of its phrases in the message, with its reason.
type PhraseRule = (&'static [&'static str], &'static str);

/// The first rule of `rules` with a phrase in `hay`: its reason.
fn first_phrase(hay: &str, rules: &[PhraseRule]) -> Option<&'static str> {
    rules
        .iter()
        .find(|(phrases, _)| has_any(hay, phrases))
        .map(|(_, reason)| *reason)
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
    let Some(pos) = lower
        .find("loss")
        .or_else(|| lower.find("objective"))
        .or_else(|| loss_metric_at(&lower))
    else {
        return false;
    };
    // From the start of the word holding it (`best_val_loss`, not its `loss`).
    let start = lower[..pos]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let rest = &lower[start..];
    let mut prev = "";
    // (Twelve pieces, empty ones between separators included: a record's `'grad_norm':
    // 'inf'` further on is the record rule's, one incident for all records.)
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .take(12)
        .any(|w| {
            let bad = matches!(w, "nan" | "inf" | "infinity" | "infinite")
                && !best_so_far_unset(prev, w)
                && !window_filling(prev, w)
                && !another_key(prev);
            if !w.is_empty() {
                prev = w;
            }
            bad
        })
}

/// Where a key that names a loss by its metric (`train_mse`, `val_rmse`, `nll`,
/// `mse_log_steps`: one of its `_`-parts) starts, when no key says `loss`.
fn loss_metric_at(lower: &str) -> Option<usize> {
    lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| is_loss_metric(w))
        // (a piece of `lower`: its offset is where it starts)
        .map(|w| w.as_ptr() as usize - lower.as_ptr() as usize)
}

/// Is `key` a loss named by its metric (`train_mse`, `rmse`, `val_nll`)?
pub(crate) fn is_loss_metric(key: &str) -> bool {
    key.split('_').any(|p| {
        matches!(
            p,
            "mse" | "rmse" | "mae" | "nll" | "bce" | "xent" | "crossentropy"
        )
    })
}

/// Is `word`, just before a non-finite value after the loss, the key of another metric
/// (`loss 0.3244 local val recall nan (0/0)`: the NaN is the recall's)? Not the loss's own
/// key, a number, or a word that links the loss to its value (`loss is inf`, `went to nan`).
fn another_key(word: &str) -> bool {
    const LINKS: [&str; 16] = [
        "is", "was", "are", "were", "became", "become", "becomes", "went", "goes", "got", "to", "of",
        "reached", "value", "now", "be",
    ];
    word.bytes().any(|b| b.is_ascii_alphabetic())
        && !word.contains("loss")
        && !word.contains("objective")
        && !is_loss_metric(word)
        && !LINKS.contains(&word)
        && !word.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

/// A best-so-far value still at its start (`best_val_loss=inf` before the first
/// evaluation): early-stopping bookkeeping, not a loss that became infinite. (A NaN best is
/// not a start value.)
pub(crate) fn best_so_far_unset(key: &str, value: &str) -> bool {
    key.to_ascii_lowercase().starts_with("best") && matches!(value, "inf" | "infinity")
}

/// A windowed statistic of the loss still NaN while its window fills (`loss_ma10 nan`,
/// `rolling_loss_std nan` over the first steps): no value to average yet, not a loss that
/// became NaN. Its key names the window (`ma`, `sma`, `rolling`, `moving`, `window`, or a
/// statistic with the window's size, `sd10`, `mean20`); an infinite value is not a warm-up.
pub(crate) fn window_filling(key: &str, value: &str) -> bool {
    if !value.eq_ignore_ascii_case("nan") {
        return false;
    }
    key.to_ascii_lowercase().split(['_', '/', '.', '-']).any(|part| {
        let stat = part.trim_end_matches(|c: char| c.is_ascii_digit());
        let sized = stat.len() < part.len();
        matches!(stat, "ma" | "sma" | "rolling" | "moving" | "window" | "windowed")
            || (sized && matches!(stat, "sd" | "std" | "mean" | "avg" | "median"))
    })
}

/// True when `lower` (a lower-cased message) says gradients, their norm or the weights became
/// NaN or infinite (`The total norm of order 2.0 for gradients from `parameters` is
/// non-finite`): the optimisation diverged. The same words about the input are data.
fn optimisation_not_finite(lower: &str) -> bool {
    let non_finite = has_any(lower, &["non-finite", "nonfinite", "not finite"])
        || has_word(lower, &["nan", "nans", "inf", "infinity", "infinite"]);
    non_finite
        && has_word(
            lower,
            &[
                "gradient",
                "gradients",
                "grad",
                "grads",
                "grad_norm",
                "norm",
                "weights",
                "coefficients",
                "parameters",
            ],
        )
}

pub(crate) const CUDA_OOM: &str = "CUDA ran out of memory (resource)";
pub(crate) const OUT_OF_MEMORY: &str = "the process ran out of memory (resource)";
const MEMORY_SHORT: &str =
    "the job needs more memory than it was given: its own estimate exceeds its allocation (resource)";
pub(crate) const DISK_FULL: &str = "the disk is full: nothing more could be written (resource)";
pub(crate) const NO_ROOM: &str = "the job's disk has less free space than it needs (resource)";
pub(crate) const FILE_TOO_LARGE: &str =
    "a file grew past the size the job or its file system allows (ulimit -f, EFBIG) (resource)";
pub(crate) const ALARM: &str =
    "the program's own timer (SIGALRM, unhandled) ended it: the time budget it set itself ran out (resource)";
pub(crate) const CPU_LIMIT: &str = "the job's CPU time limit ran out (ulimit -t, SIGXCPU) (resource)";
pub(crate) const EMPTY_LOADER: &str =
    "a data loader with no batches on any rank: its split of the data is empty, and the run goes on without it (data)";
pub(crate) const TIME_LIMIT: &str =
    "the job's wall-clock time limit ran out: it needs more time than it was given (resource)";
pub(crate) const COLLECTIVE: &str =
    "a distributed collective failed: a peer died or did not answer in time (resource)";

/// Resource rules by the exception's message (after the memory rules by type).
const RESOURCE_PHRASES: &[PhraseRule] = &[
    (
        &[
            "Unable to allocate",
            "[Errno 12]",
            "Cannot allocate memory",
            "std::bad_alloc",
            // torch's CPU allocator
            "not enough memory",
            // the dynamic loader when the address space left (`ulimit -v`) cannot hold a
            // library's segments
            "failed to map segment from shared object",
        ],
        OUT_OF_MEMORY,
    ),
    (
        // libgomp (OpenMP) when the threads' stacks do not fit in what is left (an address
        // space limit, a cap on processes)
        &["Thread creation failed"],
        THREAD_LIMIT,
    ),
    (
        &[
            "[Errno 28]",
            "No space left on device",
            // torch's C++ writer when a checkpoint cannot be written: the disk filled.
            "PytorchStreamWriter failed writing",
            "file write failed",
            // numpy's `tofile` when the device takes nothing more
            "requested and 0 written",
        ],
        DISK_FULL,
    ),
    (
        // a job's own check before it copies or writes (`not enough space on scratch: need
        // 1.6TiB, 66.3GiB available`)
        &[
            "not enough space",
            "not enough disk space",
            "not enough free space",
            "insufficient disk space",
            "insufficient space",
            "insufficient free space",
        ],
        NO_ROOM,
    ),
    (
        &["[Errno 122]", "Disk quota exceeded"],
        "the disk quota is used up (resource)",
    ),
    (
        // EFBIG: a file past the job's `ulimit -f` (bash's `File size limit exceeded` is
        // its SIGXFSZ) or past what the file system takes.
        &["[Errno 27]", "File too large", "File size limit exceeded"],
        FILE_TOO_LARGE,
    ),
    (&["CPU time limit exceeded"], CPU_LIMIT),
    (
        // a wall-clock budget: a scheduler's time limit, `timeout`'s, the job script's own
        &[
            "wall-clock budget",
            "wall-clock limit",
            "wallclock limit",
            "walltime",
            "time limit",
            // Slurm's `CANCELLED AT … DUE TO TIME LIMIT`
            "TIME LIMIT",
            "time budget",
        ],
        TIME_LIMIT,
    ),
    (
        &["[Errno 24]", "Too many open files"],
        "the process hit its limit of open files (resource)",
    ),
    (
        &["CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED"],
        CUDA_OOM,
    ),
    (
        // DataLoader workers hand batches over through /dev/shm
        &[
            "out of shared memory",
            "insufficient shared memory",
            "shared memory limit",
        ],
        "shared memory (/dev/shm) ran out: the DataLoader's workers pass batches through it (resource)",
    ),
    (
        // EAGAIN from pthread_create / fork: `ulimit -u`, or `ulimit -v` leaving no room
        // for another thread's stack
        &[
            "can't start new thread",
            "pthread_create failed",
            "fork: retry",
            "Cannot fork",
            "fork: Resource temporarily unavailable",
        ],
        THREAD_LIMIT,
    ),
    (
        &[
            "terminated abruptly",
            "unexpectedly terminated",
            "exited unexpectedly",
        ],
        WORKER_KILLED,
    ),
];

const NO_GPU_ON_NODE: &str =
    "the node has no usable GPU: its driver or the device is missing or too old (infrastructure)";
const NO_GPU_BUILD: &str =
    "the job's environment has no GPU build for this node (torch not compiled with CUDA, no kernels for this GPU) (implementation)";

/// A job that needs a GPU the node cannot give it: the node's (a missing or old driver, no
/// device), or the job's own environment's (a CPU build of torch, no kernels for this GPU).
fn no_gpu(msg: &str) -> Option<Verdict> {
    if has_any(
        msg,
        &[
            "NVIDIA driver",
            "no CUDA-capable device",
            "CUDA driver version is insufficient",
            "CUDA unavailable",
        ],
    ) {
        return Some(strong(Category::Infrastructure, NO_GPU_ON_NODE));
    }
    has_any(msg, &["not compiled with CUDA", "no kernel image is available"])
        .then(|| strong(Category::Implementation, NO_GPU_BUILD))
}

pub(crate) const SAVE_FAILED: &str =
    "a stream error while a file was being saved (a checkpoint writer's C++ error): the disk is full or failing (resource)";

/// A stream's failure, as C++ and torch's checkpoint writer word it: on its own it could be
/// a read as well; inside a save it is the disk (see [`TbContext::save_frame`]).
pub(crate) fn stream_failure(msg: &str) -> bool {
    has_any(
        msg,
        &[
            "basic_ios::clear",
            "iostream error",
            "unexpected pos",
            "failed writing",
            "write failed",
            "PyTorchStreamWriter",
            "PytorchStreamWriter",
        ],
    )
}

pub(crate) const WORKER_KILLED: &str =
    "a worker process was killed from outside, most often for memory (resource)";
pub(crate) const THREAD_LIMIT: &str =
    "no new thread or process could be started: the job's limit of processes or of memory (ulimit -u, -v) (resource)";
const CHILD_CRASHED: &str =
    "a worker or child process crashed on a signal: a native crash in the code or a library it calls (implementation)";
const CHILD_STOPPED: &str =
    "a worker or child process was stopped by a signal from outside (a scheduler, a user, a supervisor) (resource)";

/// A worker or child process that died of a signal the message names: the exit classifier
/// judges that signal (its category), the reason says it was a child.
fn child_signal(msg: &str) -> Option<Verdict> {
    let signal = super::signals::named_signal(msg)?;
    let j = super::exit::judge_exit(crate::model::ExitOutcome::Signal(signal), None)?;
    let reason = match (signal, j.category) {
        (9, _) => WORKER_KILLED,
        (24, _) => CPU_LIMIT,
        (25, _) => FILE_TOO_LARGE,
        (_, Category::Implementation) => CHILD_CRASHED,
        _ => CHILD_STOPPED,
    };
    Some(strong(j.category, reason))
}

/// Resource problems: memory, disk, GPU, processes killed from outside.
fn resource(short: &str, msg: &str, ctx: &TbContext) -> Option<&'static str> {
    let lower = msg.to_ascii_lowercase();
    let memory = matches!(short, "MemoryError" | "_ArrayMemoryError" | "OutOfMemoryError")
        || lower.contains("out of memory");
    if memory {
        return Some(if msg.contains("CUDA") {
            CUDA_OOM
        } else {
            OUT_OF_MEMORY
        });
    }
    // The job's own time budget for a piece of its work ran out (`model refresh did not
    // finish within its 4 s slot`).
    if has_any(
        &lower,
        &[
            "did not finish within",
            "time budget exceeded",
            "exceeded its time budget",
            "over its time budget",
        ],
    ) {
        return Some(WORK_TIMED_OUT);
    }
    // A job's own check that the memory it needs is more than it was given (`memory estimate
    // 22.92 GiB exceeds the job's allocation of 8.00 GiB; not starting`).
    if lower.contains("memory")
        && has_any(
            &lower,
            &[
                "exceeds the",
                "exceeds its",
                "exceeds our",
                "more than the",
                " fits in",
                " fit in",
                "does not fit",
            ],
        )
        && has_any(&lower, &["allocation", "limit", "budget", "available"])
    {
        return Some(MEMORY_SHORT);
    }
    match short {
        "BrokenProcessPool" | "TerminatedWorkerError" => return Some(WORKER_KILLED),
        "KeyboardInterrupt" => return Some(INTERRUPTED),
        _ => {}
    }
    // EAGAIN as a process is started (`BlockingIOError: [Errno 11] Resource temporarily
    // unavailable` from os.fork): the process limit (elsewhere errno 11 is a non-blocking
    // call's, the code's).
    if ctx.fork_frame && msg.contains("[Errno 11]") {
        return Some(THREAD_LIMIT);
    }
    first_phrase(msg, RESOURCE_PHRASES)
        // numpy's `tofile` and the like, some of it written: `1152000 requested and 1048544
        // written` (nothing written, `… and 0 written`, is a full disk's phrase above)
        .or_else(|| {
            (lower.contains(" requested and ") && lower.trim_end().ends_with(" written"))
                .then_some(SHORT_WRITE)
        })
        .or_else(|| (ctx.save_frame && stream_failure(msg)).then_some(SAVE_FAILED))
        .or_else(|| collective_failure(msg).then_some(COLLECTIVE))
}

const STORAGE_FAILED: &str =
    "the storage failed under the job: an I/O error from a disk or a network file system (infrastructure)";
const PORT_TAKEN: &str =
    "a port the job needs is held by another process (one left on the node by an earlier job) (infrastructure)";
const NOT_PERMITTED: &str =
    "the job may not read or write a path it needs: its permissions, its owner or a read-only mount (infrastructure)";

const RENDEZVOUS_FAILED: &str =
    "the job's nodes never all met at the launcher's rendezvous (a node that did not start or join, a store that cannot be reached) (infrastructure)";

pub(crate) const WORK_TIMED_OUT: &str =
    "the job's own work took longer than the time it allowed it (a timeout on its pool's results) (resource)";
pub(crate) const SERVICE_ANSWERED_ERROR: &str =
    "the job tripped over a service's error answer, logged just before (a service in maintenance, overloaded or failing) (infrastructure)";
pub(crate) const EMPTY_SELECTION: &str =
    "an empty selection of the data reached a reduction: no rows in the window, the split or the group (data)";
pub(crate) const KEY_IS_A_VALUE: &str =
    "a KeyError whose key is a value read from the data, not a name in the code (a label with stray spaces or another case, a multi-word category) (data)";
pub(crate) const SERVICE_SILENT: &str =
    "a network service the job called did not answer in time (a timeout inside the network client) (infrastructure)";
pub(crate) const UNPARSABLE: &str = "a data file that does not parse (data)";
pub(crate) const VOLUME_NOT_MOUNTED: &str =
    "a storage volume the node should have is not mounted: the node's set-up (infrastructure)";
pub(crate) const LOSS_GUARD: &str =
    "the run stopped itself over its loss (a guard against divergence) (convergence)";
const SERVICE_LIMIT: &str =
    "the service (or a proxy before it) refused the request by a limit of its own, the size it accepts (infrastructure)";
const LOADER_STALLED: &str =
    "the data loader's workers delivered no batch within its timeout: the storage they read from stalled (infrastructure)";
const SERVICE_FAULT: &str =
    "the service the job called answered with an error of its own (an RPC server's fault, a mail server's refusal) (infrastructure)";
const RETRIES_EXHAUSTED: &str =
    "the job gave up on an operation after retrying it: what it called kept failing (a service, a store) (infrastructure)";
const OPTIMIZER_SETTINGS: &str =
    "the optimizer or learning-rate scheduler refused a setting (a wrong type, an invalid value): a hyperparameter of the job's (implementation)";
const OUTPUT_DIR_MISSING: &str =
    "the folder the job writes into does not exist: a path in its code or configuration (implementation)";
const OPTION_UNKNOWN: &str =
    "a program of the job was called with an option it does not take: the job's command or its scripts (implementation)";
pub(crate) const SHORT_WRITE: &str =
    "a write stopped short of what it was given: the disk is full or the file size limit was reached (resource)";
const SOCKET_ABSENT: &str =
    "the socket of a local service the job connects to is not there: its agent on the node is not running (infrastructure)";
pub(crate) const SERVICE_UNREACHABLE: &str =
    "a network service the job depends on could not be reached or failed (a hub, a store, an API) (infrastructure)";

/// Infrastructure rules by the exception's message: the environment the job ran in, not its
/// code, data or resources. (Between the ranks of one job a refused connection is a
/// collective's failure, judged before these.)
const INFRASTRUCTURE_PHRASES: &[PhraseRule] = &[
    (
        // a network service the job needs that is down or unreachable: a name that does not
        // resolve, a refused or timed-out connection, a gateway's 5xx
        &[
            "Connection refused",
            // asyncio's words for a refused connection (`Connect call failed ('10.0.0.5', 9000)`)
            "Connect call failed",
            "Name or service not known",
            "Temporary failure in name resolution",
            // a Redis server still loading its snapshot, or without its primary
            // (`LOADING Redis is loading the dataset in memory`, `MASTERDOWN …`)
            "is loading the dataset in memory",
            // the node's clock too far from the service's for a signed request (S3's
            // `RequestTimeTooSkewed`)
            "RequestTimeTooSkewed",
            "clock skew",
            "MASTERDOWN",
            "CLUSTERDOWN",
            // a Redis that refuses writes: it cannot persist its snapshots (`MISCONF`), or it
            // is a read-only replica
            "MISCONF",
            "You can't write against a read only replica",
            // etcd's server without a quorum (`etcdserver: no leader`, `request timed out`)
            "etcdserver: ",
            // a proxy or a service redirecting a request to itself (urllib's `HTTP Error 302:
            // … would lead to an infinite loop`, requests' `Exceeded 30 redirects`)
            "would lead to an infinite loop",
            "Exceeded 30 redirects",
            "too many redirects",
            "TooManyRedirects",
            // curl's and ssh's words for a name that does not resolve, and the BSDs' and
            // Windows' resolvers'
            "Could not resolve host",
            "Could not resolve hostname",
            "nodename nor servname provided",
            "No address associated with hostname",
            "getaddrinfo failed",
            "Network is unreachable",
            "No route to host",
            // a program's own words for it (not Rust's `entered unreachable code`)
            "server unreachable",
            "service unreachable",
            "host unreachable",
            "endpoint unreachable",
            "server is unreachable",
            "service is unreachable",
            "Max retries exceeded",
            "Failed to establish a new connection",
            "Read timed out",
            "Connection timed out",
            "couldn't connect to",
            // curl's words (`curl: (7) Failed to connect to … Couldn't connect to server`)
            "Couldn't connect to server",
            "Failed to connect to",
            "502 Server Error",
            "503 Server Error",
            "504 Server Error",
            // urllib's `HTTP Error 504: Gateway Timeout`, a program's `HTTP 503 …`: a
            // server's 5xx answer
            "HTTP Error 50",
            "HTTP 50",
            "Gateway Timeout",
            "Insufficient Storage",
            // HashiCorp Vault restarted and not unsealed: no secret can be read
            "Vault is sealed",
            // a Redis refusing the command for its own state (its memory limit, its clients)
            "OOM command not allowed",
            "max number of clients reached",
            // Elasticsearch / OpenSearch blocking writes when its disk passed the flood stage
            "cluster_block_exception",
            "flood-stage",
            "flood stage",
            "read-only / allow delete",
            // a proxy or an identity service refusing the job's credentials (a stale signing
            // key, an egress proxy's login)
            "Proxy Authentication Required",
            "HTTP Error 401",
            "401 Unauthorized",
            // curl's words for a server that closed or broke the connection
            "Empty reply from server",
            "Recv failure",
            "Service Unavailable",
            "Bad Gateway",
            "500 Server Error",
            "Internal Server Error",
            // a service that rate-limits the job
            "429 Client Error",
            "Too Many Requests",
            // the network's TLS interception or an expired certificate; any TLS handshake
            // failure (`[SSL: WRONG_VERSION_NUMBER]`: plain HTTP served on the TLS port)
            "CERTIFICATE_VERIFY_FAILED",
            "certificate verify failed",
            "[SSL: ",
        ],
        SERVICE_UNREACHABLE,
    ),
    (
        // a service (or the proxy before it) refusing a request by a limit of its own: the
        // size of the body it accepts
        &[
            "HTTP Error 413",
            "Request Entity Too Large",
            "Payload Too Large",
            "413 Client Error",
        ],
        SERVICE_LIMIT,
    ),
    // torch's DataLoader(timeout=…): its workers delivered no batch in that time, waiting
    // on the storage they read from
    (&["DataLoader timed out after"], LOADER_STALLED),
    (&["is not a mountpoint", "not mounted"], VOLUME_NOT_MOUNTED),
    (
        &[
            "[Errno 5]",
            "Input/output error",
            "[Errno 116]",
            "Stale file handle",
        ],
        STORAGE_FAILED,
    ),
    (&["EADDRINUSE", "ddress already in use", "[Errno 98]"], PORT_TAKEN),
    (
        &[
            "Permission denied",
            "[Errno 13]",
            "Operation not permitted",
            "Read-only file system",
            "[Errno 30]",
        ],
        NOT_PERMITTED,
    ),
];

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
            "process group",
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
                "connection refused",
            ],
        )
}

/// Evidence that only reports another process's failure: torchrun's `ChildFailedError`
/// summary, or a surviving rank's collective failing because a peer died. It names the
/// category only when nothing in the log states the failure itself.
pub(crate) fn is_consequence(name: &str, msg: &str) -> bool {
    // (`subprocess.CalledProcessError`: the driver's word that a child it ran failed;
    // torchrun's `SignalException`: its own word that a signal reached it.)
    matches!(
        short_name(name),
        "ChildFailedError" | "CalledProcessError" | "SignalException"
    ) || collective_failure(msg)
}

/// torchrun's `SignalException: Process 29007 got signal: 15`: the signal.
fn launcher_signal(short: &str, msg: &str) -> Option<i32> {
    if short != "SignalException" {
        return None;
    }
    msg.rsplit_once("got signal: ")?.1.trim().parse().ok()
}

pub(crate) const LOSS_NOT_FINITE: &str = "the loss became NaN or infinite (convergence)";
pub(crate) const NOT_CONVERGED: &str = "the solver says it did not converge (convergence)";
pub(crate) const GRADS_NOT_FINITE: &str =
    "the gradients or weights became NaN or infinite: the optimisation diverged (convergence)";
pub(crate) const DIVERGED: &str =
    "the run says its optimisation diverged (a loss or gradients exploding) (convergence)";
const REPRESENTATION_COLLAPSE: &str =
    "the run says its encoder's representations collapsed: every input maps to the same point (convergence)";
const POSTERIOR_COLLAPSE: &str =
    "the run says its VAE's posterior collapsed: the decoder ignores the latent code (convergence)";
pub(crate) const POLICY_COLLAPSE: &str =
    "the run says its policy collapsed: its entropy fell to near zero, its choices fixed before it learnt the best ones (convergence)";
const MODE_COLLAPSE: &str =
    "the run says its generator collapsed onto a few modes of the data: the adversarial training failed (convergence)";
const NO_IMPROVEMENT: &str = "the run says its metric stopped improving and it gave up (convergence)";
pub(crate) const NOT_LEARNING: &str =
    "the run says the model did not learn (loss or accuracy flat) (convergence)";

/// A message saying the model collapsed (a policy's entropy, a GAN's modes, an encoder's
/// representations, a VAE's posterior): that collapse's reason.
pub(crate) fn says_collapsed(msg: &str) -> Option<&'static str> {
    convergence("", msg).filter(|r| {
        [
            POLICY_COLLAPSE,
            MODE_COLLAPSE,
            REPRESENTATION_COLLAPSE,
            POSTERIOR_COLLAPSE,
        ]
        .contains(r)
    })
}

fn convergence(short: &str, msg: &str) -> Option<&'static str> {
    if short == "FloatingPointError" {
        return Some("a floating-point overflow or invalid value in the numerics (convergence)");
    }
    if short == "SamplingError" && !sampler_start_invalid(msg) {
        return Some("the sampler failed, not at the data's starting point (convergence)");
    }
    // autograd's anomaly mode: a backward function produced NaN/inf (the optimisation
    // went numerically wrong, not the input).
    if msg.contains("Backward") && has_any(msg, &["returned nan values", "returned inf values"]) {
        return Some("autograd's anomaly mode found NaN or inf in a backward pass (convergence)");
    }
    if short.contains("Convergence") {
        return Some("the solver raised a convergence error (convergence)");
    }
    if loss_not_finite(msg) {
        return Some(LOSS_NOT_FINITE);
    }
    let lower = msg.to_ascii_lowercase();
    if optimisation_not_finite(&lower) {
        return Some(GRADS_NOT_FINITE);
    }
    // torch.distributions: `Expected parameter loc (…) to satisfy the constraint Real(), but
    // found invalid values` — the model's outputs went NaN.
    if msg.contains("to satisfy the constraint") && msg.contains("found invalid values") {
        return Some(DISTRIBUTION_INVALID);
    }
    if super::rules::says_not_learning(msg) {
        return Some(NOT_LEARNING);
    }
    if super::rules::stops_over_loss(msg) {
        return Some(LOSS_GUARD);
    }
    // A watchdog's or a script's own word that the metric it follows stopped improving and
    // it gave up (`no improvement in val_loss for 6 evaluations; aborting run`).
    if has_any(
        &lower,
        &["no improvement in", "stopped improving", "not improved for"],
    ) {
        return Some(NO_IMPROVEMENT);
    }
    if has_any(
        &lower,
        &[
            "diverged",
            "is diverging",
            // a trainer's own guard against it (`divergence guard: loss 87.15 at step 20 is
            // above 1.5 x best 43.89`)
            "divergence guard",
            "divergence check",
            "divergence detected",
            "loss exploded",
            "loss explosion",
            "exploding gradient",
            "gradient explosion",
            "gradients exploded",
        ],
    ) {
        return Some(DIVERGED);
    }
    // A GAN's generator that learnt to produce a few modes of the data only.
    if has_any(&lower, &["mode collapse", "modes collapsed", "mode-collapse"]) {
        return Some(MODE_COLLAPSE);
    }
    // A policy (reinforcement learning, a bandit) whose choices became deterministic before
    // it learnt which are best: its entropy collapsed.
    if has_any(
        &lower,
        &[
            "policy collapsed",
            "policy collapse",
            "entropy collapsed",
            "entropy collapse",
        ],
    ) {
        return Some(POLICY_COLLAPSE);
    }
    // Gradients that shrink to nothing through the layers: the model stops learning.
    if has_any(
        &lower,
        &["vanishing gradient", "gradients vanished", "gradient vanishing"],
    ) {
        return Some(NOT_LEARNING);
    }
    // A VAE whose decoder learnt to ignore its latent code (the KL term at zero).
    if has_any(&lower, &["posterior collapse", "kl collapse", "kl vanishing"]) {
        return Some(POSTERIOR_COLLAPSE);
    }
    // A self-supervised encoder mapping every input to the same point.
    if has_any(
        &lower,
        &[
            "representation collapse",
            "embedding collapse",
            "dimensional collapse",
        ],
    ) {
        return Some(REPRESENTATION_COLLAPSE);
    }
    // A network whose ReLU units output zero for every input (`100% of relu2 units dead`).
    if has_any(&lower, &["units dead", "dead relu", "dead units", "dead neurons"]) {
        return Some(NOT_LEARNING);
    }
    super::rules::says_not_converged(msg).then_some(NOT_CONVERGED)
}

/// PyMC's `SamplingError` when the model cannot even be evaluated at its starting point
/// (a `-inf` initial log-probability): the observed data lie outside the likelihood's
/// support, a data problem rather than the sampler's.
fn sampler_start_invalid(msg: &str) -> bool {
    msg.contains("Initial evaluation of model at starting point failed") || msg.contains("-inf")
}

const SCRIPT_MISSING: &str =
    "the script the job runs does not exist: a typo or a wrong path in the job's command (implementation)";
const LABELS_RENAMED: &str =
    "the batches hold the labels under a name the model does not take (`target`, not `labels`): the code's naming (implementation)";
const NO_LABELS_IN_BATCH: &str =
    "the batches reached the model without labels: the data has no label column the model can use (data)";
const CHECKPOINT_MISFIT: &str =
    "a checkpoint that does not fit what it is loaded into (another architecture or experiment) (implementation)";

/// Implementation rules by the message, asked before the data rules (whose shape words a
/// checkpoint's `size mismatch for fc.weight` would otherwise meet).
fn implementation_by_message(msg: &str) -> Option<&'static str> {
    if shell_error(msg) {
        return Some(SHELL_ERROR);
    }
    if config_validation(msg) {
        return Some(CONFIG_INVALID);
    }
    if output_folder_missing(msg) {
        return Some(OUTPUT_DIR_MISSING);
    }
    // scikit-learn's length check of X against y: the code made them (a filter on one only,
    // the wrong axis, the outputs of a split unpacked in the wrong order)
    if msg.contains("inconsistent numbers of samples") {
        return Some(PAIRING);
    }
    if msg.contains("Expected 2D array, got 1D array") {
        return Some(ONE_FEATURE_1D);
    }
    if option_unknown(msg) {
        return Some(OPTION_UNKNOWN);
    }
    if missing_checkpoint(msg) {
        return Some(CHECKPOINT_PATH);
    }
    if has_any(
        msg,
        &[
            "Error(s) in loading state_dict",
            "loaded state dict contains a parameter group",
            "loaded state dict has a different number of parameter groups",
        ],
    ) {
        return Some(CHECKPOINT_MISFIT);
    }
    has_any(
        msg,
        &[
            "modified by an inplace operation",
            "backward through the graph a second time",
            "does not require grad and does not have a grad_fn",
            "Expected all tensors to be on the same device",
        ],
    )
    .then_some(AUTOGRAD_MISUSE)
}

/// The job says it gave up after retrying (`could not upload checkpoint-10 to the object
/// store after 3 attempts`, `retries exhausted`): a job retries what fails for a while and
/// then works, which is another system's state, not its own code. (A cause the message
/// names is read before this.)
pub(crate) fn gave_up_retrying(msg: &str) -> bool {
    static AFTER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let lower = msg.to_ascii_lowercase();
    has_any(
        &lower,
        &[
            "retries exhausted",
            "exhausted retries",
            "exhausted its retries",
            "giving up after",
            "gave up after",
        ],
    ) || AFTER
        .get_or_init(|| regex::Regex::new(r"\bafter \d+ (?:attempts|retries|tries)\b").expect("valid"))
        .is_match(&lower)
}

/// A file the job creates in a folder that does not exist (`sort: cannot create temporary
/// file in '/scratch/sortt': No such file or directory`, `could not create run dir …`): the
/// job's own output path. Reading a missing file is another matter (the data's).
fn output_folder_missing(msg: &str) -> bool {
    msg.contains("No such file or directory")
        && has_any(
            &msg.to_ascii_lowercase(),
            &[
                "cannot create",
                "can't create",
                "could not create",
                "failed to create",
                "unable to create",
            ],
        )
}

/// getopts' and getopt's words for an option the program does not take (`train.sh: illegal
/// option -- r`, `option requires an argument -- e`, `unrecognized option '--lr'`).
pub(crate) fn option_unknown(msg: &str) -> bool {
    has_any(
        msg,
        &[
            "illegal option -- ",
            "invalid option -- ",
            "option requires an argument -- ",
            "unrecognized option '",
        ],
    )
}

const CHECKPOINT_PATH: &str =
    "a checkpoint the code looks for is not where it looks (its path or its name template), not the data (implementation)";

/// A missing file that is a checkpoint by its name (`ckpt/epoch_003.pt`,
/// `checkpoints/best.ckpt`): the code's path for its own weights. A `.pt` of features
/// (`cache/features_v2.pt`) is data, so the name decides, not the suffix alone.
fn missing_checkpoint(msg: &str) -> bool {
    let Some((_, path)) = msg.split_once("No such file or directory: ") else {
        return false;
    };
    let path = path
        .trim()
        .trim_matches(|c| c == '\'' || c == '"')
        .to_ascii_lowercase();
    let weights = [".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".h5"]
        .iter()
        .any(|e| path.ends_with(e));
    weights && has_any(&path, &["ckpt", "checkpoint", "epoch", "weights", "model"])
}

pub(crate) const SHELL_ERROR: &str =
    "the job script itself failed: the shell refused one of its lines (an unset variable, a command that does not exist, a syntax error) (implementation)";
const CONFIG_INVALID: &str =
    "the job's configuration failed its own validation (pydantic and the like): a configuration mistake (implementation)";

/// bash's own errors about the script it runs: `run.sh: line 11: ROOT: unbound variable`.
pub(crate) fn shell_error(msg: &str) -> bool {
    msg.contains(": line ")
        && has_any(
            msg,
            &[
                ": unbound variable",
                ": command not found",
                ": bad substitution",
                "syntax error near unexpected token",
                "syntax error: unexpected end of file",
                // arithmetic on what bash cannot compute (`$(( 0.06 * N ))`: floats)
                "syntax error: invalid arithmetic operator",
                "syntax error: operand expected",
                // exec refusing a command line longer than the kernel takes (E2BIG): the
                // script passes its inputs as arguments
                ": Argument list too long",
            ],
        )
        || shell_program_missing(msg)
}

/// bash unable to run a program the script names by its path (`job.sh: line 15:
/// ./envs/ctr-2026.11/bin/python: No such file or directory`): an interpreter, a script or a
/// tool in a `bin/` folder that is not there — the script's stale path. (A data file the script
/// redirects from is the data's: it names no program.)
fn shell_program_missing(msg: &str) -> bool {
    let Some((_, rest)) = msg.split_once(": line ") else {
        return false;
    };
    let Some((_, rest)) = rest.split_once(": ") else {
        return false;
    };
    let Some((prog, tail)) = rest.split_once(": ") else {
        return false;
    };
    tail.starts_with("No such file or directory")
        && (prog.contains("/bin/") || prog.ends_with(".sh") || prog.ends_with(".py"))
}

/// pydantic's `2 validation errors for TrainConfig`, the heading of the field errors that
/// follow it: the name of the model validated.
pub(crate) fn validation_summary(msg: &str) -> Option<&str> {
    let (head, model) = msg.trim().split_once(" for ")?;
    let mut words = head.split_whitespace();
    let counted = words.next()?.bytes().all(|b| b.is_ascii_digit());
    let said = matches!(
        (words.next(), words.next(), words.next()),
        (Some("validation"), Some("error" | "errors"), None)
    );
    (counted && said)
        .then(|| model.split_whitespace().next())
        .flatten()
}

/// A validation error of a configuration (the model's name says so: `TrainConfig`,
/// `Settings`, `TrainingArgs`), not of a record of the data.
fn config_validation(msg: &str) -> bool {
    validation_summary(msg).is_some_and(|model| {
        let model = model.to_ascii_lowercase();
        [
            "config",
            "cfg",
            "settings",
            "args",
            "arguments",
            "options",
            "params",
            "hyperparameters",
        ]
        .iter()
        .any(|w| model.ends_with(w))
    })
}

const AUTOGRAD_MISUSE: &str =
    "the model code misuses autograd or devices (an in-place change a backward needs, a second backward, tensors on two devices) (implementation)";

const DISTRIBUTION_INVALID: &str =
    "a distribution's parameter computed by the model is NaN or outside its support: the optimisation diverged (convergence)";

pub(crate) const EMBEDDING_ID: &str =
    "an id beyond an embedding's table: token or category ids the model was not built for (data)";
pub(crate) const RAGGED: &str =
    "examples of different lengths or shapes in one batch: the data was not padded or cut to one size (data)";
const ENCODING: &str = "a data file not in the expected text encoding (data)";
const SHAPE: &str = "an input shape that does not match what the model expects (data)";
pub(crate) const CLASS_ABSENT: &str =
    "the targets hold one class only (no positive or no negative example): the split lacks a class, so its metric says nothing (data)";
/// Does `msg` say the targets hold one class only (torchmetrics' warning `No positive
/// samples in targets`, scikit-learn's error `Only one class present in y_true`)? The one
/// reading of it, for a warning (the run goes on, but what it measures is meaningless) and
/// for an exception's message alike. (It is asked of every warning line: two SIMD searches
/// turn nearly all away.)
pub(crate) fn class_absent(msg: &str) -> bool {
    use memchr::memmem::Finder;
    static SAMPLES: std::sync::OnceLock<Finder<'static>> = std::sync::OnceLock::new();
    static ONE: std::sync::OnceLock<Finder<'static>> = std::sync::OnceLock::new();
    let samples = SAMPLES.get_or_init(|| Finder::new(b"samples in targets"));
    let one = ONE.get_or_init(|| Finder::new(b"nly one class present"));
    let b = msg.as_bytes();
    (samples.find(b).is_some() && has_any(msg, &["No positive", "No negative", "no positive", "no negative"]))
        || one.find(b).is_some()
}
const CLASS_INDEX: &str =
    "a class index beyond the number of classes: the labels do not fit the model (data)";
pub(crate) const STR_ITEM: &str =
    "a batch item holds a string where numbers belong (a field stored as text, encoded twice): a malformed field of the records (data)";
pub(crate) const OFF_BY_ONE: &str =
    "an index the job's code computes (`x[i + w]`) ran past the end of the array: an off-by-one in the code (implementation)";
pub(crate) const NONE_ITEM: &str =
    "a batch item holds None (a record with a null field, or one that failed to load or decode): the batch cannot be built (data)";
pub(crate) const CORRUPT: &str =
    "a data file that is corrupt, truncated or inconsistent with its index (data)";
const DATA_DEFECT: &str =
    "the message says a part of the data is defective (a malformed record, an unexpected label, invalid samples) (data)";
const DEVICE_ASSERT: &str =
    "a CUDA device-side assert: most often a label or an index from the data beyond its range (data)";
const DATA_ITEM: &str =
    "the error names the item of the data it failed on (a record, a row, a sample): that item does not fit (data)";

/// `'float' object has no attribute 'lower'`: a string method called on a float.
fn float_used_as_text(msg: &str) -> bool {
    const TEXT_METHODS: &[&str] = &[
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "replace",
        "startswith",
        "endswith",
        "encode",
        "title",
        "isdigit",
        "casefold",
        "splitlines",
        "find",
    ];
    msg.strip_prefix("'float' object has no attribute '")
        .and_then(|rest| rest.split_once('\''))
        .is_some_and(|(attr, _)| TEXT_METHODS.contains(&attr))
}

/// Does the (lower-cased) message name a path with a data file's extension?
fn names_data_file(lower: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        ".csv'",
        ".tsv'",
        ".parquet'",
        ".json'",
        ".jsonl'",
        ".orc'",
        ".avro'",
        ".txt'",
        ".npy'",
    ];
    has_any(lower, EXTENSIONS)
}

const OUT_OF_DOMAIN: &str =
    "a value in the data outside the logarithm's domain (a number at or below zero where only positive ones belong) (data)";
const DTYPE_FROM_DATA: &str =
    "the data's values arrived in a numeric type the model cannot take (ids as floats, labels as int32, images as bytes): the export's encoding (data)";
const SHORTER_THAN_WINDOW: &str =
    "a windowed dataset's length came out negative: its data is shorter than the window it needs (data)";
const LINE_FIELDS: &str =
    "a line of a data file splits into fewer fields than the code reads from it (another separator, a missing column) (data)";
const PAIRING: &str =
    "the arrays the code pairs (features and targets) differ in length: one was filtered, split or reshaped without the other (implementation)";
const ONE_FEATURE_1D: &str =
    "the code passes a single feature as a 1-D array where a table of samples by features is expected (implementation)";
const FILES_DIFFER: &str =
    "two files the job requires to be identical differ: an input artefact does not match the other (data)";
const ZERO_COUNT: &str =
    "a division by a count of the data that is zero: a class, group or split without rows (data)";
const LIST_CELLS: &str = "a column of the data holds lists where single values were expected (data)";
const UNKNOWN_LABEL: &str = "labels of a kind or value the model does not know (data)";
const READER_REFUSED: &str =
    "a reader of data files refused the file it was given: its format or its content is not what the reader takes (data)";
const NAN_TEXT: &str =
    "a text field of the data holds a number where text was expected: an empty cell, read as NaN (data)";
const TABLE_AS_FOLDER: &str =
    "a data table written as a folder of parts (as Spark and Dask write one) where the job reads a single file (data)";

/// Does `lower` name an item of the data by its number: `record 3812`, `row 17`, `sample #4`?
fn names_data_item(lower: &str) -> bool {
    let mut prev = "";
    for w in
        lower.split(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | '#' | '(' | ')' | '[' | ']' | '='))
    {
        if w.is_empty() {
            continue;
        }
        if matches!(prev, "record" | "row" | "sample" | "example" | "item" | "entry")
            && w.bytes().all(|b| b.is_ascii_digit())
        {
            return true;
        }
        prev = w;
    }
    false
}

/// Data rules by the exception's message (lower-cased), after those by type.
const DATA_PHRASES: &[PhraseRule] = &[
    (
        // the data's values arrived in a numeric type the model cannot take: token ids read as
        // floats (an empty cell), labels exported as int32, images left as bytes (uint8)
        &[
            "expected target dtype",
            "argument #1 'indices' to have one of the following scalar types",
            "Input type (unsigned char)",
            "Input type (torch.ByteTensor)",
            "Input type (torch.cuda.ByteTensor)",
        ],
        DTYPE_FROM_DATA,
    ),
    (
        // a windowed dataset's length `len(series) - window` below zero: the series is shorter
        // than the window
        &["__len__() should return >= 0"],
        SHORTER_THAN_WINDOW,
    ),
    (
        // a record with another number of fields than the file's (`shard_2.tsv:119: expected
        // 5 fields, got 4`)
        &["fields, got ", "fields, saw "],
        UNPARSABLE,
    ),
    (
        // struct's reader of fixed-size binary records on a file cut short (`unpack requires a
        // buffer of 268 bytes`)
        &["unpack requires a buffer of"],
        CORRUPT,
    ),
    (
        // cmp(1) finding two files the job requires to be the same apart (a tokenizer's
        // vocabulary against the checkpoint's): `a/vocab.txt b/vocab.txt differ: byte 11048,
        // line 1383`
        &["differ: byte ", "differ: char "],
        FILES_DIFFER,
    ),
    (
        // numpy reducing an empty array: the selection of the data it was given holds no
        // rows (a store without sales in the window, an empty split or group)
        &[
            "zero-size array to reduction operation",
            "of an empty sequence",
        ],
        EMPTY_SELECTION,
    ),
    (
        &[
            "in both train and",
            "in both the train",
            "overlap between train",
            "overlap between the train",
            "leaked into the val",
            "leaked into the test",
        ],
        "the splits share items: the same examples are in train and in validation or test (data)",
    ),
    (
        // a feature known only after the outcome (filled in when an account cancels): a
        // leakage check refusing it
        &[
            "leakage gate",
            "leakage check",
            "label leakage",
            "target leakage",
            "data leakage",
            "feature leakage",
            "leaks the label",
            "leaks the target",
        ],
        "a feature of the data leaks the target: it is known only after the outcome it should predict (data)",
    ),
    (
        // sequences of length 0 (sessions without events, empty texts) packed for an RNN
        &[
            "found an element in 'lengths' that is <= 0",
            // torch's padding of a signal or a sequence with no samples (`… with possibly 0
            // batch size and other non-zero dimensions for input, but got: [1, 1, 0]`)
            "and other non-zero dimensions for input",
        ],
        "sequences of length 0 in the data (a session without events, an empty text) (data)",
    ),
    (
        // `torch.multinomial` of weights below zero: a sampler's sample or class weights
        &["invalid multinomial distribution (encountering probability entry < 0)"],
        "weights below zero in the data (a sampler's sample or class weights) (data)",
    ),
    (
        // audio recorded at another sampling rate than the model's feature extractor takes
        // (`… was trained using a sampling rate of 16000. Please make sure that the provided
        // `raw_speech` input was sampled with 16000 and not 8000.`)
        &[
            "was trained using a sampling rate of",
            "sampling rate mismatch",
            // a job's own check of its audio (`utt-0006.wav: sample rate 8000 Hz, expected
            // 16000 Hz`)
            "hz, expected",
            // the first line of that message in transformers (its extractor's config follows)
            "the model corresponding to this feature extractor",
        ],
        "audio in the data at another sampling rate than the model was trained on (data)",
    ),
    (
        // wave's reader on a file that is no PCM WAV (floating-point samples, another format)
        &["does not start with riff id", "not a wave file", "unknown format: "],
        "an audio file of the data in a format its reader cannot read (data)",
    ),
    (
        // `sort -c` on input that must be sorted: `sort: clicks.tsv:20001: disorder: …`
        &[": disorder: "],
        "the data is not in the order the job needs (unsorted input) (data)",
    ),
    (
        // iconv's words for bytes not in the encoding it was told
        &["illegal input sequence"],
        ENCODING,
    ),
    (
        // json's decoder recursing through a record nested deeper than it can follow
        &["while decoding a json"],
        "a data record nested deeper than its parser can follow (data)",
    ),
    (
        &["column", "not in index"],
        "a column the data lacks or that does not fit (data)",
    ),
    (
        &[
            "found array with 0 sample",
            // torch's losses: a batch of inputs and one of targets that do not pair up
            "to match target batch_size",
        ],
        "the inputs' numbers of samples do not fit together (data)",
    ),
    (
        &[
            "expected 1d array",
            "could not broadcast",
            "could not be broadcast",
            "shapes (",
            "not aligned",
            "shape mismatch",
            "size mismatch",
            "dimension mismatch",
            // the input's features do not match the model's first layer
            "shapes cannot be multiplied",
            // images with another number of channels than the first convolution's
            "channels, but got",
            // the Hugging Face image models' check of the pixel values' channels
            "channel dimension of the pixel values",
            // a reshape into the shape the model takes (`view(-1, 28, 28)`) of an input whose
            // size does not fit it (numpy's `cannot reshape array of size 67991 into shape (17)`)
            "is invalid for input of size",
            "cannot reshape array of size",
            // a vision model's check of its input's size (`Input image size (64*64) doesn't
            // match model (32*32).`)
            "doesn't match model (",
        ],
        SHAPE,
    ),
    (
        &[
            "could not convert string to float",
            "invalid literal for int",
            "unable to parse string",
            "dtype object",
            // strings where numbers were expected: pandas keeps the column as objects
            "numpy.object_",
            "dtype=object",
            "dtype('o')",
            // a null (None) where a number was expected: a JSON `null`, an empty field
            "must be real number, not nonetype",
            "must be a string or a real number, not 'nonetype'",
            "must be a string or a number, not 'nonetype'",
            // pyarrow / sklearn
            "tried to convert to",
            "unable to convert array of bytes/strings",
            // decimal.Decimal of a string that is no number (`EUR 1.434,22`)
            "decimal.conversionsyntax",
        ],
        "values in the data that do not parse as numbers (data)",
    ),
    (
        // fewer examples than what the code asks of them (clusters, folds, neighbours)
        &[
            "greater than the number of samples",
            "should be >= n_clusters",
            "n_neighbors <= n_samples",
            "fewer samples than",
        ],
        "too few examples in the data for what the code asks of them (clusters, folds) (data)",
    ),
    (
        // a table whose columns changed type or name since the code was written
        // (pandas' `Length mismatch: Expected axis has 6 elements, new values have 7` when
        // the code names the columns of a file that has fewer or more)
        &[
            "couldn't cast",
            "schema mismatch",
            "does not match the schema",
            "length mismatch: expected axis has",
        ],
        "the data's schema is not the one expected: a column's type or name changed (data)",
    ),
    (
        // a tokenizer's vocabulary file that lost an entry it needs (`WordLevel error:
        // Missing [UNK] token from the vocabulary`)
        &["token from the vocabulary", "not in the vocabulary", "missing from the vocabulary"],
        "the tokenizer's vocabulary lacks an entry it needs: a broken vocabulary file (data)",
    ),
    (
        // a fast tokenizer handed a number or a None (an empty cell) among the texts
        &["textencodeinput must be", "textinputsequence must be str"],
        "the tokenizer was given values that are not text (numbers, empty cells): the text column's values (data)",
    ),
    (
        // `np.load` of a file holding Python objects (ragged lists, mixed records)
        &["object arrays cannot be loaded"],
        "the array file holds Python objects (ragged or mixed records), not the numeric array expected: the file's format (data)",
    ),
    (
        &["decompression bomb"],
        "an item of the data too large for its reader (an oversized image) (data)",
    ),
    (
        // dates written in another format than the one the code parses
        &[
            "doesn't match format",
            "does not match format",
            "unconverted data remains",
            "unknown datetime string format",
            "day is out of range for month",
            // timestamps with a time zone where the code's have none, or the reverse
            "tz-naive and tz-aware",
            "invalid comparison between dtype=datetime64",
            // a sentinel date (9999-12-31) beyond what a nanosecond timestamp holds
            "out of bounds nanosecond timestamp",
        ],
        "dates in the data that are not in the expected format (data)",
    ),
    (
        &[
            "unknown label type",
            "previously unseen",
            "unseen label",
            // torchmetrics' check of a metric's targets (`Detected the following values in
            // `target`: tensor([0, 1, 2]) but expected only the following values [0, 1].`)
            "detected the following values in `target`",
        ],
        UNKNOWN_LABEL,
    ),
    (&["label must be in", "labels must be in"], CLASS_INDEX),
    (
        &["least populated class", "too few members"],
        "too few examples of a class to split or stratify on (data)",
    ),
    (
        &["unlabelled", "unlabeled", "missing labels", "without a label"],
        "examples without labels (data)",
    ),
    (
        // (a Cholesky factorisation of a kernel or covariance of the data: duplicated or
        // collinear rows, `the input is not positive-definite`)
        &["singular matrix", "svd did not converge", "not positive-definite", "not positive definite"],
        "a singular or degenerate data matrix (data)",
    ),
    (
        &[
            "is expecting",
            "feature names",
            "features, but",
            "number of features",
        ],
        "the data's features do not match the model's (data)",
    ),
    (&["missing values"], "missing values in the input (data)"),
    (
        // a float among strings is a missing value (NaN) in a text column: sorting or
        // encoding it fails, and a tokenizer refuses it
        &[
            "instances of 'float' and 'str'",
            "instances of 'str' and 'float'",
            "text input must be of type `str`",
        ],
        "a missing value (NaN) where text was expected: a text column with empty cells (data)",
    ),
    (
        // a split, batch or label set in which one class is absent
        &[
            "only one class",
            "0 positive labels",
            "no positive labels",
            "no positive samples",
            "contains only one class",
            "at least 2 classes",
            // class weights computed from the labels found, fewer than the classes
            // (`weight tensor should be defined either for all 3 classes or no classes but got
            // weight tensor of shape: [2]`)
            "should be defined either for all",
        ],
        "a split or label set in which a class is missing (only one class present) (data)",
    ),
    (
        // a sampler or loader given an empty data set, a filter that left nothing
        &[
            "num_samples=0",
            "nothing to train on",
            "no rows left",
            "rows left",
            "dataset is empty",
            "empty dataset",
            "no samples left",
        ],
        "no data left to train on: an empty data set (data)",
    ),
    (
        // a batch of examples that were never padded or cut to one length
        &[
            "stack expects each tensor to be equal size",
            "inhomogeneous shape",
            "setting an array element with a sequence",
            "expected sequence of length",
            "activate truncation and/or padding",
            // numpy's stack / concatenate, torch's cat, of items of different sizes
            "all input arrays must have the same shape",
            "sizes of tensors must match",
            "all the input array dimensions",
        ],
        RAGGED,
    ),
    (
        // a key that should be unique and is not: a timestamp twice, an id repeated
        &[
            "duplicate labels",
            "duplicate keys",
            "duplicate entries",
            "duplicate index",
            "duplicate timestamps",
            "duplicate ids",
            "duplicate points",
            "duplicate rows",
            "duplicate samples",
            "keys are not unique",
            "index must be unique",
            "index has duplicate",
        ],
        "duplicate keys in the data where each must be unique (a repeated timestamp, id or label) (data)",
    ),
    (
        // a file cut short or garbled on its way (a partial download, an interrupted copy),
        // or an index written for another file; not the heap's `double free or corruption`
        &[
            "file is corrupt",
            "corrupt file",
            "corrupted file",
            "is corrupted",
            "corrupt record",
            "corrupted record",
            "file is truncated",
            "truncated file",
            "unexpected end of file",
            "checksum mismatch",
            "crc mismatch",
            "bad magic number",
            "invalid load key",
            "failed finding central directory",
            "not a zip file",
            // an empty or cut pickle, a garbled compressed stream, a binary file read as text
            "ran out of input",
            "while decompressing",
            "line contains nul",
            // h5py, numpy, safetensors, tar and gzip on a file cut short or of another kind
            "file signature not found",
            "failed to interpret file",
            // np.load on a file that is no .npy (a Git LFS pointer: it tries pickle and
            // refuses), or on an empty one
            "contains pickled (object) data",
            "no data left in file",
            // np.load(mmap_mode=…) of a .npy cut short: its header promises more than is there
            "mmap length is greater than file size",
            "error while deserializing header",
            "unexpected end of data",
            "could not be opened successfully",
            "not a gzipped file",
            "compressed file ended before",
            // gzip's and zlib's checks of a damaged stream
            "crc check failed",
            "incorrect data check",
            "invalid stored block lengths",
            // an image or a sound file its library cannot read
            "cannot identify image file",
            "format not recognised",
            "format not recognized",
        ],
        CORRUPT,
    ),
    (
        // values beyond what the type they are packed into holds (16-bit pixels into uint8)
        &[
            "without overflow",
            "out of bounds for uint",
            "out of bounds for int",
        ],
        "values in the data out of range for the type they are stored in (data)",
    ),
    (
        // a log / Box-Cox transform fed zeros or negatives
        &[
            "data must be positive",
            "strictly positive data",
            "non-positive values",
        ],
        "non-positive values fed to a transform that needs positive data (data)",
    ),
];

fn data(short: &str, msg: &str, ctx: &TbContext) -> Option<&'static str> {
    let lower = msg.to_ascii_lowercase();
    // An item the dataset returned as None reaches the collate function: the record failed
    // to load upstream (a `TypeError` there about a `NoneType`). Another wrong type (a PIL
    // image never turned into a tensor) is the code's.
    if ctx.collate_frame && msg.contains("NoneType") {
        return Some(NONE_ITEM);
    }
    // A string where the batch needs numbers (`new(): invalid data type 'str'`: ids stored
    // json-encoded twice): a malformed field of the records.
    if ctx.collate_frame && (msg.contains("'str'") || msg.contains("not str")) {
        return Some(STR_ITEM);
    }
    if short == "SamplingError" {
        return sampler_start_invalid(msg).then_some(
            "the model cannot be evaluated at its start: the data lie outside the likelihood's support (data)",
        );
    }
    if short == "KeyError" {
        // A KeyError raised inside pandas is a column / index label that is not there; in a
        // dataset's `__getitem__`, a record without the field.
        return if ctx.pandas_frame || has_any(msg, &["not in index", "None of [", "columns]"]) {
            Some("a KeyError raised inside pandas: a column the data lacks (data)")
        } else if ctx.getitem_frame {
            Some("a KeyError in a dataset's record lookup: a record that lacks the field (data)")
        } else if key_is_a_value(msg) {
            Some(KEY_IS_A_VALUE)
        } else {
            None
        };
    }
    // A tensor / array indexed beyond its size (`index 7 is out of bounds for dimension 0
    // with size 5`): the index values come from the data (labels, ids), unlike a Python
    // list's `index out of range`.
    // An embedding looked up with an id beyond its table (`index out of range in self`):
    // token or category ids the model was not built for.
    // CUDA's device-side assert: a kernel's bounds check, most often a label or an index
    // beyond its range (the message cannot say more: it is asynchronous).
    if msg.contains("device-side assert triggered") {
        return Some(DEVICE_ASSERT);
    }
    if short == "IndexError" && lower.contains("index out of range in self") {
        return Some(EMBEDDING_ID);
    }
    if short == "IndexError"
        && !ctx.index_arithmetic
        && has_any(&lower, &["out of bounds for dimension", "out of bounds for axis"])
    {
        return Some("a tensor indexed beyond its size: an index (a label, an id) from the data (data)");
    }
    match short {
        "ParserError" | "EmptyDataError" => return Some(UNPARSABLE),
        "UnicodeDecodeError" => return Some(ENCODING),
        _ => {}
    }
    // A label value the job's label set does not hold (`label 'neutral ' is not one of
    // ['negative', 'neutral', 'positive']`).
    if lower.contains("label")
        && has_any(
            &lower,
            &["is not one of", "not in the label set", "not a known label"],
        )
    {
        return Some(UNKNOWN_LABEL);
    }
    // pandas hashing a column whose cells hold lists (a tag list where one value was
    // expected): the column's values.
    if ctx.pandas_frame && msg.contains("unhashable type: 'list'") {
        return Some(LIST_CELLS);
    }
    // A string method called on a float: a text column's empty cell, read as NaN.
    if short == "AttributeError" && float_used_as_text(msg) {
        return Some(NAN_TEXT);
    }
    // A table written as a folder of parts (Spark's and Dask's `users.csv/part-0000…`) where
    // the job reads one file.
    if short == "IsADirectoryError" && names_data_file(&lower) {
        return Some(TABLE_AS_FOLDER);
    }
    if short == "FileNotFoundError"
        || has_any(
            msg,
            &["No such file or directory", "dangling symlink", "broken symlink"],
        )
    {
        return Some("a missing data file (data)");
    }
    // tar's word for a member its archive of the data lacks (`tar: shard-03.npy: Not found in
    // archive`)
    if msg.contains("Not found in archive") {
        return Some("a missing data file (data)");
    }
    // click's words for an input path the job was given that is not there (`Invalid value
    // for '--train-dir': Directory 'exports/2026-12-02' does not exist.`)
    if lower.contains("' does not exist") && has_any(&lower, &["directory '", "file '", "path '"]) {
        return Some("a missing data file (data)");
    }
    // NaN / infinity in the input (a NaN *loss* was taken by `convergence` before).
    let words_nan = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| matches!(w, "nan" | "nans" | "infinity" | "inf"));
    if words_nan && !matches!(short, "FloatingPointError") {
        return Some(NAN_INPUT);
    }
    if class_absent(msg) {
        return Some(CLASS_ABSENT);
    }
    if let Some(reason) = first_phrase(&lower, DATA_PHRASES) {
        return Some(reason);
    }
    // A file whose digest is not the one its manifest gives: fetched incompletely or garbled.
    if has_word(
        &lower,
        &[
            "sha1", "sha256", "sha512", "md5", "checksum", "crc", "crc32", "digest",
        ],
    ) && has_any(
        &lower,
        &[
            "mismatch",
            "does not match",
            "doesn't match",
            "do not match",
            "did not match",
            "expected",
        ],
    ) {
        return Some(CORRUPT);
    }
    // A data file's index pointing outside it (`entry 3 has offset 4096 beyond the shard
    // size 1024`): the index was written for another file, or the file was cut short.
    if lower.contains("offset") && has_any(&lower, &["beyond", "past the end", "exceeds the"]) {
        return Some(CORRUPT);
    }
    if has_any(&lower, &["label", "target", "class index", "class id"])
        && has_any(&lower, &["out of range", "out of bounds", "invalid", "outside"])
    {
        return Some(CLASS_INDEX);
    }
    if lower.contains("empty") && has_any(&lower, &["split", "dataset", "rows", "samples", "data "]) {
        return Some("an empty split or dataset (data)");
    }
    if (lower.contains("shape") && has_any(&lower, &["mismatch", "expected", "incompatible"]))
        || (lower.contains("does not match")
            && has_word(
                &lower,
                &["samples", "labels", "shape", "features", "length", "rows"],
            ))
    {
        return Some(SHAPE);
    }
    // Last: an error that names the item of the data it failed on (`record 3812: need 64
    // values, got 25`, `row 17`), when no rule above says more. A code error's type (a NameError…)
    // says more than the item.
    if implementation(short).is_none() && names_data_item(&lower) {
        return Some(DATA_ITEM);
    }
    // Then: a message that says a part of the data is defective (`malformed record`,
    // `unexpected label`, `invalid samples`, `images are corrupt`), as whole words.
    if implementation(short).is_none() && data_defect(&lower) {
        return Some(DATA_DEFECT);
    }
    // Last of all: the job's own code failed converting values (to a tensor, an array, a
    // number, a date) with an error about their value or type: the values it was given.
    // (A list of tensors handed to `torch.tensor` is the code's.)
    if ctx.converting
        && !msg.contains("only one element tensors")
        && matches!(
            short,
            "ValueError" | "TypeError" | "OverflowError" | "RuntimeError"
        )
    {
        return Some(CONVERTING);
    }
    None
}

pub(crate) const NAN_INPUT: &str = "NaN or infinity in the input (data)";
pub(crate) const CONFIG_SYNTAX: &str =
    "the job's own configuration file does not parse (a trailing comma, a quote, an indent): a mistake in the job's files (implementation)";
pub(crate) const ENCODED_OTHERWISE: &str =
    "a field of the data is encoded otherwise than the code decodes it (base64 without padding, another alphabet) (data)";
pub(crate) const NAN_FROM_EMPTY_BATCH: &str =
    "the loss is NaN because a batch of the data held nothing to average over (empty targets, zero items): 0/0 made by the data (data)";

/// Does `msg` name a count of zero items of the data (`0 target characters`, `0 samples`,
/// `zero tokens`, `empty batch`)?
fn names_zero_count(msg: &str) -> bool {
    static ZERO: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    ZERO.get_or_init(|| {
        regex::Regex::new(
            r"(?i)\b(?:0|zero|no) (?:[a-z_-]+ ){0,2}(?:characters|chars|tokens|targets|labels|samples|frames|rows|examples|items|elements)\b|\bempty (?:batch|targets?|labels?|transcripts?)\b",
        )
        .expect("valid")
    })
    .is_match(msg)
}

pub(crate) const FORMAT_UNSUPPORTED: &str =
    "a data file uses a format its reader does not implement (a compression method, a codec): the file's format (data)";
pub(crate) const INTERRUPTED: &str = "interrupted from outside (Ctrl-C, SIGINT) (resource)";
pub(crate) const ERROR_AFTER_DIVERGENCE: &str =
    "an error no rule explains, raised after the run's loss had become NaN or infinite: a consequence of the diverged optimisation (convergence)";
pub(crate) const NAN_FROM_DIVERGENCE: &str =
    "NaN in a step's input after the run's loss had become NaN or infinite: the NaN came from the diverged optimisation, not the data (convergence)";

const CONVERTING: &str =
    "the job's code failed converting the values it was given (to a tensor, an array, a number, a date): the data's values (data)";

/// Does `lower` say that a part of the data (its records, labels, samples, images…) is
/// defective, or that there is none of it (`val.csv has 0 rows`, `no samples left`)? Both as
/// whole words, so `target_modules` or `feature_dim` say nothing.
fn data_defect(lower: &str) -> bool {
    const PARTS: &[&str] = &[
        "record", "records", "row", "rows", "sample", "samples", "example", "examples", "label", "labels",
        "target", "targets", "feature", "features", "dataset", "shard", "shards", "image", "images", "csv",
        "parquet", "jsonl", "frame", "frames", "pixels",
    ];
    let mut prev = "";
    let none_of = words(lower).any(|w| {
        let none = PARTS.contains(&w) && matches!(prev, "0" | "no" | "zero");
        prev = w;
        none
    });
    none_of
        // values that do not vary at all (`41 of 96 frames have zero variance`): blank input
        || has_word(lower, PARTS) && lower.contains("zero variance")
        || has_word(lower, PARTS)
            && has_word(
                lower,
                &[
                    "malformed",
                    "corrupt",
                    "corrupted",
                    "invalid",
                    "unexpected",
                    "missing",
                    "empty",
                    "mismatch",
                    "mismatched",
                    "differ",
                    "disagree",
                    "bad",
                    "inconsistent",
                    "unknown",
                    "duplicate",
                    "truncated",
                    "garbled",
                    "constant",
                ],
            )
}

/// Implementation rules by exception type: errors in the code's own logic.
fn implementation(short: &str) -> Option<&'static str> {
    Some(match short {
        "SyntaxError" | "IndentationError" | "TabError" => "the code does not parse (implementation)",
        "ImportError" | "ModuleNotFoundError" => {
            "a module that cannot be imported: the code or its environment (implementation)"
        }
        "KeyError" => "a KeyError on the code's own dict (implementation)",
        "IndexError" => "a Python list indexed beyond its end (implementation)",
        "AttributeError"
        | "NameError"
        | "TypeError"
        | "UnboundLocalError"
        | "NotImplementedError"
        | "RecursionError"
        | "AssertionError"
        | "ZeroDivisionError" => "an error in the code's own logic (implementation)",
        _ => return None,
    })
}

/// torchrun's `ChildFailedError`: a weak verdict (the rank's own evidence, when the log has
/// it, decides), with a reason that says what it is.
pub(crate) const LAUNCHER_SUMMARY: &str =
    "torchrun's summary of a failed rank: it only relays another process's end (implementation)";

/// The fallback's reason: no rule names a cause.
pub(crate) const FALLBACK: &str =
    "no rule names a cause: the program's own logic refused to go on (implementation)";

/// Classify an exception `name: msg` (name may be empty for a native library's fatal line).
pub(crate) fn classify_exception(name: &str, msg: &str, ctx: &TbContext) -> Verdict {
    let short = short_name(name);
    // A launcher stopped by a signal: the exit classifier's word on that signal (one
    // classifier for exits and logs).
    if let Some(j) = launcher_signal(short, msg)
        .and_then(|s| super::exit::judge_exit(crate::model::ExitOutcome::Signal(s), None))
    {
        return strong(j.category, j.reason);
    }
    // (Before the signal a worker died of: a bus error `out of shared memory` is the
    // memory's.)
    if let Some(r) = resource(short, msg, ctx) {
        return strong(Category::Resource, r);
    }
    // A NaN loss whose message names a batch with nothing in it (`loss is nan … (0 target
    // characters in the batch …)`): a mean over zero items, 0/0, made by the data.
    if loss_not_finite(msg) && names_zero_count(msg) {
        return strong(Category::Data, NAN_FROM_EMPTY_BATCH);
    }
    // A worker or child that died of a signal the message names (a DataLoader worker
    // `killed by signal: Killed`): that signal's verdict.
    if let Some(v) = child_signal(msg) {
        return v;
    }
    if let Some(v) = no_gpu(msg) {
        return v;
    }
    if let Some(r) = first_phrase(msg, INFRASTRUCTURE_PHRASES) {
        return strong(Category::Infrastructure, r);
    }
    // An XML-RPC server's fault (`xmlrpc.client.Fault: <Fault 500: 'queue backend: …'>`), a
    // mail server's refusal (`smtplib.SMTPDataError: (452, b'4.3.1 Insufficient system
    // storage')`; not a login the job's credentials fail): the server's own error.
    if name == "xmlrpc.client.Fault"
        || name.starts_with("smtplib.SMTP") && name != "smtplib.SMTPAuthenticationError"
    {
        return strong(Category::Infrastructure, SERVICE_FAULT);
    }
    // An error a Redis server answered (`redis.exceptions.ResponseError`, its connection
    // errors): the server's state, unless the job sent a command the server cannot take (a
    // wrong type, an unknown command, a wrong number of arguments: the code's).
    if name.starts_with("redis.exceptions.")
        && !has_any(
            msg,
            &[
                "WRONGTYPE",
                "unknown command",
                "wrong number of arguments",
                "syntax error",
            ],
        )
    {
        return strong(Category::Infrastructure, SERVICE_UNREACHABLE);
    }
    // A connection to a service dropped or refused, by the exception's type alone
    // (`http.client.RemoteDisconnected: Remote end closed connection without response`).
    // Between a job's ranks the collective rules above took it already.
    if matches!(
        short,
        "RemoteDisconnected"
            | "ConnectionRefusedError"
            | "ConnectionAbortedError"
            | "ProtocolError"
            | "IncompleteRead"
    ) {
        return strong(Category::Infrastructure, SERVICE_UNREACHABLE);
    }
    // A timeout raised inside a network client (`TimeoutError: timed out` from socket's
    // `recv_into` under urllib): the service the job called did not answer in time.
    if ctx.network_frame
        && (matches!(
            short,
            "TimeoutError" | "timeout" | "ReadTimeout" | "ConnectTimeout"
        ) || msg.to_ascii_lowercase().contains("timed out"))
    {
        return strong(Category::Infrastructure, SERVICE_SILENT);
    }
    // The peer of a socket the job writes to or reads from went away (a collector agent, a
    // service): a broken pipe or a reset there is the service's. (A pipe to `head` closing
    // is not a socket's.)
    // A timeout concurrent.futures raises (`as_completed(…, timeout=…)`: `6 (of 10) futures
    // unfinished`, `Future.result(timeout=…)`): the work took longer than the time the job
    // gave it.
    if ctx.futures_frame && matches!(short, "TimeoutError" | "CancelledError") {
        return strong(Category::Resource, WORK_TIMED_OUT);
    }
    if ctx.network_frame && matches!(short, "BrokenPipeError" | "ConnectionResetError") {
        return strong(Category::Infrastructure, SERVICE_UNREACHABLE);
    }
    // A socket's connect to a local service's path that is not there (`FileNotFoundError:
    // [Errno 2] No such file or directory`, no file name: no file was opened): its agent is
    // not running.
    if ctx.network_frame
        && short == "FileNotFoundError"
        && msg.trim_end().ends_with("No such file or directory")
    {
        return strong(Category::Infrastructure, SOCKET_ABSENT);
    }
    // subprocess' `TimeoutExpired`: a step the job ran took longer than the time it gave it.
    if short == "TimeoutExpired" {
        return strong(Category::Resource, WORK_TIMED_OUT);
    }
    // torch.distributed.elastic's rendezvous (`RendezvousTimeoutError`, `…ClosedError`,
    // `…ConnectionError`): the job's nodes never all met at the rendezvous store (a node that
    // did not start or join, a store host that cannot be reached) before any rank ran.
    if short.starts_with("Rendezvous") && short.ends_with("Error") {
        return strong(Category::Infrastructure, RENDEZVOUS_FAILED);
    }
    if let Some(r) = convergence(short, msg) {
        return strong(Category::Convergence, r);
    }
    if let Some(r) = implementation_by_message(msg) {
        return strong(Category::Implementation, r);
    }
    // The program that was to run does not exist (`python: can't open file 'trian.py'`): the
    // job's command, not its data.
    if msg.contains("can't open file") && has_any(msg, &[".py'", ".py\"", ".sh'"]) {
        return strong(Category::Implementation, SCRIPT_MISSING);
    }
    // A Hugging Face model that computed no loss because the batches it received hold no
    // labels (`the inputs it received are input_ids,attention_mask`): the labels are not in
    // the data as the model needs them.
    if let Some((_, got)) = msg
        .split_once("did not return a loss")
        .and_then(|(_, m)| m.split_once("inputs it received are"))
        .filter(|(_, got)| !got.contains("label"))
    {
        // The labels are there under a name the model does not take (`target`): the code's
        // naming; else the batches hold none.
        let renamed = got
            .split(|c: char| c == ',' || c == '.' || c.is_whitespace())
            .any(|k| matches!(k, "target" | "targets" | "y" | "class" | "classes" | "gold"));
        return if renamed {
            strong(Category::Implementation, LABELS_RENAMED)
        } else {
            strong(Category::Data, NO_LABELS_IN_BATCH)
        };
    }
    // The csv module's parser refusing a file's bytes (`_csv.Error: field larger than field
    // limit (131072)`, `line contains NUL`, `new-line character seen in unquoted field`): the
    // file's content. (Handing it bytes or a file opened in binary is the code's.)
    if matches!(name, "_csv.Error" | "csv.Error") && !has_any(msg, &["text mode", "not bytes"]) {
        return strong(Category::Data, UNPARSABLE);
    }
    if short == "IndexError" && ctx.index_arithmetic && msg.contains("out of bounds for") {
        return strong(Category::Implementation, OFF_BY_ONE);
    }
    // An exception that names no cause of its own, right after a service answered with an
    // error (`KeyError: 'access_token'` under the token service's `{'error':
    // 'temporarily_unavailable'}`): the job read the service's error as its answer.
    if ctx.service_refused
        && matches!(
            short,
            "KeyError"
                | "TypeError"
                | "ValueError"
                | "AttributeError"
                | "IndexError"
                | "JSONDecodeError"
                | "AssertionError"
        )
    {
        return strong(Category::Infrastructure, SERVICE_ANSWERED_ERROR);
    }
    if ctx.optim_frame && matches!(short, "TypeError" | "ValueError") {
        return strong(Category::Implementation, OPTIMIZER_SETTINGS);
    }
    // A parser's syntax error (`JSONDecodeError: Expecting property name … line 9 column 3`:
    // a position, not a table's column): in the job's own configuration the code's mistake,
    // elsewhere a record of the data that does not parse.
    if matches!(
        short,
        "JSONDecodeError" | "TOMLDecodeError" | "ScannerError" | "ParserError" | "YAMLError"
    ) {
        return if ctx.config_load {
            strong(Category::Implementation, CONFIG_SYNTAX)
        } else {
            strong(Category::Data, UNPARSABLE)
        };
    }
    // binascii's refusal of an encoded field (`Incorrect padding`, `Non-base64 digit found`,
    // `Odd-length string`): the data's values are encoded otherwise than the code decodes
    // them (base64url without padding, another alphabet).
    if short == "Error" && name.starts_with("binascii.") {
        return strong(Category::Data, ENCODED_OTHERWISE);
    }
    if short == "ValueError" && ctx.splitting && msg.starts_with("not enough values to unpack") {
        return strong(Category::Data, LINE_FIELDS);
    }
    // The log of a value at or below zero, taken by the job's own code (`math.log(d)`: `math
    // domain error`): a value the data should not hold. (A square root of a variance that
    // cancellation made negative is the code's numerics.)
    if ctx.log_call && msg.contains("math domain error") {
        return strong(Category::Data, OUT_OF_DOMAIN);
    }
    if short == "ZeroDivisionError" && ctx.count_divisor {
        return strong(Category::Data, ZERO_COUNT);
    }
    if let Some(r) = data(short, msg, ctx) {
        return strong(Category::Data, r);
    }
    // A reader of data files that does not implement what the file uses (zipfile's `That
    // compression method is not supported` for an .npz written with Zstandard): the file's
    // format. (Elsewhere a NotImplementedError is a code path nobody wrote.)
    if ctx.reader_frame
        && short == "NotImplementedError"
        && has_any(
            &msg.to_ascii_lowercase(),
            &["compression", "codec", "format", "encoding"],
        )
    {
        return strong(Category::Data, FORMAT_UNSUPPORTED);
    }
    // A value or format error raised inside a reader of data files, that no rule above
    // names: the reader refused the file it was given. (A wrong type, a missing attribute or
    // an unparsable module there is the calling code's.)
    if ctx.reader_frame
        && !matches!(
            short,
            "TypeError"
                | "AttributeError"
                | "NameError"
                | "UnboundLocalError"
                | "ImportError"
                | "ModuleNotFoundError"
                | "NotImplementedError"
                | "SyntaxError"
                | "RecursionError"
        )
    {
        return strong(Category::Data, READER_REFUSED);
    }
    if gave_up_retrying(msg) {
        return strong(Category::Infrastructure, RETRIES_EXHAUSTED);
    }
    if let Some(r) = implementation(short) {
        return strong(Category::Implementation, r);
    }
    // Anything else (a ValueError about a parameter, a custom exception, sys.exit with a
    // message): the program's own logic refused to go on, which is the code's owner's call.
    Verdict {
        category: Category::Implementation,
        strong: false,
        reason: if short == "ChildFailedError" {
            LAUNCHER_SUMMARY
        } else {
            FALLBACK
        },
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
    // A searcher built once (`str::find` builds one per call, more than the search costs).
    static SEP: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    let (name, msg) = match SEP
        .get_or_init(|| memchr::memmem::Finder::new(": "))
        .find(line.as_bytes())
    {
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
        // the C modules' lower-case classes: `zlib.error`, `struct.error`, `socket.gaierror`
        || (name.contains('.') && short.ends_with("error"))
        || (uppercase >= 2 && short.starts_with(|c: char| c.is_ascii_uppercase()));
    plausible.then_some(ExcLine { name, msg, line })
}

/// Is a KeyError's key (its message, `'refund '`) a value from the data rather than a name
/// the code chose? Names in code are identifiers (`'lr_schedule'`, `'label'`, `'eval_f1'`);
/// a key with spaces at its ends or inside (`'refund '`, `'New York'`) or a capitalised
/// word (`'Positive'`, where the map is lower-case) is a label or category as an export
/// wrote it.
fn key_is_a_value(msg: &str) -> bool {
    let Some(key) = msg.trim().strip_prefix('\'').and_then(|k| k.strip_suffix('\'')) else {
        return false;
    };
    if key.is_empty() || key.len() > 60 {
        return false;
    }
    let spaced = key.trim() != key || key.contains(' ');
    let mut chars = key.chars();
    let capitalised = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && key.len() > 1
        && chars.all(|c| c.is_ascii_lowercase());
    spaced || capitalised
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(line: &str, pandas: bool) -> Category {
        let e = parse_exception_line(line).expect("exception line");
        let ctx = TbContext {
            pandas_frame: pandas,
            ..TbContext::default()
        };
        classify_exception(e.name, e.msg, &ctx).category
    }

    #[test]
    fn exception_lines_are_recognised_but_output_is_not() {
        assert!(parse_exception_line("ValueError: Input contains NaN.").is_some());
        assert!(parse_exception_line("KeyboardInterrupt").is_some());
        assert!(parse_exception_line("numpy.linalg.LinAlgError: Singular matrix").is_some());
        assert!(parse_exception_line("DivergenceDetected: too many").is_some());
        assert!(parse_exception_line("zlib.error: Error -3 while decompressing data").is_some());
        assert!(parse_exception_line("socket.gaierror: [Errno -2] Name or service not known").is_some());
        assert!(parse_exception_line("terror: not one").is_none());
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
            Infrastructure
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
        assert_eq!(cat("OSError: [Errno 27] File too large", false), Resource);
        assert_eq!(
            cat(
                "ValueError: cannot reindex on an axis with duplicate labels",
                false
            ),
            Data
        );
        assert_eq!(
            cat("ValueError: all input arrays must have the same shape", false),
            Data
        );
        assert_eq!(
            cat("RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central directory", false),
            Data
        );
        // The heap's corruption and a parser's end of input are the code's, not a corrupt file.
        assert_eq!(
            cat("RuntimeError: double free or corruption (out)", false),
            Implementation
        );
        assert_eq!(
            cat("SyntaxError: unexpected EOF while parsing", false),
            Implementation
        );
    }

    /// Library messages as torch, numpy, pandas, pyarrow, PIL, requests and the Hugging Face
    /// hub word them, each judged by what went wrong rather than by its exception's type.
    #[test]
    fn library_messages_are_judged_by_what_went_wrong() {
        use Category::*;
        let table = [
            ("RuntimeError: DataLoader worker (pid(s) 4242) exited unexpectedly", Resource),
            ("RuntimeError: [enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory: you tried to allocate 1073741824 bytes.", Resource),
            ("RuntimeError: CUDA error: no kernel image is available for execution on the device", Implementation),
            ("RuntimeError: can't start new thread", Resource),
            ("BlockingIOError: [Errno 11] Resource temporarily unavailable", Implementation),
            ("ConnectionRefusedError: [Errno 111] Connection refused", Infrastructure),
            ("socket.gaierror: [Errno -2] Name or service not known", Infrastructure),
            ("urllib.error.URLError: <urlopen error [Errno 101] Network is unreachable>", Infrastructure),
            ("requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: https://hub.example/api", Infrastructure),
            ("OSError: We couldn't connect to 'https://hub.example' to load this file, couldn't find it in the cached files.", Infrastructure),
            // between a job's own ranks a refused connection is the collective's
            ("torch.distributed.DistNetworkError: c10d store: Connection refused", Resource),
            ("RuntimeError: The total norm of order 2.0 for gradients from `parameters` is non-finite, so it cannot be clipped.", Convergence),
            ("ValueError: Expected parameter loc (Tensor of shape (64, 2)) of distribution Normal(loc: torch.Size([64, 2])) to satisfy the constraint Real(), but found invalid values:", Convergence),
            ("ValueError: Input contains NaN, infinity or a value too large for dtype('float64').", Data),
            ("RuntimeError: Error(s) in loading state_dict for Net: size mismatch for fc.weight: copying a param with shape torch.Size([10, 64]) from checkpoint", Implementation),
            ("ValueError: loaded state dict contains a parameter group that doesn't match the size of optimizer's group", Implementation),
            ("RuntimeError: Given groups=1, weight of size [64, 3, 7, 7], expected input[8, 1, 224, 224] to have 3 channels, but got 1 channels instead", Data),
            ("RuntimeError: value cannot be converted to type uint8 without overflow", Data),
            ("OverflowError: Python integer 300 out of bounds for uint8", Data),
            ("TypeError: can't convert np.ndarray of type numpy.object_. The only supported types are: float64, float32.", Data),
            ("pyarrow.lib.ArrowInvalid: Could not convert 'abc' with type str: tried to convert to double", Data),
            ("RuntimeError: CUDA error: device-side assert triggered", Data),
            ("EOFError: Ran out of input", Data),
            ("zlib.error: Error -3 while decompressing data: invalid stored block lengths", Data),
            ("_csv.Error: line contains NUL", Data),
            ("PIL.UnidentifiedImageError: cannot identify image file 'imgs/0042.jpg'", Data),
            ("soundfile.LibsndfileError: Error opening 'clip.wav': Format not recognised.", Data),
            ("ValueError: shard-2.bin sha256 mismatch: expected f84edbd8, got 67eb965f", Data),
            ("ValueError: record 3812 of train-00007.bin: cannot reshape array of size 25 into shape (64,)", Data),
            // a code error's type says more than the item it met
            ("AttributeError: 'Row' object has no attribute 'text' (row 17)", Implementation),
            // `embedding_rows` is a key, not the data's rows
            ("RuntimeError: tokenizer does not match checkpoint: embedding_rows=30522", Implementation),
            ("TypeError: unhashable type: 'list'", Implementation),
            ("RuntimeError: loss exploded: 3.4e+12 at step 50", Convergence),
            ("AssertionError: exploding gradients detected (norm 1e9)", Convergence),
            ("ValueError: dataset contains invalid samples: 12 of 5000", Data),
            ("RuntimeError: unexpected label 'cat' in labels.csv", Data),
            ("ValueError: invalid value for parameter 'lr': -1", Implementation),
            ("ValueError: target_modules ['q_proj'] not found in the base model", Implementation),
            ("RuntimeError: unexpected keyword argument 'batch_first'", Implementation),
            ("RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`", Resource),
            ("RuntimeError: Timed out initializing process group in store based barrier on rank: 1", Resource),
            ("OSError: [Errno 116] Stale file handle", Infrastructure),
            ("requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: https://hub.example/api", Infrastructure),
            ("requests.exceptions.HTTPError: 404 Client Error: Not Found for url: https://hub.example/typo", Implementation),
            ("RuntimeError: CUDA error: an illegal memory access was encountered", Implementation),
            ("RuntimeError: Sizes of tensors must match except in dimension 1. Expected size 32 but got size 31", Data),
            ("ValueError: operands could not be broadcast together with shapes (3,) (4,)", Data),
            ("OSError: Unable to synchronously open file (file signature not found)", Data),
            ("gzip.BadGzipFile: Not a gzipped file (b'<!')", Data),
            ("safetensors_rust.SafetensorError: Error while deserializing header: HeaderTooLarge", Data),
            ("ValueError: n_samples=3 should be >= n_clusters=5.", Data),
            ("ValueError: time data '01/11/2026' doesn't match format '%Y-%m-%d'", Data),
            // a reshape into the model's input shape that the input's size does not fit
            ("RuntimeError: shape '[-1, 3, 32, 32]' is invalid for input of size 3000", Data),
            ("pydantic_core._pydantic_core.ValidationError: 3 validation errors for ExperimentConfig", Implementation),
            // a record's validation is not a configuration's: no rule of the config's
            ("pydantic_core._pydantic_core.ValidationError: 1 validation error for Event", Implementation),
            ("RuntimeError: step exceeded its wall-clock limit of 3600 s", Resource),
            ("ValueError: no rows left in the validation split after deduplication", Data),
            // `no` before a word that is not the data's says nothing of the data
            ("ValueError: no such optimizer: 'adamw8bit'", Implementation),
        ];
        let wrong: Vec<_> = table
            .iter()
            .filter(|(line, want)| cat(line, false) != *want)
            .map(|(line, want)| format!("{line}: {:?}, not {want:?}", cat(line, false)))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
