//! Burst folding: the identity of a piece of evidence, so that a thousand identical errors
//! (one per batch, per retry, per worker) are one incident with a count. Numbers and hex
//! addresses are masked: `loss is nan at step 120` and `… step 121` are the same problem.

use std::hash::{Hash, Hasher};

use crate::model::Category;

/// A stable key for `text` of `category`, insensitive to numbers and surrounding spaces.
pub(crate) fn key(category: Category, text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    category.hash(&mut h);
    let mut in_number = false;
    for c in text.trim().chars() {
        // Digits, and hex digits right after a digit (0x7f3a…), fold into one '#'.
        let numeric = c.is_ascii_digit() || (in_number && c.is_ascii_hexdigit()) || (in_number && c == 'x');
        if numeric {
            if !in_number {
                '#'.hash(&mut h);
            }
            in_number = true;
        } else {
            in_number = false;
            c.hash(&mut h);
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_do_not_split_a_burst() {
        let c = Category::Convergence;
        assert_eq!(
            key(c, "loss is nan at step 120"),
            key(c, "loss is nan at step 121")
        );
        assert_eq!(key(c, "at 0x7f3a12"), key(c, "at 0x55ee"));
        assert_ne!(key(c, "loss is nan"), key(c, "loss is inf"));
        assert_ne!(key(c, "x"), key(Category::Data, "x"));
    }
}
