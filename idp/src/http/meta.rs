//! Facts about the request that security events record: source IP, user agent, request id.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

use super::request_id::RequestId;
use crate::audit::SecurityEvent;

#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestMeta {
    pub fn of(req: &HttpRequest) -> Self {
        Self {
            // The socket peer. Trusted-proxy handling of X-Forwarded-For belongs here too.
            ip: req.peer_addr().map(|a| a.ip().to_string()),
            user_agent: req
                .headers()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        }
    }

    /// Stamps the event with where the request came from.
    pub fn stamp(&self, mut event: SecurityEvent) -> SecurityEvent {
        event.ip = self.ip.clone();
        event.user_agent = self.user_agent.clone();
        event.request_id = self.request_id.clone();
        event
    }
}

impl FromRequest for RequestMeta {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}
