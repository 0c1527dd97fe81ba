//! class-validator-style checks with NestJS messages, collected into one 422 whose `message` is an array.

use crate::errors::{HlError, HlResult};
use serde_json::Value;

pub struct Check<'a> {
    body: &'a Value,
    errors: Vec<String>,
}

impl<'a> Check<'a> {
    pub fn new(body: &'a Value) -> Self {
        Check {
            body,
            errors: Vec::new(),
        }
    }

    fn field(&self, name: &str) -> Option<&'a Value> {
        self.body.get(name).filter(|v| !v.is_null())
    }

    fn missing(&mut self, name: &str) {
        self.errors.push(format!("{name} should not be empty"));
    }

    pub fn string(mut self, name: &str, required: bool) -> Self {
        match self.field(name) {
            None if required => self.missing(name),
            Some(Value::String(s)) if required && s.is_empty() => self.missing(name),
            Some(v) if !v.is_string() => self.errors.push(format!("{name} must be a string")),
            _ => {}
        }
        self
    }

    pub fn one_of(mut self, name: &str, allowed: &[&str], required: bool) -> Self {
        match self.field(name) {
            None if required => self.missing(name),
            Some(v) if !v.as_str().is_some_and(|s| allowed.contains(&s)) => {
                self.errors.push(format!(
                    "{name} must be one of the following values: {}",
                    allowed.join(", ")
                ))
            }
            _ => {}
        }
        self
    }

    pub fn number(mut self, name: &str, required: bool) -> Self {
        match self.field(name) {
            None if required => {
                self.missing(name);
                self.errors.push(format!(
                    "{name} must be a number conforming to the specified constraints"
                ));
            }
            Some(v) if !v.is_number() => self.errors.push(format!(
                "{name} must be a number conforming to the specified constraints"
            )),
            _ => {}
        }
        self
    }

    pub fn boolean(mut self, name: &str, required: bool) -> Self {
        match self.field(name) {
            None if required => self.missing(name),
            Some(v) if !v.is_boolean() => {
                self.errors.push(format!("{name} must be a boolean value"))
            }
            _ => {}
        }
        self
    }

    pub fn array(mut self, name: &str) -> Self {
        if self.field(name).is_some_and(|v| !v.is_array()) {
            self.errors.push(format!("{name} must be an array"));
        }
        self
    }

    /// A nested object, checked with `inner` and reported with the `name.` prefix.
    pub fn object(
        mut self,
        name: &str,
        required: bool,
        inner: impl FnOnce(Check<'_>) -> Check<'_>,
    ) -> Self {
        match self.field(name) {
            None if required => self.missing(name),
            None => {}
            Some(v) if !v.is_object() => self.errors.push(format!(
                "nested property {name} must be either object or array"
            )),
            Some(v) => {
                let nested = inner(Check::new(v));
                self.errors
                    .extend(nested.errors.into_iter().map(|e| format!("{name}.{e}")));
            }
        }
        self
    }

    pub fn finish(self) -> HlResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(HlError::unprocessable(self.errors))
        }
    }
}

/// Parses a JSON object body; anything else is HighLevel's 400.
pub fn json_object(bytes: &[u8]) -> HlResult<Value> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(HlError::bad_request("Request body must be a JSON object")),
        Err(e) => Err(HlError::bad_request(&format!(
            "Unexpected token in JSON: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_every_error() {
        let body = json!({"name": "", "amount": "9.99", "type": "weekly", "recurring": {"interval": "day"}});
        let err = Check::new(&body)
            .string("name", true)
            .string("locationId", true)
            .number("amount", true)
            .one_of("type", &["one_time", "recurring"], true)
            .object("recurring", false, |c| c.number("intervalCount", true))
            .finish()
            .unwrap_err();
        let msgs = err.body()["message"].as_array().unwrap().clone();
        assert!(msgs.contains(&json!("name should not be empty")));
        assert!(msgs.contains(&json!("locationId should not be empty")));
        assert!(msgs.contains(&json!(
            "amount must be a number conforming to the specified constraints"
        )));
        assert!(msgs.contains(&json!(
            "type must be one of the following values: one_time, recurring"
        )));
        assert!(msgs
            .iter()
            .any(|m| m.as_str().unwrap().starts_with("recurring.intervalCount")));
        assert_eq!(err.status.as_u16(), 422);
    }
}
