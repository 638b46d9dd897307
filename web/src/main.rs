//! The browser entry point: mounts the app (see `web::app`).

fn main() {
    web::start();
}
