use std::process::ExitCode;

fn main() -> ExitCode {
    // candle asks for the thread count on every matmul and, without this variable, reads
    // /proc/cpuinfo each time; fix it once, before any thread starts.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: nothing else runs yet; no other thread can read the environment concurrently.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    keep_freed_memory();
    spar_host::cli::main()
}

/// glibc returns a freed block of more than 128 KiB (a tensor) to the kernel, so the next tensor
/// of that size faults in fresh zeroed pages: in a DPO step a sixth of the time went to page
/// faults. Keep blocks up to glibc's largest threshold (32 MiB) in the process, and do not trim.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    const M_TRIM_THRESHOLD: libc::c_int = -1;
    const M_MMAP_THRESHOLD: libc::c_int = -3;
    // SAFETY: plain settings calls, made before any other thread exists or allocates.
    unsafe {
        libc::mallopt(M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
