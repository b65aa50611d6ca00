use anon_fiber::{FiberBuilder, Runtime};
use std::process::Command;

const CHILD: &str = "ANON_FIBER_OVERFLOW_CHILD";

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64, pad: &mut [u8; 512]) -> u64 {
    pad[0] = n as u8;
    let mut mine = [0u8; 512];
    mine[1] = pad[0];
    let r = recurse(n + 1, &mut mine);
    std::hint::black_box(&mine);
    r + u64::from(mine[1])
}

/// Deep recursion in a named fiber: the child process must die with a message naming the
/// fiber (run in a child process, since an overflow aborts).
#[test]
fn deep_recursion_reports_overflow_naming_the_fiber() {
    if std::env::var_os(CHILD).is_some() {
        let rt = Runtime::builder()
            .workers(1)
            .stack_size(64 * 1024)
            .build()
            .unwrap();
        let h = FiberBuilder::new()
            .name("deep-diver")
            .spawn_in(&rt.handle(), None, || recurse(0, &mut [0u8; 512]))
            .unwrap();
        let _ = h.join();
        unreachable!("the recursion cannot return");
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "overflow::deep_recursion_reports_overflow_naming_the_fiber",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "child survived: {stderr}");
    assert!(
        stderr.contains("\"deep-diver\"") && stderr.contains("overflowed its stack"),
        "no diagnostic naming the fiber in: {stderr}"
    );
}
