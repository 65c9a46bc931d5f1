//! A TCP proxy on 127.0.0.1 that a test puts between the daemon and a server, to cut the
//! network for real, at the TCP level, in the three ways a network fails:
//!
//! - [`Mode::Refuse`]: nothing listens on the port any more (connect gets ECONNREFUSED) and
//!   every open connection is reset;
//! - [`Mode::Drop`]: connections are accepted and reset at once, open ones are reset;
//! - [`Mode::Blackhole`]: connections are accepted and never answered, and open ones go
//!   silent in both directions, without a FIN or a RST: the nastiest case, a client only
//!   notices through its own timeouts. The bytes stay in the kernel buffers, so when the
//!   link comes back they are delivered late, as TCP retransmission would: a request the
//!   client gave up on can still reach the server after the partition heals.
//!
//! [`Mode::Up`] forwards bytes both ways.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    Refuse,
    Drop,
    Blackhole,
}

pub struct TcpProxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Open connections see the mode channel close and stop.
    }
}

impl TcpProxy {
    /// A proxy to `upstream`, up.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, rx) = watch::channel(Mode::Up);
        let task = tokio::spawn(accept_loop(listener, addr, upstream, rx));
        TcpProxy { addr, mode, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
) {
    let mut listener = Some(listener);
    loop {
        let current = *mode.borrow_and_update();
        match (current, &listener) {
            (Mode::Refuse, Some(_)) => listener = None,
            (Mode::Refuse, None) => {}
            (_, None) => listener = Some(rebind(addr).await),
            (_, Some(_)) => {}
        }
        let Some(l) = &listener else {
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            changed = mode.changed() => if changed.is_err() { return },
            accepted = l.accept() => {
                let Ok((client, _)) = accepted else { continue };
                if current == Mode::Drop {
                    reset(client);
                    continue;
                }
                tokio::spawn(connection(client, upstream, mode.clone()));
            }
        }
    }
}

/// Listens again on the same port (SO_REUSEADDR is set by tokio on Unix).
async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot listen on {addr} again");
}

/// Closes with a RST, not a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Whether the mode lets bytes through now; `None` when the connection must be reset.
fn flowing(mode: Mode) -> Option<bool> {
    match mode {
        Mode::Up => Some(true),
        Mode::Blackhole => Some(false),
        Mode::Refuse | Mode::Drop => None,
    }
}

/// One proxied connection: connects upstream once the link is up, then copies both ways
/// while it stays up, pauses (reads nothing) while it is blackholed, and resets both sides
/// when the network refuses or drops.
async fn connection(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // Accepted during a blackhole: wait, as a SYN-ACKed connection whose data goes nowhere.
    loop {
        let now = *mode.borrow_and_update();
        match flowing(now) {
            Some(true) => break,
            Some(false) => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            None => return reset(client),
        }
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (mut c_open, mut s_open) = (true, true);
    let mut cbuf = vec![0u8; 16 * 1024];
    let mut sbuf = vec![0u8; 16 * 1024];
    while c_open || s_open {
        let up = match flowing(*mode.borrow_and_update()) {
            Some(up) => up,
            None => {
                let (Ok(c), Ok(s)) = (cr.reunite(cw), sr.reunite(sw)) else {
                    return;
                };
                reset(c);
                reset(s);
                return;
            }
        };
        tokio::select! {
            changed = mode.changed() => if changed.is_err() { return },
            n = cr.read(&mut cbuf), if up && c_open => match n {
                Ok(0) | Err(_) => { c_open = false; let _ = sw.shutdown().await; }
                Ok(n) => if sw.write_all(&cbuf[..n]).await.is_err() { return },
            },
            n = sr.read(&mut sbuf), if up && s_open => match n {
                Ok(0) | Err(_) => { s_open = false; let _ = cw.shutdown().await; }
                Ok(n) => if cw.write_all(&sbuf[..n]).await.is_err() { return },
            },
        }
    }
}

/// A seeded xorshift generator: flap schedules that can be replayed from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[lo, hi]` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

/// One step of a flap schedule.
#[derive(Debug, Clone, Copy)]
pub struct Flap {
    pub mode: Mode,
    pub lasts: Duration,
}

/// Alternating up and down periods of 1–8 s for `total`, the down mode drawn among refuse,
/// drop and blackhole.
pub fn flap_schedule(rng: &mut Rng, total: Duration) -> Vec<Flap> {
    let mut steps = vec![];
    let mut elapsed = Duration::ZERO;
    let mut up = true;
    while elapsed < total {
        let lasts = rng.millis(1000, 8000);
        let mode = if up {
            Mode::Up
        } else {
            [Mode::Refuse, Mode::Drop, Mode::Blackhole][(rng.next() % 3) as usize]
        };
        steps.push(Flap { mode, lasts });
        elapsed += lasts;
        up = !up;
    }
    steps
}

/// Plays `schedule` on `proxy`, then leaves it up.
pub async fn play(proxy: &TcpProxy, schedule: &[Flap]) {
    for step in schedule {
        proxy.set(step.mode);
        tokio::time::sleep(step.lasts).await;
    }
    proxy.set(Mode::Up);
}
