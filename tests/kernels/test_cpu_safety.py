"""No kernel takes an instruction-specific path, so no CPU can abort on one.

LLVM aborts the whole process (no Python exception) when code uses an instruction the
CPU lacks (``docs/kernels.md``). The kernels use only what numba itself compiles
for the host plus portable LLVM intrinsics (i128 arithmetic, ``llvm.prefetch``). This
test fails as soon as someone adds an x86-specific intrinsic (SHA-NI, IFMA, AVX-512...),
as a reminder that such a path needs a check of
``llvmlite.binding.get_host_cpu_features()`` first and a portable fallback.
"""

from __future__ import annotations

import re
from pathlib import Path

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
