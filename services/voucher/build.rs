//! Rebuild when a migration is added: `sqlx::migrate!` embeds the folder at compile time, and
//! cargo does not watch a folder it was not told about.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/voucher");
}
