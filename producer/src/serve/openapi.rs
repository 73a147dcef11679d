//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa) and served
//! at `/v1/openapi.json`.

use super::{batches, control, errors, health, jobs, sse};
use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "onboard HTTP API", description = "Enqueue, follow and complete account-provisioning jobs."),
    paths(jobs::enqueue, jobs::status, jobs::verify_code, jobs::resend_code, sse::follow,
          batches::create, batches::status, batches::control,
          control::queue, control::dead_list, control::dead_retry, control::dead_purge,
          control::stats, health::healthz, health::readyz),
    components(schemas(errors::ErrorBody, errors::ErrorDetail, errors::ErrorCode,
                       errors::LineError, batches::BatchAction)),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
