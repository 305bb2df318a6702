//! Realistic training output, generated fast and deterministically: metric lines, tqdm bars
//! redrawn with `\r`, Hugging Face metric dicts, library warnings, long config dumps, a rare
//! handled traceback, and "traps" — lines that carry words like `Error`, `Exception` or
//! `Failed` without being errors (the reference grep pattern counts them, a classifier must
//! not report them). Numbers are formatted by hand: the generator has to outrun the
//! programs it feeds (several hundred MB/s).

/// xorshift64*: tiny, fast, reproducible; quality is irrelevant here.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let start = out.len();
    push_u64(out, v);
    let len = out.len() - start;
    if len < width {
        let pad = width - len;
        out.splice(start..start, std::iter::repeat_n(b'0', pad));
    }
}

/// `v / 10^decimals` written with exactly `decimals` digits after the point.
fn push_fixed(out: &mut Vec<u8>, v: u64, decimals: u32) {
    let p = 10u64.pow(decimals);
    push_u64(out, v / p);
    out.push(b'.');
    push_padded(out, v % p, decimals as usize);
}

const WARNINGS: &[&str] = &[
    "/opt/conda/lib/python3.11/site-packages/torch/utils/data/dataloader.py:558: UserWarning: This DataLoader will create 16 worker processes in total. Our suggested max number of worker in current system is 8, which is smaller than what this DataLoader is going to create.",
    "/opt/conda/lib/python3.11/site-packages/transformers/optimization.py:411: FutureWarning: This implementation of AdamW is deprecated and will be removed in a future version. Use the PyTorch implementation torch.optim.AdamW instead",
    "/opt/conda/lib/python3.11/site-packages/torch/nn/modules/module.py:1501: UserWarning: Using a target size (torch.Size([64])) that is different to the input size (torch.Size([64, 1])). This will likely lead to incorrect results due to broadcasting.",
    "WARNING:root:Gradient overflow. Skipping step, loss scaler 0 reducing loss scale to 32768.0",
    "/opt/conda/lib/python3.11/site-packages/pymc/sampling/mcmc.py:2312: RuntimeWarning: overflow encountered in exp",
    "[W reducer.cpp:1300] Warning: find_unused_parameters=True was specified in DDP constructor, but did not find any unused parameters in the forward pass.",
];

/// Lines that a naive `grep -E 'Error|Exception|Failed|…'` counts but that report nothing wrong.
const TRAPS: &[&str] = &[
    "eval | MeanSquaredError=0.02315 MeanAbsoluteError=0.1104 | best so far",
    "data | rows loaded: 1048576 | Failed: 0 | skipped (ValueError-prone encodings): 0",
    "INFO  callbacks: registered ExceptionLogger, EarlyStopping(patience=5), ModelCheckpoint",
    "metrics: train_error=0.0456 val_error=0.0512 test_error=n/a",
    "INFO  retry policy: max_retries=3 on (ConnectionError, TimeoutError); no errors so far",
    "config: loss_fn=torch.nn.MSELoss strict_keys=True raise_on_KeyError=False",
    "INFO  checkpoint sanity: 0 Failed / 312 tensors OK; no RuntimeError during load",
];

/// A Python traceback caught and logged by the program, which goes on.
const HANDLED: &str = "WARNING:dataloader:worker 3 raised and was restarted:\n\
Traceback (most recent call last):\n  \
File \"/opt/conda/lib/python3.11/site-packages/torch/utils/data/_utils/worker.py\", line 308, in _worker_loop\n    \
data = fetcher.fetch(index)\n  \
File \"/workspace/data/shards.py\", line 88, in __getitem__\n    \
return self._decode(self.index[i])\n\
OSError: [Errno 5] Input/output error: '/mnt/shards/train-00042.tar'\n\
INFO:dataloader:worker 3 restarted, resuming from sample 4312\n";

/// Writes generated lines into a buffer, one chunk at a time.
pub struct LogGen {
    rng: Rng,
    step: u64,
    total: u64,
    epoch: u64,
    secs: u64,
    handled: bool,
}

