"""A cache prefetch hint for numba kernels (``llvm.prefetch``).

Why: the verifier reads 83 table entries per signature, scattered over the signer's
key table and B's table, which together outgrow the L2 cache once a batch holds many
keys. The addresses depend only on the scalars, not on the arithmetic, but the CPU's
out-of-order window spans about one point addition, so each entry is fetched only just
before it is needed. Announcing the *next* signature's entries while this one computes
lets them arrive in the background.

Safe on every CPU: ``llvm.prefetch`` is a hint that never faults, lowered to the
baseline ``prefetcht0`` on x86-64 (SSE, present on every x86-64) and to the native
hint, or nothing, elsewhere.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _prefetch(typingctx: Any, arr: Any, index: Any) -> Any:
    if not isinstance(arr, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> Any:
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i32 = ir.IntType(32)
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read (0), high temporal locality (3), data cache (1)
        args_ = [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3)]
        builder.call(fn, [*args_, ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, index), codegen


prefetch: Any = _prefetch
"""``prefetch(array, index)`` from numba code: hint that ``array[index]`` is needed soon."""
