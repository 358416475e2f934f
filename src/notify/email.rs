//! Email channel: lettre over SMTP with implicit TLS, STARTTLS or plain (a local relay),
//! AUTH with the password from an environment variable or a file (never the config),
//! a text and/or HTML body from the templates, and a bounded connect/send timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use super::{Channel, Error, Notification};
use crate::config::{EmailChannel, EmailFormat, TlsMode};

pub struct Email {
    c: EmailChannel,
    repo: PathBuf,
}

/// `X-Bgrun-Severity` / `X-Bgrun-Event`: for mail filters.
#[derive(Clone)]
struct XHeader<const E: bool>(String);

impl<const E: bool> header::Header for XHeader<E> {
    fn name() -> HeaderName {
        if E {
            HeaderName::new_from_ascii_str("X-Bgrun-Event")
        } else {
            HeaderName::new_from_ascii_str("X-Bgrun-Severity")
        }
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(XHeader(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

impl Email {
    pub fn new(c: &EmailChannel, repo: &Path) -> Email {
        Email {
            c: c.clone(),
            repo: repo.to_path_buf(),
        }
    }

    /// From `tls`, else the predecessor's `use_tls` (465: implicit).
    pub fn mode(&self) -> TlsMode {
        match (self.c.tls, self.c.use_tls) {
            (Some(t), _) => t,
            (None, Some(false)) => TlsMode::None,
            _ if self.c.smtp_port == 465 => TlsMode::Implicit,
            _ => TlsMode::Starttls,
        }
    }

    fn password(&self) -> Result<String, Error> {
        if let Some(f) = &self.c.password_file {
            let p = self.repo.join(f);
            let text = std::fs::read_to_string(&p)
                .map_err(|source| Error::PasswordFile { path: p, source })?;
            return Ok(text.trim_end_matches(['\r', '\n']).to_string());
        }
        let var = self
            .c
            .password_env
            .as_deref()
            .unwrap_or("BGRUN_SMTP_PASSWORD");
        std::env::var(var).map_err(|_| Error::PasswordEnv {
            var: var.to_string(),
        })
    }

    fn tls_params(&self) -> Result<TlsParameters, Error> {
        let mut b = TlsParameters::builder(self.c.smtp_server.clone());
        if let Some(ca) = &self.c.ca_file {
            let p = self.repo.join(ca);
            let pem = match std::fs::read(&p) {
                Ok(pem) => pem,
                Err(source) => return Err(Error::CaFile { path: p, source }),
            };
            let cert = match Certificate::from_pem(&pem) {
                Ok(cert) => cert,
                Err(source) => return Err(Error::BadCa { path: p, source }),
            };
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(Error::Tls)
    }

    pub fn message(&self, n: &Notification) -> Result<Message, Error> {
        let from: Mailbox = self.c.from_email.parse().map_err(|source| Error::From {
            value: self.c.from_email.clone(),
            source,
        })?;
        let mut b = Message::builder()
            .message_id(None)
            .from(from)
            .subject(format!(
                "[bgrun] [{}] {}",
                n.severity.as_str().to_uppercase(),
                n.title
            ))
            .header(XHeader::<false>(n.severity.as_str().to_string()))
            .header(XHeader::<true>(n.event.clone()));
        if self.c.to_emails.is_empty() {
            return Err(Error::Settings(
                "notifications.channels.email.to_emails is empty: add a recipient",
            ));
        }
        for to in &self.c.to_emails {
            let m: Mailbox = to.parse().map_err(|source| Error::To {
                value: to.clone(),
                source,
            })?;
            b = b.to(m);
        }
        let built = match self.c.format {
            EmailFormat::Text => b.singlepart(SinglePart::plain(n.text_body())),
            EmailFormat::Html => b.singlepart(SinglePart::html(n.html_body())),
            EmailFormat::Both => b.multipart(MultiPart::alternative_plain_html(
                n.text_body(),
                n.html_body(),
            )),
        };
        built.map_err(Error::Message)
    }

    fn transport(&self) -> Result<SmtpTransport, Error> {
        let tls = match self.mode() {
            TlsMode::None => Tls::None,
            TlsMode::Implicit => Tls::Wrapper(self.tls_params()?),
            TlsMode::Starttls => Tls::Required(self.tls_params()?),
        };
        let mut b = SmtpTransport::builder_dangerous(self.c.smtp_server.clone())
            .port(self.c.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(self.c.timeout_seconds.max(1))));
        if let Some(user) = &self.c.username {
            b = b.credentials(Credentials::new(user.clone(), self.password()?));
        }
        Ok(b.build())
    }
}

impl Channel for Email {
    fn name(&self) -> &'static str {
        "email"
    }

    fn send(&self, n: &Notification) -> Result<(), Error> {
        let msg = self.message(n)?;
        let t = self.transport()?;
        t.send(&msg).map(|_| ()).map_err(|source| Error::Smtp {
            server: self.c.smtp_server.clone(),
            port: self.c.smtp_port,
            tls: self.mode(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Severity;

    fn email(json: &str) -> Email {
        let text = format!(r#"{{"notifications": {{"channels": {{"email": {json}}}}}}}"#);
        let c = crate::config::parse(&text, "t").expect("config").0;
        Email::new(&c.notifications.channels.email, Path::new("/"))
    }

    #[test]
    fn tls_mode_from_tls_or_use_tls() {
        assert_eq!(email("{}").mode(), TlsMode::Starttls);
        assert_eq!(email(r#"{"use_tls": false}"#).mode(), TlsMode::None);
        assert_eq!(
            email(r#"{"use_tls": true, "smtp_port": 465}"#).mode(),
            TlsMode::Implicit
        );
        assert_eq!(
            email(r#"{"tls": "none", "use_tls": true}"#).mode(),
            TlsMode::None
        );
    }

    #[test]
    fn message_has_both_parts_and_headers() {
        let e = email(r#"{"to_emails": ["a@example.com", "b@example.com"]}"#);
        let n = Notification::custom(Severity::Error, "Build <broken>", "line 1\nline 2");
        let raw = String::from_utf8(e.message(&n).expect("msg").formatted()).expect("utf8");
        assert!(raw.contains("Subject: [bgrun] [ERROR] Build <broken>"));
        assert!(raw.contains("X-Bgrun-Severity: error"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        assert!(raw.contains("&lt;broken&gt;"));
    }

    #[test]
    fn missing_password_names_the_variable() {
        let e = email(
            r#"{"username": "u", "password_env": "BGRUN_TEST_SURELY_UNSET_VAR", "to_emails": ["a@b.c"]}"#,
        );
        let err = e.transport().map(|_| ()).expect_err("must fail");
        assert!(matches!(err, Error::PasswordEnv { .. }), "{err}");
        assert!(
            err.to_string().contains("BGRUN_TEST_SURELY_UNSET_VAR"),
            "{err}"
        );
    }

    #[test]
    fn password_in_config_is_an_error() {
        let err = crate::config::parse(
            r#"{"notifications": {"channels": {"email": {"password": "hunter2"}}}}"#,
            "c.json",
        )
        .expect_err("must fail");
        assert!(
            err.iter()
                .any(|e| e.contains("email.password") && e.contains("password_env")),
            "{err:?}"
        );
    }
}
