//! The `promql` probe: one instant query (`GET /api/v1/query`) against Prometheus, every
//! series' value checked against `min` / `max`.
//!
//! Outcomes: all series within bounds → `Healthy`; any outside → `Failed { threshold }` (the
//! worst value goes to `astreinte_promql_value`, up to 3 offending label sets to the detail);
//! an empty result → `no_data`, `Failed` by default (for `up{job="rag-api"}` it means the job is
//! not even scraped; `no_data = "unknown" | "healthy"` changes that); an error answer, a bad
//! status or bad JSON → `Unknown { query_error }`; Prometheus unreachable → `Unknown
//! { prometheus_unreachable }`: the probe could not see, which never leads to an action.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::redirect::Policy;
use serde::Deserialize;

use super::classify::classify_chain;
use super::{Finding, Measurement, Outcome};
use crate::config::{NoData, PromqlSpec};
use crate::metrics::GaugeName;

/// Share of the probe's timeout the HTTP call may take, so that a hung Prometheus shows as
/// `prometheus_unreachable` rather than as the runner's generic `timeout` failure.
const REQUEST_SHARE: f64 = 0.8;
/// Offending label sets shown in the detail.
const SHOWN_SERIES: usize = 3;
/// Characters of a Prometheus error message or label set kept in the detail.
const SHOWN_CHARS: usize = 200;

/// The HTTP client, built once; it keeps no idle connection.
#[derive(Clone)]
pub(super) struct Client {
    http: reqwest::Client,
}

/// The API envelope: `{"status": "success" | "error", "data": …, "errorType", "error"}`.
#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    /// Read as it comes, then by `resultType` (so that a shape error keeps its path).
    #[serde(default)]
    data: Option<RawData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// `{"resultType": …, "result": …}`, before `result` is read by its type.
#[derive(Debug, Deserialize)]
struct RawData {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: serde_json::Value,
}

#[derive(Debug)]
enum Data {
    Vector(Vec<Series>),
    Scalar((f64, String)),
    Matrix,
    String,
}

impl RawData {
    /// The result by its type; an error names where it is (`data.result[1].value: …`).
    fn decode(self) -> Result<Data, String> {
        fn result<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
            serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                let at = match path.as_str() {
                    "." => String::new(),
                    p if p.starts_with('[') => p.to_owned(),
                    p => format!(".{p}"),
                };
                format!("data.result{at}: {}", e.inner())
            })
        }
        match self.result_type.as_str() {
            "vector" => result(self.result).map(Data::Vector),
            "scalar" => result(self.result).map(Data::Scalar),
            "matrix" => Ok(Data::Matrix),
            "string" => Ok(Data::String),
            other => Err(format!("data.resultType: unknown type `{}`", cut(other))),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// `[timestamp, "value"]`; native histograms carry `histogram` instead.
    #[serde(default)]
    value: Option<(f64, String)>,
}

/// One series of the result: its label set and value.
pub(super) type Sample = (BTreeMap<String, String>, f64);

impl Client {
    pub(super) fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent(concat!("astreinte/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client { http })
    }

    pub(super) async fn probe(&self, id: &str, spec: &PromqlSpec, timeout: Duration) -> Finding {
        let mut url =
            match url::Url::parse(&format!("{}/api/v1/query", spec.url.trim_end_matches('/'))) {
                Ok(u) => u,
                Err(_) => {
                    return Finding::new(Outcome::unknown("bad_config"), "bad Prometheus url");
                }
            };
        url.query_pairs_mut().append_pair("query", &spec.query);
        let mut request = self.http.get(url).timeout(timeout.mul_f64(REQUEST_SHARE));
        if let Some(token) = &spec.bearer_token {
            match token.read().await {
                Ok(t) => request = request.bearer_auth(t.expose()),
                Err(e) => {
                    let detail = format!("bearer token: {e}");
                    return Finding::new(Outcome::unknown("secret_unavailable"), detail);
                }
            }
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return unreachable(&e),
        };
        let status = response.status();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > spec.max_body_bytes {
                        let detail = format!("answer larger than {} bytes", spec.max_body_bytes);
                        return query_error(detail);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return unreachable(&e),
            }
        }
        answer(id, spec, status.as_u16(), &body)
    }
}

/// The finding for Prometheus' answer: judged when it decodes, `Unknown query_error` (never
/// acted on) when it does not.
pub(super) fn answer(id: &str, spec: &PromqlSpec, status: u16, body: &[u8]) -> Finding {
    match decode(status, body) {
        Ok(samples) => judge(id, spec, &samples),
        Err(detail) => query_error(detail),
    }
}

