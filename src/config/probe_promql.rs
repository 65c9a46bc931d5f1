//! The `kind = "promql"` probe spec: an instant PromQL query and the bounds every series'
//! value must stay within.

use serde::{Deserialize, Serialize};

use super::SecretRef;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlSpec {
    /// Prometheus' base URL (`http://prometheus:9090`); the probe calls `/api/v1/query`.
    pub url: String,
    /// An instant expression (`up{job="rag-api"}`).
    pub query: String,
    /// Every series' value must be at least this (`min = 1` for `up`).
    #[serde(default)]
    pub min: Option<f64>,
    /// Every series' value must be at most this.
    #[serde(default)]
    pub max: Option<f64>,
    /// What an empty result means. Default `failed`: for `up{job="rag-api"}` an empty vector
    /// means the job is not even scraped. Use `healthy` for alert-style expressions
    /// (`rate(errors[5m]) > 1`) that return nothing while all is well.
    #[serde(default)]
    pub no_data: NoData,
    /// Sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub bearer_token: Option<SecretRef>,
    /// Answers are read up to this size; a larger one is a `query_error`.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
}

/// The outcome of a query that returns no series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoData {
    /// `Failed { no_data }`.
    #[default]
    Failed,
    /// `Unknown { no_data }`: the probe could not tell.
    Unknown,
    /// Nothing returned is good news.
    Healthy,
}

fn default_max_body() -> u64 {
    4 * 1024 * 1024
}

impl PromqlSpec {
    /// Every problem with the fields, as `(field, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(u) => out.push((
                "url",
                format!("scheme `{}` is not http or https", u.scheme()),
            )),
            Err(e) => out.push(("url", format!("not a valid URL: {e}"))),
        }
        if self.query.trim().is_empty() {
            out.push(("query", "must not be empty".to_owned()));
        }
        if self.min.is_none() && self.max.is_none() {
            out.push(("min", "set `min`, `max` or both".to_owned()));
        }
        for (field, v) in [("min", self.min), ("max", self.max)] {
            if v.is_some_and(|v| !v.is_finite()) {
                out.push((field, "must be a finite number".to_owned()));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max)
            && lo > hi
        {
            out.push(("min", format!("{lo} is above max {hi}")));
        }
        if let Some(p) = self.bearer_token.as_ref().and_then(|s| s.shape_problem()) {
            out.push(("bearer_token", p.to_owned()));
        }
        if self.max_body_bytes == 0 {
            out.push(("max_body_bytes", "must be greater than zero".to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProbeConfig, ProbeSpec};

    fn spec(extra: &str) -> PromqlSpec {
        let p: ProbeConfig = toml::from_str(&format!(
            "id = \"p\"\nkind = \"promql\"\nurl = \"http://127.0.0.1:9090\"\nquery = 'up{{job=\"rag-api\"}}'\n{extra}"
        ))
        .unwrap();
        match p.spec {
            ProbeSpec::Promql(s) => s,
            other => panic!("not promql: {other:?}"),
        }
    }

    #[test]
    fn bounds_are_required_and_ordered() {
        let s = spec("min = 1.0");
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert_eq!(s.no_data, NoData::Failed);
        assert_eq!(spec("").problems()[0].0, "min");
        assert_eq!(spec("min = 2.0\nmax = 1.0").problems()[0].0, "min");
        assert_eq!(
            spec("no_data = \"healthy\"\nmax = 0").no_data,
            NoData::Healthy
        );
    }
}
