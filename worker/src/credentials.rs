//! The credentials each job kind needs. A worker that would run a kind without its
//! provider's credentials refuses to start and names the variables to set; otherwise it
//! would dead-letter every job of that kind with the provider's "missing parameter" error.

use onboard_shared::config::Config;
use onboard_shared::jobs::JobKind;
use onboard_shared::providers::Provider;

/// The provider's credential settings that are empty, as their environment variables.
fn missing(cfg: &Config, provider: Provider) -> Vec<&'static str> {
    let settings: [(&'static str, bool); 2] = match provider {
        Provider::Iot => [
            ("ONBOARD_IOT__APP_KEY", cfg.iot.app_key.is_empty()),
            ("ONBOARD_IOT__APP_SECRET", cfg.iot.app_secret.is_empty()),
        ],
        Provider::TencentCloud => [
            (
                "ONBOARD_TENCENTCLOUD__SECRET_ID",
                cfg.tencentcloud.secret_id.is_empty(),
            ),
            (
                "ONBOARD_TENCENTCLOUD__SECRET_KEY",
                cfg.tencentcloud.secret_key.is_empty(),
            ),
        ],
        Provider::Polyv => [
            ("ONBOARD_POLYV__APP_ID", cfg.polyv.app_id.is_empty()),
            ("ONBOARD_POLYV__APP_SECRET", cfg.polyv.app_secret.is_empty()),
        ],
    };
    settings
        .into_iter()
        .filter(|(_, empty)| *empty)
        .map(|(name, _)| name)
        .collect()
}

/// Checks that every kind this worker runs (concurrency above 0) has its provider's
/// credentials; the error names the kinds and the variables. Stubbed providers need none.
pub fn check(cfg: &Config) -> Result<(), String> {
    if cfg.stub_providers {
        return Ok(());
    }
    let mut problems = Vec::new();
    for provider in Provider::ALL {
        let kinds: Vec<&str> = JobKind::ALL
            .into_iter()
            .filter(|k| k.provider() == provider && cfg.queue.concurrency.get(*k) > 0)
            .map(JobKind::as_str)
            .collect();
        let missing = missing(cfg, provider);
        if !kinds.is_empty() && !missing.is_empty() {
            problems.push(format!(
                "{} run here but the {provider} credentials are missing: set {} (or set \
                 queue.concurrency to 0 for {})",
                kinds.join(" and "),
                missing.join(" and "),
                kinds.join(" and "),
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onboard_shared::config::PerKind;

    #[test]
    fn names_the_variables_of_the_kinds_that_run() {
        let mut cfg = Config::for_sandbox("http://127.0.0.1:1", "redis://x/");
        assert_eq!(check(&cfg), Ok(()));
        cfg.iot.app_secret = onboard_shared::Secret::new("");
        let err = check(&cfg).unwrap_err();
        assert!(err.contains("create-customer and bind-devices"), "{err}");
        assert!(err.contains("ONBOARD_IOT__APP_SECRET"), "{err}");
        assert!(!err.contains("ONBOARD_IOT__APP_KEY"), "{err}");
        cfg.queue.concurrency = PerKind {
            create_customer: 0,
            bind_devices: 0,
            ..PerKind::all(50)
        };
        assert_eq!(check(&cfg), Ok(()), "kinds that do not run need nothing");
        cfg.stub_providers = true;
        cfg.polyv.app_id = String::new();
        assert_eq!(check(&cfg), Ok(()));
    }
}
