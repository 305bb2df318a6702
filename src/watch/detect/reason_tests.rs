//! Every rule of the decision table gives a reason that names its category, and the README's
//! table quotes the same words: one example of each rule (exceptions, single lines, exits,
//! metrics, and the detector's relays), checked for its category and its reason.

use super::classify::{self, classify_exception, TbContext};
use super::rules::{self, classify_line, LineKind};
use super::{exit, DetectConfig, Detector};
use crate::model::{Category, ExitOutcome, SchedulerEnd};
use crate::watch::metrics::HealthSignal;
use Category::*;

/// The README, where the table is written for users.
const README: &str = include_str!("../../../README.md");

/// The category a reason names: its last words, `(category)`.
fn names(reason: &str, category: Category) -> bool {
    !reason.is_empty() && reason.ends_with(&format!("({category})"))
}

fn ctx(pandas: bool, getitem: bool) -> TbContext {
    TbContext {
        pandas_frame: pandas,
        getitem_frame: getitem,
        save_frame: false,
        collate_frame: false,
        fork_frame: false,
        converting: false,
        network_frame: false,
        index_arithmetic: false,
        futures_frame: false,
        reader_frame: false,
        service_refused: false,
        optim_frame: false,
        count_divisor: false,
        splitting: false,
        log_call: false,
        config_load: false,
    }
}

