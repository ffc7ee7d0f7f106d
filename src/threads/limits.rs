//! What the operating system lets flowd start: how many more threads fit, and which limit says
//! so.
//!
//! A thread costs more than a task id. Its stack, the stack's guard page, and the alternate
//! signal stack (with its own guard page) that Rust maps for every thread are four memory maps
//! (measured: 20,071 lines in `/proc/PID/maps` for 5,002 threads). When a limit runs out,
//! creating the thread fails cleanly, but when the signal stack cannot be mapped, Rust aborts
//! the whole program. So flowd reads every limit that can run out, before it starts threads:
//!
//! - memory maps: `vm.max_map_count` against the lines of `/proc/self/maps`;
//! - tasks: `kernel.threads-max` and `kernel.pid_max` against every task on the system
//!   (`/proc/loadavg`), and the `pids.max` of each cgroup above this one;
//! - `RLIMIT_NPROC` (unless running as root, which it does not bind), against this program's
//!   own threads: other programs of the same user count too, so this one is a best guess;
//! - virtual memory: `RLIMIT_AS` against the size of this program, and under strict overcommit
//!   (`vm.overcommit_memory = 2`) the commit limit against what is committed.
//!
//! Each leaves a reserve for the rest of the program and the system. Where a reading is not
//! available (not Linux, no `/proc`), it sets no bound.

use std::path::{Path, PathBuf};

/// Memory maps one thread takes: stack, stack guard, signal stack, signal stack guard.
pub(crate) const MAPS_PER_THREAD: usize = 4;

/// The stack size of every thread flowd starts.
pub(crate) const STACK_SIZE: usize = 2 << 20;

/// Virtual memory one thread takes: its stack, and its signal stack with guard pages.
const MEMORY_PER_THREAD: usize = STACK_SIZE + (128 << 10);

/// Memory maps left for everything but threads: WebAssembly instances, the allocator, files.
const MAPS_RESERVE: usize = 4096;

/// Tasks left for the rest of the system.
const TASKS_RESERVE: usize = 512;

/// Virtual memory left for everything but threads.
const MEMORY_RESERVE: usize = 256 << 20;

/// How many more threads the system has room for, and the limit that decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Room {
    /// Threads that can still be started.
    pub(crate) threads: usize,
    /// The limit that leaves the least room, described for an operator (`None`: no limit was
    /// found).
    pub(crate) bound: Option<String>,
}

impl Room {
    fn unbounded() -> Room {
        Room {
            threads: usize::MAX,
            bound: None,
        }
    }

    /// Keeps the smaller room of the two.
    fn narrow(&mut self, threads: usize, bound: impl FnOnce() -> String) {
        if threads < self.threads {
            self.threads = threads;
            self.bound = Some(bound());
        }
    }
}

/// Reads every limit now (see the module documentation).
pub(crate) fn room() -> Room {
    let mut room = Room::unbounded();
    memory_maps(&mut room);
    tasks(&mut room);
    cgroup_pids(&mut room);
    user_processes(&mut room);
    address_space(&mut room);
    commit_limit(&mut room);
    room
}

fn memory_maps(room: &mut Room) {
    let Some(max) = read_number("/proc/sys/vm/max_map_count") else {
        return;
    };
    let Ok(maps) = std::fs::read("/proc/self/maps") else {
        return;
    };
    let used = maps.iter().filter(|&&b| b == b'\n').count();
    let free = max.saturating_sub(used).saturating_sub(MAPS_RESERVE);
    room.narrow(free / MAPS_PER_THREAD, || {
        format!(
            "vm.max_map_count = {max} memory maps ({used} in use, {MAPS_PER_THREAD} per thread)"
        )
    });
}

