//! The IoT Explorer client: signs and sends each action's request through the gate and maps
//! the answer (feature `http`).

use super::{
    errors, signer, CustomerFilter, CustomerInfo, CustomerPage, CustomerQuery, BIND_DEVICE,
    CREATE_CUSTOMER, GET_CUSTOMER_LIST, MAX_PAGE,
};
use crate::config::{IotConfig, NestedEncoding};
use crate::jobs::{BindDevicesJob, CreateCustomerJob};
use crate::providers::{metered, read_json, Action, Gate};
use crate::secret::Secret;
use crate::ProviderError;
use serde_json::{json, Map, Value};

/// The IoT Explorer client. Cheap to clone.
#[derive(Clone)]
pub struct IotClient {
    endpoint: String,
    app_key: String,
    app_secret: Secret,
    nested: NestedEncoding,
    http: reqwest::Client,
    gate: Gate,
}

impl IotClient {
    /// The same client, its requests through `gate` (a job's own, holding its slot).
    pub fn with_gate(&self, gate: Gate) -> IotClient {
        IotClient {
            gate,
            ..self.clone()
        }
    }

    /// A client for the configured endpoint and credentials.
    pub fn new(cfg: &IotConfig, http: reqwest::Client, gate: Gate) -> IotClient {
        IotClient {
            endpoint: cfg.endpoint.clone(),
            app_key: cfg.app_key.clone(),
            app_secret: cfg.app_secret.clone(),
            nested: cfg.nested_encoding,
            http,
            gate,
        }
    }

    /// ServiceCreateCustomer.
    pub async fn create_customer(&self, job: &CreateCustomerJob) -> Result<(), ProviderError> {
        let params = json!({
            "CustomerId": job.customer_id,
            "CountryCode": job.country_code,
            "PhoneNumber": job.phone_number,
        });
        self.call(CREATE_CUSTOMER, params).await.map(drop)
    }

    /// ServiceBindDevice: all of the job's devices in one request.
    pub async fn bind_devices(&self, job: &BindDevicesJob) -> Result<(), ProviderError> {
        let devices: Vec<Value> = job
            .devices
            .iter()
            .map(|d| {
                json!({
                    "CustomerDeviceNo": d.customer_device_no,
                    "DeviceId": d.device_id,
                    "ProductName": d.product_name,
                })
            })
            .collect();
        let params = json!({"CustomerId": job.customer_id, "DeviceInfos": devices});
        self.call(BIND_DEVICE, params).await.map(drop)
    }

    /// One page of ServiceGetCustomerList.
    pub async fn get_customer_list(
        &self,
        query: &CustomerQuery,
    ) -> Result<CustomerPage, ProviderError> {
        let mut params = json!({
            "Offset": query.offset,
            "Limit": query.limit.clamp(1, MAX_PAGE),
        });
        let f = &query.filter;
        for (name, value) in [
            ("CustomerId", &f.customer_id),
            ("CountryCode", &f.country_code),
            ("PhoneNumber", &f.phone_number),
        ] {
            if let Some(v) = value {
                params[name] = Value::String(v.clone());
            }
        }
        let resp = self.call(GET_CUSTOMER_LIST, params).await?;
        parse_page(&resp)
    }

    /// Every customer matching `filter`, walking the pages.
    pub async fn all_customers(
        &self,
        filter: &CustomerFilter,
    ) -> Result<Vec<CustomerInfo>, ProviderError> {
        let mut all = Vec::new();
        loop {
            let page = self
                .get_customer_list(&CustomerQuery {
                    filter: filter.clone(),
                    offset: all.len() as u32,
                    limit: MAX_PAGE,
                })
                .await?;
            let got = page.customers.len();
            all.extend(page.customers);
            // An empty page ends the walk even if Total claims more (a shrinking list).
            if got == 0 || all.len() as u64 >= page.total {
                return Ok(all);
            }
        }
    }

    /// The customer with exactly this id, if it exists.
    pub async fn find_customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<CustomerInfo>, ProviderError> {
        let filter = CustomerFilter {
            customer_id: Some(customer_id.to_string()),
            ..CustomerFilter::default()
        };
        let found = self.all_customers(&filter).await?;
        Ok(found.into_iter().find(|c| c.customer_id == customer_id))
    }

