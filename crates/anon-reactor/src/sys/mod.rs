//! The operating-system layer: the only place with `unsafe` and libc calls.

#[cfg(not(target_os = "linux"))]
compile_error!("anon-reactor supports Linux only (epoll, eventfd, signalfd, pidfd)");

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