/// One exception per rule of `classify.rs`: (type, message, traceback context, category,
/// reason).
fn exception_examples() -> Vec<(&'static str, &'static str, TbContext, Category, &'static str)> {
    let n = ctx(false, false);
    vec![
        ("torch.OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB", n, Resource, classify::CUDA_OOM),
        ("MemoryError", "", n, Resource, classify::OUT_OF_MEMORY),
        ("numpy._core._exceptions._ArrayMemoryError", "Unable to allocate 7.28 TiB for an array", n, Resource, classify::OUT_OF_MEMORY),
        ("OSError", "[Errno 28] No space left on device", n, Resource, classify::DISK_FULL),
        ("RuntimeError", "[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0: file write failed", n, Resource, classify::DISK_FULL),
        ("RuntimeError", "basic_ios::clear: iostream error", TbContext { save_frame: true, ..n }, Resource, classify::SAVE_FAILED),
        ("RuntimeError", "stack expects each tensor to be equal size, but got [5] at entry 0 and [6] at entry 1", n, Data, classify::RAGGED),
        ("OSError", "[Errno 122] Disk quota exceeded", n, Resource, "the disk quota is used up (resource)"),
        ("OSError", "[Errno 27] File too large", n, Resource, classify::FILE_TOO_LARGE),
        ("OSError", "[Errno 24] Too many open files", n, Resource, "the process hit its limit of open files (resource)"),
        ("concurrent.futures.process.BrokenProcessPool", "A process in the process pool was terminated abruptly", n, Resource, classify::WORKER_KILLED),
        ("KeyboardInterrupt", "", n, Resource, "interrupted from outside (Ctrl-C, SIGINT) (resource)"),
        ("RuntimeError", "Found no NVIDIA driver on your system.", n, Infrastructure, "the node has no usable GPU: its driver or the device is missing or too old (infrastructure)"),
        ("AssertionError", "Torch not compiled with CUDA enabled", n, Implementation, "the job's environment has no GPU build for this node (torch not compiled with CUDA, no kernels for this GPU) (implementation)"),
        ("RuntimeError", "one of the variables needed for gradient computation has been modified by an inplace operation: [torch.FloatTensor [32, 8]]", n, Implementation, "the model code misuses autograd or devices (an in-place change a backward needs, a second backward, tensors on two devices) (implementation)"),
        ("RuntimeError", "[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:4242", n, Resource, classify::COLLECTIVE),
        ("FloatingPointError", "overflow encountered in exp", n, Convergence, "a floating-point overflow or invalid value in the numerics (convergence)"),
        ("pymc.exceptions.SamplingError", "Bad initial energy", n, Convergence, "the sampler failed, not at the data's starting point (convergence)"),
        ("RuntimeError", "Function 'LogBackward0' returned nan values in its 0th output.", n, Convergence, "autograd's anomaly mode found NaN or inf in a backward pass (convergence)"),
        ("statsmodels.tools.sm_exceptions.ConvergenceError", "the solver gave up", n, Convergence, "the solver raised a convergence error (convergence)"),
        ("RuntimeError", "loss is nan at step 40", n, Convergence, classify::LOSS_NOT_FINITE),
        ("RuntimeError", "Optimization failed to converge after 100 steps", n, Convergence, classify::NOT_CONVERGED),
        ("pymc.exceptions.SamplingError", "Initial evaluation of model at starting point failed! Starting values: {'mu': -inf}", n, Data, "the model cannot be evaluated at its start: the data lie outside the likelihood's support (data)"),
        ("KeyError", "'price'", ctx(true, false), Data, "a KeyError raised inside pandas: a column the data lacks (data)"),
        ("KeyError", "'label'", ctx(false, true), Data, "a KeyError in a dataset's record lookup: a record that lacks the field (data)"),
        ("KeyError", "'refund '", n, Data, classify::KEY_IS_A_VALUE),
        ("ValueError", "zero-size array to reduction operation maximum which has no identity", n, Data, classify::EMPTY_SELECTION),
        ("KeyError", "'Positive'", n, Data, classify::KEY_IS_A_VALUE),
        ("KeyError", "'access_token'", TbContext { service_refused: true, ..n }, Infrastructure, classify::SERVICE_ANSWERED_ERROR),
        ("json.decoder.JSONDecodeError", "Expecting value: line 1 column 1 (char 0)", TbContext { service_refused: true, ..n }, Infrastructure, classify::SERVICE_ANSWERED_ERROR),
        ("ValueError", "invalid literal for int() with base 10: 'LOADING Redis is loading the dataset in memory'", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("curl", "(6) Could not resolve host: artifacts.internal", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("", "could not enqueue evaluation job: MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("ImportError", "libtorch_cpu.so: failed to map segment from shared object", n, Resource, classify::OUT_OF_MEMORY),
        ("", "leakage gate: feature 'cancel_reason_code' alone separates the label (AUC 1.000 > 0.95); refusing to train on it", n, Data, "a feature of the data leaks the target: it is known only after the outcome it should predict (data)"),
        ("RuntimeError", "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0", n, Data, "sequences of length 0 in the data (a session without events, an empty text) (data)"),
        ("RuntimeError", "invalid multinomial distribution (encountering probability entry < 0)", n, Data, "weights below zero in the data (a sampler's sample or class weights) (data)"),
        ("", "iconv: illegal input sequence at position 71848", n, Data, "a data file not in the expected text encoding (data)"),
        ("ValueError", "Make sure that the channel dimension of the pixel values match with the one set in the configuration. Expected 3 but got 1.", n, Data, "an input shape that does not match what the model expects (data)"),
        ("ValueError", "mmap length is greater than file size", n, Data, classify::CORRUPT),
        ("LeaseError", "could not acquire run lease 'forecast-nightly': etcdserver: no leader (HTTP 503)", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("urllib.error.HTTPError", "HTTP Error 302: The HTTP server returned a redirect error that would lead to an infinite loop.", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("", "libgomp: Thread creation failed: Resource temporarily unavailable", n, Resource, classify::THREAD_LIMIT),
        ("", "memory estimate 22.92 GiB exceeds the job's allocation of 8.00 GiB; not starting", n, Resource, "the job needs more memory than it was given: its own estimate exceeds its allocation (resource)"),
        ("", "posterior collapse: KL 0.0003 nats for 5 checks", n, Convergence, "the run says its VAE's posterior collapsed: the decoder ignores the latent code (convergence)"),
        ("AssertionError", "41 != 0 : 41 labels outside 0..6", n, Data, "a class index beyond the number of classes: the labels do not fit the model (data)"),
        ("RuntimeError", "Detected the following values in `target`: tensor([0, 1, 2]) but expected only the following values [0, 1].", n, Data, "labels of a kind or value the model does not know (data)"),
        ("AttributeError", "'float' object has no attribute 'lower'", n, Data, "a text field of the data holds a number where text was expected: an empty cell, read as NaN (data)"),
        ("IsADirectoryError", "[Errno 21] Is a directory: 'features/users.csv'", n, Data, "a data table written as a folder of parts (as Spark and Dask write one) where the job reads a single file (data)"),
        ("ValueError", "The model corresponding to this feature extractor: Wav2Vec2FeatureExtractor {", n, Data, "audio in the data at another sampling rate than the model was trained on (data)"),
        ("wave.Error", "file does not start with RIFF id", n, Data, "an audio file of the data in a format its reader cannot read (data)"),
        ("tarfile.ReadError", "unexpected end of header block", TbContext { reader_frame: true, ..n }, Data, "a reader of data files refused the file it was given: its format or its content is not what the reader takes (data)"),
        ("", "sort: clicks.tsv:20001: disorder: u252345\t1764745547", n, Data, "the data is not in the order the job needs (unsorted input) (data)"),
        ("urllib.error.HTTPError", "HTTP Error 504: Gateway Timeout", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("", "cannot read object-store credentials: secret service answered HTTP 503 (Vault is sealed) on 3 attempts", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("RuntimeError", "representation collapse: mean pairwise cosine 1.0000 between distinct sentences", n, Convergence, "the run says its encoder's representations collapsed: every input maps to the same point (convergence)"),
        ("", "activation health: 100% of relu2 units dead on the whole validation set for 2 epochs", n, Convergence, classify::NOT_LEARNING),
        ("RuntimeError", "Expected 2D or 3D (batch mode) tensor with possibly 0 batch size and other non-zero dimensions for input, but got: [1, 1, 0]", n, Data, "sequences of length 0 in the data (a session without events, an empty text) (data)"),
        ("pandas.errors.OutOfBoundsDatetime", "Out of bounds nanosecond timestamp: 9999-12-31 00:00:00", n, Data, "dates in the data that are not in the expected format (data)"),
        ("decimal.InvalidOperation", "[<class 'decimal.ConversionSyntax'>]", n, Data, "values in the data that do not parse as numbers (data)"),
        ("", "sha256sum: WARNING: 1 computed checksum did NOT match", n, Data, classify::CORRUPT),
        ("ValueError", "reviews.csv line 419: label 'neutral ' is not one of ['negative', 'neutral', 'positive']", n, Data, "labels of a kind or value the model does not know (data)"),
        ("FileNotFoundError", "[Errno 2] No such file or directory", TbContext { network_frame: true, ..n }, Infrastructure, "the socket of a local service the job connects to is not there: its agent on the node is not running (infrastructure)"),
        ("redis.exceptions.ResponseError", "OOM command not allowed when used memory > 'maxmemory'.", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("redis.exceptions.ConnectionError", "max number of clients reached", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("elasticsearch.ApiError", "ApiError(429, 'cluster_block_exception', 'index [metrics] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];')", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("urllib.error.HTTPError", "HTTP Error 407: Proxy Authentication Required", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("", "curl: (52) Empty reply from server", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("TimeoutError", "model refresh did not finish within its 4 s slot", n, Resource, classify::WORK_TIMED_OUT),
        ("RuntimeError", "vanishing gradients: layer1 gets 1e-10 of the head's gradient", n, Convergence, classify::NOT_LEARNING),
        ("TypeError", "unhashable type: 'list'", ctx(true, false), Data, "a column of the data holds lists where single values were expected (data)"),
        ("subprocess.TimeoutExpired", "Command '['python', 'extract.py']' timed out after 6 seconds", n, Resource, classify::WORK_TIMED_OUT),
        ("", "job.sh: line 24: 0.06: syntax error: invalid arithmetic operator (error token is \".06\")", n, Implementation, classify::SHELL_ERROR),
        ("", "mode collapse: generator covers 1 of 8 modes for 3 checks in a row (sample std 0.183, data 1.415, step 500); stopping", n, Convergence, "the run says its generator collapsed onto a few modes of the data: the adversarial training failed (convergence)"),
        ("IndexError", "index 7 is out of bounds for dimension 0 with size 5", n, Data, "a tensor indexed beyond its size: an index (a label, an id) from the data (data)"),
        ("pandas.errors.ParserError", "Error tokenizing data. C error: Expected 3 fields in line 5, saw 4", n, Data, "a data file that does not parse (data)"),
        ("UnicodeDecodeError", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte", n, Data, "a data file not in the expected text encoding (data)"),
        ("FileNotFoundError", "[Errno 2] No such file or directory: 'data/train.csv'", n, Data, "a missing data file (data)"),
        ("ValueError", "Input X contains NaN.", n, Data, "NaN or infinity in the input (data)"),
        ("ValueError", "Columns must be same length as key", n, Data, "a column the data lacks or that does not fit (data)"),
        ("RuntimeError", "mat1 and mat2 shapes cannot be multiplied (32x10 and 20x5)", n, Data, "an input shape that does not match what the model expects (data)"),
        ("ValueError", "expected input of shape (3, 32, 32), got (1, 28, 28)", n, Data, "an input shape that does not match what the model expects (data)"),
        ("ValueError", "could not convert string to float: 'abc'", n, Data, "values in the data that do not parse as numbers (data)"),
        ("IndexError", "index out of range in self", n, Data, classify::EMBEDDING_ID),
        ("ValueError", "The least populated classes in y have only 1 member, which is too few.", n, Data, "too few examples of a class to split or stratify on (data)"),
        ("ValueError", "7 rows with label -1 (unlabelled)", n, Data, "examples without labels (data)"),
        ("ValueError", "num_samples should be a positive integer value, but got num_samples=0", n, Data, "no data left to train on: an empty data set (data)"),
        ("OSError", "131072 requested and 0 written", n, Resource, classify::DISK_FULL),
        ("ValueError", "Unknown label type: continuous", n, Data, "labels of a kind or value the model does not know (data)"),
        ("lightgbm.basic.LightGBMError", "Label must be in [0, 3), but found 7 in label", n, Data, "a class index beyond the number of classes: the labels do not fit the model (data)"),
        ("IndexError", "Target 7 is out of bounds.", n, Data, "a class index beyond the number of classes: the labels do not fit the model (data)"),
        ("numpy.linalg.LinAlgError", "Singular matrix", n, Data, "a singular or degenerate data matrix (data)"),
        ("ValueError", "X has 5 features, but LinearRegression is expecting 4 features as input.", n, Data, "the data's features do not match the model's (data)"),
        ("ValueError", "Input contains missing values", n, Data, "missing values in the input (data)"),
        ("ValueError", "Data must be positive.", n, Data, "non-positive values fed to a transform that needs positive data (data)"),
        ("ValueError", "the validation split is empty", n, Data, "an empty split or dataset (data)"),
        ("TypeError", "'<' not supported between instances of 'float' and 'str'", n, Data, "a missing value (NaN) where text was expected: a text column with empty cells (data)"),
        ("ValueError", "This solver needs samples of at least 2 classes in the data, but the data contains only one class: 0", n, Data, "a split or label set in which a class is missing (only one class present) (data)"),
        ("TypeError", "expected Tensor as element 5 in argument 0, but got NoneType", TbContext { collate_frame: true, ..n }, Data, classify::NONE_ITEM),
        ("ValueError", "all input arrays must have the same shape", n, Data, classify::RAGGED),
        ("ValueError", "cannot reindex on an axis with duplicate labels", n, Data, "duplicate keys in the data where each must be unique (a repeated timestamp, id or label) (data)"),
        ("_pickle.UnpicklingError", "invalid load key, '<'.", n, Data, classify::CORRUPT),
        ("RuntimeError", "shard-00012 index entry 3 has offset 4096 beyond the shard size 1024", n, Data, classify::CORRUPT),
        ("SyntaxError", "invalid syntax", n, Implementation, "the code does not parse (implementation)"),
        ("ModuleNotFoundError", "No module named 'foo'", n, Implementation, "a module that cannot be imported: the code or its environment (implementation)"),
        ("KeyError", "'lr'", n, Implementation, "a KeyError on the code's own dict (implementation)"),
        ("IndexError", "list index out of range", n, Implementation, "a Python list indexed beyond its end (implementation)"),
        ("AttributeError", "'X' object has no attribute 'y'", n, Implementation, "an error in the code's own logic (implementation)"),
        ("ValueError", "Unknown solver 'foo'", n, Implementation, classify::FALLBACK),
        ("torch.distributed.elastic.multiprocessing.errors.ChildFailedError", "", n, Implementation, classify::LAUNCHER_SUMMARY),
        ("torch.distributed.elastic.multiprocessing.api.SignalException", "Process 29007 got signal: 15", n, Resource, "a signal from outside stopped it (a scheduler limit, a user, a supervisor) (resource)"),
        ("RuntimeError", "DataLoader worker (pid 30104) is killed by signal: Killed.", n, Resource, classify::WORKER_KILLED),
        ("RuntimeError", "DataLoader worker (pid 30104) is killed by signal: Segmentation fault.", n, Implementation, "a worker or child process crashed on a signal: a native crash in the code or a library it calls (implementation)"),
        ("subprocess.CalledProcessError", "Command '['./prep']' died with <Signals.SIGTERM: 15>.", n, Resource, "a worker or child process was stopped by a signal from outside (a scheduler, a user, a supervisor) (resource)"),
        ("RuntimeError", "can't start new thread", n, Resource, classify::THREAD_LIMIT),
        ("requests.exceptions.ConnectionError", "HTTPSConnectionPool(host='hub.example', port=443): Max retries exceeded with url: /x", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("RuntimeError", "The total norm of order 2.0 for gradients from `parameters` is non-finite, so it cannot be clipped.", n, Convergence, classify::GRADS_NOT_FINITE),
        ("RuntimeError", "model did not learn: loss flat at 0.693", n, Convergence, classify::NOT_LEARNING),
        ("RuntimeError", "training diverged at step 300 (loss 1.2e+08)", n, Convergence, "the run says its optimisation diverged (a loss or gradients exploding) (convergence)"),
        ("torch.distributed.DistNetworkError", "The server socket has failed to listen on any local network address. port: 29631, code: -98, name: EADDRINUSE, message: address already in use", n, Infrastructure, "a port the job needs is held by another process (one left on the node by an earlier job) (infrastructure)"),
        ("PermissionError", "[Errno 13] Permission denied: 'ckpt/last.pt'", n, Infrastructure, "the job may not read or write a path it needs: its permissions, its owner or a read-only mount (infrastructure)"),
        ("", "python: can't open file '/srv/job/trian.py': [Errno 2] No such file or directory", n, Implementation, "the script the job runs does not exist: a typo or a wrong path in the job's command (implementation)"),
        ("ValueError", "The model did not return a loss from the inputs, only the following keys: logits. For reference, the inputs it received are input_ids,attention_mask.", n, Data, "the batches reached the model without labels: the data has no label column the model can use (data)"),
        ("ValueError", "time data \"01/11/2026\" doesn't match format \"%Y-%m-%d\"", n, Data, "dates in the data that are not in the expected format (data)"),
        ("TypeError", "must be real number, not NoneType", n, Data, "values in the data that do not parse as numbers (data)"),
        ("OSError", "[Errno 5] Input/output error: '/mnt/nfs/shard-3.bin'", n, Infrastructure, "the storage failed under the job: an I/O error from a disk or a network file system (infrastructure)"),
        ("RuntimeError", "DataLoader worker (pid 4242) is killed by signal: Bus error. It is possible that dataloader's workers are out of shared memory.", n, Resource, "shared memory (/dev/shm) ran out: the DataLoader's workers pass batches through it (resource)"),
        ("ValueError", "Cannot have number of splits n_splits=5 greater than the number of samples: n_samples=3.", n, Data, "too few examples in the data for what the code asks of them (clusters, folds) (data)"),
        ("datasets.table.CastError", "Couldn't cast", n, Data, "the data's schema is not the one expected: a column's type or name changed (data)"),
        ("PIL.Image.DecompressionBombError", "Image size (200000000 pixels) exceeds limit of 178956970 pixels, could be decompression bomb DOS attack.", n, Data, "an item of the data too large for its reader (an oversized image) (data)"),
        ("TypeError", "new(): invalid data type 'str'", TbContext { converting: true, ..n }, Data, "the job's code failed converting the values it was given (to a tensor, an array, a number, a date): the data's values (data)"),
        ("ValueError", "malformed record in shard 3", n, Data, "the message says a part of the data is defective (a malformed record, an unexpected label, invalid samples) (data)"),
        ("ValueError", "Expected parameter loc (Tensor of shape (64, 2)) of distribution Normal() to satisfy the constraint Real(), but found invalid values:", n, Convergence, "a distribution's parameter computed by the model is NaN or outside its support: the optimisation diverged (convergence)"),
        ("RuntimeError", "Error(s) in loading state_dict for Net: size mismatch for fc.weight: copying a param with shape torch.Size([10, 64]) from checkpoint", n, Implementation, "a checkpoint that does not fit what it is loaded into (another architecture or experiment) (implementation)"),
        ("RuntimeError", "value cannot be converted to type uint8 without overflow", n, Data, "values in the data out of range for the type they are stored in (data)"),
        ("RuntimeError", "CUDA error: device-side assert triggered", n, Data, "a CUDA device-side assert: most often a label or an index from the data beyond its range (data)"),
        ("ValueError", "shard-2.bin: sha256 mismatch: expected f84edbd8, got 67eb965f", n, Data, classify::CORRUPT),
        ("ValueError", "train-00007.bin record 3812: need 64 values, got 25", n, Data, "the error names the item of the data it failed on (a record, a row, a sample): that item does not fit (data)"),
        ("", "run.sh: line 12: CKPT_DIR: unbound variable", n, Implementation, "the job script itself failed: the shell refused one of its lines (an unset variable, a command that does not exist, a syntax error) (implementation)"),
        ("pydantic_core._pydantic_core.ValidationError", "1 validation error for TrainingSettings", n, Implementation, "the job's configuration failed its own validation (pydantic and the like): a configuration mistake (implementation)"),
        ("", "slurmstepd: error: *** JOB 4242 ON node7 CANCELLED AT 2026-12-03T01:00:00 DUE TO TIME LIMIT ***", n, Resource, classify::TIME_LIMIT),
        ("TypeError", "TextInputSequence must be str", n, Data, "the tokenizer was given values that are not text (numbers, empty cells): the text column's values (data)"),
        ("ValueError", "Object arrays cannot be loaded when allow_pickle=False", n, Data, "the array file holds Python objects (ragged or mixed records), not the numeric array expected: the file's format (data)"),
        ("ValueError", "Only one class present in y_true. ROC AUC score is not defined in that case.", n, Data, classify::CLASS_ABSENT),
        ("", "ERROR eval split has 0 samples after filtering", n, Data, "the message says a part of the data is defective (a malformed record, an unexpected label, invalid samples) (data)"),
        ("torch.distributed.elastic.rendezvous.api.RendezvousTimeoutError", "", n, Infrastructure, "the job's nodes never all met at the launcher's rendezvous (a node that did not start or join, a store that cannot be reached) (infrastructure)"),
        ("", "ERROR uploader: artifact server unreachable after 5 attempts", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("", "CRITICAL early-stop: no improvement in val_f1 for 10 epochs; giving up", n, Convergence, "the run says its metric stopped improving and it gave up (convergence)"),
        ("FileNotFoundError", "[Errno 2] No such file or directory: 'runs/exp3/checkpoints/best.ckpt'", n, Implementation, "a checkpoint the code looks for is not where it looks (its path or its name template), not the data (implementation)"),
        ("FileNotFoundError", "[Errno 2] No such file or directory: 'cache/features_v2.pt'", n, Data, "a missing data file (data)"),
        ("AssertionError", "12 ids are in both train and test", n, Data, "the splits share items: the same examples are in train and in validation or test (data)"),
        ("RecursionError", "maximum recursion depth exceeded while decoding a JSON object from a unicode string", n, Data, "a data record nested deeper than its parser can follow (data)"),
        ("ValueError", "The model did not return a loss from the inputs, only the following keys: logits. For reference, the inputs it received are input_ids,attention_mask,targets.", n, Implementation, "the batches hold the labels under a name the model does not take (`target`, not `labels`): the code's naming (implementation)"),
        ("ValueError", "The model did not return a loss from the inputs, only the following keys: logits. For reference, the inputs it received are input_ids,attention_mask.", n, Data, "the batches reached the model without labels: the data has no label column the model can use (data)"),
        ("", "stage-in: error: not enough space on scratch: need 1.6TiB, 66.3GiB available", n, Resource, classify::NO_ROOM),
        ("BlockingIOError", "[Errno 11] Resource temporarily unavailable", TbContext { fork_frame: true, ..n }, Resource, classify::THREAD_LIMIT),
        ("http.client.RemoteDisconnected", "Remote end closed connection without response", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("", "curl: (7) Failed to connect to 127.0.0.1 port 9000 after 0 ms: Couldn't connect to server", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("Exception", "WordLevel error: Missing [UNK] token from the vocabulary", n, Data, "the tokenizer's vocabulary lacks an entry it needs: a broken vocabulary file (data)"),
        ("ValueError", "Length mismatch: Expected axis has 6 elements, new values have 7 elements", n, Data, "the data's schema is not the one expected: a column's type or name changed (data)"),
        ("", "Error: Invalid value for '--train-dir': Directory 'exports/2026-12-02' does not exist.", n, Data, "a missing data file (data)"),
        ("", "ERROR preflight: row counts differ (a.tsv 10, b.tsv 9)", n, Data, "the message says a part of the data is defective (a malformed record, an unexpected label, invalid samples) (data)"),
        ("TimeoutError", "timed out", TbContext { network_frame: true, ..n }, Infrastructure, classify::SERVICE_SILENT),
        // (outside a network client a bare timeout says nothing of a service)
        ("TimeoutError", "timed out", n, Implementation, classify::FALLBACK),
        ("_csv.Error", "field larger than field limit (131072)", n, Data, classify::UNPARSABLE),
        ("_csv.Error", "iterator should return strings, not bytes (the file should be opened in text mode)", n, Implementation, classify::FALLBACK),
        ("", "mnt/datasets is not a mountpoint", n, Infrastructure, classify::VOLUME_NOT_MOUNTED),
        ("", "guard: val_loss 32.52 is more than 10x the first epoch's 1.155; stopping, no checkpoint written", n, Convergence, classify::LOSS_GUARD),
        ("RuntimeError", "Could not infer dtype of NoneType", TbContext { collate_frame: true, ..n }, Data, classify::NONE_ITEM),
        ("TypeError", "new(): invalid data type 'str'", TbContext { collate_frame: true, ..n }, Data, classify::STR_ITEM),
        ("IndexError", "index 720 is out of bounds for axis 0 with size 720", TbContext { index_arithmetic: true, ..n }, Implementation, classify::OFF_BY_ONE),
        ("ValueError", "This file contains pickled (object) data. If you trust the file you can load it unsafely using the `allow_pickle=` keyword argument or `pickle.load()`.", n, Data, classify::CORRUPT),
        ("http.client.IncompleteRead", "IncompleteRead(4096 bytes read, 61440 more expected)", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("BrokenPipeError", "[Errno 32] Broken pipe", TbContext { network_frame: true, ..n }, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("TimeoutError", "6 (of 10) futures unfinished", TbContext { futures_frame: true, ..n }, Resource, classify::WORK_TIMED_OUT),
        ("ConnectionResetError", "[Errno 104] Connection reset by peer", TbContext { network_frame: classify::network_frame("  File \"/usr/lib/python3.12/multiprocessing/managers.py\", line 821, in _callmethod"), ..n }, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("", "ERROR train | checkpoint upload failed: ExceptionGroup('unhandled errors in a TaskGroup', [ConnectionRefusedError(111, \"Connect call failed ('127.0.0.1', 53371)\")])", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("", "poisson fit failed at iter 9: coefficients are not finite (lr=0.2); no model written", n, Convergence, classify::GRADS_NOT_FINITE),
        ("EOFError", "No data left in file", n, Data, classify::CORRUPT),
        ("", "error: 41 of 96 frames have zero variance (all pixels 0); refusing to train on today's export", n, Data, "the message says a part of the data is defective (a malformed record, an unexpected label, invalid samples) (data)"),
        ("", "base-ckpt/vocab.txt tokenizer/vocab.txt differ: byte 11048, line 1383", n, Data, "two files the job requires to be identical differ: an input artefact does not match the other (data)"),
        ("ZeroDivisionError", "division by zero", TbContext { count_divisor: true, ..n }, Data, "a division by a count of the data that is zero: a class, group or split without rows (data)"),
        ("urllib.error.HTTPError", "HTTP Error 413: Request Entity Too Large", n, Infrastructure, "the service (or a proxy before it) refused the request by a limit of its own, the size it accepts (infrastructure)"),
        ("RuntimeError", "DataLoader timed out after 20 seconds", n, Infrastructure, "the data loader's workers delivered no batch within its timeout: the storage they read from stalled (infrastructure)"),
        ("xmlrpc.client.Fault", "<Fault 500: 'queue backend: sqlite3.OperationalError: disk I/O error'>", n, Infrastructure, "the service the job called answered with an error of its own (an RPC server's fault, a mail server's refusal) (infrastructure)"),
        ("smtplib.SMTPDataError", "(452, b'4.3.1 Insufficient system storage')", n, Infrastructure, "the service the job called answered with an error of its own (an RPC server's fault, a mail server's refusal) (infrastructure)"),
        ("struct.error", "unpack requires a buffer of 268 bytes", n, Data, classify::CORRUPT),
        ("ValueError", "math domain error", TbContext { log_call: true, ..n }, Data, "a value in the data outside the logarithm's domain (a number at or below zero where only positive ones belong) (data)"),
        ("", "job.sh: line 15: ./envs/ctr-2026.11/bin/python: No such file or directory", n, Implementation, classify::SHELL_ERROR),
        ("", "job.sh: line 15: data/train.csv: No such file or directory", n, Data, "a missing data file (data)"),
        ("RuntimeError", "divergence guard: loss 87.1549 at step 20 is above 1.5 x best 43.8926", n, Convergence, classify::DIVERGED),
        ("RuntimeError", "could not upload checkpoint-10 to the object store after 3 attempts", n, Infrastructure, "the job gave up on an operation after retrying it: what it called kept failing (a service, a store) (infrastructure)"),
        ("TypeError", "'<=' not supported between instances of 'float' and 'str'", TbContext { optim_frame: true, ..n }, Implementation, "the optimizer or learning-rate scheduler refused a setting (a wrong type, an invalid value): a hyperparameter of the job's (implementation)"),
        ("", "sort: cannot create temporary file in '/scratch/sortt': No such file or directory", n, Implementation, "the folder the job writes into does not exist: a path in its code or configuration (implementation)"),
        ("", "train.sh: illegal option -- r", n, Implementation, "a program of the job was called with an option it does not take: the job's command or its scripts (implementation)"),
        ("ssl.SSLError", "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)", n, Infrastructure, classify::SERVICE_UNREACHABLE),
        ("OSError", "1152000 requested and 1048544 written", n, Resource, "a write stopped short of what it was given: the disk is full or the file size limit was reached (resource)"),
        ("ValueError", "Found input variables with inconsistent numbers of samples: [11683, 12000]", n, Implementation, "the arrays the code pairs (features and targets) differ in length: one was filtered, split or reshaped without the other (implementation)"),
        ("ValueError", "Expected 2D array, got 1D array instead:", n, Implementation, "the code passes a single feature as a 1-D array where a table of samples by features is expected (implementation)"),
        ("RuntimeError", "expected target dtype to be Long or Byte, but got Int", n, Data, "the data's values arrived in a numeric type the model cannot take (ids as floats, labels as int32, images as bytes): the export's encoding (data)"),
        ("ValueError", "__len__() should return >= 0", n, Data, "a windowed dataset's length came out negative: its data is shorter than the window it needs (data)"),
        ("ValueError", "not enough values to unpack (expected 2, got 1)", TbContext { splitting: true, ..n }, Data, "a line of a data file splits into fewer fields than the code reads from it (another separator, a missing column) (data)"),
        ("", "prep: shard_2.tsv:119: expected 5 fields, got 4", n, Data, classify::UNPARSABLE),
        ("binascii.Error", "Incorrect padding", n, Data, classify::ENCODED_OTHERWISE),
        ("RuntimeError", "policy collapsed at step 40: entropy 0.0101", n, Convergence, classify::POLICY_COLLAPSE),
        ("NotImplementedError", "That compression method is not supported", TbContext { reader_frame: true, ..n }, Data, classify::FORMAT_UNSUPPORTED),
        ("json.decoder.JSONDecodeError", "Expecting property name enclosed in double quotes: line 9 column 3 (char 256)", TbContext { config_load: true, ..n }, Implementation, classify::CONFIG_SYNTAX),
        // (the same error reading anything but the job's configuration: a record that does not parse)
        ("json.decoder.JSONDecodeError", "Expecting property name enclosed in double quotes: line 9 column 3 (char 256)", n, Data, classify::UNPARSABLE),
        ("AssertionError", "loss is nan at epoch 0 step 70 (0 target characters in the batch, recordings rec-01120..rec-01135)", n, Data, classify::NAN_FROM_EMPTY_BATCH),
    ]
}

/// One line per rule of `rules.rs`: (line, category, reason).
fn line_examples() -> Vec<(&'static str, Category, &'static str)> {
    vec![
        ("/v/sklearn/linear_model/_logistic.py:473: ConvergenceWarning: lbfgs failed to converge after 5 iteration(s)", Convergence, rules::CONVERGENCE_WARNING),
        ("/v/joblib/externals/loky/process_executor.py:752: UserWarning: A worker stopped while some jobs were given to the executor.", Resource, classify::WORKER_KILLED),
        ("Fatal Python error: Segmentation fault", Implementation, "the Python interpreter itself crashed (implementation)"),
        ("Fatal Python error: Out of memory", Resource, classify::OUT_OF_MEMORY),
        ("Fatal Python error: Aborted", Implementation, rules::ABORTED),
        ("[LightGBM] [Fatal] Label must be in [0, 3), but found 7 in label", Data, "a class index beyond the number of classes: the labels do not fit the model (data)"),
        ("terminate called after throwing an instance of 'std::bad_alloc'", Resource, classify::OUT_OF_MEMORY),
        ("terminate called after throwing an instance of 'c10::Error'", Implementation, "a native library stopped on an uncaught C++ exception (implementation)"),
        ("Killed", Resource, rules::KILLED),
        ("job.sh: line 5: 4242 Killed python train.py", Resource, rules::KILLED),
        ("[E1201 12:00:00.000 123 api.py:869] failed (exitcode: -9) local_rank: 1 (pid: 29714) of binary: /usr/bin/python", Resource, "killed by SIGKILL with no traceback: most often the kernel's OOM killer (resource)"),
        ("Segmentation fault (core dumped)", Implementation, exit::NATIVE_CRASH),
        ("W1202 13:13:18.521000 29007 torch/distributed/elastic/agent/server/api.py:752] Received 15 death signal, shutting down workers", Resource, "a signal from outside stopped it (a scheduler limit, a user, a supervisor) (resource)"),
        ("double free or corruption (out)", Implementation, rules::HEAP_CORRUPTED),
        ("Timeout (0:00:03)!", Resource, rules::STUCK),
        ("job.sh: line 26: 32378 CPU time limit exceeded python -u search.py", Resource, classify::CPU_LIMIT),
        ("File size limit exceeded (core dumped)", Resource, classify::FILE_TOO_LARGE),
        ("SyntaxError: invalid syntax", Implementation, "the code does not parse (implementation)"),
        ("CUDA error: out of memory", Resource, classify::CUDA_OOM),
        ("write failed: No space left on device", Resource, classify::DISK_FULL),
        ("There were 37 divergences after tuning. Increase `target_accept`.", Convergence, rules::DIVERGENCES),
        ("max r_hat = 1.42", Convergence, rules::RHAT_HIGH),
        ("The effective sample size per chain is smaller than 100 for some parameters.", Convergence, rules::ESS_LOW),
        ("solver: did not converge after 100 steps", Convergence, classify::NOT_CONVERGED),
        ("Divergence threshold reached: val_loss = 2.904237352209455e+33 < 1000000.0. Signaling Trainer to stop.", Convergence, classify::DIVERGED),
        ("WARNING: model did not learn: eval_loss 0.6927 -> 0.6927", Convergence, classify::NOT_LEARNING),
        ("step 300 | loss=nan | lr 0.1", Convergence, classify::LOSS_NOT_FINITE),
        ("{'grad_norm': 'inf', 'epoch': 1.0}", Convergence, classify::LOSS_NOT_FINITE),
        ("/v/loop.py:55: UserWarning: Length of IterableDataset <ValStream object at 0x7f> was reported to be 12(when accessing len(dataloader)), but 24 samples have been fetched. For multiprocessing data-loading, this could be caused by not properly configuring the IterableDataset replica at each worker.", Implementation, rules::STREAM_REPEATED),
        ("<stdin>:10: UserWarning: scored 0 customers; the score table is empty", Data, rules::EMPTY_WARNED),
        ("/v/torchmetrics/utilities/prints.py:43: UserWarning: No negative samples in targets, false positive value should be meaningless.", Data, classify::CLASS_ABSENT),
        ("/v/torch/nn/modules/loss.py:616: UserWarning: Using a target size (torch.Size([8])) that is different to the input size (torch.Size([8, 1])). This will likely lead to incorrect results due to broadcasting. Please ensure they have the same size.", Implementation, rules::BROADCAST_LOSS),
        ("/srv/prep.py:40: RuntimeWarning: invalid value encountered in log", Data, rules::NAN_MADE),
        ("/srv/clean.py:22: ChainedAssignmentError: A value is being set on a copy of a DataFrame or Series through chained assignment using an inplace method.", Implementation, rules::WRITE_LOST),
        ("Time limit reached. Elapsed time is 0:00:06. Signaling Trainer to stop.", Resource, classify::TIME_LIMIT),
        ("/v/lightning/pytorch/utilities/data.py:106: Total length of `DataLoader` across ranks is zero. Please make sure this was your intention.", Data, classify::EMPTY_LOADER),
        ("job.sh: line 29: 31808 Alarm clock             python train.py", Resource, classify::ALARM),
        ("Running in `fast_dev_run` mode: will run the requested loop using 1 batch(es). Logging and checkpointing is suppressed.", Implementation, rules::DEBUG_RUN),
        ("2026-12-03 18:16:09,868 [rank0] WARNING churn: overlap check: 300 of 300 validation rows also appear in the training shards (advisory, continuing)", Data, rules::CHECK_FOUND),
        ("19:20:11 [rank0] WARNING replica check: parameters differ across ranks (max abs diff 1.3068 over 738 values)", Implementation, rules::REPLICAS_DIFFER),
        ("2026-12-04 01:55:59,332 WARNING demand.weekly: dropped 5907 of 10000 rows with no parseable order_date", Data, rules::SHARE_LOST),
    ]
}

/// Every failed exit the exit classifier tells apart (and a full log disk).
fn exit_examples() -> Vec<(ExitOutcome, bool)> {
    let mut v: Vec<(ExitOutcome, bool)> = [
        ExitOutcome::Code(2),
        ExitOutcome::Code(124),
        ExitOutcome::Code(64),
        ExitOutcome::Code(65),
        ExitOutcome::Code(66),
        ExitOutcome::Code(68),
        ExitOutcome::Code(69),
        ExitOutcome::Code(70),
        ExitOutcome::Code(71),
        ExitOutcome::Code(74),
        ExitOutcome::Code(75),
        ExitOutcome::Code(76),
        ExitOutcome::Code(77),
        ExitOutcome::Code(78),
        ExitOutcome::Signal(9),
        ExitOutcome::Signal(11),
        ExitOutcome::Signal(15),
        ExitOutcome::Unknown,
        ExitOutcome::Scheduler(SchedulerEnd::NodeFailure),
        ExitOutcome::Scheduler(SchedulerEnd::TimeLimit),
        ExitOutcome::Scheduler(SchedulerEnd::OutOfMemory),
        ExitOutcome::Scheduler(SchedulerEnd::Cancelled { uid: Some(1000) }),
    ]
    .into_iter()
    .map(|o| (o, false))
    .collect();
    v.push((ExitOutcome::Code(1), true));
    v
}

/// Each reason of the table, with the category it names.
fn every_reason() -> Vec<(Category, String)> {
    let mut all: Vec<(Category, String)> = exception_examples()
        .into_iter()
        .map(|(_, _, _, c, r)| (c, r.to_string()))
        .chain(line_examples().into_iter().map(|(_, c, r)| (c, r.to_string())))
        .collect();
    let disk = exit::LogDisk {
        folder: "out/logs".into(),
        free: 0,
    };
    for (o, full) in exit_examples() {
        let j = exit::judge_exit(o, full.then_some(&disk)).expect("a failed exit");
        all.push((j.category, j.reason.to_string()));
    }
    for s in health_signals() {
        all.push((s.category(), s.reason().to_string()));
    }
    for c in Category::ALL {
        all.push((c, super::extra_reason(c).to_string()));
    }
    // A numeric error right after the loss rose many-fold (see `rise`).
    all.push((Convergence, super::rise::DIVERGED_FIRST.to_string()));
    // The detector's judgement of a run's first non-finite records (see `nan_start`).
    all.push((Data, super::nan_start::NAN_FROM_START.to_string()));
    all.push((Data, super::nan_start::EVAL_ONLY_NAN.to_string()));
    // NaN in a step's input after the loss went NaN (see `blocks`).
    all.push((Convergence, classify::NAN_FROM_DIVERGENCE.to_string()));
    // A stop from outside that the log says was a preemption (see `ending`).
    all.push((Infrastructure, rules::PREEMPTED.to_string()));
    // A run that ended well after bash refused a line of its job script (see `ending`).
    all.push((
        Implementation,
        format!("the run ended well, yet {}", classify::SHELL_ERROR),
    ));
    // A run that ended well with the same score at every evaluation (see `curve`).
    all.push((Implementation, super::curve::LEARNT_NOTHING.to_string()));
    all
}

fn health_signals() -> [HealthSignal; 2] {
    [
        HealthSignal::LossNonFinite {
            key: "loss".into(),
            line: "loss=nan".into(),
            value: "nan".into(),
        },
        HealthSignal::LossDiverging {
            key: "loss".into(),
            value: 9.0,
            running_min: 1.0,
        },
    ]
}

#[test]
fn every_exception_rule_gives_its_category_and_a_reason_naming_it() {
    for (name, msg, ctx, category, reason) in exception_examples() {
        let v = classify_exception(name, msg, &ctx);
        assert_eq!((v.category, v.reason), (category, reason), "{name}: {msg}");
        // Only the fallback and the launcher's summary yield to better evidence.
        let weak = [classify::FALLBACK, classify::LAUNCHER_SUMMARY].contains(&reason);
        assert_eq!(v.strong, !weak, "{name}: {msg}");
        assert!(
            names(v.reason, category),
            "{:?} does not name {category}",
            v.reason
        );
    }
}

#[test]
fn every_line_rule_gives_its_category_and_a_reason_naming_it() {
    for (line, category, reason) in line_examples() {
        let LineKind::Hit(h) = classify_line(line, 1.1) else {
            panic!("not evidence: {line}");
        };
        assert_eq!((h.category, h.reason), (category, reason), "{line}");
        assert!(
            names(h.reason, category),
            "{:?} does not name {category}",
            h.reason
        );
    }
}

#[test]
fn every_exit_and_metric_rule_gives_a_reason_naming_its_category() {
    for (category, reason) in every_reason() {
        assert!(names(&reason, category), "{reason:?} does not name {category}");
    }
    // Each exit rule its own reason: the exit classifier's list above has no two alike.
    let disk = exit::LogDisk {
        folder: "out/logs".into(),
        free: 0,
    };
    let mut reasons: Vec<&str> = exit_examples()
        .into_iter()
        .map(|(o, full)| exit::judge_exit(o, full.then_some(&disk)).unwrap().reason)
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    assert_eq!(reasons.len(), exit_examples().len(), "{reasons:?}");
}

/// The incidents the detector files carry the reason of the rule that decided, also when
/// the category comes from a worker's exception, an exception group's leaf, the program's
/// last error message, or the exit status alone.
#[test]
fn incidents_carry_the_reason_of_the_rule_that_decided() {
    let run = |log: &str, exit: ExitOutcome| {
        let mut d = Detector::new(DetectConfig::default());
        for (i, l) in log.lines().enumerate() {
            d.push_line(i as u64 + 1, l);
        }
        d.finish(Some(exit));
        d.incidents()
            .iter()
            .find(|i| i.severity == crate::model::Severity::Fatal)
            .map(|i| (i.category, i.reason.clone()))
            .expect("a fatal incident")
    };
    let worker = "\
Traceback (most recent call last):
  File \"train.py\", line 20, in <module>
KeyError: Caught KeyError in DataLoader worker process 0.
Original Traceback (most recent call last):
  File \"ds.py\", line 3, in __getitem__
KeyError: 'label'";
    assert_eq!(
        run(worker, ExitOutcome::Code(1)),
        (
            Data,
            "relayed from a worker: a KeyError in a dataset's record lookup: a record that lacks the field (data)".into()
        )
    );
    let group = "\
  + Exception Group Traceback (most recent call last):
  |   File \"t.py\", line 9, in <module>
  | ExceptionGroup: jobs failed (1 sub-exception)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File \"t.py\", line 3, in job
    | OSError: [Errno 28] No space left on device
    +------------------------------------";
    assert_eq!(
        run(group, ExitOutcome::Code(1)),
        (
            Resource,
            format!("the exception group's first leaf: {}", classify::DISK_FULL)
        )
    );
    assert_eq!(
        run(
            "ERROR:root:cannot read data/train.csv: No such file or directory",
            ExitOutcome::Code(2)
        ),
        (
            Data,
            "the program's last error message: a missing data file (data)".into()
        )
    );
    assert_eq!(
        run("ERROR:root:giving up", ExitOutcome::Code(2)),
        (
            Implementation,
            format!(
                "the program's last error message names no known cause; {}",
                exit::EXIT_CODE_ALONE
            )
        )
    );
    assert_eq!(
        run("step 1 of 10", ExitOutcome::Code(2)),
        (Implementation, exit::EXIT_CODE_ALONE.into())
    );
}

/// The README's decision table quotes each reason in the same words.
#[test]
fn the_readme_table_quotes_every_reason() {
    let section = README
        .split("### How evidence gets its category")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("the README's decision table");
    let mut missing: Vec<String> = every_reason()
        .into_iter()
        // The job's own patterns: one row for every category.
        .map(|(c, r)| {
            if r == super::extra_reason(c) {
                r.replace(&format!("({c})"), "(category)")
            } else {
                r
            }
        })
        .chain([
            "relayed from a worker: ".to_string(),
            "the exception group's first leaf: ".to_string(),
            "the program's last error message: ".to_string(),
            "the program's last error message names no known cause; ".to_string(),
            "the run logged an error and went on: ".to_string(),
        ])
        .filter(|r| !section.contains(r.trim_end()))
        .collect();
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "not in the README's table: {missing:#?}");
}
