"""No kernel takes an instruction-specific path, so no CPU can abort on one.

LLVM aborts the whole process (no Python exception) when code uses an instruction the
CPU lacks (``docs/kernels.md``). The kernels use only what numba itself compiles
for the host plus portable LLVM intrinsics (i128 arithmetic, ``llvm.prefetch``). This
test fails as soon as someone adds an x86-specific intrinsic (SHA-NI, IFMA, AVX-512...),
as a reminder that such a path needs a check of
``llvmlite.binding.get_host_cpu_features()`` first and a portable fallback.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import llvmlite.binding as llvm
import pytest

KERNELS = Path(__file__).resolve().parents[2] / "chain" / "kernels"
SPECIFIC = re.compile(r"llvm\.x86\.|sha256rnds2|sha256msg|vpmadd52|avx512|llvm\.aarch64\.")


def test_kernel_sources_use_no_instruction_specific_intrinsic() -> None:
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(KERNELS.glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if SPECIFIC.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []


def test_the_only_llvm_intrinsics_are_portable() -> None:
    names = set()
    for path in KERNELS.glob("*.py"):
        names |= set(re.findall(r'"(llvm\.[a-z0-9_.]+)"', path.read_text()))
    assert names <= {"llvm.prefetch.p0"}


def test_the_only_function_attribute_is_the_vector_width_preference() -> None:
    # ``vectorwidth`` writes an LLVM function attribute by its text; the only one is a
    # preference that every CPU may ignore (no instruction follows from it).
    found = set()
    for path in KERNELS.glob("*.py"):
        found |= set(re.findall(r"'(\"[a-z0-9-]+\"=\"[^\"]*\")'", path.read_text()))
    assert found == {'"prefer-vector-width"="512"'}


_PORTABLE_CHECK = """
import random, re
import llvmlite.binding as ll
from chain.kernels import reference, sha256
from chain.kernels.hasharray import HashArray
asm = sha256._node_hash16.inspect_asm(sha256._node_hash16.signatures[0])
print("zmm" if "%zmm" in asm else "ymm" if "%ymm" in asm else "narrow")
rng = random.Random(5)
for n in (1, 2, 3, 17, 31, 32, 33, 1000, 4097):
    leaves = [rng.randbytes(32) for _ in range(n)]
    assert sha256.merkle_root(leaves) == reference.merkle_root(leaves), n
    assert sha256.merkle_root(HashArray.from_hashes(leaves)) == reference.merkle_root(leaves), n
datas = [rng.randbytes(k) for k in (0, 55, 56, 63, 64, 65, 119, 120, 1000)] * 3
assert sha256.leaf_hashes(datas) == reference.leaf_hashes(datas)
assert sha256.node_hashes(bytes(range(64)) * 20) == reference.node_hashes(bytes(range(64)) * 20)
"""


# (NUMBA_CPU_NAME, NUMBA_CPU_FEATURES, widest registers in the Merkle node kernel). numba
# takes the host's features unless told otherwise, so each CPU names its features too.
# Each case compiles every SHA-256 kernel afresh (1-4 minutes): the x86-64 baseline
# ("x86-64", "+sse2", "narrow") passed too, on 2026-12-06, and is left out to save that.
OTHER_CPUS = [
    ("haswell", "+avx2,+avx,+fma,+bmi,+bmi2,+popcnt,+sse4.2", "ymm"),  # AVX2, no AVX-512
]


@pytest.mark.slow
@pytest.mark.parametrize(("cpu", "features", "widest"), [*OTHER_CPUS, (None, None, None)])
def test_sha256_kernels_compiled_for_other_cpus(
    cpu: str | None, features: str | None, widest: str | None, tmp_path: Path
) -> None:
    """The 512-bit preference (``vectorwidth``) on a CPU that lacks AVX-512 (AVX2 only):
    LLVM falls back to the vectors they have and the answers stay
    hashlib's. On this host: 512-bit vectors where it has AVX-512. Compiled in a fresh
    process with its own cache, so nothing compiled here reaches the project's cache."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86-64 CPU names")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    if cpu is None:
        env.pop("NUMBA_CPU_NAME", None)
        env.pop("NUMBA_CPU_FEATURES", None)
        widest = "zmm" if llvm.get_host_cpu_features().get("avx512f") else None
    else:
        env["NUMBA_CPU_NAME"] = cpu
        env["NUMBA_CPU_FEATURES"] = features or ""
    done = subprocess.run(
        [sys.executable, "-c", _PORTABLE_CHECK],
        cwd=KERNELS.parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if widest is not None:
        assert done.stdout.split()[-1] == widest
