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
/// faults. Raising the mmap threshold is capped at 32 MiB, which left every embedding-sized
/// gradient (113 MB for a 49,152 × 576 table) to be mapped and faulted afresh, and a trim
/// threshold of `c_int::MAX` (2 GiB) still gave 4 GB back once a step. So: no mmap for blocks
/// (every block comes from the heap and returns to it) and no trimming at all. The process keeps
/// its peak; a DPO step at 2 x 1024 tokens faulted 0 pages after its first step (`perf stat`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    const M_TRIM_THRESHOLD: libc::c_int = -1;
    const M_MMAP_MAX: libc::c_int = -4;
    // SAFETY: plain settings calls, made before any other thread exists or allocates.
    unsafe {
        libc::mallopt(M_MMAP_MAX, 0);
        // glibc takes the value as a size_t: -1 is the largest there is.
        libc::mallopt(M_TRIM_THRESHOLD, -1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
