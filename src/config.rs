//! Configuration: `.dsv/config.toml` in the repository, then the user's global file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::Storage;

/// Keys dsv understands; others are rejected so typos do not pass silently.
pub const KNOWN_KEYS: &[&str] = &[
    "user.name",
    "user.email",
    "core.lock_timeout_ms",
    "core.fsync",
    "core.fsmonitor",
];

/// A flat view of one TOML config file (`section.key` -> string value).
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// Where it lives.
    pub path: PathBuf,
    /// Values by dotted key.
    pub values: BTreeMap<String, String>,
}

impl ConfigFile {
    /// Loads a config file; a missing file is empty.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        let table: toml::Table = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e
                .to_string()
                .lines()
                .next()
                .unwrap_or("parse error")
                .to_string(),
        })?;
        let mut values = BTreeMap::new();
        for (section, v) in table {
            let Some(t) = v.as_table() else {
                return Err(Error::Config {
                    path: path.to_path_buf(),
                    message: format!("'{section}' must be a [section]"),
                });
            };
            flatten(&section, t, &mut values);
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            values,
        })
    }

    /// Writes the file back atomically.
    pub fn save(&self, storage: &dyn Storage) -> Result<()> {
        let mut table = toml::Table::new();
        for (k, v) in &self.values {
            // `remote.origin.url` becomes `[remote.origin] url = ...`: every dot but the
            // last one opens a nested table (a key without a dot goes to `[core]`).
            let parts: Vec<&str> = if k.contains('.') {
                k.split('.').collect()
            } else {
                vec!["core", k.as_str()]
            };
            insert_nested(&mut table, &parts, v.clone());
        }
        let text = toml::to_string(&table).map_err(|e| Error::Config {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if let Some(dir) = self.path.parent() {
            storage.create_dir_all(dir)?;
        }
        storage.write_atomic(&self.path, text.as_bytes())
    }
}

/// Inserts `value` at a dotted path, creating tables on the way.
fn insert_nested(table: &mut toml::Table, path: &[&str], value: String) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.to_string(), toml::Value::String(value));
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let Some(t) = entry.as_table_mut() {
                insert_nested(t, rest, value);
            }
        }
    }
}

/// Adds the values of a table under `prefix`, nested tables as dotted keys
/// (`[remote.origin] url = ..` gives `remote.origin.url`).
fn flatten(prefix: &str, table: &toml::Table, values: &mut BTreeMap<String, String>) {
    for (k, v) in table {
        let key = format!("{prefix}.{k}");
        match v {
            toml::Value::String(s) => {
                values.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, values),
            other => {
                values.insert(key, other.to_string());
            }
        }
    }
}

/// Repository config layered over the global one.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `.dsv/config.toml`.
    pub repo: ConfigFile,
    /// The user's global file.
    pub global: ConfigFile,
}

impl Config {
    /// Loads both layers: the repository's file and the user's global file (`user`,
    /// found by the caller; `None`: no global layer).
    pub fn load(dsv_dir: &Path, user: Option<&Path>) -> Result<Config> {
        let repo = ConfigFile::load(&dsv_dir.join("config.toml"))?;
        let global = match user {
            Some(p) => ConfigFile::load(p)?,
            None => ConfigFile::default(),
        };
        Ok(Config { repo, global })
    }

    /// A value, repository layer first.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.repo
            .values
            .get(key)
            .or_else(|| self.global.values.get(key))
            .map(String::as_str)
    }
}

/// Settings of a remote (`remote.NAME.SETTING`).
pub const REMOTE_SETTINGS: &[&str] = &[
    "url",
    "endpoint",
    "region",
    "allow_http",
    "connect_timeout",
    "timeout",
    "retries",
    "retry_timeout",
];

/// Rejects keys dsv does not know.
pub fn check_key(key: &str) -> Result<()> {
    let remote_key = key
        .strip_prefix("remote.")
        .and_then(|r| r.rsplit_once('.'))
        .is_some_and(|(name, setting)| {
            !name.is_empty() && !name.contains('.') && REMOTE_SETTINGS.contains(&setting)
        });
    if KNOWN_KEYS.contains(&key) || remote_key {
        Ok(())
    } else {
        Err(Error::InvalidName {
            kind: "config key",
            name: key.to_string(),
            reason: "unknown key (known: user.name, user.email, core.lock_timeout_ms, core.fsync, core.fsmonitor, remote.NAME.url|endpoint|region|allow_http|connect_timeout|timeout|retries|retry_timeout)",
        })
    }
}
