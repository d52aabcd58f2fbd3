"""The C library keeps freed memory for reuse where it can (glibc); elsewhere nothing changes."""

import platform

import numpy as np
import pytest

from specsift.runtime import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_the_thresholds_and_allocation_still_works():
    assert keep_freed_memory() is True
    for _ in range(3):  # large blocks are now taken from the heap and reused
        block = np.ones(64 * 2 ** 20 // 8)
        assert block.sum() == block.size
