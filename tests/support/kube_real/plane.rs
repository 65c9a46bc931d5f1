//! One control plane per test binary: etcd, kube-apiserver and kube-controller-manager on
//! free 127.0.0.1 ports, started on first use and shared by every test of the binary. It
//! holds only processes, paths, ports and tokens (each `#[tokio::test]` has its own runtime,
//! so no client lives here). Ready once `/readyz` says `ok` and the controller-manager has
//! created the `default` ServiceAccount; a start failure is kept and every test gets it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use astreinte::testbed::{Etcd, Proc, free_port};
use tokio::sync::OnceCell;

use super::bins::{self, Bins};
use super::pki::{self, Pki};
use super::watchdog::Watchdog;

/// The running plane.
pub struct Plane {
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    pub dir: PathBuf,
    pub pki: Pki,
    /// A kubeconfig for the admin (`system:masters`).
    pub admin_kubeconfig: PathBuf,
    api_port: u16,
    bins: Bins,
    _etcd: Etcd,
    etcd_address: String,
    apiserver: tokio::sync::Mutex<Proc>,
    _controller_manager: Proc,
    watchdog: Watchdog,
    _tmp: tempfile::TempDir,
}

static PLANE: OnceCell<Result<Plane, String>> = OnceCell::const_new();

/// The plane of this test binary, started on first use; panics with the reason it could not
/// start (a missing binary names what and where).
pub async fn get() -> &'static Plane {
    match PLANE.get_or_init(start).await {
        Ok(plane) => plane,
        Err(why) => panic!("the Kubernetes control plane could not start: {why}"),
    }
}

impl Plane {
    /// Kills kube-apiserver (SIGKILL, like a crash) and starts it again on the same port and
    /// etcd, waiting for `/readyz`. Watches resumed with an older resourceVersion then get
    /// 410 Gone. For a test binary of its own: the other tests of a binary share the plane.
    pub async fn restart_apiserver(&self) -> Result<(), String> {
        self.stop_apiserver().await;
        self.start_apiserver().await
    }

    /// Kills kube-apiserver (SIGKILL, like a crash) and reaps it: its listening socket is
    /// closed, clients get "connection refused" until [`Plane::start_apiserver`].
    pub async fn stop_apiserver(&self) {
        self.apiserver.lock().await.kill();
    }

    /// Starts kube-apiserver again on the same port and etcd, waiting for `/readyz`.
    pub async fn start_apiserver(&self) -> Result<(), String> {
        let mut apiserver = self.apiserver.lock().await;
        let mut fresh = spawn(
            "kube-apiserver",
            apiserver_command(&self.bins, &self.pki, self.api_port, &self.etcd_address),
            &self.dir,
            &self.watchdog,
        )?;
        let http = http_client(&self.pki)?;
        let readyz = format!("{}/readyz", self.server);
        wait_up(
            "/readyz = ok",
            &mut fresh,
            &self.dir,
            Duration::from_secs(120),
            || {
                let req = http.get(&readyz).bearer_auth(&self.pki.admin_token);
                async move {
                    let body = req.send().await.ok()?.text().await.ok()?;
                    (body == "ok").then_some(())
                }
            },
        )
        .await?;
        *apiserver = fresh;
        Ok(())
    }
}

async fn start() -> Result<Plane, String> {
    astreinte::app::install_crypto();
    let bins = bins::locate()?;
    let tmp = tempfile::Builder::new()
        .prefix("astreinte-kube-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let dir = tmp.path().to_path_buf();
    let watchdog = Watchdog::start(&dir)?;
    let pki = pki::make(&dir.join("pki"))?;

    let etcd = Etcd::start(&dir).await.map_err(|e| format!("etcd: {e}"))?;
    watchdog.guard(etcd.pid())?;

    let api_port = free_port().map_err(|e| e.to_string())?;
    let server = format!("https://127.0.0.1:{api_port}");
    let http = http_client(&pki)?;
    let mut apiserver = spawn(
        "kube-apiserver",
        apiserver_command(&bins, &pki, api_port, &etcd.client_address()),
        &dir,
        &watchdog,
    )?;
    let readyz = format!("{server}/readyz");
    wait_up(
        "/readyz = ok",
        &mut apiserver,
        &dir,
        Duration::from_secs(120),
        || {
            let req = http.get(&readyz).bearer_auth(&pki.admin_token);
            async move {
                let body = req.send().await.ok()?.text().await.ok()?;
                (body == "ok").then_some(())
            }
        },
    )
    .await?;

    let kcm_kubeconfig = dir.join("kcm.kubeconfig");
    super::kubeconfig::write(
        &kcm_kubeconfig,
        &server,
        &pki.ca_crt,
        "system:kube-controller-manager",
        &pki.kcm_token,
        "kube-system",
    )?;
    let mut kcm = spawn(
        "kube-controller-manager",
        kcm_command(&bins, &pki, &kcm_kubeconfig, &dir)?,
        &dir,
        &watchdog,
    )?;
    // The serviceaccount controller creating default/default: the controllers run.
    let sa = format!("{server}/api/v1/namespaces/default/serviceaccounts/default");
    wait_up(
        "the default ServiceAccount",
        &mut kcm,
        &dir,
        Duration::from_secs(60),
        || {
            let req = http.get(&sa).bearer_auth(&pki.admin_token);
            async move { req.send().await.ok()?.status().is_success().then_some(()) }
        },
    )
    .await?;

    let admin_kubeconfig = dir.join("admin.kubeconfig");
    super::kubeconfig::write(
        &admin_kubeconfig,
        &server,
        &pki.ca_crt,
        "astreinte-admin",
        &pki.admin_token,
        "default",
    )?;
    let etcd_address = etcd.client_address();
    Ok(Plane {
        server,
        dir,
        pki,
        admin_kubeconfig,
        api_port,
        bins,
        _etcd: etcd,
        etcd_address,
        apiserver: tokio::sync::Mutex::new(apiserver),
        _controller_manager: kcm,
        watchdog,
        _tmp: tmp,
    })
}

fn http_client(pki: &Pki) -> Result<reqwest::Client, String> {
    let pem = std::fs::read(&pki.ca_crt).map_err(|e| format!("read CA: {e}"))?;
    let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("CA: {e}"))?;
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| format!("http client: {e}"))
}

