//! Two replicas of the daemon binary in a "cluster" (the API test server: one Lease, one
//! journal ConfigMap) probing one failing service and notifying one webhook sink (issue 14
//! #4, as seen on a real cluster): one "opened" and one "resolved" notice in all, sent by the
//! leader alone, and both replicas serve the same incident on `/incidents`, the leader's
//! action on its timeline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use support::action_sink::ActionSink;
use support::http_target::HttpTarget;
use support::kube_api::{KubeApi, write_kubeconfig};
use support::replica::Replica;
use support::wait_for;
use support::webhook_sink::WebhookSink;

const WAIT: Duration = Duration::from_secs(30);

fn probes(kubeconfig: &std::path::Path, target: &HttpTarget) -> String {
    format!(
        "[kubernetes]\nkubeconfig = \"{}\"\njournal_configmap = \"astreinte-journal\"\n\n\
         [kubernetes.lease]\nduration = \"3s\"\nrenew = \"500ms\"\n\n\
         [incidents]\ngreen_period = \"2s\"\n\n\
         [[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
        kubeconfig.display(),
        target.url("/switchable")
    )
}

fn rules(actions: &ActionSink, sink: &WebhookSink, who: &str) -> String {
    format!(
        "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"act\"\n\
         trigger = {{ probe = \"api\", min_level = \"P2\" }}\n\
         action = {{ kind = \"http\", method = \"POST\", url = \"{}\" }}\n\
         budget = {{ max = 1, per = \"1h\" }}\ndeadline = \"5s\"\n\n\
         [[notify]]\nname = \"oncall\"\nkind = \"webhook\"\nurl = \"{}\"\nmin_level = \"P4\"\n",
        actions.url(who),
        sink.url("/ok/oncall")
    )
}

async fn incidents(r: &Replica) -> Option<Value> {
    reqwest::get(format!("{}/incidents", r.base))
        .await
        .ok()?
        .json()
        .await
        .ok()
}

fn events(sink: &WebhookSink) -> Vec<(String, String)> {
    sink.notices("/ok/oncall")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_one_set_of_notices_and_serve_one_timeline() {
    astreinte::app::install_crypto();
    let api = KubeApi::start().await;
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let actions = ActionSink::start(Duration::from_millis(20)).await;
    let sink = WebhookSink::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = vec![];
    for who in ["a", "b"] {
        let home = dir.path().join(who);
        std::fs::create_dir_all(&home).unwrap();
        let kubeconfig = home.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &api.url);
        replicas.push(Replica::start(
            who,
            &home,
            &probes(&kubeconfig, &target),
            &rules(&actions, &sink, who),
        ));
    }
    let logs = |rs: &[Replica]| {
        format!(
            "--- a ---\n{}\n--- b ---\n{}",
            rs[0].log_tail(40),
            rs[1].log_tail(40)
        )
    };

    wait_for("the leader's action", WAIT, || async {
        (!actions.calls().is_empty()).then_some(())
    })
    .await;
    let id = wait_for("an opened notice", WAIT, || async {
        events(&sink)
            .into_iter()
            .find(|(e, _)| e == "opened")
            .map(|(_, id)| id)
    })
    .await;

    // The service recovers: the incident resolves, once.
    target.status.store(200, Ordering::SeqCst);
    wait_for("a resolved notice", WAIT, || async {
        events(&sink)
            .iter()
            .any(|(e, _)| e == "resolved")
            .then_some(())
    })
    .await;

    // Both replicas serve the same resolved incident, the action on its timeline.
    let served = wait_for("both replicas to serve one incident", WAIT, || async {
        let mut seen = vec![];
        for r in &replicas {
            let list = incidents(r).await?;
            let inc = list["recent"]
                .as_array()?
                .iter()
                .find(|i| i["id"] == id.as_str())?
                .clone();
            seen.push((list["leader"].as_bool(), inc));
        }
        (seen[0].1 == seen[1].1).then_some(seen)
    })
    .await;
    let leaders: Vec<Option<bool>> = served.iter().map(|(l, _)| *l).collect();
    assert!(
        leaders == [Some(true), Some(false)] || leaders == [Some(false), Some(true)],
        "one leader: {leaders:?}\n{}",
        logs(&replicas)
    );
    let timeline = served[0].1["timeline"].as_array().unwrap();
    assert!(
        timeline.iter().any(|e| e["kind"] == "action"),
        "{timeline:#?}"
    );

    // The follower sent nothing; the sink got one opened and one resolved.
    let follower = &replicas[usize::from(leaders[0] == Some(true))];
    assert_eq!(
        follower.sum("astreinte_notifications_total", "").await,
        Some(0.0),
        "{}",
        logs(&replicas)
    );
    let got = events(&sink);
    assert_eq!(
        got,
        [
            ("opened".to_owned(), id.clone()),
            ("resolved".to_owned(), id)
        ],
        "{}",
        logs(&replicas)
    );
}
