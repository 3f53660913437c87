//! Timeouts and retries of a remote's HTTP client.
//!
//! `object_store` retries a refused connection like a throttled request: ten times
//! with exponential backoff, about 27 s before a typo in an endpoint is reported.
//! dsv tells the two apart by whether the endpoint has ever answered. Until it has,
//! a connection error or a timeout is retried [`UNANSWERED_RETRIES`] times and then
//! reported; once any response has come back (whatever its status), the endpoint is
//! known to exist and transient failures (5xx, 429, dropped connections, timeouts of
//! idempotent requests) get the whole retry budget with backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use object_store::client::{
    ClientConfigKey, ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind,
    HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::{BackoffConfig, RetryConfig};

/// Connect timeout when none is configured: a TCP and TLS handshake with a cloud
/// endpoint takes well under a second; an unreachable host fails in two of these.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Retries of a request to an endpoint that has answered before.
pub const RETRIES: usize = 10;
/// Time budget of those retries, from the first attempt.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(180);
/// Retries of a request to an endpoint that has never answered.
pub const UNANSWERED_RETRIES: usize = 1;

pub use crate::settings::Network;

impl Network {
    /// The client settings these give, as configuration keys: set one by one on a
    /// builder, they leave the options its `from_env` read (proxies, `*_ALLOW_HTTP`)
    /// in place, which replacing its `ClientOptions` would drop.
    pub fn client_config(&self) -> Vec<(ClientConfigKey, String)> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut c = vec![(
            ClientConfigKey::ConnectTimeout,
            ms(self.connect_timeout.unwrap_or(CONNECT_TIMEOUT)),
        )];
        if let Some(t) = self.timeout {
            c.push((ClientConfigKey::Timeout, ms(t)));
        }
        c
    }

    /// The retry policy these settings give.
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: self.retries.unwrap_or(RETRIES),
            retry_timeout: self.retry_timeout.unwrap_or(RETRY_TIMEOUT),
        }
    }

    /// The HTTP connector: `object_store`'s reqwest client behind [`FailFast`].
    pub fn connector(&self) -> FailFastConnector {
        FailFastConnector {
            unanswered_retries: UNANSWERED_RETRIES.min(self.retries.unwrap_or(RETRIES)),
        }
    }
}

/// Most retries a setting may ask for: more would only hide a broken remote.
pub const MAX_RETRIES: usize = 100;

/// Parses a retry count as written in a config file or the environment (0 to
/// [`MAX_RETRIES`]).
pub fn parse_retries(text: &str) -> Option<usize> {
    text.trim().parse().ok().filter(|n| *n <= MAX_RETRIES)
}

/// Parses a duration as written in a config file or the environment (`3s`,
/// `500ms`, `2m`, `1h`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim()).ok()
}

/// Makes the reqwest client of `object_store`, wrapped in [`FailFast`].
#[derive(Debug, Clone, Copy)]
pub struct FailFastConnector {
    unanswered_retries: usize,
}

impl HttpConnector for FailFastConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(FailFast::new(
            inner,
            self.unanswered_retries,
        )))
    }
}

/// An HTTP service that turns the connection errors and timeouts of an endpoint
/// that has never answered into errors `object_store` does not retry, after
/// `unanswered_retries` of them.
#[derive(Debug, Clone)]
pub struct FailFast {
    inner: HttpClient,
    answered: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
    unanswered_retries: usize,
}

impl FailFast {
    /// Wraps `inner`.
    pub fn new(inner: HttpClient, unanswered_retries: usize) -> FailFast {
        FailFast {
            inner,
            answered: Arc::new(AtomicBool::new(false)),
            failures: Arc::new(AtomicUsize::new(0)),
            unanswered_retries,
        }
    }
}

/// Why an endpoint that never answered is given up on: shown after the client's
/// own message, which names the kind of failure.
#[derive(Debug, thiserror::Error)]
#[error("the endpoint never answered ({attempts} attempts): {source}")]
struct NeverAnswered {
    attempts: usize,
    #[source]
    source: HttpError,
}

