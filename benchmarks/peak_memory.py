"""Peak memory of a command and every process it starts, sampled while it runs.

    python benchmarks/peak_memory.py --out runs/mem -- make run

`/usr/bin/time -v` reports the largest single process, but a discovery run is
several processes at once (the loop, its sandbox worker, pip, ...) sharing
memory through memfds. This samples the whole process tree every
`--interval` seconds and reports:

- per process: peak RSS and peak PSS (proportional set size: a shared page is
  split among the processes that map it, so PSS values add up);
- the tree: peak summed PSS (what the machine really holds for the command)
  and peak summed RSS (an upper bound: shared pages counted once per mapper).

Writes `memory.json` (peaks), `memory.csv` (the timeline) and `memory.png`.
The command's exit status is passed through.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

GIB = 2**30


@dataclass
class ProcessPeak:
    pid: int
    command: str
    rss: int = 0
    pss: int = 0


@dataclass
class TreePeaks:
    pss_sum: int = 0
    pss_sum_at: float = 0.0
    rss_sum: int = 0
    rss_sum_at: float = 0.0
    processes: dict[int, ProcessPeak] = field(default_factory=dict)


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def sample(root: psutil.Process, peaks: TreePeaks, elapsed: float) -> tuple[int, int]:
    """One sample of the tree: updates `peaks`, returns (summed RSS, summed PSS)."""
    rss_sum = pss_sum = 0
    for process in _tree(root):
        try:
            info = process.memory_full_info()
            command = " ".join(process.cmdline()[:4])[:160]
        except psutil.Error:
            continue  # exited between listing and reading
        rss_sum += info.rss
        pss_sum += info.pss
        peak = peaks.processes.setdefault(process.pid, ProcessPeak(process.pid, command))
        peak.rss, peak.pss = max(peak.rss, info.rss), max(peak.pss, info.pss)
    if pss_sum > peaks.pss_sum:
        peaks.pss_sum, peaks.pss_sum_at = pss_sum, elapsed
    if rss_sum > peaks.rss_sum:
        peaks.rss_sum, peaks.rss_sum_at = rss_sum, elapsed
    return rss_sum, pss_sum


def plot(timeline: list[tuple[float, int, int]], limit_gib: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [t / 60 for t, _, _ in timeline]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(minutes, [r / GIB for _, r, _ in timeline], label="summed RSS (shared pages counted per process)")
    ax.plot(minutes, [p / GIB for _, _, p in timeline], label="summed PSS (shared pages counted once)")
    ax.axhline(limit_gib, color="red", linestyle="--", label=f"{limit_gib:g} GiB target")
    ax.set_xlabel("minutes")
    ax.set_ylabel("GiB")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for memory.json, memory.csv, memory.png")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--limit-gib", type=float, default=12.0, help="the target line on the plot")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    args.out.mkdir(parents=True, exist_ok=True)

    start = time.monotonic()
    try:
        child = subprocess.Popen(command)
    except OSError as e:  # not found, not executable
        parser.error(f"cannot start {command[0]!r}: {e.strerror}")
    # Ctrl-C reaches the child through the terminal; here it only must not stop the sampling early.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    root = psutil.Process(child.pid)
    peaks, timeline = TreePeaks(), []
    while child.poll() is None:
        elapsed = time.monotonic() - start
        timeline.append((elapsed, *sample(root, peaks, elapsed)))
        time.sleep(args.interval)
    wall = time.monotonic() - start

    top = sorted(peaks.processes.values(), key=lambda p: p.pss, reverse=True)
    report = {
        "command": command,
        "exit_status": child.returncode,
        "wall_seconds": round(wall, 1),
        "peak_pss_sum_gib": round(peaks.pss_sum / GIB, 3),
        "peak_pss_sum_at_seconds": round(peaks.pss_sum_at, 1),
        "peak_rss_sum_gib": round(peaks.rss_sum / GIB, 3),
        "peak_rss_sum_at_seconds": round(peaks.rss_sum_at, 1),
        "processes": [asdict(p) | {"rss_gib": round(p.rss / GIB, 3), "pss_gib": round(p.pss / GIB, 3)} for p in top[:20]],
    }
    (args.out / "memory.json").write_text(json.dumps(report, indent=2))
    with (args.out / "memory.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seconds", "rss_sum_bytes", "pss_sum_bytes"])
        writer.writerows((round(t, 1), r, p) for t, r, p in timeline)
    if timeline:
        plot(timeline, args.limit_gib, args.out / "memory.png")
    print(
        f"peak memory of the tree: PSS {report['peak_pss_sum_gib']} GiB at {peaks.pss_sum_at:.0f} s, "
        f"RSS {report['peak_rss_sum_gib']} GiB at {peaks.rss_sum_at:.0f} s; largest processes:",
        file=sys.stderr,
    )
    for p in top[:5]:
        print(f"  pid {p.pid}: RSS {p.rss / GIB:.2f} GiB, PSS {p.pss / GIB:.2f} GiB  {p.command}", file=sys.stderr)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
