//! A scripted browser for the provider's pages: keeps cookies, follows the provider's own
//! redirects, fills in the login and consent forms, and stops at the client's redirect URI.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::cookie::Jar;
use reqwest::{Response, StatusCode};

pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
    pub authenticator: Authenticator,
}

/// The authenticator app of the test's users: keeps the TOTP keys they enrolled (read off the
/// enrolment page, as a person would type them) and the recovery codes shown, and computes
/// codes (RFC 6238, with `totp-rs` directly, not the server's wrapper) at the server's time.
/// A user's TOTP key and the last time step a code was made for.
type EnrolledKey = (Vec<u8>, u64);

#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<Mutex<HashMap<String, EnrolledKey>>>,
    pub recovery_codes: Arc<Mutex<HashMap<String, Vec<String>>>>,
    clock: Arc<dyn idp::domain::clock::Clock>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new(Arc::new(idp::domain::clock::SystemClock))
    }
}

impl Authenticator {
    pub fn new(clock: Arc<dyn idp::domain::clock::Clock>) -> Self {
        Self {
            keys: Arc::default(),
            recovery_codes: Arc::default(),
            clock,
        }
    }

    pub fn enrol(&self, username: &str, manual_key: &str) {
        let key = totp_rs::Secret::try_from_base32(manual_key.replace(' ', "")).expect("a base32 key");
        self.keys
            .lock()
            .unwrap()
            .insert(username.to_lowercase(), (key.as_ref().to_vec(), 0));
    }

    /// The recovery codes last shown to `username` (none yet: empty).
    pub fn recovery_codes_of(&self, username: &str) -> Vec<String> {
        let codes = self.recovery_codes.lock().unwrap();
        codes.get(&username.to_lowercase()).cloned().unwrap_or_default()
    }

    pub fn knows(&self, username: &str) -> bool {
        self.keys.lock().unwrap().contains_key(&username.to_lowercase())
    }

    /// The code for `username` at `step` (30-second steps since the epoch).
    pub fn code_at_step(&self, username: &str, step: u64) -> String {
        let keys = self.keys.lock().unwrap();
        let (key, _) = keys.get(&username.to_lowercase()).expect("an enrolled user");
        totp_rs::Builder::new()
            .with_secret(key.clone())
            .build_noncompliant()
            .generate(step * 30)
            .to_string()
    }

    pub fn current_step(&self) -> u64 {
        self.clock.now().timestamp() as u64 / 30
    }

    /// A code the server has not seen yet: the current step's, or the next one's (one step of
    /// drift is allowed) when the current one was used; waits for the clock otherwise.
    pub async fn fresh_code(&self, username: &str) -> String {
        loop {
            let now = self.current_step();
            let step = {
                let mut keys = self.keys.lock().unwrap();
                let (_, last) = keys.get_mut(&username.to_lowercase()).expect("an enrolled user");
                let step = now.max(*last + 1);
                if step <= now + 1 {
                    *last = step;
                    Some(step)
                } else {
                    None
                }
            };
            match step {
                Some(step) => return self.code_at_step(username, step),
                None => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            }
        }
    }
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
        Self::with_authenticator(base, Authenticator::default())
    }

    pub fn with_authenticator(base: &str, authenticator: Authenticator) -> Self {
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
            authenticator,
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
        let after = self.pass_second_factor(after, username).await;
        match after {
            Landing::Page { ref html, .. } if html.contains("name=\"decision\"") => {
                let consent = form(html).set("decision", "allow");
                self.submit(&consent).await
            }
            other => other,
        }
    }
}

impl Browser {
    /// Goes through the second-factor pages a login may show: enrols (reading the key off
    /// the page and keeping the recovery codes) or enters a code; returns where that ends.
    pub async fn pass_second_factor(&self, mut landing: Landing, username: &str) -> Landing {
        for _ in 0..4 {
            let Landing::Page { html, .. } = &landing else {
                return landing;
            };
            if let Some(key) = text_of(html, "#manual-key") {
                self.authenticator.enrol(username, &key);
                let code = self.authenticator.fresh_code(username).await;
                landing = self.submit(&form(html).set("code", &code)).await;
            } else if let Some(codes) = all_text_of(html, "#recovery-codes code") {
                self.authenticator
                    .recovery_codes
                    .lock()
                    .unwrap()
                    .insert(username.to_lowercase(), codes);
                landing = self.submit(&form(html)).await;
            } else if posts_to(html, "/mfa") && self.authenticator.knows(username) {
                let code = self.authenticator.fresh_code(username).await;
                landing = self.submit(&form(html).set("code", &code)).await;
            } else {
                return landing;
            }
        }
        landing
    }
}

/// Whether the page's first form posts to `path`.
pub fn posts_to(html: &str, path: &str) -> bool {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse("form").unwrap();
    doc.select(&sel).next().and_then(|f| f.value().attr("action")) == Some(path)
}

/// The text of the first element matching `selector`.
pub fn text_of(html: &str, selector: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).unwrap();
    doc.select(&sel)
        .next()
        .map(|e| e.text().collect::<String>().trim().to_string())
}

/// The texts of every element matching `selector`, if there is one.
pub fn all_text_of(html: &str, selector: &str) -> Option<Vec<String>> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).unwrap();
    let texts: Vec<String> = doc.select(&sel).map(|e| e.text().collect::<String>()).collect();
    (!texts.is_empty()).then_some(texts)
}

/// The first form of a page, with its hidden and prefilled fields.
pub fn form(html: &str) -> Form {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse("form").unwrap();
    let form = doc
        .select(&form_sel)
        .next()
        .unwrap_or_else(|| panic!("no form in page: {html}"));
    read_form(form)
}

fn read_form(form: scraper::ElementRef<'_>) -> Form {
    let input_sel = scraper::Selector::parse("input").unwrap();
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

/// Every form of the page that posts to `action`.
pub fn forms_to(html: &str, action: &str) -> Vec<Form> {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse("form").unwrap();
    doc.select(&form_sel)
        .filter(|f| f.value().attr("action") == Some(action))
        .map(read_form)
        .collect()
}
