//! Where an embedded store's disk goes: each table's stored, metadata and
//! fragmented bytes, and the pages the file has allocated. Run on a
//! stopped server's data directory:
//!   cargo run --release -p server --example store_sizes -- DATA_DIR

use server::store::embedded::EmbeddedStore;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: store_sizes DATA_DIR");
    let file = std::path::Path::new(&dir).join("chat.redb");
    let on_disk = std::fs::metadata(&file).map_or(0, |m| m.len());
    let store = EmbeddedStore::open(dir.as_ref()).expect("the store opens");
    println!(
        "{:<24} {:>14} {:>14} {:>14}",
        "table", "stored", "metadata", "fragmented"
    );
    for (name, stored, meta, frag) in store.sizes().expect("the sizes") {
        println!("{name:<24} {stored:>14} {meta:>14} {frag:>14}");
    }
    println!("{:<24} {on_disk:>14}", "file");
}
