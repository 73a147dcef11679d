//! `token`: a new random API bearer token and the SHA-256 the configuration keeps of it.

use super::{Ctx, Failure};
use crate::serve::auth::{new_token, token_hash};

/// Runs `token`: prints the token (give it to the app; it is shown once) and its hash (put
/// it in `[[api.tokens]]`).
pub fn run(ctx: &Ctx) -> Result<(), Failure> {
    let token = new_token();
    let hash = token_hash(&token);
    ctx.print(&serde_json::json!({"token": token, "sha256": hash}), || {
        format!("token  {token}\nsha256 {hash}\n(put the sha256 in [[api.tokens]]; the token is shown only here)")
    });
    Ok(())
}
