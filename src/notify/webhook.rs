//! Webhook channel: POST a Slack-compatible JSON payload (`text`, `blocks`, `attachments`,
//! plus a `bgrun` object with the whole event for other receivers) to a URL, bounded by
//! `timeout_seconds`. ureq is the client: blocking (no runtime), small, and it shares
//! rustls with lettre, so https:// costs no second TLS stack.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Channel, Error, Notification};
use crate::config::WebhookChannel;

pub struct Webhook {
    url: String,
    timeout: Duration,
}

impl Webhook {
    pub fn new(c: &WebhookChannel) -> Webhook {
        Webhook {
            url: c.url.clone(),
            timeout: Duration::from_secs(c.timeout_seconds.max(1)),
        }
    }
}

/// The payload: Slack reads `text` (and the fallback), `blocks` and `attachments`.
pub fn payload(n: &Notification) -> Value {
    let headline = format!(
        "{} [{}] {}",
        n.severity.icon(),
        n.severity.as_str().to_uppercase(),
        n.title
    );
    let mut fields = vec![
        json!({"title": "severity", "value": n.severity.as_str(), "short": true}),
        json!({"title": "event", "value": n.event, "short": true}),
    ];
    if let Some(id) = n.metadata.get("task_id").and_then(Value::as_str) {
        fields.push(json!({"title": "task", "value": id, "short": true}));
    }
    json!({
        "text": format!("{headline}\n{}", n.message),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline, "emoji": true}},
            {"type": "section", "text": {"type": "plain_text", "text": if n.message.is_empty() { " " } else { &n.message }}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("bgrun · {} · {}", n.event, n.at)}]},
        ],
        "attachments": [{"color": n.severity.hex(), "fallback": headline, "fields": fields}],
        "bgrun": n,
    })
}

impl Channel for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send(&self, n: &Notification) -> Result<(), Error> {
        if self.url.is_empty() {
            return Err(Error::Settings(
                "notifications.channels.webhook.url is empty",
            ));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("bgrun/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let body = serde_json::to_vec(&payload(n))?;
        let resp = agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(&body[..])
            .map_err(|e| Error::Connect {
                url: redact(&self.url),
                why: scrub(&e.to_string(), &self.url),
            })?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            let mut text = String::new();
            if let Ok(t) = resp.into_body().read_to_string() {
                text = t.chars().take(200).collect();
            }
            Err(Error::Http {
                status: status.as_u16(),
                text: format!(
                    "POST {}: HTTP {status} {}",
                    redact(&self.url),
                    scrub(text.trim(), &self.url)
                ),
            })
        }
    }
}

/// The URL as it may be shown: scheme, host and port only. Userinfo (`user:pass@`), path
/// (Slack's is the secret) and query (`?token=`) are never shown.
fn redact(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..end];
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{}{host}/…", &url[..i + 3])
        }
        None => "(the configured url)".into(),
    }
}

/// An error text with every secret part of `url` replaced: the whole URL, its userinfo,
/// path and query.
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact(url));
    if let Some(i) = url.find("://") {
        let rest = &url[i + 3..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let mut secrets: Vec<&str> = vec![&rest[end..]];
        if let Some(at) = authority.rfind('@') {
            secrets.push(&authority[..at]);
            secrets.extend(authority[..at].split(':'));
        }
        if let Some(q) = rest.find('?') {
            secrets.push(&rest[q..]);
            secrets.extend(rest[q + 1..].split(['&', '=', '#']));
        }
        secrets.extend(rest[end..].split(['/', '?', '&', '=', '#']));
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in secrets.into_iter().filter(|s| s.len() >= 4) {
            out = out.replace(s, "…");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Severity;

    #[test]
    fn slack_shape() {
        let n = Notification::custom(Severity::Warning, "Slow", "p95 up");
        let p = payload(&n);
        assert!(p["text"].as_str().is_some_and(|t| t.contains("Slow")));
        assert_eq!(p["blocks"][0]["type"], "header");
        assert_eq!(p["attachments"][0]["color"], "#d29922");
        assert_eq!(p["bgrun"]["severity"], "warning");
    }

    #[test]
    fn secrets_in_paths_are_not_shown() {
        assert_eq!(
            redact("https://hooks.example.com/T0/B0/XXX"),
            "https://hooks.example.com/…"
        );
        let url = "http://user:hunter2@example.com:8080?token=hunter3";
        assert_eq!(redact(url), "http://example.com:8080/…");
        let e = scrub(
            &format!("cannot reach {url}: token hunter3 user:hunter2"),
            url,
        );
        assert!(!e.contains("hunter"), "{e}");
    }

    #[test]
    fn an_error_status_is_typed_and_a_closed_port_is_a_connect_error() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy",
            );
        });
        let hook = |url: String| Webhook {
            url,
            timeout: Duration::from_secs(5),
        };
        let n = Notification::custom(Severity::Info, "t", "m");
        let e = hook(format!("http://127.0.0.1:{port}/secret"))
            .send(&n)
            .unwrap_err();
        server.join().unwrap();
        assert!(matches!(e, Error::Http { status: 503, .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("POST http://127.0.0.1:{port}/…: HTTP 503 Service Unavailable busy")
        );
        let e = hook(format!("http://127.0.0.1:{port}/"))
            .send(&n)
            .unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    }
}