fn tasks(room: &mut Room) {
    // The fourth field of /proc/loadavg is "runnable/total" scheduling entities: every thread.
    let Some(total) = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().nth(3).map(str::to_string))
        .and_then(|f| f.split_once('/').and_then(|(_, t)| t.parse::<usize>().ok()))
    else {
        return;
    };
    for (file, name) in [
        ("/proc/sys/kernel/threads-max", "kernel.threads-max"),
        ("/proc/sys/kernel/pid_max", "kernel.pid_max"),
    ] {
        if let Some(max) = read_number(file) {
            let free = max.saturating_sub(total).saturating_sub(TASKS_RESERVE);
            room.narrow(free, || {
                format!("{name} = {max} tasks ({total} on the system)")
            });
        }
    }
}

fn cgroup_pids(room: &mut Room) {
    let Ok(membership) = std::fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    // cgroup v2: the line "0::/path".
    let Some(path) = membership.lines().find_map(|l| l.strip_prefix("0::")) else {
        return;
    };
    let mut dir = Some(Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')));
    while let Some(current) = dir {
        let max = read_number(current.join("pids.max"));
        let used = read_number(current.join("pids.current"));
        if let (Some(max), Some(used)) = (max, used) {
            let shown = current.display().to_string();
            room.narrow(max.saturating_sub(used), || {
                format!("the cgroup's pids.max = {max} tasks ({used} in use; {shown})")
            });
        }
        dir = parent_cgroup(&current);
    }
}

fn parent_cgroup(dir: &Path) -> Option<PathBuf> {
    let parent = dir.parent()?;
    parent
        .starts_with("/sys/fs/cgroup")
        .then(|| parent.to_path_buf())
}

fn user_processes(room: &mut Room) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return;
    }
    let Some(max) = soft_limit(libc::RLIMIT_NPROC) else {
        return;
    };
    let Some(threads) = status_field("Threads:") else {
        return;
    };
    let free = max
        .saturating_sub(threads)
        .saturating_sub(TASKS_RESERVE.min(max / 8));
    room.narrow(free, || {
        format!("RLIMIT_NPROC (ulimit -u) = {max} tasks ({threads} are this program's)")
    });
}

fn address_space(room: &mut Room) {
    let Some(max) = soft_limit(libc::RLIMIT_AS) else {
        return;
    };
    let Some(used) = status_field("VmSize:").map(|kib| kib.saturating_mul(1024)) else {
        return;
    };
    let free = max.saturating_sub(used).saturating_sub(MEMORY_RESERVE);
    room.narrow(free / MEMORY_PER_THREAD, || {
        format!(
            "RLIMIT_AS (ulimit -v) = {} MiB ({} MiB in use, {} MiB per thread)",
            max >> 20,
            used >> 20,
            MEMORY_PER_THREAD >> 20
        )
    });
}

fn commit_limit(room: &mut Room) {
    if read_number("/proc/sys/vm/overcommit_memory") != Some(2) {
        return;
    }
    let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") else {
        return;
    };
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
            .map(|kib| kib.saturating_mul(1024))
    };
    let (Some(limit), Some(committed)) = (field("CommitLimit:"), field("Committed_AS:")) else {
        return;
    };
    let free = limit
        .saturating_sub(committed)
        .saturating_sub(MEMORY_RESERVE);
    room.narrow(free / MEMORY_PER_THREAD, || {
        format!(
            "the commit limit of vm.overcommit_memory = 2: {} MiB ({} MiB committed)",
            limit >> 20,
            committed >> 20
        )
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// A soft resource limit, `None` if unlimited or unknown.
fn soft_limit(resource: Resource) -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    usize::try_from(limit.rlim_cur).ok()
}

/// A number field of `/proc/self/status` (`VmSize:` is in KiB).
fn status_field(name: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A file holding one number, `None` if it is missing, unreadable or "max".
fn read_number(path: impl AsRef<Path>) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_maps_bound_the_room_on_linux() {
        let room = room();
        let Some(max) = read_number("/proc/sys/vm/max_map_count") else {
            return;
        };
        // The maps this test program already uses count against it.
        assert!(room.threads < max / MAPS_PER_THREAD, "{room:?}");
        assert!(room.threads > 0, "{room:?}");
        assert!(room.bound.is_some(), "{room:?}");
    }
}
