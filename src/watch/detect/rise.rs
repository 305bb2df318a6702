//! A loss that rose many-fold in the lines before the error that ended the run. A numeric
//! error then — an overflow (`math.exp(loss)`, `int(inf)`), a factorisation of a covariance
//! no longer positive-definite, bins or a correlation of saturated outputs — is the
//! consequence of the diverged optimisation, not of the code or the data it names. Read
//! once, at the log's end, from its last lines (the tail): each loss by its key (`loss`,
//! `val_loss`, `nll`, `train_mse`), as `key value`, `key=value` or `key: value`.

use super::classify;
use crate::watch::metrics;

pub(crate) const DIVERGED_FIRST: &str =
    "the loss rose many-fold in the lines before this error: the optimisation diverged, and the error is its consequence (convergence)";

/// How many times its lowest value so far a loss must reach to have risen.
const RISE: f64 = 5.0;

/// Did a loss, over `lines` in order, reach [`RISE`] times its lowest value before?
pub(super) fn loss_rose<'a>(lines: impl Iterator<Item = &'a str>) -> bool {
    let mut lowest: Vec<(String, f64)> = Vec::new();
    for line in lines {
        for (key, v) in loss_values(line) {
            match lowest.iter_mut().find(|(k, _)| *k == key) {
                Some((_, min)) => {
                    if *min > 0.0 && v >= RISE * *min {
                        return true;
                    }
                    *min = min.min(v);
                }
                None => lowest.push((key, v)),
            }
        }
    }
    false
}

/// The finite values of the losses a line states, with their keys (lower case).
fn loss_values(line: &str) -> Vec<(String, f64)> {
    let tokens: Vec<&str> = line
        .split(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | '|' | '(' | ')' | '[' | ']' | '{' | '}')
        })
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let (key, value) = match t.split_once(['=', ':']) {
            Some((k, v)) if !v.is_empty() => (k, Some(v)),
            Some((k, _)) => (k, tokens.get(i + 1).copied()),
            None => (*t, tokens.get(i + 1).copied()),
        };
        let key = key.trim_matches(['\'', '"']).to_ascii_lowercase();
        if key.is_empty() || !(metrics::is_loss_key(&key) || classify::is_loss_metric(&key)) {
            continue;
        }
        if let Some(v) = value
            .and_then(|v| v.trim_matches(['\'', '"']).parse::<f64>().ok())
            .filter(|v| v.is_finite())
        {
            out.push((key, v));
        }
    }
    out
}

/// Is the exception line `text` a numeric failure that a diverged optimisation causes?
pub(super) fn numeric_failure(text: &str) -> bool {
    const NAMES: [&str; 4] = [
        "OverflowError",
        "FloatingPointError",
        "LinAlgError",
        "StatisticsError",
    ];
    if NAMES.iter().any(|n| text.contains(n)) {
        return true;
    }
    let l = text.to_ascii_lowercase();
    [
        "infinity",
        "not finite",
        "non-finite",
        "must be unique",
        "is constant",
        "positive-definite",
        "positive definite",
        "math range error",
    ]
    .iter()
    .any(|p| l.contains(p))
        || l.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| matches!(w, "nan" | "inf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_rose_when_it_reached_five_times_its_lowest_value() {
        let diverging = [
            "epoch 0 step 0 nll 11.4 |L|max 4.84",
            "epoch 0 step 2 nll 19.67 |L|max 11.1",
            "epoch 0 step 14 nll 63.29 |L|max 40.2",
        ];
        assert!(loss_rose(diverging.into_iter()));
        assert!(loss_rose(
            [
                "epoch 0 mse_log_steps 2.714e+04",
                "epoch 1 mse_log_steps 5.888e+07"
            ]
            .into_iter()
        ));
        assert!(loss_rose(
            ["{'loss': 0.7, 'epoch': 1}", "{'loss': 4.1, 'epoch': 2}"].into_iter()
        ));
        // Falling, noisy, or another metric rising: no.
        assert!(!loss_rose(
            ["loss=0.9", "loss=0.5", "loss=0.7", "loss=0.4"].into_iter()
        ));
        assert!(!loss_rose(
            ["step 1 loss 0.5 lr 1e-5", "step 2 loss 0.45 lr 1e-3"].into_iter()
        ));
        assert!(!loss_rose(["val_loss: 0.30", "train_loss: 2.0"].into_iter()));
    }

    #[test]
    fn numeric_failures_are_overflows_factorisations_and_non_finite_values() {
        assert!(numeric_failure("OverflowError: math range error"));
        assert!(numeric_failure("torch._C._LinAlgError: linalg.cholesky: The factorization could not be completed because the input is not positive-definite"));
        assert!(numeric_failure(
            "ValueError: Bin edges must be unique: Index([0.0, 0.0, 1.0])"
        ));
        assert!(numeric_failure("ValueError: probabilities contain NaN"));
        assert!(!numeric_failure("KeyError: 'label'"));
        assert!(!numeric_failure(
            "FileNotFoundError: [Errno 2] No such file or directory: 'inference.csv'"
        ));
    }
}
