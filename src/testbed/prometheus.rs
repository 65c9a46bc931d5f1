//! Prometheus 2.42 (Debian) on a free port with a generated configuration: a 1 s scrape of
//! the jobs passed in plus Prometheus itself (`job="prometheus"`), a temporary TSDB, and
//! helpers for instant queries and for waiting until a target is `up`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{Error, Proc, Result, free_port, require, wait_for};

const BINARY: &str = "/usr/bin/prometheus";
const PACKAGE: &str = "prometheus";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One scrape job: a name, `host:port` targets and the path to scrape.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    pub name: String,
    pub targets: Vec<String>,
    pub metrics_path: String,
}

impl ScrapeJob {
    /// A job scraping `/metrics` of `targets`.
    pub fn new(name: &str, targets: &[String]) -> Self {
        ScrapeJob {
            name: name.to_owned(),
            targets: targets.to_vec(),
            metrics_path: "/metrics".to_owned(),
        }
    }
}

/// A running Prometheus; killed when it drops.
pub struct Prometheus {
    pub port: u16,
    proc: Proc,
    http: reqwest::Client,
}

/// One series of an instant query: labels and value.
pub type Sample = (BTreeMap<String, String>, f64);

impl Prometheus {
    /// Writes `dir/prometheus.yml`, starts Prometheus with its TSDB in `dir/tsdb`, and waits
    /// until `/-/ready` answers 200.
    pub async fn start(dir: &Path, jobs: &[ScrapeJob]) -> Result<Prometheus> {
        require(BINARY, PACKAGE)?;
        let port = free_port()?;
        let mut all = vec![ScrapeJob::new("prometheus", &[format!("127.0.0.1:{port}")])];
        all.extend_from_slice(jobs);
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, render_config(&all)).map_err(|source| Error::Io {
            what: format!("write {}", config.display()),
            source,
        })?;
        let mut cmd = Command::new(BINARY);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let proc = Proc::spawn("prometheus", cmd, &dir.join("prometheus.log"))?;
        crate::app::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| Error::Other(format!("http client: {e}")))?;
        let prometheus = Prometheus { port, proc, http };
        let ready = format!("{}/-/ready", prometheus.url());
        wait_for("prometheus /-/ready", READY_TIMEOUT, || async {
            let r = prometheus.http.get(&ready).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await?;
        Ok(prometheus)
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An instant query through `/api/v1/query`; a scalar comes back as one unlabelled series.
    pub async fn query(&self, expr: &str) -> Result<Vec<Sample>> {
        let mut url = url::Url::parse(&format!("{}/api/v1/query", self.url()))
            .map_err(|e| Error::Other(format!("prometheus url: {e}")))?;
        url.query_pairs_mut().append_pair("query", expr);
        let fail = |what: String| Error::Other(format!("query `{expr}`: {what}"));
        let body: serde_json::Value = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?
            .json()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if body["status"] != "success" {
            return Err(fail(body.to_string()));
        }
        let data = &body["data"];
        let series = match data["resultType"].as_str() {
            Some("vector") => data["result"].as_array().cloned().unwrap_or_default(),
            Some("scalar") => vec![serde_json::json!({"metric": {}, "value": data["result"]})],
            _ => return Err(fail(format!("unexpected data {data}"))),
        };
        series
            .iter()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone())
                    .map_err(|e| fail(format!("labels: {e}")))?;
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .ok_or_else(|| fail(format!("value in {s}")))?;
                Ok((labels, value))
            })
            .collect()
    }

    /// Waits until every series of `up{job="…"}` is 1 (and there is at least one).
    pub async fn wait_up(&self, job: &str, timeout: Duration) -> Result<()> {
        let expr = format!("up{{job={job:?}}}");
        wait_for(&format!("{expr} == 1"), timeout, || async {
            let s = self.query(&expr).await.ok()?;
            (!s.is_empty() && s.iter().all(|(_, v)| *v == 1.0)).then_some(())
        })
        .await
    }

    /// Stops Prometheus (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        self.proc.stop(Duration::from_secs(5));
    }
}

/// The YAML configuration; strings are written as JSON strings, which YAML reads as such.
fn render_config(jobs: &[ScrapeJob]) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut out = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
    );
    for job in jobs {
        let targets: Vec<String> = job.targets.iter().map(|t| q(t)).collect();
        out.push_str(&format!(
            "  - job_name: {}\n    metrics_path: {}\n    static_configs:\n      - targets: [{}]\n",
            q(&job.name),
            q(&job.metrics_path),
            targets.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_quotes_every_string() {
        let yml = render_config(&[ScrapeJob::new("a\"b", &["127.0.0.1:1".into()])]);
        assert!(yml.contains("job_name: \"a\\\"b\""), "{yml}");
        assert!(yml.contains("targets: [\"127.0.0.1:1\"]"), "{yml}");
    }
}
