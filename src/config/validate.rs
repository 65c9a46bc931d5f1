//! One pass over a loaded configuration that collects every problem at once, each naming
//! its file, its probe or rule, and its field.

mod postgres;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use super::{ActionSpec, Config, ProbeConfig, ProbeSpec, RuleConfig};

/// One mistake in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// `probe "api"`, `rule "api-restart"`, or empty for the file as a whole.
    pub item: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if !self.item.is_empty() {
            write!(f, ": {}", self.item)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Problem {
    pub fn file(path: &Path, message: &str) -> Self {
        Problem {
            file: path.display().to_string(),
            item: String::new(),
            field: String::new(),
            message: message.into(),
        }
    }
}

/// Collects problems for one file and one item.
struct Report<'a> {
    problems: &'a mut Vec<Problem>,
    file: &'a str,
    item: String,
}

impl Report<'_> {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.into(),
            item: self.item.clone(),
            field: field.into(),
            message: message.into(),
        });
    }
}

pub(super) fn validate(config: &Config, probes_file: &str, rules_file: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, probe) in config.probes.iter().enumerate() {
        let item = if probe.id.is_empty() {
            format!("probe #{}", i + 1)
        } else {
            format!("probe \"{}\"", probe.id)
        };
        let mut r = Report {
            problems: &mut problems,
            file: probes_file,
            item,
        };
        if probe.id.trim().is_empty() {
            r.add("id", "must not be empty");
        } else if !seen.insert(probe.id.as_str()) {
            r.add("id", "duplicate probe id");
        }
        check_timing(config, probe, &mut r);
        check_spec(&probe.spec, &mut r);
    }
    check_kubernetes(&config.kubernetes, probes_file, &mut problems);
    check_rules(config, rules_file, &mut problems);
    check_receivers(config, rules_file, &mut problems);
    problems
}

/// `[[notify]]`: each receiver's own checks, and unique names.
fn check_receivers(config: &Config, file: &str, problems: &mut Vec<Problem>) {
    let mut seen = BTreeSet::new();
    for receiver in &config.notify {
        let mut r = Report {
            problems: &mut *problems,
            file,
            item: format!("notify \"{}\"", receiver.name),
        };
        if !seen.insert(receiver.name.as_str()) {
            r.add("name", "duplicate receiver name");
        }
        for (field, message) in receiver.problems() {
            r.add(field, message);
        }
    }
}

fn check_kubernetes(k: &super::KubeSettings, file: &str, problems: &mut Vec<Problem>) {
    let mut r = Report {
        problems,
        file,
        item: "kubernetes".into(),
    };
    let names = [
        ("namespace", Some(&k.namespace)),
        ("lease.name", Some(&k.lease.name)),
        ("journal_configmap", k.journal_configmap.as_ref()),
        ("policy_configmap", k.policy_configmap.as_ref()),
    ];
    for (field, v) in names {
        if let Some(v) = v
            && !is_dns_label(v)
        {
            r.add(field, format!("`{v}` is not a valid Kubernetes name"));
        }
    }
    if k.lease.duration < std::time::Duration::from_secs(1) {
        r.add("lease.duration", "must be at least 1s");
    }
    if k.lease.renew.is_zero() || k.lease.renew >= k.lease.duration {
        r.add(
            "lease.renew",
            "must be greater than zero and shorter than lease.duration",
        );
    }
}