impl LogGen {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            step: 0,
            total: 500_000,
            epoch: 0,
            secs: 3 * 3600,
            handled: true,
        }
    }

    /// No caught-and-logged tracebacks: for runs where every report must be an injected one.
    pub fn without_handled_tracebacks(mut self) -> Self {
        self.handled = false;
        self
    }

    fn timestamp(&mut self, out: &mut Vec<u8>) {
        let s = self.secs;
        out.extend_from_slice(b"2026-11-28 ");
        push_padded(out, (s / 3600) % 24, 2);
        out.push(b':');
        push_padded(out, (s / 60) % 60, 2);
        out.push(b':');
        push_padded(out, s % 60, 2);
        out.push(b',');
        push_padded(out, self.rng.below(1000), 3);
    }

    fn metric_line(&mut self, out: &mut Vec<u8>) {
        self.step += 1;
        if self.step.is_multiple_of(5000) {
            self.epoch += 1;
        }
        if self.step.is_multiple_of(4) {
            self.secs += 1;
        }
        self.timestamp(out);
        out.extend_from_slice(b" INFO train.py:212 - step ");
        push_u64(out, self.step);
        out.push(b'/');
        push_u64(out, self.total);
        out.extend_from_slice(b" | epoch ");
        push_u64(out, self.epoch);
        out.extend_from_slice(b" | loss ");
        let loss = 40_000 / (1 + self.step / 2000) + self.rng.below(2000);
        push_fixed(out, loss, 4);
        out.extend_from_slice(b" | lr ");
        push_fixed(out, 100 + self.rng.below(200), 2);
        out.extend_from_slice(b"e-04 | grad_norm ");
        push_fixed(out, 5000 + self.rng.below(8000), 4);
        out.extend_from_slice(b" | tokens/s ");
        push_u64(out, 40_000 + self.rng.below(9000));
        out.extend_from_slice(b" | mem ");
        push_fixed(out, 380 + self.rng.below(20), 1);
        out.extend_from_slice(b"GB\n");
    }

    fn tqdm_line(&mut self, out: &mut Vec<u8>) {
        let total = 1000u64;
        let redraws = 5 + self.rng.below(20);
        let mut done = self.rng.below(total - 100);
        for i in 0..redraws {
            if i > 0 {
                out.push(b'\r');
            }
            done = (done + 1 + self.rng.below(4)).min(total);
            let pct = done * 100 / total;
            out.extend_from_slice(b"Epoch ");
            push_u64(out, self.epoch);
            out.extend_from_slice(b": ");
            if pct < 10 {
                out.extend_from_slice(b"  ");
            } else if pct < 100 {
                out.push(b' ');
            }
            push_u64(out, pct);
            out.extend_from_slice(b"%|");
            let filled = (pct / 10) as usize;
            for _ in 0..filled {
                out.extend_from_slice("█".as_bytes());
            }
            for _ in filled..10 {
                out.push(b' ');
            }
            out.extend_from_slice(b"| ");
            push_u64(out, done);
            out.push(b'/');
            push_u64(out, total);
            out.extend_from_slice(b" [00:");
            push_padded(out, self.rng.below(60), 2);
            out.extend_from_slice(b"<00:");
            push_padded(out, self.rng.below(60), 2);
            out.extend_from_slice(b", ");
            push_fixed(out, 3000 + self.rng.below(900), 2);
            out.extend_from_slice(b"it/s, loss=");
            push_fixed(out, 300 + self.rng.below(200), 3);
            out.push(b']');
        }
        out.push(b'\n');
    }

    fn hf_dict(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{'loss': ");
        push_fixed(out, 3000 + self.rng.below(2000), 4);
        out.extend_from_slice(b", 'grad_norm': ");
        push_fixed(out, 500 + self.rng.below(2000), 3);
        out.extend_from_slice(b", 'learning_rate': 2.");
        push_u64(out, self.rng.below(10));
        out.extend_from_slice(b"e-05, 'epoch': ");
        push_fixed(out, self.epoch * 100 + self.rng.below(100), 2);
        out.extend_from_slice(b"}\n");
    }

    fn long_line(&mut self, out: &mut Vec<u8>) {
        let layers = 200 + self.rng.below(1500);
        out.extend_from_slice(b"INFO config dump: {\"model\": {\"layers\": [");
        for i in 0..layers {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(b"{\"name\": \"block_");
            push_u64(out, i);
            out.extend_from_slice(b"\", \"dim\": ");
            push_u64(out, 256 << self.rng.below(4));
            out.extend_from_slice(b", \"dropout\": 0.1}");
        }
        out.extend_from_slice(b"]}, \"seed\": 1234}\n");
    }

    fn misc(&mut self, out: &mut Vec<u8>) {
        self.timestamp(out);
        match self.rng.below(4) {
            0 => {
                out.extend_from_slice(
                    b" INFO trainer.py:88 - Saving checkpoint to output/implementation/models/step_",
                );
                push_u64(out, self.step);
                out.extend_from_slice(b".pt\n");
            }
            1 => {
                out.extend_from_slice(b" INFO eval.py:41 - Evaluating on ");
                push_u64(out, 5000 + self.rng.below(1000));
                out.extend_from_slice(b" samples, batch size 64\n");
            }
            2 => {
                out.extend_from_slice(b" DEBUG data.py:130 - prefetch queue depth ");
                push_u64(out, self.rng.below(32));
                out.extend_from_slice(b"/32, shard ");
                push_u64(out, self.rng.below(1024));
                out.push(b'\n');
            }
            _ => out.extend_from_slice(b" INFO sampler.py:17 - Sequential sampling (4 chains in 4 jobs)\n"),
        }
    }

    /// Append roughly `bytes` bytes of whole lines to `out`.
    pub fn fill(&mut self, out: &mut Vec<u8>, bytes: usize) {
        let goal = out.len() + bytes;
        while out.len() < goal {
            match self.rng.below(10_000) {
                0..=5499 => self.metric_line(out),
                5500..=6999 => self.tqdm_line(out),
                7000..=7799 => self.hf_dict(out),
                7800..=8299 => {
                    let w = WARNINGS[self.rng.below(WARNINGS.len() as u64) as usize];
                    out.extend_from_slice(w.as_bytes());
                    out.push(b'\n');
                }
                8300..=8799 => {
                    let t = TRAPS[self.rng.below(TRAPS.len() as u64) as usize];
                    out.extend_from_slice(t.as_bytes());
                    out.push(b'\n');
                }
                8800..=8819 => self.long_line(out),
                8820..=8820 if self.handled && self.rng.below(50) == 0 => {
                    out.extend_from_slice(HANDLED.as_bytes())
                }
                _ => self.misc(out),
            }
        }
    }
}

