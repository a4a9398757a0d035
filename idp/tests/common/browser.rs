//! A scripted browser for the provider's pages: keeps cookies, follows the provider's own
//! redirects, fills in the login and consent forms, and stops at the client's redirect URI.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use reqwest::cookie::Jar;
use reqwest::{Response, StatusCode};

pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

/// The form a page shows: where it posts and its fields.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl Form {
    /// The same fields posted somewhere else.
    pub fn with_action(mut self, action: &str) -> Self {
        self.action = action.into();
        self
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.fields.retain(|(k, _)| k != name);
        self.fields.push((name.into(), value.into()));
        self
    }
}

/// Where a step ended.
#[derive(Debug)]
pub enum Landing {
    /// A page of the provider, with its status and HTML.
    Page {
        status: StatusCode,
        url: String,
        html: String,
    },
    /// A redirect to anywhere outside the provider: the client's redirect URI.
    Client(url::Url),
}

impl Landing {
    pub fn client_url(self) -> url::Url {
        match self {
            Landing::Client(url) => url,
            Landing::Page { status, url, html } => {
                panic!("expected a redirect to the client, got {status} {url}: {html}")
            }
        }
    }

    pub fn page(self) -> (StatusCode, String, String) {
        match self {
            Landing::Page { status, url, html } => (status, url, html),
            Landing::Client(url) => panic!("expected a provider page, got a redirect to {url}"),
        }
    }

    pub fn query(self, name: &str) -> Option<String> {
        self.client_url()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            jar,
            base: base.into(),
        }
    }

    /// GETs `url`, following redirects while they stay on the provider.
    pub async fn visit(&self, url: &str) -> Landing {
        let response = self.http.get(url).send().await.unwrap();
        self.follow(response).await
    }

    pub async fn submit(&self, form: &Form) -> Landing {
        let url = if form.action.starts_with('/') {
            format!("{}{}", self.base, form.action)
        } else {
            form.action.clone()
        };
        let response = self.http.post(url).form(&form.fields).send().await.unwrap();
        self.follow(response).await
    }

    async fn follow(&self, mut response: Response) -> Landing {
        for _ in 0..10 {
            if !response.status().is_redirection() {
                let status = response.status();
                let url = response.url().to_string();
                return Landing::Page {
                    status,
                    url,
                    html: response.text().await.unwrap(),
                };
            }
            let location = response.headers()["location"].to_str().unwrap().to_string();
            let next = response.url().join(&location).unwrap();
            if !next.as_str().starts_with(&self.base) {
                return Landing::Client(next);
            }
            response = self.http.get(next).send().await.unwrap();
        }
        panic!("too many redirects");
    }

    /// Logs in on a login page and approves the consent page if one follows.
    pub async fn log_in_and_consent(&self, landing: Landing, username: &str, password: &str) -> Landing {
        let (_, _, html) = landing.page();
        let login = form(&html).set("username", username).set("password", password);
        let after = self.submit(&login).await;
        match after {
            Landing::Page { ref html, .. } if html.contains("name=\"decision\"") => {
                let consent = form(html).set("decision", "allow");
                self.submit(&consent).await
            }
            other => other,
        }
    }
}

/// The first form of a page, with its hidden and prefilled fields.
pub fn form(html: &str) -> Form {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse("form").unwrap();
    let input_sel = scraper::Selector::parse("input").unwrap();
    let form = doc
        .select(&form_sel)
        .next()
        .unwrap_or_else(|| panic!("no form in page: {html}"));
    let action = form.value().attr("action").unwrap_or_default().to_string();
    let fields = form
        .select(&input_sel)
        .filter_map(|i| {
            Some((
                i.value().attr("name")?.to_string(),
                i.value().attr("value").unwrap_or_default().to_string(),
            ))
        })
        .collect();
    Form { action, fields }
}
