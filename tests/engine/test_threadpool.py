"""The persistent thread pool (src/cpp/onebit/threadpool.cpp), compiled into a small C++
stress harness: every index of every parallel region is run exactly once for random sizes and
thread counts (1-5, more than the machine's cores included), with spinning (default) and with
ONEBIT_SPIN_US=0 (sleep at once); an exception thrown by a chunk reaches the caller; two OS
threads calling parallel_for at the same time both get every index once; a parallel_for called
from inside a chunk (nested) runs inline instead of deadlocking, every index still once; and two
regions of different calling threads (threads=2 each, as two Sessions run them) are in progress
at the same time: each region's chunks wait at a latch that only the other region's chunks can
open, so a pool that runs one region at a time fails this (the wait gives up after 60 s)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "cpp"

HARNESS = r"""
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>
#include "onebit/threadpool.h"

static long check(unsigned seed, int iters) {
  std::mt19937 rng(seed);
  long bad = 0;
  for (int it = 0; it < iters; ++it) {
    const int64_t n = rng() % 70;
    const int threads = 1 + static_cast<int>(rng() % 5);
    std::vector<std::atomic<int>> hit(static_cast<size_t>(n));
    for (auto& h : hit) h = 0;
    onebit::parallel_for(n, threads, [&](int64_t a, int64_t b) {
      if (a < 0 || b > n || a >= b) throw std::logic_error("bad range");
      for (int64_t i = a; i < b; ++i) hit[static_cast<size_t>(i)]++;
    });
    for (auto& h : hit) bad += h != 1;
    if (it % 50 == 0) {  // nested regions: each chunk of the outer one runs an inner one
      const int64_t outer = 1 + rng() % 9, inner = rng() % 30;
      const int t_out = 1 + static_cast<int>(rng() % 4), t_in = 1 + static_cast<int>(rng() % 4);
      std::vector<std::atomic<int>> hit2(static_cast<size_t>(outer * inner));
      for (auto& h : hit2) h = 0;
      onebit::parallel_for(outer, t_out, [&](int64_t a, int64_t b) {
        for (int64_t o = a; o < b; ++o)
          onebit::parallel_for(inner, t_in, [&](int64_t c, int64_t d) {
            for (int64_t i = c; i < d; ++i) hit2[static_cast<size_t>(o * inner + i)]++;
          });
      });
      for (auto& h : hit2) bad += h != 1;
    }
    if (it % 500 == 0) {  // a chunk's exception reaches the caller, the pool stays usable
      bool caught = false;
      try {
        onebit::parallel_for(40, 3, [](int64_t a, int64_t) {
          if (a >= 20) throw std::runtime_error("chunk failed");
        });
      } catch (const std::runtime_error&) {
        caught = true;
      }
      bad += !caught;
    }
  }
  return bad;
}

// Two threads each run a region of 2 chunks with threads=2; every chunk marks its region as
// started, then waits until the other region has started too. Returns the number of chunks
// that gave up waiting (0 when both regions ran at once).
static long concurrent_regions(int rounds) {
  long bad = 0;
  for (int r = 0; r < rounds; ++r) {
    std::atomic<int> started[2];
    std::atomic<long> gave_up{0};
    for (auto& s : started) s = 0;
    auto region = [&](int me) {
      onebit::parallel_for(2, 2, [&](int64_t a, int64_t b) {
        started[me] += static_cast<int>(b - a);
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (started[1 - me].load() == 0)
          if (std::chrono::steady_clock::now() > end) {
            gave_up++;
            return;
          } else {
            std::this_thread::yield();
          }
      });
    };
    std::thread other([&] { region(1); });
    region(0);
    other.join();
    bad += gave_up.load() + (started[0].load() != 2) + (started[1].load() != 2);
  }
  return bad;
}

int main() {
  long bad = concurrent_regions(200);
  std::printf("concurrent=%ld\n", bad);
  bad += check(1, 6000);
  long bad2 = 0;
  std::thread other([&] { bad2 = check(2, 3000); });  // two callers at once
  bad += check(3, 3000);
  other.join();
  std::printf("bad=%ld\n", bad + bad2);
  return bad + bad2 != 0;
}
"""


@pytest.mark.parametrize("spin_us", ["default", "0"])
def test_threadpool_runs_every_index_once(tmp_path, spin_us):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    (tmp_path / "main.cpp").write_text(HARNESS)
    exe = tmp_path / "pool"
    subprocess.run([cxx, "-O2", "-std=c++17", f"-I{SRC}", str(SRC / "onebit/threadpool.cpp"),
                    str(tmp_path / "main.cpp"), "-o", str(exe), "-lpthread"], check=True,
                   timeout=300)
    env = dict(os.environ)
    env.pop("ONEBIT_SPIN_US", None)
    if spin_us != "default":
        env["ONEBIT_SPIN_US"] = spin_us
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=env)  # a hang fails
    assert res.returncode == 0, res.stdout + res.stderr
    assert "concurrent=0" in res.stdout
    assert "bad=0" in res.stdout
