//! A metric's values over steps for charting, downsampled so that memory stays bounded
//! however long the run.

/// Most buckets a [`Series`] keeps; each yields at most a low, a high and a gap marker.
const MAX_BUCKETS: usize = 1024;

/// Summary of consecutive raw points: their lowest and highest finite values (in arrival
/// order, so spikes survive downsampling) and whether a non-finite value was among them.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    n: u64,
    lo: Option<(u64, f64, f64)>,
    hi: Option<(u64, f64, f64)>,
    nonfinite: bool,
}

impl Bucket {
    fn merge(self, other: Bucket) -> Bucket {
        let pick = |a: Option<(u64, f64, f64)>, b: Option<(u64, f64, f64)>, lower: bool| match (a, b) {
            (Some(a), Some(b)) => {
                if (lower && b.2 < a.2) || (!lower && b.2 > a.2) {
                    Some(b)
                } else {
                    Some(a)
                }
            }
            (a, b) => a.or(b),
        };
        Bucket {
            n: self.n + other.n,
            lo: pick(self.lo, other.lo, true),
            hi: pick(self.hi, other.hi, false),
            nonfinite: self.nonfinite || other.nonfinite,
        }
    }
}

/// A metric over steps, downsampled so that it stays small however long the run: raw points
/// go into buckets of equal count; when the buckets run out, neighbours are merged and the
/// bucket size doubles. At most [`Series::MAX_POINTS`] points come out.
#[derive(Debug, Clone)]
pub struct Series {
    buckets: Vec<Bucket>,
    per_bucket: u64,
    raw_len: u64,
    nonfinite: u64,
    last: Option<(f64, f64)>,
}

impl Default for Series {
    fn default() -> Self {
        Self::new()
    }
}

impl Series {
    /// Bound on [`Series::points`]' length.
    pub const MAX_POINTS: usize = 3 * MAX_BUCKETS;

    pub fn new() -> Self {
        Self {
            buckets: Vec::new(),
            per_bucket: 1,
            raw_len: 0,
            nonfinite: 0,
            last: None,
        }
    }

    /// Adds a point; `y` may be NaN or infinite (it then shows as a gap).
    pub fn push(&mut self, x: f64, y: f64) {
        let seq = self.raw_len;
        self.raw_len += 1;
        self.last = Some((x, y));
        let finite = x.is_finite() && y.is_finite();
        if !finite {
            self.nonfinite += 1;
        }
        let point = finite.then_some((seq, x, y));
        let fresh = Bucket {
            n: 1,
            lo: point,
            hi: point,
            nonfinite: !finite,
        };
        match self.buckets.last_mut() {
            Some(b) if b.n < self.per_bucket => *b = b.merge(fresh),
            _ => {
                if self.buckets.len() == MAX_BUCKETS {
                    self.compact();
                }
                self.buckets.push(fresh);
            }
        }
    }

    fn compact(&mut self) {
        let merged: Vec<Bucket> = self
            .buckets
            .chunks(2)
            .map(|c| c.iter().copied().reduce(Bucket::merge).expect("chunk not empty"))
            .collect();
        self.buckets = merged;
        self.per_bucket *= 2;
    }

    /// The downsampled points in arrival order. A point with a NaN `y` marks where non-finite
    /// values were: a chart breaks its line there.
    pub fn points(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(self.buckets.len() * 2);
        for b in &self.buckets {
            match (b.lo, b.hi) {
                (Some(lo), Some(hi)) if lo.0 == hi.0 => out.push((lo.1, lo.2)),
                (Some(lo), Some(hi)) => {
                    let (a, c) = if lo.0 < hi.0 { (lo, hi) } else { (hi, lo) };
                    out.push((a.1, a.2));
                    out.push((c.1, c.2));
                }
                _ => {}
            }
            if b.nonfinite {
                let x =
                    b.hi.or(b.lo)
                        .map(|p| p.1)
                        .unwrap_or_else(|| out.last().map(|p| p.0).unwrap_or(f64::NAN));
                out.push((x, f64::NAN));
            }
        }
        out
    }

    /// How many points [`Series::points`] returns.
    pub fn len(&self) -> usize {
        self.buckets
            .iter()
            .map(|b| {
                let finite = match (b.lo, b.hi) {
                    (Some(lo), Some(hi)) if lo.0 == hi.0 => 1,
                    (Some(_), Some(_)) => 2,
                    _ => 0,
                };
                finite + usize::from(b.nonfinite)
            })
            .sum()
    }
    pub fn is_empty(&self) -> bool {
        self.raw_len == 0
    }
    /// How many points were pushed in all.
    pub fn raw_len(&self) -> u64 {
        self.raw_len
    }
    /// How many pushed values were NaN or infinite.
    pub fn nonfinite(&self) -> u64 {
        self.nonfinite
    }
    /// The last point pushed, as it was.
    pub fn last(&self) -> Option<(f64, f64)> {
        self.last
    }
}
