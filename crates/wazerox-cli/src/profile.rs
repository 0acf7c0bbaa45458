//! `run --profile=STRATEGY`: `perfmap` and `jitdump` tell `perf` about compiled
//! code (`Config::profiler`); `guest[,PATH][,INTERVAL]` samples the Wasm stack of
//! the thread running `_start` (`wazerox::GuestProfiler`) into a speedscope file.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use wazerox::{GuestProfiler, ProfilingStrategy};

/// Where the guest profile goes unless `--profile=guest,PATH` says otherwise
/// (wasmtime writes `wasmtime-guest-profile.json`).
const DEFAULT_GUEST_PATH: &str = "wazerox-guest-profile.json";
/// wasmtime's default interval too.
const DEFAULT_GUEST_INTERVAL: Duration = Duration::from_millis(10);

/// A `--profile` value.
#[derive(Clone, Debug, PartialEq)]
pub enum Profile {
    PerfMap,
    JitDump,
    Guest { path: PathBuf, interval: Duration },
}

impl FromStr for Profile {
    type Err = String;

    /// `perfmap`, `jitdump`, `guest`, `guest,PATH`, `guest,INTERVAL` or
    /// `guest,PATH,INTERVAL` (wasmtime's order); an INTERVAL is what
    /// `options::parse_duration` reads (`1ms`, `10ms`, `0.5s`).
    fn from_str(text: &str) -> Result<Profile, String> {
        let mut parts = text.split(',');
        match parts.next() {
            Some("perfmap") if parts.next().is_none() => Ok(Profile::PerfMap),
            Some("jitdump") if parts.next().is_none() => Ok(Profile::JitDump),
            Some("guest") => {
                let rest: Vec<&str> = parts.collect();
                let interval_of = |text: &str| {
                    crate::options::parse_duration(text)
                        .ok()
                        .filter(|d| !d.is_zero())
                };
                let (path, interval) = match rest[..] {
                    [] => (None, None),
                    [one] => match interval_of(one) {
                        Some(interval) => (None, Some(interval)),
                        None => (Some(one), None),
                    },
                    [path, interval] => (
                        Some(path),
                        Some(
                            interval_of(interval)
                                .ok_or(format!("`{interval}` is not an interval (e.g. 10ms)"))?,
                        ),
                    ),
                    _ => return Err("expected guest[,PATH][,INTERVAL]".into()),
                };
                Ok(Profile::Guest {
                    path: PathBuf::from(path.unwrap_or(DEFAULT_GUEST_PATH)),
                    interval: interval.unwrap_or(DEFAULT_GUEST_INTERVAL),
                })
            }
            _ => Err("expected perfmap, jitdump or guest[,PATH][,INTERVAL]".into()),
        }
    }
}

impl Profile {
    /// What the engine tells a native profiler (nothing for `guest`).
    pub fn native_strategy(&self) -> ProfilingStrategy {
        match self {
            Profile::PerfMap => ProfilingStrategy::PerfMap,
            Profile::JitDump => ProfilingStrategy::JitDump,
            Profile::Guest { .. } => ProfilingStrategy::None,
        }
    }
}

/// A running guest profiler and where its profile goes.
pub struct GuestRun {
    profiler: GuestProfiler,
    path: PathBuf,
}

/// Starts the guest profiler on this thread if `--profile=guest` asked for it.
pub fn start_guest(profile: Option<&Profile>) -> Result<Option<GuestRun>, wazerox::Error> {
    let Some(Profile::Guest { path, interval }) = profile else {
        return Ok(None);
    };
    Ok(Some(GuestRun {
        profiler: GuestProfiler::start(*interval)?,
        path: path.clone(),
    }))
}

/// Stops the guest profiler and writes its file (named after `program`); a
/// failure to write is reported, and does not change the program's exit status.
pub fn finish_guest(run: Option<GuestRun>, program: &str) {
    let Some(GuestRun { profiler, path }) = run else {
        return;
    };
    let profile = profiler.finish();
    let written = std::fs::File::create(&path).and_then(|file| {
        let mut out = std::io::BufWriter::new(file);
        profile.write_speedscope(program, &mut out)?;
        std::io::Write::flush(&mut out)
    });
    match written {
        Ok(()) => eprintln!(
            "wazerox: guest profile ({} samples) written to {}",
            profile.samples(),
            path.display()
        ),
        Err(e) => eprintln!(
            "wazerox: error: writing the guest profile to {}: {e}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_takes_a_path_an_interval_or_both() {
        let guest = |path: &str, ms: u64| Profile::Guest {
            path: path.into(),
            interval: Duration::from_millis(ms),
        };
        assert_eq!("guest".parse(), Ok(guest(DEFAULT_GUEST_PATH, 10)));
        assert_eq!("guest,1ms".parse(), Ok(guest(DEFAULT_GUEST_PATH, 1)));
        assert_eq!("guest,out.json".parse(), Ok(guest("out.json", 10)));
        assert_eq!("guest,out.json,2ms".parse(), Ok(guest("out.json", 2)));
        assert!("guest,out.json,soon".parse::<Profile>().is_err());
        assert_eq!("perfmap".parse(), Ok(Profile::PerfMap));
        assert!("vtune".parse::<Profile>().is_err());
    }
}
