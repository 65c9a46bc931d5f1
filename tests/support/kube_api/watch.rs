//! Watches of the fake API server: newline-delimited `{"type":…,"object":…}` events from a
//! resourceVersion (replayed from the history, then live), BOOKMARKs when asked for,
//! `timeoutSeconds`, and 410 Expired for a resourceVersion older than the compacted history.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::Shared;
use super::routes::{Target, selects};
use super::store::kind_of;

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({ "type": kind, "object": object }).to_string();
    s.push('\n');
    Bytes::from(s)
}

pub fn serve(shared: Arc<Shared>, t: Target, query: &HashMap<String, String>) -> Response {
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(290), Duration::from_secs);
    let timeout = match *shared.max_watch.lock().unwrap() {
        Some(cap) => timeout.min(cap),
        None => timeout,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let query = query.clone();
    let (initial, live, expired, mut last_rv) = {
        let store = shared.store.lock().unwrap();
        let live = store.changes.subscribe();
        if from == 0 {
            // "0" or absent: the current state as synthetic ADDED events, then changes.
            let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
            let objects = store.list(&t.gv, &t.resource, ns);
            let lines: Vec<Bytes> = objects
                .iter()
                .filter(|o| {
                    let key = super::store::Key::new(
                        &t.gv,
                        &t.resource,
                        o["metadata"]["namespace"].as_str().unwrap_or(""),
                        o["metadata"]["name"].as_str().unwrap_or(""),
                    );
                    selects(&t, &key, o, &query)
                })
                .map(|o| line("ADDED", o))
                .collect();
            (lines, live, None, store.rv())
        } else if from < store.compacted_below {
            let status = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {from} ({})", store.compacted_below),
                "reason": "Expired", "code": 410,
            });
            (vec![], live, Some(line("ERROR", &status)), from)
        } else {
            let lines = store
                .history_after(from)
                .iter()
                .filter(|c| selects(&t, &c.key, &c.object, &query))
                .map(|c| line(c.kind, &c.object))
                .collect();
            (lines, live, None, store.rv().max(from))
        }
    };
    let every = *shared.bookmark_every.lock().unwrap();
    let mut epoch = shared.watch_epoch.subscribe();
    let kind = kind_of(&t.resource);
    let api_version = t.gv.clone();
    tokio::spawn(async move {
        for l in initial {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        if let Some(err) = expired {
            let _ = tx.send(err).await;
            return;
        }
        let mut live = live;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                // A cut or a timeout wins over a pending change, as when a connection drops.
                biased;
                _ = epoch.changed() => return,
                () = &mut deadline => return,
                () = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    let object = json!({
                        "kind": kind, "apiVersion": api_version,
                        "metadata": { "resourceVersion": last_rv.to_string() },
                    });
                    if tx.send(line("BOOKMARK", &object)).await.is_err() {
                        return;
                    }
                    shared.bookmarks_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                change = live.recv() => match change {
                    Ok(c) if c.rv > last_rv => {
                        last_rv = c.rv;
                        if selects(&t, &c.key, &c.object, &query)
                            && tx.send(line(c.kind, &c.object)).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}