/// A chained Python traceback: the root cause (`root`, the first fatal line) comes first,
/// then "The above exception was the direct cause…" and the outer one. Returned in two
/// parts: everything up to the root cause's exception line, and the rest.
pub fn chained_traceback(token: &str) -> (String, String, String) {
    let head = "Traceback (most recent call last):\n  \
File \"/workspace/data/features.py\", line 57, in lookup\n    \
return self.table[name]\n           ~~~~~~~~~~^^^^^^\n"
        .to_string();
    let root = format!("KeyError: 'feature_{token}'\n");
    let rest = format!(
        "\nThe above exception was the direct cause of the following exception:\n\n\
Traceback (most recent call last):\n  \
File \"/workspace/train.py\", line 212, in <module>\n    \
batch = next(loader)\n  \
File \"/workspace/data/loader.py\", line 140, in __next__\n    \
raise RuntimeError(f\"cannot build batch for {{name}}\") from e\n\
RuntimeError: cannot build batch for feature_{token}\n"
    );
    (head, root, rest)
}

/// A token made of letters only: the detector folds numbers when it groups a burst, so
/// each injection must differ in letters to be a new incident.
pub fn letters(mut k: u64) -> String {
    let mut s = Vec::new();
    for _ in 0..5 {
        s.push(b'a' + (k % 26) as u8);
        k /= 26;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_lines_are_whole_and_varied() {
        let mut g = LogGen::new(7);
        let mut out = Vec::new();
        g.fill(&mut out, 4 << 20);
        assert!(out.ends_with(b"\n"));
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("\rEpoch "));
        assert!(text.contains("'learning_rate'"));
        assert!(text.contains("UserWarning"));
        assert!(text.contains("MeanSquaredError"));
        assert!(text.lines().any(|l| l.len() > 8000));
    }

    #[test]
    fn tokens_differ_in_letters() {
        assert_eq!(letters(0), "aaaaa");
        assert_ne!(letters(1), letters(27));
        assert!(letters(12345).chars().all(|c| c.is_ascii_lowercase()));
    }
}
