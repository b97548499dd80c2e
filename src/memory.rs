//! The process's heap: how freed memory goes back to the system.
//!
//! A big page's snapshot allocates tens of megabytes for a moment. glibc's allocator keeps
//! one arena per thread that ever allocated and returns little of a freed arena to the
//! system, so without care the process stays near its peak after big pages. With one
//! arena (tabmux runs two worker threads; allocation is never its bottleneck), blocks of
//! 256 KiB and more always mapped on their own (glibc would otherwise raise that
//! threshold as such blocks are freed, and put the next page's megabyte-sized answer and
//! text in the arena, where they fragment it) and a trim after each big snapshot, it goes
//! back to a few megabytes above idle.

/// Called once at start, before the runtime's threads exist.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called before any other thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Gives the heap freed after a big snapshot back to the system.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
