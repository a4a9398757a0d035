//! Calls to the admin API with the portal's bearer token. A 401 gets one silent refresh
//! and a retry; problems (RFC 9457) become the message the administrator sees.

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth;

const BASE: &str = "/admin/api/v1";

#[derive(Debug, Clone, PartialEq)]
pub enum ApiFailure {
    /// Not logged in, or the session can no longer be refreshed.
    LoggedOut,
    /// Logged in, but not an administrator.
    Forbidden(String),
    Other(String),
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LoggedOut => f.write_str("your session has ended; log in again"),
            Self::Forbidden(m) | Self::Other(m) => f.write_str(m),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiFailure>;

#[derive(Clone, Copy)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

fn builder(method: Method, url: &str) -> RequestBuilder {
    match method {
        Method::Get => Request::get(url),
        Method::Post => Request::post(url),
        Method::Put => Request::put(url),
        Method::Patch => Request::patch(url),
        Method::Delete => Request::delete(url),
    }
}

async fn send(method: Method, path: &str, body: Option<&serde_json::Value>) -> ApiResult<Response> {
    let url = format!("{BASE}{path}");
    for attempt in 0..2 {
        let token = auth::access_token().await.map_err(|_| ApiFailure::LoggedOut)?;
        let request = builder(method, &url).header("Authorization", &format!("Bearer {token}"));
        let request = match body {
            Some(json) => request.json(json),
            None => request.build(),
        }
        .map_err(|e| ApiFailure::Other(e.to_string()))?;
        let response = request
            .send()
            .await
            .map_err(|e| ApiFailure::Other(format!("the server did not answer: {e}")))?;
        match response.status() {
            401 if attempt == 0 => {
                auth::refresh().await.map_err(|_| ApiFailure::LoggedOut)?;
            }
            401 => return Err(ApiFailure::LoggedOut),
            403 => return Err(ApiFailure::Forbidden(problem(response).await)),
            200..=299 => return Ok(response),
            _ => return Err(ApiFailure::Other(problem(response).await)),
        }
    }
    Err(ApiFailure::LoggedOut)
}

async fn problem(response: Response) -> String {
    let status = response.status();
    match response.json::<api_types::Problem>().await {
        Ok(p) => p.detail.unwrap_or(p.title),
        Err(_) => format!("the server answered {status}"),
    }
}

pub async fn get<T: DeserializeOwned>(path: &str) -> ApiResult<T> {
    let response = send(Method::Get, path, None).await?;
    response
        .json()
        .await
        .map_err(|e| ApiFailure::Other(e.to_string()))
}

pub async fn get_text(path: &str) -> ApiResult<String> {
    let response = send(Method::Get, path, None).await?;
    response
        .text()
        .await
        .map_err(|e| ApiFailure::Other(e.to_string()))
}

/// Sends `body` and parses the answer as `T`.
pub async fn call<B: Serialize, T: DeserializeOwned>(method: Method, path: &str, body: &B) -> ApiResult<T> {
    let json = serde_json::to_value(body).map_err(|e| ApiFailure::Other(e.to_string()))?;
    let response = send(method, path, Some(&json)).await?;
    response
        .json()
        .await
        .map_err(|e| ApiFailure::Other(e.to_string()))
}

/// Sends `body`; the answer's body (often none: 204) is not read.
pub async fn submit<B: Serialize>(method: Method, path: &str, body: &B) -> ApiResult<()> {
    let json = serde_json::to_value(body).map_err(|e| ApiFailure::Other(e.to_string()))?;
    send(method, path, Some(&json)).await.map(|_| ())
}

/// Sends a request whose answer has no body worth reading.
pub async fn act(method: Method, path: &str) -> ApiResult<()> {
    let body = matches!(method, Method::Post).then(|| serde_json::json!({}));
    send(method, path, body.as_ref()).await.map(|_| ())
}

/// `key=value` pairs as a query string, leaving out empty values.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", auth::encode(&kept))
    }
}
