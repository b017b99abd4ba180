"""benchmarks/peak_memory.py: the process tree's peak, shared memory counted once in PSS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20

# A parent and a child each touch 60 MiB of their own, and both map the same 80 MiB memfd.
TREE = """
import mmap, os, subprocess, sys, time
fd = os.memfd_create("shared")
os.ftruncate(fd, 80 << 20)
shared = mmap.mmap(fd, 80 << 20)
shared.write(b"x" * (80 << 20))
own = bytearray(b"y" * (60 << 20))
child = subprocess.Popen([sys.executable, "-c", '''
import mmap, sys, time
shared = mmap.mmap(int(sys.argv[1]), 80 << 20)
sum(shared[i] for i in range(0, 80 << 20, 4096))
own = bytearray(b"z" * (60 << 20))
time.sleep(3)
''', str(fd)], pass_fds=(fd,))
child.wait()
sys.exit(3)
"""


def test_peaks_count_every_process_and_shared_pages_once(tmp_path):
    out = tmp_path / "mem"
    command = [sys.executable, str(REPO / "benchmarks" / "peak_memory.py"), "--out", str(out), "--interval", "0.2"]
    result = subprocess.run([*command, "--", sys.executable, "-c", TREE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr  # the command's exit status passes through

    report = json.loads((out / "memory.json").read_text())
    pss, rss = report["peak_pss_sum_gib"] * 1024, report["peak_rss_sum_gib"] * 1024  # MiB
    # 60 + 60 private and 80 shared: PSS counts the memfd once, RSS once per process.
    assert 200 <= pss < 200 + 80, report
    assert rss >= 280 and rss - pss >= 60, report
    assert len(report["processes"]) >= 2
    assert (out / "memory.png").stat().st_size > 0
    assert (out / "memory.csv").read_text().startswith("seconds,rss_sum_bytes,pss_sum_bytes")


def test_no_command_is_a_usage_error(tmp_path):
    command = [sys.executable, str(REPO / "benchmarks" / "peak_memory.py"), "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "give the command" in result.stderr


def test_a_command_that_does_not_exist_is_a_usage_error(tmp_path):
    command = [sys.executable, str(REPO / "benchmarks" / "peak_memory.py"), "--out", str(tmp_path), "--", "no-such-cmd"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "cannot start 'no-such-cmd'" in result.stderr
    assert "Traceback" not in result.stderr
