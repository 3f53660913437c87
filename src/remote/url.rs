//! Remote URLs to `object_store` backends.
//!
//! `s3://bucket/prefix` (endpoint from the remote config or `AWS_ENDPOINT_URL`, for
//! MinIO, Ceph, R2 or a test server), `gs://bucket/prefix`, `az://container/prefix`,
//! `file:///path` and plain paths. Credentials come only from each cloud's own
//! environment variables and profiles; dsv never stores or prints them.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;

use crate::error::{Error, Result};
use crate::redact::url as redact;

/// Where a remote lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Amazon S3 or an S3-compatible store.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (may be empty).
        prefix: String,
    },
    /// Google Cloud Storage.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Key prefix (may be empty).
        prefix: String,
    },
    /// Azure Blob Storage.
    Azure {
        /// Container name.
        container: String,
        /// Key prefix (may be empty).
        prefix: String,
    },
    /// A directory on a local (or mounted) file system.
    File(std::path::PathBuf),
}

/// Settings beside the URL (`[remote.NAME]` in `.dsv/config.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Custom S3 endpoint (`http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Allow plain HTTP (implied by an `http://` endpoint).
    pub allow_http: bool,
    /// Client timeouts and retries.
    pub net: super::net::Network,
    /// S3 endpoint when `endpoint` is unset (the caller's `AWS_ENDPOINT_URL`, from
    /// [`crate::settings::Settings`]; never from config).
    pub default_endpoint: Option<String>,
    /// Whether the caller set a default AWS region (`AWS_REGION`/`AWS_DEFAULT_REGION`,
    /// read by `object_store` itself); if not, and `region` is unset, `us-east-1`.
    pub default_region_set: bool,
}

fn split_bucket(rest: &str, url: &str) -> Result<(String, String)> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(UrlError::NoBucket(redact(url)).into());
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// Where each backend takes its credentials from (the variables `object_store`'s
/// `from_env` builders read), for the error that refuses them in a URL.
fn credential_variables(url: &str) -> &'static str {
    if url.starts_with("gs://") {
        "GOOGLE_SERVICE_ACCOUNT (a key file) or GOOGLE_SERVICE_ACCOUNT_KEY, or GOOGLE_APPLICATION_CREDENTIALS"
    } else if url.starts_with("az://") {
        "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_KEY, or AZURE_STORAGE_CLIENT_ID/AZURE_STORAGE_CLIENT_SECRET/AZURE_STORAGE_TENANT_ID)"
    } else {
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)"
    }
}

/// Refuses a URL (`what`: "remote URL", "endpoint") that carries credentials: a
/// `user:password@` part or a secret-looking query parameter. They would be stored
/// in `.dsv/config.toml` and shown in messages; they belong in the environment.
pub fn check_no_credentials(what: &str, text: &str, remote_url: &str) -> Result<()> {
    if crate::redact::has_secrets(text) {
        return Err(UrlError::Credentials {
            what: what.to_string(),
            shown: redact(text),
            variables: credential_variables(remote_url).to_string(),
        }
        .into());
    }
    Ok(())
}

/// Parses a remote URL; one that carries credentials is refused.
pub fn parse(url: &str) -> Result<Location> {
    check_no_credentials("remote URL", url, url)?;
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = split_bucket(rest, url)?;
        return Ok(Location::S3 { bucket, prefix });
    }
    if let Some(rest) = url.strip_prefix("gs://") {
        let (bucket, prefix) = split_bucket(rest, url)?;
        return Ok(Location::Gcs { bucket, prefix });
    }
    if let Some(rest) = url.strip_prefix("az://") {
        let (container, prefix) = split_bucket(rest, url)?;
        return Ok(Location::Azure { container, prefix });
    }
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(UrlError::RelativeFileUrl(redact(url)).into());
        }
        return Ok(Location::File(rest.into()));
    }
    if url.contains("://") {
        return Err(UrlError::UnsupportedScheme(redact(url)).into());
    }
    if url.is_empty() {
        return Err(UrlError::Empty.into());
    }
    Ok(Location::File(url.into()))
}

/// Errors from a store builder can quote configuration; keep only the kind of problem.
fn build_error(url: &str, e: object_store::Error) -> Error {
    UrlError::CannotOpen {
        url: redact(url),
        reason: super::safe_message(&e),
    }
    .into()
}