fn unreachable(e: &reqwest::Error) -> Finding {
    let why = if e.is_timeout() {
        "timeout"
    } else {
        classify_chain(e)
    };
    Finding::new(
        Outcome::unknown("prometheus_unreachable"),
        format!("Prometheus could not be reached ({why})"),
    )
}

fn query_error(detail: String) -> Finding {
    Finding::new(Outcome::unknown("query_error"), detail)
}

fn cut(s: &str) -> String {
    if s.chars().count() <= SHOWN_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(SHOWN_CHARS).collect();
    out.push('…');
    out
}

/// The series of a successful instant query, or a sentence saying what was wrong.
pub(super) fn decode(status: u16, body: &[u8]) -> Result<Vec<Sample>, String> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let envelope: Result<Envelope, String> = serde_path_to_error::deserialize(&mut json)
        .map_err(|e| match e.path().to_string().as_str() {
            "." => e.into_inner().to_string(),
            path => format!("{path}: {}", e.into_inner()),
        })
        .and_then(|v| json.end().map(|()| v).map_err(|e| e.to_string()));
    let envelope = match (status, envelope) {
        (200, Ok(e)) => e,
        (200, Err(e)) => {
            return Err(format!("answer is not Prometheus API JSON: {}", cut(&e)));
        }
        (code, Ok(e)) if e.status == "error" => {
            return Err(format!(
                "HTTP {code}, {}: {}",
                e.error_type.as_deref().unwrap_or("error"),
                cut(e.error.as_deref().unwrap_or(""))
            ));
        }
        (code, _) => return Err(format!("HTTP {code} from Prometheus")),
    };
    if envelope.status != "success" {
        return Err(format!(
            "status {}, {}: {}",
            cut(&envelope.status),
            envelope.error_type.as_deref().unwrap_or("error"),
            cut(envelope.error.as_deref().unwrap_or(""))
        ));
    }
    let data = envelope
        .data
        .map(RawData::decode)
        .transpose()
        .map_err(|e| format!("answer is not Prometheus API JSON: {}", cut(&e)))?;
    let series = match data {
        Some(Data::Vector(v)) => v,
        Some(Data::Scalar((_, v))) => vec![Series {
            metric: BTreeMap::new(),
            value: Some((0.0, v)),
        }],
        Some(Data::Matrix) => {
            return Err("the query returns a range vector; use an instant expression".into());
        }
        Some(Data::String) => return Err("the query returns a string, not numbers".into()),
        None => return Err("success answer without data".into()),
    };
    series
        .into_iter()
        .map(|s| {
            let (_, raw) = s
                .value
                .ok_or_else(|| format!("series {} has no float value", labels(&s.metric)))?;
            let v = raw
                .parse::<f64>()
                .map_err(|_| format!("series value `{}` is not a number", cut(&raw)))?;
            Ok((s.metric, v))
        })
        .collect()
}

/// `{job="rag-api",instance="a:80"}`, cut to a readable length.
fn labels(metric: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = metric.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    cut(&format!("{{{}}}", inner.join(",")))
}

/// How far inside the bounds `v` is (negative outside, −∞ for NaN).
fn margin(spec: &PromqlSpec, v: f64) -> f64 {
    if v.is_nan() {
        return f64::NEG_INFINITY;
    }
    let above_min = spec.min.map_or(f64::INFINITY, |lo| v - lo);
    let below_max = spec.max.map_or(f64::INFINITY, |hi| hi - v);
    above_min.min(below_max)
}

fn bounds(spec: &PromqlSpec) -> String {
    match (spec.min, spec.max) {
        (Some(lo), Some(hi)) => format!("[{lo}, {hi}]"),
        (Some(lo), None) => format!(">= {lo}"),
        (None, Some(hi)) => format!("<= {hi}"),
        (None, None) => "any".into(),
    }
}

/// Checks every series against the bounds; pure.
pub(super) fn judge(id: &str, spec: &PromqlSpec, samples: &[Sample]) -> Finding {
    if samples.is_empty() {
        let outcome = match spec.no_data {
            NoData::Failed => Outcome::failed("no_data"),
            NoData::Unknown => Outcome::unknown("no_data"),
            NoData::Healthy => Outcome::Healthy,
        };
        return Finding::new(outcome, format!("no series for {}", cut(&spec.query)));
    }
    let mut ranked: Vec<(&Sample, f64)> = samples.iter().map(|s| (s, margin(spec, s.1))).collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let worst = ranked[0].0.1;
    let gauge = Measurement::new(GaugeName::PromqlValue, &[("probe", id)], worst);
    let outside: Vec<_> = ranked.iter().filter(|(_, m)| *m < 0.0).collect();
    if outside.is_empty() {
        let detail = format!(
            "{} series within {}, worst {worst}",
            samples.len(),
            bounds(spec)
        );
        return Finding::healthy(detail).with(gauge);
    }
    let shown: Vec<String> = outside
        .iter()
        .take(SHOWN_SERIES)
        .map(|((metric, v), _)| format!("{} = {v}", labels(metric)))
        .collect();
    let more = outside.len().saturating_sub(SHOWN_SERIES);
    let mut detail = format!(
        "{} of {} series outside {}: {}",
        outside.len(),
        samples.len(),
        bounds(spec),
        shown.join(", ")
    );
    if more > 0 {
        detail.push_str(&format!(" and {more} more"));
    }
    Finding::new(Outcome::failed("threshold"), detail).with(gauge)
}

