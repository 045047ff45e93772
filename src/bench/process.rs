//! Reading a process's CPU time and memory from `/proc`, and pinning threads to CPUs,
//! so a benchmark can charge each message's cost to the broker that spent it.

use std::io;
use std::time::Duration;

/// CPU time and resident memory of a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSample {
    /// User plus system time.
    pub cpu: Duration,
    pub rss_bytes: u64,
}

/// Samples process `pid` (Linux `/proc`).
pub fn sample(pid: u32) -> io::Result<ProcessSample> {
    let cpu = process_cpu(&pid.to_string())?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    Ok(ProcessSample {
        cpu,
        rss_bytes: rss_kib * 1024,
    })
}

/// CPU time (user plus system) in `/proc/<pid>/stat`-format text.
fn cpu_in_stat(stat: &str) -> Duration {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let total = ticks(11) + ticks(12);
    Duration::from_nanos(total.saturating_mul(1_000_000_000) / clock_ticks_per_second())
}

/// CPU time of one thread's `/proc/.../task/<tid>` directory: `schedstat` counts
/// nanoseconds, `stat` only clock ticks (10 ms), so the first is used when present.
fn thread_time(task: &std::path::Path) -> Option<Duration> {
    if let Ok(schedstat) = std::fs::read_to_string(task.join("schedstat"))
        && let Some(nanos) = schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
    {
        return Some(Duration::from_nanos(nanos));
    }
    std::fs::read_to_string(task.join("stat"))
        .ok()
        .map(|stat| cpu_in_stat(&stat))
}

/// CPU time of all threads of process `pid`, to the nanosecond where the kernel
/// keeps `schedstat`.
fn process_cpu(pid: &str) -> io::Result<Duration> {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        total += thread_time(&entry?.path()).unwrap_or_default();
    }
    Ok(total)
}

/// CPU time of this process's threads whose name starts with `prefix`, and of all
/// its threads.
pub fn thread_cpu(prefix: &str) -> io::Result<(Duration, Duration)> {
    let mut named = Duration::ZERO;
    let mut all = Duration::ZERO;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let path = entry?.path();
        let Some(cpu) = thread_time(&path) else {
            continue;
        };
        all += cpu;
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if name.starts_with(prefix) {
            named += cpu;
        }
    }
    Ok((named, all))
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// Pins the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes within it for cpu < CPU_SETSIZE,
    // which the check below guarantees; sched_setaffinity(0, ...) affects this thread.
    unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::other("CPU index out of range"));
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(0u64);
        }
        let sample = sample(std::process::id()).expect("readable /proc");
        assert!(sample.rss_bytes > 0);
        assert!(sample.cpu > Duration::ZERO);
    }
}
