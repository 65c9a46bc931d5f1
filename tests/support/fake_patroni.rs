//! A stand-in Patroni REST API on 127.0.0.1 that answers like Patroni 3.0.2 (HTTP/1.0, one
//! request per connection) with whatever a test sets per path, including the misbehaviours a
//! real Patroni cannot be made to show on demand: HTML, a huge body, a closed connection
//! without an answer, silence before the headers (a SIGSTOPped Patroni: the kernel still
//! accepts), and a body that stalls or is cut off after the headers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the fake answers a path.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, content type and body.
    Body(u16, &'static str, Vec<u8>),
    /// Closes the connection without a word (Patroni's `/cluster` when its DCS is gone).
    Close,
    /// Reads the request and never sends a byte (not even the status line): a stopped
    /// Patroni whose socket the kernel still accepts.
    HangBeforeHeaders,
    /// Sends the status line, the headers (announcing a body of `Content-Length` bytes) and
    /// the first half of the body, then stalls with the connection open.
    HangAfterHeaders(Vec<u8>),
    /// Like [`Reply::HangAfterHeaders`], but closes the connection after half the body.
    CutMidBody(Vec<u8>),
    /// A 200 JSON answer of `n` bytes, streamed.
    Huge(usize),
}

impl Reply {
    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Body(200, "application/json", body.into())
    }

    pub fn html(status: u16, body: &str) -> Reply {
        Reply::Body(status, "text/html", body.as_bytes().to_vec())
    }
}

pub struct FakePatroni {
    pub addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakePatroni {
    pub async fn start() -> FakePatroni {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let shared = routes.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        FakePatroni { addr, routes, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }
}

impl Drop for FakePatroni {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, routes: Arc<Mutex<HashMap<String, Reply>>>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_owned();
    let reply = routes.lock().unwrap().get(&path).cloned();
    match reply {
        None => {
            let _ = stream
                .write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
        Some(Reply::Close) => {}
        Some(Reply::HangBeforeHeaders) => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        Some(Reply::HangAfterHeaders(body)) => {
            if send_half(&mut stream, &body).await {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        }
        Some(Reply::CutMidBody(body)) => {
            send_half(&mut stream, &body).await;
        }
        Some(Reply::Body(status, content_type, body)) => {
            let head = format!(
                "HTTP/1.0 {status} X\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
        }
        Some(Reply::Huge(n)) => {
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream
                .write_all(b"{\"state\": \"running\", \"x\": \"")
                .await;
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < n {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len();
            }
        }
    }
    let _ = stream.shutdown().await;
}

/// Writes a 200 JSON head announcing all of `body`, then its first half; `false` when the
/// client is gone.
async fn send_half(stream: &mut TcpStream, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.is_ok()
        && stream.write_all(&body[..body.len() / 2]).await.is_ok()
        && stream.flush().await.is_ok()
}
