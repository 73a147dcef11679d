//! `console-link <token name>`: a one-time login link to the operator console for an
//! operator token of `[[api.tokens]]`, so that nobody copies the token itself into a form
//! (see `serve/console/login_link.rs`).

use super::{Ctx, Failure};
use crate::serve::console::login_link::{self, LINK_SECS};
use onboard_shared::config::ApiRole;

/// Runs `console-link`: prints the link's path (open it on the API server's address).
pub async fn run(ctx: &Ctx, token_name: &str) -> Result<(), Failure> {
    match ctx.cfg.api.tokens.iter().find(|t| t.name == token_name) {
        Some(t) if t.role == ApiRole::Operator => {}
        Some(_) => {
            return Err(Failure::invalid(format!(
                "token {token_name} has the app role; the console needs an operator token"
            )))
        }
        None => {
            return Err(Failure::invalid(format!(
                "no token named {token_name} in [[api.tokens]]"
            )))
        }
    }
    let producer = ctx.producer().await?;
    let code = login_link::create(&producer.store().connection(), token_name)
        .await
        .map_err(|e| Failure::infra(format!("cannot store the login link: {e}")))?;
    let path = format!("/console/login?once={code}");
    ctx.print(
        &serde_json::json!({"path": path, "expires_in_secs": LINK_SECS}),
        || {
            format!(
                "{path}\n(open it on the API server's address; it logs in once, within {} min)",
                LINK_SECS / 60
            )
        },
    );
    Ok(())
}