/// Opens the backend for a location; returns the store and the key prefix inside it.
/// `create` makes a missing local directory (push); otherwise it must exist.
pub fn open(
    url: &str,
    loc: &Location,
    settings: &Settings,
    create: bool,
) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
    if let Some(ep) = &settings.endpoint {
        check_no_credentials("endpoint", ep, url)?;
    }
    let net = &settings.net;
    let prefix_path =
        |p: &str| -> StorePath { StorePath::from_iter(p.split('/').filter(|s| !s.is_empty())) };
    match loc {
        Location::S3 { bucket, prefix } => {
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(net.retry_config())
                .with_http_connector(net.connector());
            for (k, v) in net.client_config() {
                b = b.with_config(AmazonS3ConfigKey::Client(k), v);
            }
            let endpoint = settings
                .endpoint
                .clone()
                .or_else(|| settings.default_endpoint.clone())
                .filter(|e| !e.is_empty());
            if let Some(ep) = &endpoint {
                b = b.with_endpoint(ep.clone());
                if ep.starts_with("http://") {
                    b = b.with_allow_http(true);
                }
            }
            if settings.allow_http {
                b = b.with_allow_http(true);
            }
            match &settings.region {
                Some(r) => b = b.with_region(r.clone()),
                None if !settings.default_region_set => {
                    b = b.with_region("us-east-1");
                }
                None => {}
            }
            let store = b.build().map_err(|e| build_error(url, e))?;
            Ok((Arc::new(store), prefix_path(prefix)))
        }
        Location::Gcs { bucket, prefix } => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_retry(net.retry_config())
                .with_http_connector(net.connector());
            for (k, v) in net.client_config() {
                b = b.with_config(GoogleConfigKey::Client(k), v);
            }
            let store = b.build().map_err(|e| build_error(url, e))?;
            Ok((Arc::new(store), prefix_path(prefix)))
        }
        Location::Azure { container, prefix } => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_container_name(container)
                .with_retry(net.retry_config())
                .with_http_connector(net.connector());
            for (k, v) in net.client_config() {
                b = b.with_config(AzureConfigKey::Client(k), v);
            }
            if let Some(ep) = &settings.endpoint {
                b = b.with_endpoint(ep.clone());
                if ep.starts_with("http://") {
                    b = b.with_allow_http(true);
                }
            }
            let store = b.build().map_err(|e| build_error(url, e))?;
            Ok((Arc::new(store), prefix_path(prefix)))
        }
        Location::File(path) => {
            let abs = crate::repo::absolute(path)?;
            if create {
                std::fs::create_dir_all(&abs)
                    .map_err(|e| Error::io("creating remote directory", abs.clone(), e))?;
            } else if !abs.is_dir() {
                return Err(UrlError::NoDirectory {
                    url: redact(url),
                    dir: abs.clone(),
                }
                .into());
            }
            let store = LocalFileSystem::new_with_prefix(&abs)
                .map_err(|e| build_error(url, e))?
                .with_fsync(true);
            Ok((Arc::new(store), StorePath::default()))
        }
    }
}

/// A remote URL that cannot be used. URLs in it are already redacted.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// `s3://` (or gs, az) with no bucket.
    #[error("remote URL '{0}' names no bucket")]
    NoBucket(String),
    /// A URL or setting with a password, token or signature in it.
    #[error(
        "{what} '{shown}' carries credentials; dsv never stores them: remove them and set {variables} in the environment"
    )]
    Credentials {
        /// What was given ("remote URL", a setting name).
        what: String,
        /// The text with the secrets masked.
        shown: String,
        /// Where the credentials belong instead.
        variables: String,
    },
    /// `file://relative`.
    #[error("remote URL '{0}': a file URL needs an absolute path (file:///path)")]
    RelativeFileUrl(String),
    /// A scheme dsv has no backend for.
    #[error("remote URL '{0}': unsupported scheme (use s3://, gs://, az://, file:// or a path)")]
    UnsupportedScheme(String),
    /// An empty URL.
    #[error("remote URL is empty")]
    Empty,
    /// The backend client could not be built from the URL and settings.
    #[error("cannot open remote '{url}': {reason}")]
    CannotOpen {
        /// The URL.
        url: String,
        /// The kind of problem (never the configuration's values).
        reason: String,
    },
    /// A local remote directory that does not exist.
    #[error("remote '{url}' does not exist (no directory {})", .dir.display())]
    NoDirectory {
        /// The URL.
        url: String,
        /// The directory looked for.
        dir: std::path::PathBuf,
    },
}

impl crate::error::ModuleError for UrlError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            UrlError::NoDirectory { .. } => crate::error::ErrorKind::NotFound,
            _ => crate::error::ErrorKind::Configuration,
        }
    }
}

crate::error::module_error!(UrlError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse("s3://b/some/prefix/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            parse("gs://b").unwrap(),
            Location::Gcs {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            parse("file:///tmp/r").unwrap(),
            Location::File("/tmp/r".into())
        );
        assert_eq!(parse("../r").unwrap(), Location::File("../r".into()));
        assert!(parse("s3://").is_err());
        assert!(parse("ftp://x").is_err());
        assert!(parse("file://relative").is_err());
    }

    #[test]
    fn refuses_credentials() {
        let e = parse("s3://KEY:hunter2@bucket/p").unwrap_err().to_string();
        assert!(
            !e.contains("hunter2") && e.contains("AWS_SECRET_ACCESS_KEY"),
            "{e}"
        );
        let e = parse("az://c/p?sig=zq9").unwrap_err().to_string();
        assert!(!e.contains("zq9") && e.contains("AZURE_STORAGE"), "{e}");
        assert!(parse("gs://tok@b/p").is_err());
        assert!(parse("/path/with@at/sign").is_ok());
    }
}