#[cfg(test)]
#[path = "promql_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: Option<f64>, max: Option<f64>) -> PromqlSpec {
        PromqlSpec {
            url: "http://127.0.0.1:9090".into(),
            query: "up{job=\"rag-api\"}".into(),
            min,
            max,
            no_data: NoData::Failed,
            bearer_token: None,
            max_body_bytes: 1024,
        }
    }

    const TWO: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","job":"rag-api","instance":"a:80"},"value":[1700000000.1,"1"]},
        {"metric":{"__name__":"up","job":"rag-api","instance":"b:80"},"value":[1700000000.1,"0"]}]}}"#;

    #[test]
    fn decodes_vectors_and_scalars() {
        let s = decode(200, TWO.as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].0["instance"], "b:80");
        assert_eq!(s[1].1, 0.0);
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#;
        assert!(decode(200, scalar.as_bytes()).unwrap()[0].1.is_nan());
        let inf = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}}"#;
        assert_eq!(decode(200, inf.as_bytes()).unwrap()[0].1, f64::INFINITY);
    }

    #[test]
    fn errors_say_what_went_wrong() {
        let bad =
            r#"{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected"}"#;
        assert_eq!(
            decode(400, bad.as_bytes()).unwrap_err(),
            "HTTP 400, bad_data: 1:4: parse error: unexpected"
        );
        assert_eq!(
            decode(503, b"Service Unavailable").unwrap_err(),
            "HTTP 503 from Prometheus"
        );
        assert!(
            decode(200, b"<html>")
                .unwrap_err()
                .starts_with("answer is not Prometheus API JSON")
        );
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(
            decode(200, matrix.as_bytes())
                .unwrap_err()
                .contains("range vector")
        );
        let word = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"high"]}]}}"#;
        assert!(decode(200, word.as_bytes()).unwrap_err().contains("`high`"));
        let long = format!(
            r#"{{"status":"error","errorType":"x","error":"{}"}}"#,
            "e".repeat(100_000)
        );
        assert!(decode(422, long.as_bytes()).unwrap_err().len() < 400);
    }

    #[test]
    fn every_series_must_be_within_bounds() {
        let samples = decode(200, TWO.as_bytes()).unwrap();
        let f = judge("p", &spec(Some(1.0), None), &samples);
        assert_eq!(f.outcome, Outcome::failed("threshold"));
        assert!(
            f.detail.starts_with("1 of 2 series outside >= 1: "),
            "{}",
            f.detail
        );
        assert!(f.detail.contains(r#"instance="b:80""#), "{}", f.detail);
        assert!(!f.detail.contains(r#"instance="a:80""#), "{}", f.detail);
        assert_eq!(f.measurements[0].value, 0.0, "the worst value");
        let f = judge("p", &spec(Some(0.0), Some(1.0)), &samples);
        assert_eq!(f.outcome, Outcome::Healthy, "{}", f.detail);
    }

    #[test]
    fn at_most_three_offenders_are_listed_and_nan_is_worst() {
        let mk = |i: usize, v: f64| {
            let mut m = BTreeMap::new();
            m.insert("instance".to_owned(), format!("n{i}"));
            (m, v)
        };
        let mut samples: Vec<Sample> = (0..5).map(|i| mk(i, 10.0 + i as f64)).collect();
        samples.push(mk(9, f64::NAN));
        let f = judge("p", &spec(None, Some(1.0)), &samples);
        assert_eq!(f.outcome, Outcome::failed("threshold"));
        assert!(f.detail.contains("n9"), "NaN first: {}", f.detail);
        assert!(f.detail.ends_with(" and 3 more"), "{}", f.detail);
        assert!(f.measurements[0].value.is_nan());
    }

    #[test]
    fn no_data_follows_the_spec() {
        let mut s = spec(Some(1.0), None);
        assert_eq!(judge("p", &s, &[]).outcome, Outcome::failed("no_data"));
        s.no_data = NoData::Unknown;
        assert_eq!(judge("p", &s, &[]).outcome, Outcome::unknown("no_data"));
        s.no_data = NoData::Healthy;
        assert_eq!(judge("p", &s, &[]).outcome, Outcome::Healthy);
    }
}
