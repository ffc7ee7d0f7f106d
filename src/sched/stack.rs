//! Stacks for tasks (and for guests' fibers), cut from large mappings.
//!
//! A stack of its own mapping with a guard page costs the process two memory maps, and Linux
//! allows 65,530 by default (`vm.max_map_count`): 100,000 tasks could not have one each. So
//! stacks are cut from mappings of [`STACKS_PER_CHUNK`] stacks, one map each, reserved without
//! backing memory (`MAP_NORESERVE`): a stack costs the pages its task touches. Only the lowest
//! stack of a chunk has a guard page below it; the others have a canary word at their limit
//! that the worker checks after every switch ([`Canary::is_gone`]). ADR 0010 says why
//! that is acceptable: only native core components, our own code, run as tasks; a guest's
//! fiber stack (`component::wasm::stacks`) holds untrusted code, but wasmtime checks the
//! guest's own stack limit, so only host code can reach the canary.
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

/// The stacks of tasks.
pub(crate) static TASK_STACKS: Slab = Slab::new(STACK_SIZE);

/// Stacks of one size, cut from shared mappings, reused most recently freed first.
pub(crate) struct Slab {
    size: usize,
    /// Free stacks, by their lowest address.
    free: Mutex<Vec<usize>>,
}

impl Slab {
    /// A slab of stacks of `size` bytes (a multiple of the page size), mapped on first use.
    pub(crate) const fn new(size: usize) -> Slab {
        Slab {
            size,
            free: Mutex::new(Vec::new()),
        }
    }

    /// A free stack, mapping a new chunk if there is none.
    ///
    /// # Errors
    ///
    /// The system's error if it refuses the mapping.
    pub(crate) fn take(&'static self) -> std::io::Result<SlabStack> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.is_empty() {
            self.map_chunk(&mut free)?;
        }
        let limit = free
            .pop()
            .ok_or_else(|| std::io::Error::other("no stack"))?;
        drop(free);
        // SAFETY: `limit` is the lowest, 8-aligned address of a stack of this program's
        // mappings that nobody uses.
        unsafe { (limit as *mut u64).write_volatile(CANARY) };
        Ok(SlabStack { limit, slab: self })
    }

    fn map_chunk(&self, free: &mut Vec<usize>) -> std::io::Result<()> {
        let page = 4096;
        let len = self.size * STACKS_PER_CHUNK + page;
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
        free.extend((0..STACKS_PER_CHUNK).rev().map(|i| first + i * self.size));
        Ok(())
    }
}

/// One stack of a [`Slab`]; given back when dropped.
pub(crate) struct SlabStack {
    limit: usize,
    slab: &'static Slab,
}

/// The stack of one task.
pub(crate) type TaskStack = SlabStack;

impl SlabStack {
    /// Where to look for this stack's overflow, after the stack moved to its user.
    pub(crate) fn canary(&self) -> Canary {
        Canary(self.limit)
    }

    /// Its lowest address.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Its highest address, where it starts.
    pub(crate) fn base(&self) -> usize {
        self.limit + self.slab.size
    }
}

/// The lowest word of a stack.
#[derive(Clone, Copy)]
pub(crate) struct Canary(usize);

impl Canary {
    /// Whether the stack's user ran past its limit (the canary is gone).
    pub(crate) fn is_gone(self) -> bool {
        // SAFETY: stacks stay mapped for the life of the program.
        unsafe { (self.0 as *const u64).read_volatile() != CANARY }
    }
}

impl Drop for SlabStack {
    fn drop(&mut self) {
        self.slab
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.limit);
    }
}

// SAFETY: the range [limit, base) is mapped read-write for the life of the program and used
// by this stack alone; both ends are 16-aligned. The guard is the canary (see the module's
// documentation), not a page, for all but the lowest stack of a chunk.
unsafe impl Stack for SlabStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(SlabStack::base(self)).unwrap_or(StackPointer::MIN)
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.limit).unwrap_or(StackPointer::MIN)
    }
}
