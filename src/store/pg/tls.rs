//! TLS for the store connection, as libpq users know it: `sslmode` and `sslrootcert` in
//! the URL's query. The `postgres` crate parses only `disable|prefer|require` and verifies
//! nothing by itself, so both are read here and taken out of the URL before it is parsed.
//!
//! | `sslmode`     | TLS                         | server certificate checked         |
//! |---------------|-----------------------------|------------------------------------|
//! | `disable`     | never                       | -                                  |
//! | `prefer` (default) | if the server offers it | no                                 |
//! | `require`     | always                      | no (chain only when `sslrootcert` is given, as libpq) |
//! | `verify-ca`   | always                      | chain to a trusted root            |
//! | `verify-full` | always                      | chain, and the host name in the URL |
//!
//! Trusted roots: the PEM file `sslrootcert=PATH`, or `sslrootcert=system` for the
//! system's roots; without it, `~/.postgresql/root.crt` when present, else the system's.
//! Over a Unix socket (`host=/dir`) TLS is never used, as with libpq. rustls with the
//! `ring` provider (already built for mail and webhooks).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error;

/// How the connection uses TLS (`sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS settings read from a store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: Mode,
    /// `sslrootcert`: a PEM file, or `None` for the default; `system` is kept as given.
    pub root_cert: Option<String>,
}

/// Take `sslmode` and `sslrootcert` out of a URL's query; returns the rest of the URL
/// (for the `postgres` crate) and the TLS settings. A bad `sslmode` is a usage error.
pub fn split(url: &str, shown: &str) -> Result<(String, Tls)> {
    let mut tls = Tls {
        mode: Mode::Prefer,
        root_cert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), tls));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => {
                tls.mode = match v {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => {
                        return Err(error::usage(format!(
                            "store URL {shown}: sslmode={other} is not one of disable, \
                             allow, prefer, require, verify-ca, verify-full"
                        )));
                    }
                }
            }
            "sslrootcert" => tls.root_cert = Some(percent_decode(v)),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, tls))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rustls client configuration for `tls` (not called for `disable`).
pub fn client_config(tls: &Tls, shown: &str) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verify = match tls.mode {
        Mode::Disable | Mode::Prefer => None,
        // libpq: `require` with a root certificate given checks the chain, like verify-ca.
        Mode::Require => tls.root_cert.as_ref().map(|_| false),
        Mode::VerifyCa => Some(false),
        Mode::VerifyFull => Some(true),
    };
    let inner = match verify {
        None => None,
        Some(_) => {
            let roots = Arc::new(roots(tls.root_cert.as_deref(), shown)?);
            Some(
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| error::usage(format!("store URL {shown}: sslrootcert: {e}")))?,
            )
        }
    };
    let verifier = Arc::new(Verifier {
        inner,
        check_name: verify == Some(true),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error::state(format!("TLS for the store: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// Trusted roots: the given PEM file, `system`, `~/.postgresql/root.crt`, or the system's.
fn roots(root_cert: Option<&str>, shown: &str) -> Result<RootCertStore> {
    let file: Option<PathBuf> = match root_cert {
        Some("system") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(".postgresql/root.crt"))
            .filter(|p| p.is_file()),
    };
    let mut store = RootCertStore::empty();
    match file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    error::usage(format!(
                        "store URL {shown}: sslrootcert {}: {e} (a PEM file of CA \
                         certificates, or `system`)",
                        path.display()
                    ))
                })?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(error::usage(format!(
                    "store URL {shown}: sslrootcert {}: no usable certificate in it",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(error::state(format!(
                    "store URL {shown}: no system root certificates found to verify the \
                     server; give sslrootcert=PATH"
                )));
            }
        }
    }
    Ok(store)
}

/// Checks what the mode asks: nothing, the chain, or the chain and the name.
#[derive(Debug)]
struct Verifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_cert_leave_the_url() {
        let (rest, tls) = split(
            "postgres://u@db/x?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
            "u",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@db/x?connect_timeout=5");
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.root_cert.as_deref(), Some("/etc/ca.pem"));
        let (rest, tls) = split("postgres://u@db/x", "u").unwrap();
        assert_eq!(rest, "postgres://u@db/x");
        assert_eq!(tls.mode, Mode::Prefer);
        let (rest, _) = split("postgres://u@db/x?sslmode=disable", "u").unwrap();
        assert_eq!(rest, "postgres://u@db/x");
    }

    #[test]
    fn an_unknown_sslmode_is_a_usage_error() {
        let e = split("postgres://u@db/x?sslmode=sometimes", "shown").unwrap_err();
        assert!(e.to_string().contains("sslmode=sometimes"), "{e}");
        assert_eq!(crate::error::exit_of(&e), crate::error::Exit::Usage);
    }

    #[test]
    fn a_missing_root_cert_file_is_named() {
        let tls = Tls {
            mode: Mode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".to_string()),
        };
        let e = client_config(&tls, "shown").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }
}
