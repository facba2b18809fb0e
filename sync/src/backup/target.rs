//! Backup targets: `file:///dir` and `s3://bucket/prefix`, both through
//! `object_store`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

use super::Error;

/// Where backups go: an object store and a prefix inside it.
#[derive(Debug, Clone)]
pub struct Target {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: ObjectPath,
    url: String,
}

impl Target {
    /// Parses `url`: `file:///dir` (the directory is created if missing) or
    /// `s3://bucket[/prefix]`, configured by `env` (AWS_ENDPOINT_URL,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_SESSION_TOKEN).
    /// Plain `http://` endpoints are allowed only on loopback addresses.
    pub fn from_url(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, Error> {
        if let Some(dir) = url.strip_prefix("file://") {
            if !dir.starts_with('/') {
                return Err(Error::InvalidArgument(format!("{url}: a file URL needs an absolute path (file:///dir)")));
            }
            std::fs::create_dir_all(dir).map_err(|e| Error::InvalidArgument(format!("{url}: cannot create {dir}: {e}")))?;
            let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| Error::from_store(e, url))?;
            return Ok(Target { store: Arc::new(store), prefix: ObjectPath::default(), url: url.to_string() });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::InvalidArgument(format!("{url}: no bucket (s3://bucket/prefix)")));
            }
            let mut builder = AmazonS3Builder::new().with_bucket_name(bucket).with_retry(retry_config());
            let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".to_string());
            builder = builder.with_region(region);
            if let Some(id) = env("AWS_ACCESS_KEY_ID") {
                builder = builder.with_access_key_id(id);
            }
            if let Some(secret) = env("AWS_SECRET_ACCESS_KEY") {
                builder = builder.with_secret_access_key(secret);
            }
            if let Some(token) = env("AWS_SESSION_TOKEN") {
                builder = builder.with_token(token);
            }
            if let Some(endpoint) = env("AWS_ENDPOINT_URL") {
                if let Some(host) = endpoint.strip_prefix("http://") {
                    if !is_loopback(host) {
                        return Err(Error::InvalidArgument(format!(
                            "AWS_ENDPOINT_URL {endpoint}: plain http is allowed only to a loopback address; use https"
                        )));
                    }
                    builder = builder.with_allow_http(true);
                } else if !endpoint.starts_with("https://") {
                    return Err(Error::InvalidArgument(format!("AWS_ENDPOINT_URL {endpoint}: not an http(s) URL")));
                }
                builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
            }
            let store = builder.build().map_err(|e| Error::from_store(e, url))?;
            let prefix = ObjectPath::parse(prefix.trim_matches('/')).map_err(|e| Error::InvalidArgument(format!("{url}: {e}")))?;
            return Ok(Target { store: Arc::new(store), prefix, url: url.to_string() });
        }
        Err(Error::InvalidArgument(format!("{url}: a backup URL is file:///dir or s3://bucket/prefix")))
    }

    /// The URL this target was made from.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn path(&self, parts: &[&str]) -> ObjectPath {
        let mut p = self.prefix.clone();
        for part in parts {
            p = p.clone().join(*part);
        }
        p
    }
}

/// Retries are short: a backup cut by a failure is resumed by running it
/// again, which uploads only what is missing.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    }
}

/// Whether the authority of an `http://` URL (host, port, path) is a loopback
/// address or `localhost`.
fn is_loopback(rest: &str) -> bool {
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in ["127.0.0.1:9000", "localhost:80/x", "[::1]:9000", "127.1.2.3"] {
            assert!(is_loopback(ok), "{ok}");
        }
        for bad in ["10.0.0.1:9000", "example.com", "127.0.0.1.example.com:80", "[::2]:1"] {
            assert!(!is_loopback(bad), "{bad}");
        }
        let env = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "http://192.168.1.9:9000".to_string());
        let err = Target::from_url("s3://b/p", &env).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let env = |k: &str| (k == "AWS_ENDPOINT_URL").then(|| "http://127.0.0.1:9000".to_string());
        assert!(Target::from_url("s3://b/p", &env).is_ok());
        assert!(Target::from_url("ftp://x", &|_| None).is_err());
        assert!(Target::from_url("file://relative", &|_| None).is_err());
    }
}