    /// Signs and sends one action; returns the `Response` object of a success.
    async fn call(&self, action: Action, params: Value) -> Result<Value, ProviderError> {
        metered(&self.gate, action, self.send(action.name, params)).await
    }

    async fn send(&self, action: &str, params: Value) -> Result<Value, ProviderError> {
        let mut body: Map<String, Value> = match params {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        body.insert("Action".into(), action.into());
        body.insert("RequestId".into(), uuid::Uuid::new_v4().to_string().into());
        body.insert("AppKey".into(), self.app_key.clone().into());
        body.insert("Timestamp".into(), chrono::Utc::now().timestamp().into());
        body.insert(
            "Nonce".into(),
            rand::Rng::gen_range(&mut rand::thread_rng(), 1..i32::MAX).into(),
        );
        let to_sign = signer::string_to_sign(&body, self.nested);
        body.insert(
            "Signature".into(),
            signer::sign(self.app_secret.expose(), &to_sign).into(),
        );
        let resp = self
            .http
            .post(&self.endpoint)
            .json(&body)
            .send()
            .await
            .map_err(|e| ProviderError::from_transport(&e))?;
        let (status, value) = read_json(resp).await?;
        if !status.is_success() {
            return Err(ProviderError::transient(
                format!("HttpStatus{}", status.as_u16()),
                format!("HTTP {status}"),
            ));
        }
        unwrap_envelope(value)
    }
}

/// Accepts `{"Response": {...}}` and `{"code", "msg", "data"}`; maps error answers.
fn unwrap_envelope(value: Value) -> Result<Value, ProviderError> {
    if let Some(response) = value.get("Response") {
        if let Some(err) = response.get("Error") {
            let code = err.get("Code").and_then(Value::as_str).unwrap_or("Unknown");
            let message = err.get("Message").and_then(Value::as_str).unwrap_or("");
            return Err(errors::classify(code, message));
        }
        return Ok(response.clone());
    }
    if let Some(code) = value.get("code").and_then(Value::as_i64) {
        let message = value.get("msg").and_then(Value::as_str).unwrap_or("");
        if code == 0 {
            return Ok(value.get("data").cloned().unwrap_or(Value::Null));
        }
        return Err(errors::classify(&code.to_string(), message));
    }
    Err(ProviderError::transient(
        "BadBody",
        "response has neither a Response nor a code member",
    ))
}

fn parse_page(resp: &Value) -> Result<CustomerPage, ProviderError> {
    let field = |c: &Value, name: &str| -> String {
        match c.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    let customers = resp
        .get("Customers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|c| CustomerInfo {
                    customer_id: field(c, "CustomerId"),
                    country_code: field(c, "CountryCode"),
                    phone_number: field(c, "PhoneNumber"),
                })
                .collect::<Vec<_>>()
        })
        .ok_or_else(|| ProviderError::transient("BadBody", "no Customers in the answer"))?;
    let total = resp
        .get("Total")
        .and_then(Value::as_u64)
        .unwrap_or(customers.len() as u64);
    Ok(CustomerPage { customers, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    #[test]
    fn both_envelopes() {
        let ok = unwrap_envelope(json!({"Response": {"RequestId": "r", "Status": "OK"}}));
        assert_eq!(ok.unwrap()["Status"], "OK");
        let err = unwrap_envelope(json!({"Response": {"Error": {"Code": "invalid Phone", "Message": "bad"}, "RequestId": "r"}}))
            .unwrap_err();
        assert_eq!(err.code(), "invalid Phone");
        assert_eq!(err.class(), ErrorClass::Permanent);
        let wrapped =
            unwrap_envelope(json!({"code": 0, "msg": "", "data": {"Total": 0, "Customers": []}}));
        assert_eq!(parse_page(&wrapped.unwrap()).unwrap().total, 0);
        let wrapped_err = unwrap_envelope(json!({"code": 1001, "msg": "nope"})).unwrap_err();
        assert_eq!(wrapped_err.code(), "1001");
        assert_eq!(
            unwrap_envelope(json!({"x": 1})).unwrap_err().class(),
            ErrorClass::Transient
        );
    }
}
