//! A TCP proxy between the browser and the server that can misbehave on
//! purpose, for the WebSocket only: hold back what the server says (so the
//! app's own actions are seen before their answer), or cut the sockets and
//! refuse new ones (a dropped connection). Page loads and HTTP calls always
//! pass, so a page can reload while its socket is down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to WebSocket connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pass,
    /// The server's bytes are kept until the mode changes.
    Hold,
    /// Open sockets are closed, new ones refused.
    Cut,
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    sockets_seen: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `backend`.
    pub async fn start(backend: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watch_mode) = watch::channel(Mode::Pass);
        let sockets_seen = Arc::new(AtomicBool::new(false));
        let seen = sockets_seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = watch_mode.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let _ = forward(client, backend, mode, seen).await;
                });
            }
        });
        Proxy {
            addr,
            mode,
            sockets_seen,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Holds back everything the server sends on WebSockets until [`pass`].
    pub fn hold_sockets(&self) {
        self.mode.send_replace(Mode::Hold);
    }

    /// Closes the WebSockets and refuses new ones until [`pass`].
    pub fn cut_sockets(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Back to forwarding everything (held bytes go first).
    pub fn pass(&self) {
        self.mode.send_replace(Mode::Pass);
    }

    /// Whether a WebSocket has gone through since the proxy started.
    pub fn saw_socket(&self) -> bool {
        self.sockets_seen.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    mut client: TcpStream,
    backend: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    seen: Arc<AtomicBool>,
) -> std::io::Result<()> {
    // The request head says whether this connection is a WebSocket.
    let mut head = vec![0u8; 8192];
    let n = client.read(&mut head).await?;
    head.truncate(n);
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let socket = text.contains("upgrade: websocket");
    if socket {
        seen.store(true, Ordering::SeqCst);
        if *mode.borrow() == Mode::Cut {
            return Ok(());
        }
    }
    let server = TcpStream::connect(backend).await?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    server_write.write_all(&head).await?;
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut held = Vec::new();
        loop {
            tokio::select! {
                // A change of mode first: held bytes go out before newer ones.
                biased;
                changed = mode.changed(), if socket => {
                    if changed.is_err() {
                        break;
                    }
                    let now = *mode.borrow();
                    match now {
                        Mode::Cut => break,
                        Mode::Pass if !held.is_empty() => {
                            if client_write.write_all(&held).await.is_err() {
                                break;
                            }
                            held.clear();
                        }
                        _ => {}
                    }
                }
                r = server_read.read(&mut buf) => {
                    let n = match r { Ok(0) | Err(_) => break, Ok(n) => n };
                    if socket && *mode.borrow() == Mode::Hold {
                        held.extend_from_slice(&buf[..n]);
                        continue;
                    }
                    if !held.is_empty() {
                        if client_write.write_all(&held).await.is_err() {
                            break;
                        }
                        held.clear();
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = client_write.shutdown().await;
    };
    if socket {
        // A cut ends both directions at once: the browser sees the
        // connection drop.
        tokio::select! {
            _ = downstream => {}
            _ = upstream => {}
        }
    } else {
        tokio::join!(upstream, downstream);
    }
    Ok(())
}
