//! Errors at the edge: what a command's failure prints and which exit code it gives.
//!
//! The library classifies every error ([`dsv::ErrorKind`], from each module's own
//! error enum); this file is the one place that turns a kind into an exit code and a
//! hint, so a script or a CI loop can rely on them. Exit codes: 0 success, 1 failure,
//! 2 a command line that cannot be acted on (clap's parse errors and
//! [`dsv::ErrorKind::Usage`]).

use dsv::ErrorKind;

use super::output::safe_message;

/// A command line that parses but makes no sense (exit code 2, like clap's own errors).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Returns a usage error (exit code 2) from a command.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::cli::command_error::UsageError(format!($($arg)*))))
    };
}

/// The kind of a command's failure: the library's classification, or usage for the
/// CLI's own [`UsageError`]; anything else the CLI raised itself is a refusal.
pub fn kind(e: &anyhow::Error) -> ErrorKind {
    if e.downcast_ref::<UsageError>().is_some() {
        return ErrorKind::Usage;
    }
    match e.downcast_ref::<dsv::Error>() {
        Some(err) => err.kind(),
        None if e.downcast_ref::<std::io::Error>().is_some() => ErrorKind::Environment,
        None => ErrorKind::Refused,
    }
}

/// The exit code for a failure of this kind.
pub fn exit_code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::Usage => 2,
        ErrorKind::Refused
        | ErrorKind::NotFound
        | ErrorKind::Damaged
        | ErrorKind::Environment
        | ErrorKind::Configuration
        | ErrorKind::Internal => 1,
    }
}

/// A line of advice printed after the error, for kinds whose message alone does not
/// say what to do.
fn hint(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::Internal => Some(
            "this is a bug in dsv; please report it with the command line and the output of `dsv --version`",
        ),
        _ => None,
    }
}

/// Prints the error (its causes, grouped errors, a rejecting hook's output and a
/// hint) to stderr and returns the exit code.
pub fn report(e: &anyhow::Error) -> i32 {
    let kind = kind(e);
    let lib = e.downcast_ref::<dsv::Error>();
    // What a rejecting hook printed explains the rejection: show it first.
    if let Some(dsv::Error::HookRejected { output, .. }) = lib {
        for line in output.lines() {
            eprintln!("  | {}", safe_message(line));
        }
    }
    eprintln!("error: {}", safe_message(&e.to_string()));
    if let Some(dsv::Error::Multiple { errors, .. }) = lib {
        for err in errors.iter().take(20) {
            eprintln!("  {}", safe_message(&err.to_string()));
        }
        if errors.len() > 20 {
            eprintln!("  ... and {} more", errors.len() - 20);
        }
    }
    // Causes already spelled out in the message (an I/O error's source) are not repeated.
    let mut shown = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !shown.contains(&cause) {
            eprintln!("  caused by: {}", safe_message(&cause));
            shown = cause;
        }
    }
    if let Some(h) = hint(kind) {
        eprintln!("hint: {h}");
    }
    exit_code(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_errors_keep_their_kind_and_exit_code_through_anyhow() {
        let merge: anyhow::Error =
            dsv::Error::from(dsv::ops::merge::MergeError::NoneInProgress).into();
        assert_eq!(kind(&merge), ErrorKind::Refused);
        assert_eq!(exit_code(kind(&merge)), 1);
        let rev: anyhow::Error = dsv::Error::from(dsv::ops::revparse::RevError::NoCommitYet).into();
        assert_eq!(kind(&rev), ErrorKind::NotFound);
        let usage: anyhow::Error = dsv::Error::InvalidArgument("bad".into()).into();
        assert_eq!(exit_code(kind(&usage)), 2);
        let cli = anyhow::Error::new(UsageError("no paths".into()));
        assert_eq!(exit_code(kind(&cli)), 2);
        let internal: anyhow::Error = dsv::Error::Internal("x".into()).into();
        assert_eq!(kind(&internal), ErrorKind::Internal);
        assert!(hint(ErrorKind::Internal).is_some());
    }

    #[test]
    fn a_module_error_is_found_by_its_type() {
        let e = dsv::Error::from(dsv::ops::branch::BranchError::DeleteCurrent("main".into()));
        assert!(matches!(
            e.module::<dsv::ops::branch::BranchError>(),
            Some(dsv::ops::branch::BranchError::DeleteCurrent(n)) if n == "main"
        ));
        assert!(e.module::<dsv::ops::merge::MergeError>().is_none());
        assert_eq!(
            e.to_string(),
            "cannot delete branch 'main': it is the current branch"
        );
    }
}
