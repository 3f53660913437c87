//! The library's [`Settings`] from the process environment: the one place dsv reads
//! its variables (besides the CLI's own `DSV_FAULT`, `DSV_TRACE_PERF`, `NO_COLOR`
//! and completion variables), once per run.

use std::path::PathBuf;
use std::time::Duration;

use dsv::Settings;
use dsv::settings::Variables;

/// A variable's value; unset and not UTF-8 are alike (as `std::env::var` gives them).
fn var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// A variable's value when set and not empty.
fn given(k: &str) -> Option<String> {
    var(k).filter(|v| !v.is_empty())
}

/// Reads every setting. The error (exit code 2) is a bad `DSV_REMOTE_*` value; other
/// variables that do not parse are ignored as before, except `DSV_AUTHOR_DATE`, which
/// the library checks when it needs a time.
pub fn from_env() -> Result<Settings, String> {
    let number = |k: &str| var(k).and_then(|v| v.trim().parse::<u64>().ok());
    Ok(Settings {
        lock_timeout: var("DSV_LOCK_TIMEOUT_MS")
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis),
        fsync: given("DSV_FSYNC").map(|v| v != "0" && v != "false"),
        author_name: given("DSV_AUTHOR_NAME"),
        author_email: given("DSV_AUTHOR_EMAIL"),
        author_date: given("DSV_AUTHOR_DATE"),
        user_config: user_config_path(),
        remote_net: remote_net_from_env()?,
        remote_pack_size: var("DSV_REMOTE_PACK_SIZE").and_then(|v| v.parse().ok()),
        aws_endpoint_url: var("AWS_ENDPOINT_URL"),
        aws_region_set: std::env::var_os("AWS_REGION").is_some()
            || std::env::var_os("AWS_DEFAULT_REGION").is_some(),
        query_no_derive: std::env::var_os("DSV_QUERY_NO_DERIVE").is_some(),
        hooks_backoff: number("DSV_HOOKS_BACKOFF_MS").map(Duration::from_millis),
        hooks_max_attempts: number("DSV_HOOKS_MAX_ATTEMPTS").map(|n| n.clamp(1, 1000) as u32),
        hooks_foreground: given("DSV_HOOKS_FOREGROUND").is_some_and(|v| v != "0" && v != "false"),
        fsmonitor: given("DSV_FSMONITOR").map(|v| v != "0" && v != "false"),
        // Read when a hook is sent, so a secret is not held for the whole run.
        variables: Variables::new(var),
    })
}

/// Path of the user's global config (`$XDG_CONFIG_HOME/dsv/config.toml` or
/// `~/.config/dsv/config.toml`).
pub fn user_config_path() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("dsv/config.toml"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/dsv/config.toml"))
}

/// Remote client settings from `DSV_REMOTE_CONNECT_TIMEOUT`, `DSV_REMOTE_TIMEOUT`,
/// `DSV_REMOTE_RETRIES` and `DSV_REMOTE_RETRY_TIMEOUT`; they override every
/// remote's `[remote.NAME]` settings for this run.
fn remote_net_from_env() -> Result<dsv::remote::net::Network, String> {
    use dsv::remote::net::{Network, parse_duration};
    let duration = |k: &str| match given(k) {
        None => Ok(None),
        Some(v) => parse_duration(&v).map(Some).ok_or_else(|| {
            format!(
                "{k} must be a duration such as 5s or 500ms, not '{}'",
                dsv::quote::text(&v)
            )
        }),
    };
    let retries = match given("DSV_REMOTE_RETRIES") {
        None => None,
        Some(v) => Some(dsv::remote::net::parse_retries(&v).ok_or_else(|| {
            format!(
                "DSV_REMOTE_RETRIES must be a number from 0 to 100, not '{}'",
                dsv::quote::text(&v)
            )
        })?),
    };
    Ok(Network {
        connect_timeout: duration("DSV_REMOTE_CONNECT_TIMEOUT")?,
        timeout: duration("DSV_REMOTE_TIMEOUT")?,
        retries,
        retry_timeout: duration("DSV_REMOTE_RETRY_TIMEOUT")?,
    })
}
