//! Documents this provider fetches from other servers (a client's published keys, an
//! upstream provider's discovery document): a short timeout, no redirects, a size limit, so a
//! slow or hostile server costs little.

use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Who is asking (some APIs, GitHub's among them, refuse a request without a user agent).
pub const USER_AGENT: &str = concat!("aimpact-idp/", env!("CARGO_PKG_VERSION"));

/// Why a document could not be fetched; safe to show to an administrator.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Failed(String),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("larger than {0} KiB")]
    TooLarge(usize),
}

/// An HTTP client for such fetches: `TIMEOUT`, `USER_AGENT`, no redirects.
pub fn client() -> Result<reqwest::Client, FetchError> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| FetchError::Failed(e.to_string()))
}

/// The body of a successful GET of `url`, read no further than `max_bytes`.
pub async fn get(
    http: &reqwest::Client,
    url: &str,
    accept: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    send(http.get(url).header("accept", accept), max_bytes).await
}

/// The body of the successful answer to `request`, read no further than `max_bytes`.
pub async fn send(request: reqwest::RequestBuilder, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    let failed = |e: reqwest::Error| FetchError::Failed(e.without_url().to_string());
    let mut response = request.send().await.map_err(failed)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge(max_bytes / 1024));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
