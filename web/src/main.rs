//! The browser app (Leptos, CSR). For now a placeholder that builds with
//! trunk (wasm-bindgen linked, so that the wasm-bindgen CLI finds its
//! intrinsics); the app replays rooms with the domain crate's reducer.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn log(text: &str);
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    log("chat: placeholder");
}
