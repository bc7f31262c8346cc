//! Prints the OpenAPI document: `cargo run -q -p aicity-openapi --example print`.
fn main() {
    println!("{}", aicity_openapi::json());
}