fn check_timing(config: &Config, probe: &ProbeConfig, r: &mut Report<'_>) {
    let interval = config.interval(probe);
    let timeout = config.timeout(probe);
    if interval.is_zero() {
        r.add("interval", "must be greater than zero");
    }
    if timeout.is_zero() {
        r.add("timeout", "must be greater than zero");
    }
    if timeout >= interval {
        r.add(
            "timeout",
            format!(
                "must be shorter than the interval ({} >= {})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        );
    }
    if let Some(fast) = config.unhealthy_interval(probe) {
        if fast > interval {
            r.add("unhealthy_interval", "must not be longer than the interval");
        }
        if timeout >= fast {
            r.add("unhealthy_interval", "must be longer than the timeout");
        }
    }
}

fn check_spec(spec: &ProbeSpec, r: &mut Report<'_>) {
    match spec {
        ProbeSpec::Http(h) => {
            match url::Url::parse(&h.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(u) => r.add(
                    "url",
                    format!("scheme `{}` is not http or https", u.scheme()),
                ),
                Err(e) => r.add("url", format!("not a valid URL: {e}")),
            }
            if reqwest::Method::from_bytes(h.method.as_bytes()).is_err() {
                r.add("method", format!("`{}` is not an HTTP method", h.method));
            }
            if let Some(re) = &h.body_regex
                && let Err(e) = regex::Regex::new(re)
            {
                r.add("body_regex", format!("not a valid regular expression: {e}"));
            }
            if let Some(bad) = h.expect_status.iter().find(|s| !(100..=599).contains(*s)) {
                r.add("expect_status", format!("{bad} is not an HTTP status"));
            }
            if h.max_body_bytes == 0 {
                r.add("max_body_bytes", "must be greater than zero");
            }
            if let Some(problem) = h.bearer_token.as_ref().and_then(|s| s.shape_problem()) {
                r.add("bearer_token", problem);
            }
            for name in h.headers.keys() {
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    r.add("headers", format!("`{name}` is not a header name"));
                }
            }
        }
        ProbeSpec::Tcp(t) => check_address(&t.address, "address", r),
        ProbeSpec::Redis(spec) => spec.problems().into_iter().for_each(|(f, m)| r.add(f, m)),
        ProbeSpec::Promql(spec) => spec.problems().into_iter().for_each(|(f, m)| r.add(f, m)),
        ProbeSpec::Node(n) => {
            if n.label_selector
                .as_deref()
                .is_some_and(|s| s.trim().is_empty())
            {
                r.add(
                    "label_selector",
                    "must not be empty (leave it out for every node)",
                );
            }
            if n.stale_after < std::time::Duration::from_secs(2) {
                r.add(
                    "stale_after",
                    "must be at least 2s (the watch is renewed every half of it, in whole seconds)",
                );
            }
        }
        ProbeSpec::Workload(w) => {
            for (field, v) in [("namespace", &w.namespace), ("deployment", &w.deployment)] {
                if !is_dns_label(v) {
                    r.add(field, format!("`{v}` is not a valid Kubernetes name"));
                }
            }
        }
        ProbeSpec::Patroni(p) => postgres::check_patroni(p, r),
        ProbeSpec::Postgres(p) => postgres::check_postgres(p, r),
        ProbeSpec::Disk(d) => {
            if !d.path.is_absolute() {
                r.add("path", "must be an absolute path");
            }
            for (field, v) in [
                ("degraded_ratio", d.degraded_ratio),
                ("failed_ratio", d.failed_ratio),
            ] {
                if !(0.0..=1.0).contains(&v) {
                    r.add(field, format!("{v} is not a ratio between 0 and 1"));
                }
            }
            if d.degraded_ratio >= d.failed_ratio {
                r.add("degraded_ratio", "must be below failed_ratio");
            }
        }
    }
}

/// A DNS-1123 label/subdomain: lowercase alphanumerics, `-` and `.`, 1 to 253 characters.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
}

/// `host:port`, with a numeric port and a non-empty host.
fn check_address(address: &str, field: &str, r: &mut Report<'_>) {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
        _ => r.add(field, format!("`{address}` is not host:port")),
    }
}

fn check_rules(config: &Config, file: &str, problems: &mut Vec<Problem>) {
    let probes: BTreeSet<&str> = config.probes.iter().map(|p| p.id.as_str()).collect();
    let groups: BTreeSet<&str> = config
        .probes
        .iter()
        .filter_map(|p| p.group.as_deref())
        .collect();
    let rules: BTreeSet<&str> = config.rules.iter().map(|r| r.id.as_str()).collect();
    let mut r = Report {
        problems,
        file,
        item: "policy".into(),
    };
    if let Some(tz) = &config.policy.timezone
        && jiff::tz::TimeZone::get(tz).is_err()
    {
        r.add("timezone", format!("`{tz}` is not a known time zone"));
    }
    if let Some(b) = &config.policy.global_budget {
        check_budget(b, "global_budget", &mut r);
    }
    if let Some(g) = &config.policy.partition_guard
        && !(g.max_failing_ratio > 0.0 && g.max_failing_ratio <= 1.0)
    {
        r.add("partition_guard.max_failing_ratio", "must be in (0, 1]");
    }
    let mut seen = BTreeSet::new();
    for rule in &config.rules {
        r.item = format!("rule \"{}\"", rule.id);
        if rule.id.trim().is_empty() {
            r.add("id", "must not be empty");
        } else if !seen.insert(rule.id.as_str()) {
            r.add("id", "duplicate rule id");
        }
        check_trigger(rule, &probes, &groups, &mut r);
        check_action(&rule.action, config, &mut r);
        if let Some(b) = &rule.budget {
            check_budget(b, "budget", &mut r);
        }
        for (i, w) in rule.windows.iter().enumerate() {
            for (name, v) in [("from", &w.from), ("to", &w.to)] {
                if parse_hhmm(v).is_none() {
                    r.add(
                        &format!("windows[{i}].{name}"),
                        format!("`{v}` is not HH:MM"),
                    );
                }
            }
        }
        if let Some(v) = &rule.verify {
            if !probes.contains(v.probe.as_str()) {
                r.add("verify.probe", format!("unknown probe `{}`", v.probe));
            }
            if v.within.is_zero() {
                r.add("verify.within", "must be greater than zero");
            }
        }
        if let Some(next) = &rule.escalate
            && next != "page"
            && !rules.contains(next.as_str())
        {
            r.add(
                "escalate",
                format!("unknown rule `{next}` (a rule id or `page`)"),
            );
        }
        for dep in &rule.depends_on {
            if !probes.contains(dep.as_str()) {
                r.add("depends_on", format!("unknown probe `{dep}`"));
            }
        }
    }
    check_escalation_loops(&config.rules, &mut r);
}

