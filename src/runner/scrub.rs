//! The task environment's scrub list: bgrun's own secrets never reach a task. That is
//! `BGRUN_SMTP_PASSWORD` and every variable the config names as a secret's source (any
//! `*_env` setting, e.g. `notifications.channels.email.password_env`).

use std::ffi::OsString;

use serde_json::Value;

use crate::config::Config;

/// The default variable of the SMTP password.
pub const SMTP_PASSWORD_VAR: &str = "BGRUN_SMTP_PASSWORD";

/// Variables to remove from a task's environment.
pub fn secret_vars(config: &Config) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec![SMTP_PASSWORD_VAR.into()];
    if let Ok(v) = serde_json::to_value(config) {
        collect(&v, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn collect(v: &Value, out: &mut Vec<OsString>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(name) if k.ends_with("_env") && !name.is_empty() => {
                        out.push(name.into());
                    }
                    _ => collect(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_secret_variables_are_listed() {
        let mut c = Config::embedded();
        c.notifications.channels.email.password_env = Some("MY_SMTP_SECRET".into());
        let v = secret_vars(&c);
        assert!(v.contains(&OsString::from("MY_SMTP_SECRET")));
        assert!(v.contains(&OsString::from(SMTP_PASSWORD_VAR)));
    }
}
