//! Stacks for tasks, cut from large mappings.
//!
//! A stack of its own mapping with a guard page costs the process two memory maps, and Linux
//! allows 65,530 by default (`vm.max_map_count`): 100,000 tasks could not have one each. So
//! stacks are cut from mappings of [`STACKS_PER_CHUNK`] stacks, one map each, reserved without
//! backing memory (`MAP_NORESERVE`): a stack costs the pages its task touches. Only the lowest
//! stack of a chunk has a guard page below it; the others have a canary word at their limit
//! that the worker checks after every switch ([`TaskStack::overflowed`]). ADR 0010 says why
//! that is acceptable: only native core components, our own code, run as tasks.
//!
//! Stacks are reused, most recently freed first, so the pages they touched stay warm.

use std::sync::Mutex;

use corosensei::stack::{Stack, StackPointer};

/// Bytes of stack per task.
pub(crate) const STACK_SIZE: usize = 256 * 1024;

/// Stacks per mapping.
const STACKS_PER_CHUNK: usize = 1024;

/// What the lowest word of every stack holds until something overwrites it.
const CANARY: u64 = 0x666c_6f77_645f_7374;

/// Free stacks, by their lowest address.
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// The stack of one task; given back when dropped.
pub(crate) struct TaskStack {
    limit: usize,
}

impl TaskStack {
    /// A free stack, mapping a new chunk if there is none.
    ///
    /// # Errors
    ///
    /// The system's error if it refuses the mapping.
    pub(crate) fn take() -> std::io::Result<TaskStack> {
        let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
        if free.is_empty() {
            map_chunk(&mut free)?;
        }
        let limit = free
            .pop()
            .ok_or_else(|| std::io::Error::other("no stack"))?;
        drop(free);
        // SAFETY: `limit` is the lowest, 8-aligned address of a stack of this program's
        // mappings that no task uses.
        unsafe { (limit as *mut u64).write_volatile(CANARY) };
        Ok(TaskStack { limit })
    }

    /// Where to look for this stack's overflow, after the stack moved into its coroutine.
    pub(crate) fn canary(&self) -> Canary {
        Canary(self.limit)
    }
}

/// The lowest word of a task's stack.
#[derive(Clone, Copy)]
pub(crate) struct Canary(usize);

impl Canary {
    /// Whether the task ran past its stack's limit (the canary is gone).
    pub(crate) fn is_gone(self) -> bool {
        // SAFETY: stacks stay mapped for the life of the program.
        unsafe { (self.0 as *const u64).read_volatile() != CANARY }
    }
}

impl Drop for TaskStack {
    fn drop(&mut self) {
        FREE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.limit);
    }
}

fn map_chunk(free: &mut Vec<usize>) -> std::io::Result<()> {
    let page = 4096;
    let len = STACK_SIZE * STACKS_PER_CHUNK + page;
    // SAFETY: a new private anonymous mapping; nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // The guard page under the lowest stack. Failing to set it leaves the canary.
    // SAFETY: the first page of the mapping just made.
    unsafe { libc::mprotect(base, page, libc::PROT_NONE) };
    let first = base as usize + page;
    // Reversed, so that the lowest stacks are handed out first.
    free.extend((0..STACKS_PER_CHUNK).rev().map(|i| first + i * STACK_SIZE));
    Ok(())
}

// SAFETY: the range [limit, limit + STACK_SIZE) is mapped read-write for the life of the
// program and used by this stack alone; both ends are 16-aligned. The guard is the canary
// (see the module's documentation), not a page, for all but the lowest stack of a chunk.
unsafe impl Stack for TaskStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.limit + STACK_SIZE).unwrap_or(StackPointer::MIN)
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.limit).unwrap_or(StackPointer::MIN)
    }
}
