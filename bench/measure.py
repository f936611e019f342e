"""What the step benchmarks measure besides time: this process's peak RSS and its memory allocator (Linux)."""


def allocator() -> str:
    "The malloc this process runs on: tcmalloc when preloaded, else glibc's."
    with open("/proc/self/maps") as f: return "tcmalloc" if "tcmalloc" in f.read() else "glibc malloc"


def reset_peak_rss():
    "Start this process's peak RSS afresh from its current RSS (Linux >= 4.0: write 5 to clear_refs)."
    with open("/proc/self/clear_refs", "w") as f: f.write("5")


def peak_rss_gib() -> float:
    "This process's peak resident set size (VmHWM), GiB."
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 2**20
