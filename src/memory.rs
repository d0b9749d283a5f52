//! Process-wide memory settings, applied once at start, before the runtime's threads exist.
//!
//! Why: retina hands every access unit over in a buffer of its own, and a keyframe of a 4 Mbit/s camera
//! is 100 to 300 KB. glibc's malloc gives a block over its mmap threshold a mapping of its own, but each
//! time such a block is freed it raises the threshold (up to 32 MiB); from then on keyframes come from the
//! heap arenas of the threads that allocate them (retina on a runtime worker, the recorder's writes on
//! blocking threads), and the holes they leave stay resident. With 64 cameras that was a fifth of the
//! server's memory (PSS 118 MiB against 92 MiB with the threshold fixed; docs/perf.md, issue 16). A fixed
//! threshold keeps every large frame in its own mapping, returned to the kernel when its last consumer
//! (the GOP cache, the recorder, a viewer) drops it, at the cost of one `mmap` and `munmap` per keyframe.
//!
//! Unsafe: `mallopt` has no safe wrapper; it only sets allocator parameters, and is called from `main`
//! before any other thread runs (glibc documents it as unsafe to race with its own initialisation).

/// Blocks of at least this many bytes get their own mapping (glibc's default starting threshold, made
/// fixed).
pub const OWN_MAPPING_BYTES: i32 = 128 * 1024;

/// Fixes glibc's mmap threshold (see the module's doc); whether it was set. Does nothing with another C
/// library. Called before logging starts, so the caller reports the answer.
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: sets one allocator parameter; called before other threads exist (see the module doc).
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING_BYTES) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}
