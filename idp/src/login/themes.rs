//! Login-page themes: directories of templates under `themes_dir`, read at start-up, so
//! operators re-brand without recompiling. The `default` theme is also built into the
//! binary, which therefore runs without a themes directory.

use std::collections::HashMap;
use std::path::Path;

use minijinja::Environment;

const DEFAULT: [(&str, &str); 30] = [
    ("base.html", include_str!("../../../themes/default/base.html")),
    ("login.html", include_str!("../../../themes/default/login.html")),
    (
        "consent.html",
        include_str!("../../../themes/default/consent.html"),
    ),
    ("error.html", include_str!("../../../themes/default/error.html")),
    (
        "form_post.html",
        include_str!("../../../themes/default/form_post.html"),
    ),
    ("logout.html", include_str!("../../../themes/default/logout.html")),
    (
        "password.html",
        include_str!("../../../themes/default/password.html"),
    ),
    ("mfa.html", include_str!("../../../themes/default/mfa.html")),
    (
        "mfa_enrol.html",
        include_str!("../../../themes/default/mfa_enrol.html"),
    ),
    (
        "passkey_form.html",
        include_str!("../../../themes/default/passkey_form.html"),
    ),
    (
        "recovery_codes.html",
        include_str!("../../../themes/default/recovery_codes.html"),
    ),
    (
        "forgot_password.html",
        include_str!("../../../themes/default/forgot_password.html"),
    ),
    (
        "reset_password.html",
        include_str!("../../../themes/default/reset_password.html"),
    ),
    ("notice.html", include_str!("../../../themes/default/notice.html")),
    (
        "mail/email_changed.txt",
        include_str!("../../../themes/default/mail/email_changed.txt"),
    ),
    (
        "mail/email_changed.html",
        include_str!("../../../themes/default/mail/email_changed.html"),
    ),
    (
        "account.html",
        include_str!("../../../themes/default/account.html"),
    ),
    (
        "mail/password_reset.txt",
        include_str!("../../../themes/default/mail/password_reset.txt"),
    ),
    (
        "verify_email.html",
        include_str!("../../../themes/default/verify_email.html"),
    ),
    (
        "verify_required.html",
        include_str!("../../../themes/default/verify_required.html"),
    ),
    (
        "mail/verify_email.txt",
        include_str!("../../../themes/default/mail/verify_email.txt"),
    ),
    (
        "mail/verify_email.html",
        include_str!("../../../themes/default/mail/verify_email.html"),
    ),
    (
        "mail/invitation.txt",
        include_str!("../../../themes/default/mail/invitation.txt"),
    ),
    (
        "mail/invitation.html",
        include_str!("../../../themes/default/mail/invitation.html"),
    ),
    (
        "register.html",
        include_str!("../../../themes/default/register.html"),
    ),
    (
        "mail/register.txt",
        include_str!("../../../themes/default/mail/register.txt"),
    ),
    (
        "mail/register.html",
        include_str!("../../../themes/default/mail/register.html"),
    ),
    (
        "mail/account_exists.txt",
        include_str!("../../../themes/default/mail/account_exists.txt"),
    ),
    (
        "mail/account_exists.html",
        include_str!("../../../themes/default/mail/account_exists.html"),
    ),
    (
        "mail/password_reset.html",
        include_str!("../../../themes/default/mail/password_reset.html"),
    ),
];
const DEFAULT_CSS: &str = include_str!("../../../themes/default/style.css");

pub struct Theme {
    env: Environment<'static>,
    pub css: String,
}

pub struct Themes {
    themes: HashMap<String, Theme>,
    default: String,
}

impl std::fmt::Debug for Themes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Themes")
            .field("names", &self.themes.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("theme {theme}: {problem}")]
pub struct ThemeError {
    pub theme: String,
    pub problem: String,
}

impl Themes {
    /// Loads every theme directory under `dir` (if it exists) over the built-in default.
    pub fn load(dir: &Path, default: &str) -> Result<Self, ThemeError> {
        let mut themes = HashMap::new();
        themes.insert("default".to_string(), builtin()?);
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                    continue;
                };
                if path.is_dir() && path.join("login.html").is_file() {
                    themes.insert(name.clone(), from_dir(&name, &path)?);
                }
            }
        }
        if !themes.contains_key(default) {
            return Err(ThemeError {
                theme: default.into(),
                problem: format!("not found in {}", dir.display()),
            });
        }
        Ok(Self {
            themes,
            default: default.to_string(),
        })
    }

    /// The named theme, or the deployment's default.
    pub fn get(&self, name: Option<&str>) -> (&str, &Theme) {
        let name = name
            .filter(|n| self.themes.contains_key(*n))
            .unwrap_or(&self.default);
        match self.themes.get_key_value(name) {
            Some((n, theme)) => (n.as_str(), theme),
            None => unreachable_default(&self.themes),
        }
    }

    pub fn css(&self, name: &str) -> Option<&str> {
        self.themes.get(name).map(|t| t.css.as_str())
    }
}

fn unreachable_default(themes: &HashMap<String, Theme>) -> (&str, &Theme) {
    // `load` always inserts "default"; this is only reached if that invariant broke.
    themes
        .iter()
        .next()
        .map(|(n, t)| (n.as_str(), t))
        .unwrap_or_else(|| unreachable!())
}

impl Theme {
    pub fn render(&self, template: &str, context: minijinja::Value) -> Result<String, String> {
        self.env
            .get_template(template)
            .and_then(|t| t.render(context))
            .map_err(|e| format!("{template}: {e}"))
    }
}

fn builtin() -> Result<Theme, ThemeError> {
    let mut env = Environment::new();
    for (name, source) in DEFAULT {
        env.add_template(name, source).map_err(|e| ThemeError {
            theme: "default".into(),
            problem: e.to_string(),
        })?;
    }
    Ok(Theme {
        env,
        css: DEFAULT_CSS.to_string(),
    })
}

/// A theme directory; templates it lacks come from the built-in default.
fn from_dir(name: &str, dir: &Path) -> Result<Theme, ThemeError> {
    let error = |problem: String| ThemeError {
        theme: name.into(),
        problem,
    };
    let mut env = Environment::new();
    for (template, fallback) in DEFAULT {
        let source = std::fs::read_to_string(dir.join(template)).unwrap_or_else(|_| fallback.to_string());
        env.add_template_owned(template.to_string(), source)
            .map_err(|e| error(e.to_string()))?;
    }
    let css = std::fs::read_to_string(dir.join("style.css")).unwrap_or_else(|_| DEFAULT_CSS.to_string());
    Ok(Theme { env, css })
}
