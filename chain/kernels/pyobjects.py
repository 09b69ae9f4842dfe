"""Reading a list or tuple of ``bytes`` objects from a kernel, without gathering it first.

Why: the Merkle kernel hashes 2^20 leaves in ~50 ms, and gathering a ``list[bytes]`` into
one buffer (``b"".join``, plus the length check) cost another ~40 ms: one cache miss per
object, paid in Python before the kernel starts. Reading each object where it lies, in
the kernel, pays that miss once, inside the loop that uses the bytes.

How: CPython's layouts are fixed for a given build (``PyListObject.ob_item``, the items
of a ``PyTupleObject``, ``PyBytesObject.ob_sval``); ``LAYOUT`` measures them on this
interpreter at import, with ``ctypes``, and is ``None`` where they are not what the
kernel expects (another interpreter, another build), in which case callers gather in
Python as before. The kernel checks every element's type (exactly ``bytes``) and size
before it reads its data, and reports the first one that is not a 32-byte ``bytes``.

Safety: a kernel that reads objects it does not own must hold the GIL, or another
thread could shrink the list and free an element under it. Kernels reading objects are
therefore compiled with ``nogil=False``, unlike every other kernel here.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from typing import Any

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@dataclass(frozen=True, slots=True)
class Layout:
    list_items_offset: int
    """Where a list keeps the address of its item pointer array."""
    tuple_items_offset: int
    """Where a tuple's item pointers start (inline)."""
    type_offset: int
    size_offset: int
    bytes_data_offset: int
    bytes_type: int
    """The address of ``bytes`` itself, as it appears in an object's type field."""


def _word(address: int) -> int:
    return ctypes.c_uint64.from_address(address).value


def _measure() -> Layout | None:
    if (
        sys.implementation.name != "cpython"
        or ctypes.sizeof(ctypes.c_void_p) != 8
        or sys.byteorder != "little"  # the kernel byte-swaps words it loads natively
    ):
        return None
    ptr = ctypes.sizeof(ctypes.c_void_p)
    layout = Layout(
        list_items_offset=3 * ptr,
        tuple_items_offset=3 * ptr,
        type_offset=ptr,
        size_offset=2 * ptr,
        bytes_data_offset=sys.getsizeof(b"") - 1,
        bytes_type=id(bytes),
    )
    probe = bytes(range(7, 39))
    items: list[Any] = [probe, b"x"]
    kept = (b"y", probe)
    try:
        ok = (
            _word(_word(id(items) + layout.list_items_offset)) == id(probe)
            and _word(id(kept) + layout.tuple_items_offset + ptr) == id(probe)
            and _word(id(probe) + layout.type_offset) == id(bytes)
            and _word(id(probe) + layout.size_offset) == len(probe)
            and ctypes.string_at(id(probe) + layout.bytes_data_offset, len(probe)) == probe
        )
    except (OverflowError, ValueError):
        ok = False
    return layout if ok else None


LAYOUT = _measure()


def items_address(seq: list[bytes] | tuple[bytes, ...]) -> int:
    """The address of ``seq``'s item pointers (valid while ``seq`` is unchanged and the
    GIL is held). Callers check ``LAYOUT`` first."""
    assert LAYOUT is not None
    if type(seq) is tuple:
        return id(seq) + LAYOUT.tuple_items_offset
    return _word(id(seq) + LAYOUT.list_items_offset)


@intrinsic
def _load(typingctx: Any, address: Any, kind: Any) -> Any:
    """``load(address, uint32(0))`` / ``load(address, uint64(0))``: the value at a raw
    address; the second argument only chooses the width."""
    if not isinstance(address, types.Integer) or not isinstance(kind, types.Integer):
        return None

    def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> Any:
        ptr = builder.inttoptr(args[0], context.get_value_type(kind).as_pointer())
        return builder.load(ptr, align=1)

    return kind(types.uint64, kind), codegen


load: Any = _load
"""``load(address, np.uint64(0))`` from numba code: the 8 bytes at ``address``."""


@intrinsic
def _prefetch(typingctx: Any, address: Any) -> Any:
    if not isinstance(address, types.Integer):
        return None

    def codegen(context: Any, builder: ir.IRBuilder, sig: Any, args: Any) -> Any:
        i32 = ir.IntType(32)
        i8p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch.p0", fnty=fnty)
        ptr = builder.inttoptr(args[0], i8p)
        # read (0), high temporal locality (3), data cache (1): never faults
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(types.uint64), codegen


prefetch: Any = _prefetch
"""``prefetch(address)`` from numba code: a hint that the bytes at ``address`` are needed
soon (``llvm.prefetch``, which never faults, whatever the address)."""
