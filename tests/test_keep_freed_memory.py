"""core.platforms.keep_freed_memory: a thread that allocates, touches and frees a 64 MB block
over and over page-faults it in once, not every time (run in subprocesses: the setting is
process-wide)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOCATE_AND_FREE = """
import ctypes, ctypes.util, resource, sys, threading
from core import platforms
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
if sys.argv[1] == "keep" and not platforms.keep_freed_memory():
  sys.exit(5)
size = 64 * 2**20
def work():
  for _ in range(20):  # as XLA's worker threads do with a step's temporary buffers
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode):
  result = subprocess.run([sys.executable, "-c", ALLOCATE_AND_FREE, mode], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  if result.returncode == 5:
    pytest.skip("not glibc")
  assert result.returncode == 0, result.stderr[-2000:]
  return int(result.stdout.split()[-1])


def test_freed_memory_is_reused_instead_of_faulted_in_again():
  default, kept = page_faults("default"), page_faults("keep")
  # 20 blocks of 16,384 pages: glibc maps and unmaps each one (~330,000 faults, fewer with
  # transparent huge pages); kept, the first block's pages serve all 20.
  assert kept < default / 5, (kept, default)
