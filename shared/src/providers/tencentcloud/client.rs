//! The Tencent Cloud client: signs and sends each action's request through the gate and maps
//! the answer (feature `http`).

use super::{
    errors, signer, CountryCode, CreateAccountOutcome, EndpointError, CREATE_ACCOUNT,
    GET_COUNTRY_CODES, SEND_VERIFY_CODE, SERVICE, VERSION,
};
use crate::config::TencentCloudConfig;
use crate::jobs::CreateAccountJob;
use crate::providers::{metered, read_json, Action, Gate};
use crate::secret::Secret;
use crate::ProviderError;
use serde_json::{json, Value};

/// The body type every request declares (and signs).
const CONTENT_TYPE: &str = "application/json";

/// The Tencent Cloud client. Cheap to clone.
#[derive(Clone)]
pub struct TencentCloudClient {
    endpoint: String,
    host: String,
    secret_id: String,
    secret_key: Secret,
    language: Option<String>,
    http: reqwest::Client,
    gate: Gate,
}

impl TencentCloudClient {
    /// The same client, its requests through `gate` (a job's own, holding its slot).
    pub fn with_gate(&self, gate: Gate) -> TencentCloudClient {
        TencentCloudClient {
            gate,
            ..self.clone()
        }
    }

    /// A client for the configured endpoint; fails if the endpoint has no host.
    pub fn new(
        cfg: &TencentCloudConfig,
        http: reqwest::Client,
        gate: Gate,
    ) -> Result<TencentCloudClient, EndpointError> {
        let fail = |reason: String| EndpointError {
            endpoint: cfg.endpoint.clone(),
            reason,
        };
        let url = url::Url::parse(&cfg.endpoint).map_err(|e| fail(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| fail("no host".into()))?
            .to_string();
        // `port()` is None for the scheme's default port, exactly when reqwest leaves it out
        // of the Host header.
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Ok(TencentCloudClient {
            endpoint: cfg.endpoint.clone(),
            host,
            secret_id: cfg.secret_id.clone(),
            secret_key: cfg.secret_key.clone(),
            language: cfg.language.clone(),
            http,
            gate,
        })
    }

    /// CreateAccount. Without a code this is phase 1 (the provider texts one); with a code,
    /// phase 2 (the account is created).
    pub async fn create_account(
        &self,
        job: &CreateAccountJob,
        verify_code: Option<&Secret>,
    ) -> Result<CreateAccountOutcome, ProviderError> {
        let mut params = json!({
            "AccountType": job.account_type,
            "Mail": job.mail,
            "Password": job.password.expose(),
            "ConfirmPassword": job.confirm_password.expose(),
            "PhoneNum": job.phone_num,
            "CountryCode": job.country_code,
            "Area": job.area,
            "VerifyCode": verify_code.map(Secret::expose).unwrap_or(""),
        });
        for (name, value) in [
            ("Extended", &job.extended),
            ("TradeOne", &job.trade_one),
            ("TradeTwo", &job.trade_two),
        ] {
            if let Some(v) = value {
                params[name] = Value::String(v.clone());
            }
        }
        let resp = self.call(CREATE_ACCOUNT, &params).await?;
        Ok(match resp.get("Uin") {
            Some(Value::String(uin)) if !uin.is_empty() => {
                CreateAccountOutcome::Created { uin: uin.clone() }
            }
            Some(Value::Number(uin)) => CreateAccountOutcome::Created {
                uin: uin.to_string(),
            },
            _ => CreateAccountOutcome::CodeSent,
        })
    }

    /// SendVerifyCode: texts a code to `+<country_code> <phone_num>`.
    pub async fn send_verify_code(
        &self,
        country_code: &str,
        phone_num: &str,
    ) -> Result<(), ProviderError> {
        let params = json!({"CountryCode": country_code, "PhoneNum": phone_num});
        self.call(SEND_VERIFY_CODE, &params).await.map(drop)
    }

    /// GetCountryCodes: the calling codes and ISO areas the provider knows.
    pub async fn get_country_codes(&self) -> Result<Vec<CountryCode>, ProviderError> {
        let resp = self.call(GET_COUNTRY_CODES, &json!({})).await?;
        let data = resp
            .get("Data")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        serde_json::from_value(data)
            .map_err(|e| ProviderError::transient("BadBody", format!("GetCountryCodes: {e}")))
    }

    async fn call(&self, action: Action, params: &Value) -> Result<Value, ProviderError> {
        metered(&self.gate, action, self.send(action.name, params)).await
    }

    async fn send(&self, action: &str, params: &Value) -> Result<Value, ProviderError> {
        let body = serde_json::to_vec(params)
            .map_err(|e| ProviderError::permanent("EncodeFailed", e.to_string()))?;
        let timestamp = chrono::Utc::now().timestamp();
        let signed = signer::sign(
            self.secret_key.expose(),
            &signer::SignInput {
                service: SERVICE,
                host: &self.host,
                content_type: CONTENT_TYPE,
                timestamp,
                body: &body,
            },
        );
        let mut request = self
            .http
            .post(&self.endpoint)
            .header("Content-Type", CONTENT_TYPE)
            .header("X-TC-Action", action)
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", timestamp.to_string())
            .header(
                "Authorization",
                signer::authorization(&self.secret_id, SERVICE, &signed),
            );
        if let Some(language) = &self.language {
            request = request.header("X-TC-Language", language);
        }
        let resp = request
            .body(body)
            .send()
            .await
            .map_err(|e| ProviderError::from_transport(&e))?;
        let (status, value) = read_json(resp).await?;
        let response = value.get("Response").cloned();
        match response {
            Some(response) => {
                if let Some(err) = response.get("Error") {
                    let code = err.get("Code").and_then(Value::as_str).unwrap_or("Unknown");
                    let message = err.get("Message").and_then(Value::as_str).unwrap_or("");
                    return Err(errors::classify(code, message));
                }
                if !status.is_success() {
                    return Err(ProviderError::transient(
                        format!("HttpStatus{}", status.as_u16()),
                        format!("HTTP {status}"),
                    ));
                }
                Ok(response)
            }
            None => Err(ProviderError::transient(
                if status.is_success() {
                    "BadBody".to_string()
                } else {
                    format!("HttpStatus{}", status.as_u16())
                },
                "response has no Response member",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{http_client, OpenGate};
    use std::sync::Arc;
    use std::time::Duration;

    fn client(endpoint: &str) -> Result<TencentCloudClient, EndpointError> {
        TencentCloudClient::new(
            &TencentCloudConfig {
                endpoint: endpoint.into(),
                ..TencentCloudConfig::default()
            },
            http_client(Duration::from_secs(1)),
            Arc::new(OpenGate),
        )
    }

    #[test]
    fn host_keeps_a_non_default_port_only() {
        assert_eq!(
            client("http://127.0.0.1:8080/").unwrap().host,
            "127.0.0.1:8080"
        );
        assert_eq!(
            client("https://intlpartnersmgt.intl.tencentcloudapi.com/")
                .unwrap()
                .host,
            "intlpartnersmgt.intl.tencentcloudapi.com"
        );
        assert_eq!(client("http://h:80/").unwrap().host, "h");
        let err = client("not a url")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not a url"), "{err}");
    }
}
