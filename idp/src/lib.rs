//! The AImpact identity provider: an OAuth 2.0 / OpenID Connect server.
#![forbid(unsafe_code)]

pub mod account;
pub mod admin;
pub mod audit;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod login;
pub mod mail;
pub mod manage;
pub mod metrics;
pub mod oidc;
pub mod security;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
