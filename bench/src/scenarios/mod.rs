//! The scenarios, one module each, numbered as in BENCHMARKS.md.

pub mod append;
pub mod cross_instance;
pub mod fanout;
pub mod growth;
pub mod http_floor;
pub mod idle;
pub mod mongo_append;
pub mod replay;
pub mod room_open;
pub mod text;

/// The WebSocket settings of every client here. tungstenite zeroes its read
/// buffer's free space before each read, and its default buffer is 128 KiB:
/// at a thousand subscribers that zeroing took half the load generator's
/// CPU (scenario 4), on the 2 cores it shares with the server. 4 KiB holds
/// several of our frames; a larger one takes several reads.
pub(crate) fn ws_client_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4 * 1024)
}