fn spawn(name: &str, cmd: Command, dir: &Path, watchdog: &Watchdog) -> Result<Proc, String> {
    let proc =
        Proc::spawn(name, cmd, &dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
    watchdog.guard(proc.pid())?;
    Ok(proc)
}

fn apiserver_command(bins: &Bins, pki: &Pki, port: u16, etcd: &str) -> Command {
    let issuer = "https://kubernetes.default.svc.cluster.local";
    let mut cmd = Command::new(&bins.apiserver);
    let path = |flag: &str, p: &Path| format!("--{flag}={}", p.display());
    cmd.args([
        "--bind-address=127.0.0.1".to_owned(),
        "--advertise-address=127.0.0.1".to_owned(),
        format!("--secure-port={port}"),
        // 127.0.0.1 is not a valid endpoint for the `kubernetes` Service.
        "--endpoint-reconciler-type=none".to_owned(),
        format!("--etcd-servers=http://{etcd}"),
        path("tls-cert-file", &pki.apiserver_crt),
        path("tls-private-key-file", &pki.apiserver_key),
        path("client-ca-file", &pki.ca_crt),
        path("token-auth-file", &pki.tokens),
        path("requestheader-client-ca-file", &pki.front_proxy_ca),
        "--requestheader-allowed-names=front-proxy-client".to_owned(),
        "--requestheader-username-headers=X-Remote-User".to_owned(),
        "--requestheader-group-headers=X-Remote-Group".to_owned(),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".to_owned(),
        path("proxy-client-cert-file", &pki.front_proxy_crt),
        path("proxy-client-key-file", &pki.front_proxy_key),
        "--authorization-mode=Node,RBAC".to_owned(),
        "--enable-admission-plugins=NodeRestriction".to_owned(),
        // Allocation only: nothing is ever routed there.
        "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
        format!("--service-account-issuer={issuer}"),
        format!("--api-audiences={issuer}"),
        path("service-account-key-file", &pki.sa_pub),
        path("service-account-signing-key-file", &pki.sa_key),
        "--allow-privileged=true".to_owned(),
        "--profiling=false".to_owned(),
        "--v=0".to_owned(),
    ]);
    cmd
}

fn kcm_command(bins: &Bins, pki: &Pki, kubeconfig: &Path, dir: &Path) -> Result<Command, String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let certs = dir.join("kcm-certs");
    std::fs::create_dir_all(&certs).map_err(|e| format!("create {}: {e}", certs.display()))?;
    let path = |flag: &str, p: &Path| format!("--{flag}={}", p.display());
    let mut cmd = Command::new(&bins.controller_manager);
    cmd.args([
        path("kubeconfig", kubeconfig),
        path("authentication-kubeconfig", kubeconfig),
        path("authorization-kubeconfig", kubeconfig),
        "--bind-address=127.0.0.1".to_owned(),
        format!("--secure-port={port}"),
        path("cert-dir", &certs),
        "--leader-elect=false".to_owned(),
        "--use-service-account-credentials=true".to_owned(),
        // nodelifecycle off: with no kubelet it would flip hand-made Nodes to Ready=Unknown and
        // taint them. service-ca-cert-publisher is OpenShift's, off like upstream.
        "--controllers=*,-service-ca-cert-publisher,-nodelifecycle".to_owned(),
        path("service-account-private-key-file", &pki.sa_key),
        path("root-ca-file", &pki.ca_crt),
        path("cluster-signing-cert-file", &pki.ca_crt),
        path("cluster-signing-key-file", &pki.ca_key),
        "--profiling=false".to_owned(),
        "--v=0".to_owned(),
    ]);
    Ok(cmd)
}

/// Polls `check` every 100 ms until it answers, failing at once (with the end of its log)
/// when `proc` exits, or after `timeout`.
async fn wait_up<F, Fut>(
    what: &str,
    proc: &mut Proc,
    dir: &Path,
    timeout: Duration,
    mut check: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<()>>,
{
    let log = dir.join(format!("{}.log", proc.name));
    let deadline = Instant::now() + timeout;
    loop {
        if check().await.is_some() {
            return Ok(());
        }
        if let Some(code) = proc.try_exit_code() {
            return Err(format!(
                "{} exited ({code:?}) before {what}; end of {}:\n{}",
                proc.name,
                log.display(),
                tail(&log)
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{}: timed out after {timeout:?} waiting for {what}; end of {}:\n{}",
                proc.name,
                log.display(),
                tail(&log)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
