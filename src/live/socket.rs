//! Socket options for live latency.
//!
//! Unsafe: `TCP_NOTSENT_LOWAT` has no safe wrapper in tokio, socket2 or rustix, so it is set with one
//! `libc::setsockopt` call on a descriptor the caller owns for the duration of the call. This is the only
//! unsafe code of the live path.

/// Unsent bytes a connection's kernel buffer may hold before a write waits (`TCP_NOTSENT_LOWAT`).
pub const UNSENT_LIMIT: i32 = 128 * 1024;

/// Per-connection socket options for live latency, applied to every accepted HTTP connection:
/// `TCP_NODELAY` (a small P-frame fragment must not wait for Nagle) and `TCP_NOTSENT_LOWAT`, which bounds
/// what the kernel queues for a slow viewer, so that backpressure reaches the live ring (and the viewer
/// skips to a keyframe) instead of seconds of video piling up unsent in the kernel. It does not limit
/// throughput (bytes in flight are not counted), so downloads are unaffected.
pub fn tune_socket(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let v: libc::c_int = UNSENT_LIMIT;
        // SAFETY: a valid socket descriptor owned by `tcp`, and a pointer to a live c_int with its size.
        let r = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "TCP_NOTSENT_LOWAT not set");
        }
    }
}
