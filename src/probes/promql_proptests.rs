//! Property tests of the PromQL answer decoder: any bytes, any JSON, and real API answers
//! with one part removed or retyped never panic; an answer that does not decode is
//! `Unknown query_error` (never acted on) whose detail names the field; one that decodes is
//! judged on exactly the values it holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::hostile_json::{any_body, any_json, config, edited_once, nearest_key};

fn spec() -> PromqlSpec {
    PromqlSpec {
        url: "http://127.0.0.1:9090".into(),
        query: "up".into(),
        min: Some(1.0),
        max: None,
        no_data: NoData::Failed,
        bearer_token: None,
        max_body_bytes: 1024 * 1024,
    }
}

/// Answers as Prometheus 2.42 gives them (vector, scalar, error).
fn answers() -> Vec<Value> {
    vec![
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "api", "instance": "a:80"}, "value": [1_700_000_000.1, "1"]},
            {"metric": {"__name__": "up", "job": "api", "instance": "b:80"}, "value": [1_700_000_000.1, "0"]}
        ]}}),
        json!({"status": "success", "data": {"resultType": "scalar", "result": [1_700_000_000.1, "3"]}}),
        json!({"status": "error", "errorType": "bad_data", "error": "1:4: parse error"}),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_are_judged_or_unknown(status in prop::sample::select(vec![200u16, 400, 422, 503]), body in any_body()) {
        let f = answer("p", &spec(), status, &body);
        if decode(status, &body).is_err() {
            prop_assert_eq!(f.outcome, Outcome::unknown("query_error"));
        }
    }

    #[test]
    fn any_json_is_judged_or_unknown(v in any_json()) {
        let body = serde_json::to_vec(&v).unwrap();
        let f = answer("p", &spec(), 200, &body);
        prop_assert!(!f.detail.is_empty());
        if decode(200, &body).is_err() {
            prop_assert_eq!(f.outcome, Outcome::unknown("query_error"));
        }
    }

    #[test]
    fn an_edited_answer_is_unknown_and_named_or_judged_on_what_it_holds(
        (doc, path, edit) in prop::sample::select(answers()).prop_flat_map(edited_once)
    ) {
        let body = serde_json::to_vec(&doc).unwrap();
        let f = answer("p", &spec(), 200, &body);
        match decode(200, &body) {
            Err(detail) => {
                prop_assert_eq!(&f.outcome, &Outcome::unknown("query_error"));
                prop_assert_eq!(&f.detail, &detail);
                // A shape error names the field it is about (a key added to a label set
                // is that label's name, found under `metric`).
                if let Some(message) = detail.strip_prefix("answer is not Prometheus API JSON: ") {
                    let field = match &edit {
                        crate::hostile_json::Edit::AddKey(k, _) => Some(k.as_str()),
                        _ => nearest_key(&path),
                    };
                    if let Some(field) = field {
                        let field: String = field.chars().take(40).collect();
                        prop_assert!(message.contains(&field), "`{field}` not in {message}");
                    }
                }
            }
            Ok(samples) => {
                // Judged on the values it holds: healthy only if every one is >= min.
                let healthy = !samples.is_empty() && samples.iter().all(|(_, v)| *v >= 1.0);
                prop_assert_eq!(f.outcome.is_healthy(), healthy, "{}", f.detail);
            }
        }
    }
}
