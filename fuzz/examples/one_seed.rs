//! Reruns one differential seed with wasmi's untyped errors printed, for
//! investigating a mismatch the smoke run reported:
//! `WAZEROX_FUZZ_DEBUG=1 cargo run --release -p wazerox-fuzz --example one_seed -- SEED`

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("usage: one_seed SEED");
    let data = wazerox_fuzz::SeedBytes::new(seed).bytes(2048);
    match wazerox_fuzz::differential::check(&data) {
        Ok(Ok(())) => println!("seed {seed}: both runtimes agree"),
        Ok(Err(skip)) => println!("seed {seed}: skipped ({skip:?})"),
        Err(mismatch) => {
            println!("seed {seed}: {mismatch}");
            std::process::exit(1);
        }
    }
}
