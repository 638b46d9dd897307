//! Key-value storage that survives a reload: the browser's `localStorage` in
//! the app, an in-memory map in native tests. The session and the offline
//! queue are kept through it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Strings by key. Writes that fail (storage full or disabled) are ignored:
/// the app then works as before, only without surviving a reload.
pub trait Store: Send + Sync {
    fn get(&self, key: &str) -> Option<String>;
    fn set(&self, key: &str, value: &str);
    fn remove(&self, key: &str);
    /// Every key that starts with `prefix`.
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String>;
}

/// A shared handle to a store.
pub type SharedStore = Arc<dyn Store>;

/// An in-memory store (tests, or a browser without storage).
#[derive(Default)]
pub struct MemoryStore(Mutex<BTreeMap<String, String>>);

impl MemoryStore {
    pub fn shared() -> SharedStore {
        Arc::new(MemoryStore::default())
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Option<String> {
        self.0.lock().unwrap().get(key).cloned()
    }
    fn set(&self, key: &str, value: &str) {
        self.0.lock().unwrap().insert(key.into(), value.into());
    }
    fn remove(&self, key: &str) {
        self.0.lock().unwrap().remove(key);
    }
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let map = self.0.lock().unwrap();
        map.keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// The browser's `localStorage`, looked up on each use (so the handle is
/// `Send`). Without a window or storage it holds nothing.
#[derive(Clone, Copy, Default)]
pub struct LocalStore;

impl LocalStore {
    pub fn shared() -> SharedStore {
        Arc::new(LocalStore)
    }

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }
}

impl Store for LocalStore {
    fn get(&self, key: &str) -> Option<String> {
        Self::storage()?.get_item(key).ok()?
    }
    fn set(&self, key: &str, value: &str) {
        if let Some(s) = Self::storage() {
            let _ = s.set_item(key, value);
        }
    }
    fn remove(&self, key: &str) {
        if let Some(s) = Self::storage() {
            let _ = s.remove_item(key);
        }
    }
    fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let Some(s) = Self::storage() else {
            return Vec::new();
        };
        let n = s.length().unwrap_or(0);
        (0..n)
            .filter_map(|i| s.key(i).ok().flatten())
            .filter(|k| k.starts_with(prefix))
            .collect()
    }
}