#[async_trait::async_trait]
impl HttpService for FailFast {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        match self.inner.execute(req).await {
            Ok(r) => {
                self.answered.store(true, Ordering::Relaxed);
                Ok(r)
            }
            Err(e) => {
                let unreachable =
                    matches!(e.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout);
                if !unreachable || self.answered.load(Ordering::Relaxed) {
                    return Err(e);
                }
                let attempts = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if attempts > self.unanswered_retries {
                    // `Unknown` is the one kind object_store never retries.
                    return Err(HttpError::new(
                        HttpErrorKind::Unknown,
                        NeverAnswered {
                            attempts,
                            source: e,
                        },
                    ));
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::client::HttpRequestBody;
    use std::sync::Mutex;

    /// Answers from a script: `Err(kind)` or `Ok(status)`, then repeats the last.
    #[derive(Debug)]
    struct Script(Mutex<Vec<Result<u16, HttpErrorKind>>>);

    #[async_trait::async_trait]
    impl HttpService for Script {
        async fn call(&self, _req: HttpRequest) -> Result<HttpResponse, HttpError> {
            let mut s = self.0.lock().unwrap();
            let next = if s.len() > 1 { s.remove(0) } else { s[0] };
            match next {
                Ok(status) => {
                    let mut r = HttpResponse::new(Vec::<u8>::new().into());
                    *r.status_mut() = status.try_into().unwrap();
                    Ok(r)
                }
                Err(kind) => Err(HttpError::new(kind, std::io::Error::other("scripted"))),
            }
        }
    }

    fn service(script: Vec<Result<u16, HttpErrorKind>>) -> FailFast {
        FailFast::new(HttpClient::new(Script(Mutex::new(script))), 1)
    }

    fn call(s: &FailFast) -> Result<u16, HttpErrorKind> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let req = HttpRequest::new(HttpRequestBody::empty());
        rt.block_on(s.call(req))
            .map(|r| r.status().as_u16())
            .map_err(|e| e.kind())
    }

    #[test]
    fn refused_endpoint_is_given_up_after_one_retry() {
        let s = service(vec![Err(HttpErrorKind::Connect)]);
        assert_eq!(call(&s), Err(HttpErrorKind::Connect));
        assert_eq!(call(&s), Err(HttpErrorKind::Unknown));
        assert_eq!(call(&s), Err(HttpErrorKind::Unknown));
    }

    #[test]
    fn silent_endpoint_timeouts_are_given_up_too() {
        let s = service(vec![Err(HttpErrorKind::Timeout)]);
        assert_eq!(call(&s), Err(HttpErrorKind::Timeout));
        assert_eq!(call(&s), Err(HttpErrorKind::Unknown));
    }

    #[test]
    fn an_endpoint_that_answered_keeps_its_retries() {
        let s = service(vec![
            Ok(200),
            Err(HttpErrorKind::Connect),
            Err(HttpErrorKind::Connect),
            Err(HttpErrorKind::Timeout),
            Ok(503),
        ]);
        assert_eq!(call(&s), Ok(200));
        for _ in 0..3 {
            assert_ne!(call(&s), Err(HttpErrorKind::Unknown));
        }
        assert_eq!(call(&s), Ok(503));
    }

    #[test]
    fn other_errors_pass_through_unchanged() {
        let s = service(vec![Err(HttpErrorKind::Request)]);
        for _ in 0..4 {
            assert_eq!(call(&s), Err(HttpErrorKind::Request));
        }
    }

    #[test]
    fn settings_fall_back_field_by_field() {
        let a = Network {
            connect_timeout: Some(Duration::from_secs(1)),
            ..Network::default()
        };
        let b = Network {
            connect_timeout: Some(Duration::from_secs(9)),
            retries: Some(2),
            ..Network::default()
        };
        let n = a.or(b);
        assert_eq!(n.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(n.retries, Some(2));
        assert_eq!(n.retry_config().max_retries, 2);
        assert_eq!(n.retry_config().retry_timeout, RETRY_TIMEOUT);
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(
            Network::default().client_config(),
            vec![(ClientConfigKey::ConnectTimeout, "3000ms".to_string())]
        );
        let c = Network {
            timeout: Some(Duration::from_millis(1500)),
            ..a
        }
        .client_config();
        assert!(
            c.contains(&(ClientConfigKey::Timeout, "1500ms".to_string())),
            "{c:?}"
        );
        assert!(c.contains(&(ClientConfigKey::ConnectTimeout, "1000ms".to_string())));
    }
}
