"""Every size limit in one place; each is checked where data enters (codec, RPC, frames)."""

from __future__ import annotations

TX_VERSION = 1
HEADER_VERSION = 1

TX_BYTES_MAX = 64 * 1024
PAYLOAD_DEPTH_MAX = 8
CHAIN_ID_CHARS_MAX = 64
KIND_CHARS_MAX = 48
STR_CHARS_MAX = 4096
CONTAINER_ITEMS_MAX = 1024
NONCE_MAX = 2**63 - 1
TIMESTAMP_MS_MAX = 2**63 - 1

BLOCK_TXS_MAX = 10_000
BLOCK_BYTES_MAX = 16 * 1024 * 1024
NODE_ID_CHARS_MAX = 64

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
HASH_BYTES = 32

# Merkle proofs are at most 2*64 hashes long (a consistency proof can be ~2*log2(n)).
PROOF_HASHES_MAX = 128
