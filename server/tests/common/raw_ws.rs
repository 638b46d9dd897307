//! A WebSocket client at the byte level, for what a well-behaved client
//! library will not send (invalid UTF-8, unmasked frames, reserved bits and
//! opcodes) or will not do (never read, never answer a ping): the upgrade
//! written by hand on a plain TCP connection, frames encoded and decoded
//! here.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opcodes of RFC 6455.
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

pub struct RawWs {
    pub tcp: TcpStream,
    /// Bytes read after the upgrade response and not yet decoded.
    buf: Vec<u8>,
}

/// A frame the server sent.
#[derive(Debug)]
pub struct ServerFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawWs {
    /// Upgrades `path` (with its query) on the server at `base`
    /// (`http://host:port`), and fails unless the answer is 101.
    pub async fn connect(base: &str, path: &str) -> RawWs {
        let host = base.trim_start_matches("http://");
        let mut tcp = TcpStream::connect(host).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let end = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return i + 4;
                }
                let mut chunk = [0u8; 1024];
                let n = tcp.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the server ended the connection during the upgrade");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("an answer to the upgrade");
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        buf.drain(..end);
        RawWs { tcp, buf }
    }

    /// Sends one frame: `first` is the first byte (FIN, RSV bits, opcode),
    /// masked with `mask` when given (clients must mask).
    pub async fn send_raw(&mut self, first: u8, mask: Option<[u8; 4]>, payload: &[u8]) {
        let mut f = vec![first];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xFFFF => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(key) => {
                f.extend_from_slice(&key);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => f.extend_from_slice(payload),
        }
        self.tcp.write_all(&f).await.unwrap();
    }

    /// Sends a final, masked frame of this opcode.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.send_raw(0x80 | opcode, Some([0x37, 0xfa, 0x21, 0x3d]), payload)
            .await;
    }

    /// The next frame from the server, or `None` when the connection ends
    /// (or is reset). Fails after 10 s without one.
    pub async fn next(&mut self) -> Option<ServerFrame> {
        tokio::time::timeout(Duration::from_secs(10), self.next_frame())
            .await
            .expect("a frame or the end of the connection within 10 s")
    }

    async fn next_frame(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some((frame, used)) = decode(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = vec![0u8; 64 * 1024];
            match self.tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads frames until a close frame (its code) or the end of the
    /// connection (`None`). Fails after 10 s without either.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let f = self.next().await?;
            if f.opcode == CLOSE {
                return (f.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]]));
            }
        }
    }
}

/// Decodes one unmasked frame at the start of `buf`: the frame and the bytes
/// it took, or `None` if `buf` does not hold all of it yet.
fn decode(buf: &[u8]) -> Option<(ServerFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0F;
    let (len, start) = match buf[1] & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(start..start + len)?.to_vec();
    Some((ServerFrame { opcode, payload }, start + len))
}
