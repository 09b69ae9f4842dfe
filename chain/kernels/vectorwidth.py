"""Asking LLVM for the widest vectors the CPU has, one kernel at a time.

Why: on Intel CPUs with AVX-512, LLVM's tuning prefers 256-bit vectors (the
``prefer-256-bit`` feature), so numba's auto-vectorized SHA-256 lane loops ran on
``ymm`` registers: eight 32-bit lanes per instruction where the CPU has sixteen. Turning
the feature off for the whole process (``NUMBA_CPU_FEATURES``) would change every
kernel and every other numba user in it; ``prefer_512_bit()`` instead marks only the
function that calls it.

How: it emits no instruction. It adds LLVM's generic function attribute
``"prefer-vector-width"="512"`` to the function being compiled; X86 code generation
reads it per function. It is a preference, not a requirement: on a CPU without
AVX-512 LLVM vectorizes to the widest registers it does have (256-bit AVX2, 128-bit
SSE), and other targets ignore it. So no CPU can meet an instruction it lacks, and
numba's cache, which is keyed on the host CPU's name and features, never hands code
compiled here to another kind of CPU.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

PREFER_512_BIT = '"prefer-vector-width"="512"'


@intrinsic
def _prefer_512_bit(typingctx: Any) -> Any:
    def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> Any:
        # llvmlite's FunctionAttributes accepts only keyword attributes; a key="value"
        # attribute is written into the set as the text it renders to.
        set.add(builder.function.attributes, PREFER_512_BIT)
        return context.get_dummy_value()

    return types.void(), codegen


prefer_512_bit: Any = _prefer_512_bit
"""``prefer_512_bit()`` in a numba function: vectorize its loops to 512 bits where the
CPU has them. It marks the compiled function it ends up in: called from an
``inline="always"`` helper, it marks every kernel that inlines the helper."""