fn check_trigger(
    rule: &RuleConfig,
    probes: &BTreeSet<&str>,
    groups: &BTreeSet<&str>,
    r: &mut Report<'_>,
) {
    let t = &rule.trigger;
    match (&t.probe, &t.group) {
        (Some(p), None) if !probes.contains(p.as_str()) => {
            r.add("trigger.probe", format!("unknown probe `{p}`"));
        }
        (None, Some(g)) if !groups.contains(g.as_str()) => {
            r.add("trigger.group", format!("no probe has group `{g}`"));
        }
        (Some(_), None) | (None, Some(_)) => {}
        _ => r.add("trigger", "must name exactly one of `probe` or `group`"),
    }
    if t.min_level == crate::level::Level::Ok {
        r.add("trigger.min_level", "must be a level from P4 to P1");
    }
}

fn check_action(action: &ActionSpec, config: &Config, r: &mut Report<'_>) {
    if let Some(p) = action.referenced_probe() {
        match config.probe(p) {
            None => r.add("action.probe", format!("unknown probe `{p}`")),
            Some(probe) if !matches!(probe.spec, crate::config::ProbeSpec::Patroni(_)) => r.add(
                "action.probe",
                format!("probe `{p}` is not a `patroni` probe"),
            ),
            Some(_) => {}
        }
    }
    match action {
        ActionSpec::Scale {
            replicas,
            max_replicas,
            ..
        } => {
            if *replicas < 1 {
                r.add("action.replicas", "must be at least 1");
            }
            if replicas > max_replicas {
                r.add(
                    "action.replicas",
                    format!("{replicas} is above max_replicas {max_replicas}"),
                );
            }
        }
        ActionSpec::Resources {
            cpu_limit,
            memory_limit,
            max_cpu_limit,
            max_memory_limit,
            ..
        } => {
            for (field, v) in [
                ("action.cpu_limit", cpu_limit),
                ("action.memory_limit", memory_limit),
                ("action.max_cpu_limit", max_cpu_limit),
                ("action.max_memory_limit", max_memory_limit),
            ] {
                if let Some(q) = v
                    && crate::actuators::kube::parse_quantity(q).is_none()
                {
                    r.add(field, format!("`{q}` is not a Kubernetes quantity"));
                }
            }
            if cpu_limit.is_none() && memory_limit.is_none() {
                r.add("action", "set cpu_limit, memory_limit or both");
            }
        }
        ActionSpec::Http { url, token, .. } => {
            if url::Url::parse(url).is_err() {
                r.add("action.url", format!("`{url}` is not a valid URL"));
            }
            if let Some(p) = token.as_ref().and_then(|t| t.shape_problem()) {
                r.add("action.token", p);
            }
        }
        _ => {}
    }
    if let Some(object) = action.object()
        && !config.policy.allow.is_empty()
        && !config
            .policy
            .allow
            .iter()
            .any(|pat| allow_matches(pat, &object))
    {
        r.add("action", format!("`{object}` is not in policy.allow"));
    }
}

/// `namespace/kind/name` against a pattern where `*` matches one whole segment.
pub fn allow_matches(pattern: &str, object: &str) -> bool {
    let mut p = pattern.split('/');
    let mut o = object.split('/');
    loop {
        match (p.next(), o.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            _ => return false,
        }
    }
}

fn check_budget(b: &super::Budget, field: &str, r: &mut Report<'_>) {
    if b.max == 0 {
        r.add(
            &format!("{field}.max"),
            "must be at least 1 (use mode = \"off\" to disable)",
        );
    }
    if b.per.is_zero() {
        r.add(&format!("{field}.per"), "must be greater than zero");
    }
}

/// `HH:MM` → minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5).then_some(h * 60 + m)
}

/// An escalation chain must end; a rule that escalates back to itself would loop.
fn check_escalation_loops(rules: &[RuleConfig], r: &mut Report<'_>) {
    let next: BTreeMap<&str, &str> = rules
        .iter()
        .filter_map(|rule| Some((rule.id.as_str(), rule.escalate.as_deref()?)))
        .collect();
    for rule in rules {
        let mut at = rule.id.as_str();
        let mut steps = 0;
        while let Some(&n) = next.get(at) {
            steps += 1;
            if n == rule.id || steps > rules.len() {
                r.item = format!("rule \"{}\"", rule.id);
                r.add("escalate", "escalation chain loops back to this rule");
                break;
            }
            at = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hhmm() {
        assert_eq!(parse_hhmm("22:00"), Some(1320));
        assert_eq!(parse_hhmm("07:05"), Some(425));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("7:00"), None);
    }

    #[test]
    fn allow_patterns() {
        assert!(allow_matches(
            "rag-production/*/*",
            "rag-production/deployment/rag-api"
        ));
        assert!(allow_matches(
            "*/deployment/rag-api",
            "x/deployment/rag-api"
        ));
        assert!(!allow_matches(
            "rag-production/*/*",
            "kube-system/deployment/coredns"
        ));
        assert!(!allow_matches(
            "rag-production/*",
            "rag-production/deployment/rag-api"
        ));
    }
}
