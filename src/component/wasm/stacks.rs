//! Guests' fiber stacks, cut from a slab of the scheduler ([`crate::sched::stack`]).
//!
//! wasmtime would map each fiber stack with a guard page of its own: two memory maps per
//! guest, and Linux allows 65,530 maps to a program by default, which 10,000 guests with their
//! linear memories would pass. Stacks from a slab cost one map per 1,024 guests. A guest cannot
//! overflow its stack into its neighbour's: wasmtime checks the guest's stack against
//! `max_wasm_stack`, well inside the fiber's; what runs below that limit is the host's own
//! code, and the canary at each stack's limit is checked when the stack is given back.

use std::ops::Range;

use wasmtime::{StackCreator, StackMemory};

use crate::sched::stack::{Canary, Slab, SlabStack};

/// Bytes of each guest's fiber stack: twice wasmtime's default `max_wasm_stack`, so the host
/// has as much again for its calls.
pub(crate) const FIBER_STACK_SIZE: usize = 1 << 20;

static FIBER_STACKS: Slab = Slab::new(FIBER_STACK_SIZE);

/// Hands wasmtime the fiber stacks of [`FIBER_STACKS`].
pub(crate) struct SlabStacks;

// SAFETY: every stack is page-aligned, `FIBER_STACK_SIZE` long, mapped read-write for the life
// of the program and lent to one fiber at a time (see `GuestStack`).
unsafe impl StackCreator for SlabStacks {
    fn new_stack(&self, size: usize, _zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        if size > FIBER_STACK_SIZE {
            wasmtime::bail!("a fiber stack of {size} bytes; the slab has {FIBER_STACK_SIZE}");
        }
        let stack = FIBER_STACKS.take()?;
        let canary = stack.canary();
        Ok(Box::new(GuestStack { stack, canary }))
    }
}

struct GuestStack {
    stack: SlabStack,
    canary: Canary,
}

// SAFETY: [limit, base) is this stack's alone while the box lives (the slab takes it back on
// drop); the guard is the canary, so the guard range is empty.
unsafe impl StackMemory for GuestStack {
    fn top(&self) -> *mut u8 {
        self.stack.base() as *mut u8
    }

    fn range(&self) -> Range<usize> {
        self.stack.limit()..self.stack.base()
    }

    fn guard_range(&self) -> Range<*mut u8> {
        let limit = self.stack.limit() as *mut u8;
        limit..limit
    }
}

impl Drop for GuestStack {
    fn drop(&mut self) {
        if self.canary.is_gone() {
            // Host code ran past the stack into the next one: nothing can be trusted any more.
            eprintln!("flowd: host code overflowed a guest's fiber stack; aborting");
            std::process::abort();
        }
    }
}
