//! The POLYV client: signs and sends each action's request through the gate and maps
//! the answer (feature `http`).

use super::{errors, signer, PolyvUser, ADD_CUSTOM_USER, GET_CUSTOM_USER};
use crate::config::{ParamStyle, PolyvConfig};
use crate::jobs::RegisterUserJob;
use crate::providers::{metered, read_json, Action, Gate};
use crate::secret::Secret;
use crate::ProviderError;
use serde_json::Value;

/// The POLYV client. Cheap to clone.
#[derive(Clone)]
pub struct PolyvClient {
    base_url: String,
    app_id: String,
    app_secret: Secret,
    style: ParamStyle,
    http: reqwest::Client,
    gate: Gate,
}

impl PolyvClient {
    /// The same client, its requests through `gate` (a job's own, holding its slot).
    pub fn with_gate(&self, gate: Gate) -> PolyvClient {
        PolyvClient {
            gate,
            ..self.clone()
        }
    }

    /// A client for the configured base URL and credentials.
    pub fn new(cfg: &PolyvConfig, http: reqwest::Client, gate: Gate) -> PolyvClient {
        PolyvClient {
            base_url: cfg.base_url.trim_end_matches('/').to_string(),
            app_id: cfg.app_id.clone(),
            app_secret: cfg.app_secret.clone(),
            style: cfg.param_style,
            http,
            gate,
        }
    }

    /// add-custom-user.
    pub async fn add_custom_user(&self, job: &RegisterUserJob) -> Result<PolyvUser, ProviderError> {
        let sale_id = job.sale_id.map(|id| id.to_string());
        let params = [
            ("email", Some(job.email.as_str())),
            ("mobile", Some(job.mobile.as_str())),
            ("passwd", Some(job.passwd.expose())),
            ("name", job.name.as_deref()),
            ("industry", job.industry.as_deref()),
            ("saleId", sale_id.as_deref()),
        ];
        let data = self
            .call(ADD_CUSTOM_USER, reqwest::Method::POST, &params)
            .await?;
        Ok(user_from(&data))
    }

    /// get-custom-user: the user registered with this e-mail, if any.
    pub async fn get_custom_user(&self, email: &str) -> Result<Option<PolyvUser>, ProviderError> {
        let params = [("email", Some(email))];
        match self
            .call(GET_CUSTOM_USER, reqwest::Method::GET, &params)
            .await
        {
            Ok(data) => Ok(Some(user_from(&data))),
            Err(ProviderError::Permanent { code, message })
                if errors::is_not_found(code.parse().unwrap_or(0), &message) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn call(
        &self,
        action: Action,
        method: reqwest::Method,
        params: &[(&str, Option<&str>)],
    ) -> Result<Value, ProviderError> {
        metered(&self.gate, action, self.send(action.name, method, params)).await
    }

    async fn send(
        &self,
        action: &str,
        method: reqwest::Method,
        params: &[(&str, Option<&str>)],
    ) -> Result<Value, ProviderError> {
        let timestamp = chrono::Utc::now().timestamp_millis().to_string();
        let mut all: Vec<(&str, Option<&str>)> = vec![
            ("appId", Some(self.app_id.as_str())),
            ("timestamp", Some(timestamp.as_str())),
        ];
        all.extend_from_slice(params);
        let sign = signer::sign(self.app_secret.expose(), &signer::concatenate(all.clone()));
        let mut sent: Vec<(&str, &str)> = all
            .iter()
            .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
            .collect();
        sent.push(("sign", &sign));
        let url = format!("{}/live/v2/app/{action}", self.base_url);
        let request = self.http.request(method.clone(), url);
        let request = if method == reqwest::Method::POST && self.style == ParamStyle::Form {
            request.form(&sent)
        } else {
            request.query(&sent)
        };
        let resp = request
            .send()
            .await
            .map_err(|e| ProviderError::from_transport(&e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(std::time::Duration::from_secs);
            return Err(errors::throttled(retry_after));
        }
        let (_, body) = read_json(resp).await?;
        let Some(code) = body.get("code").and_then(Value::as_i64) else {
            return Err(ProviderError::transient(
                "BadBody",
                "response has no numeric code",
            ));
        };
        if code == 200 {
            return Ok(body.get("data").cloned().unwrap_or(Value::Null));
        }
        let message = body.get("message").and_then(Value::as_str).unwrap_or("");
        Err(errors::classify(code, message))
    }
}

fn user_from(data: &Value) -> PolyvUser {
    let text = |name: &str| match data.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    PolyvUser {
        app_id: text("appId"),
        user_id: text("userId"),
        name: text("name"),
        app_secret: Secret::new(text("appSecret")),
    }
}
