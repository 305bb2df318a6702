//! How a message names the signal a process died of: a DataLoader's `worker (pid 4242) is
//! killed by signal: Killed`, `subprocess`'s `died with <Signals.SIGSEGV: 11>`, joblib's
//! `{SIGKILL(-9)}`, `terminated by signal 15`. The signal is then judged by the exit
//! classifier, like a process's own end (one classifier for exits and logs); this module only
//! reads which signal it was.

use std::str::FromStr;

use nix::sys::signal::Signal;

/// glibc's `strsignal` descriptions, as Python's `signal.strsignal` and shells print them.
const DESCRIPTIONS: &[(&str, i32)] = &[
    ("Hangup", 1),
    ("Interrupt", 2),
    ("Quit", 3),
    ("Illegal instruction", 4),
    ("Aborted", 6),
    ("Bus error", 7),
    ("Floating point exception", 8),
    ("Killed", 9),
    ("Segmentation fault", 11),
    ("Terminated", 15),
    ("CPU time limit exceeded", 24),
    ("File size limit exceeded", 25),
];

/// The signal `msg` says a process died of or received, if it names one: a `SIG…` name as a
/// whole word, or `signal` followed by a number or a description (`by signal: Killed`,
/// `signal 9`).
pub(crate) fn named_signal(msg: &str) -> Option<i32> {
    let by_name = msg
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.len() > 3 && w.starts_with("SIG"))
        .find_map(|w| Signal::from_str(w).ok());
    if let Some(s) = by_name {
        return Some(s as i32);
    }
    let lower_at = msg.find("signal")?;
    let rest = msg[lower_at + "signal".len()..]
        .trim_start_matches([':', ' ', '='])
        .trim_start();
    let digits: &str = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
    if let Ok(n) = digits.parse::<i32>() {
        return Signal::try_from(n).is_ok().then_some(n);
    }
    DESCRIPTIONS
        .iter()
        .find(|(d, _)| rest.starts_with(d))
        .map(|&(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::named_signal;

    #[test]
    fn a_signal_is_read_however_the_message_names_it() {
        assert_eq!(
            named_signal("DataLoader worker (pid 30104) is killed by signal: Killed."),
            Some(9)
        );
        assert_eq!(
            named_signal("DataLoader worker (pid 77) is killed by signal: Segmentation fault."),
            Some(11)
        );
        assert_eq!(
            named_signal("Command '['./prep']' died with <Signals.SIGSEGV: 11>."),
            Some(11)
        );
        assert_eq!(
            named_signal("The exit codes of the workers are {SIGKILL(-9)}"),
            Some(9)
        );
        assert_eq!(named_signal("child terminated by signal 15"), Some(15));
        assert_eq!(named_signal("worker exited on signal=6"), Some(6));
    }

    #[test]
    fn words_that_only_look_like_a_signal_are_not_one() {
        assert_eq!(named_signal("signal processing failed: bad window"), None);
        assert_eq!(named_signal("SIGNAL strength too low"), None);
        assert_eq!(named_signal("signal 99 is out of range"), None);
        assert_eq!(named_signal("the input signal is empty"), None);
    }
}
