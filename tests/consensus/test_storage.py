"""``MemoryRaftStorage`` passes the shared ``RaftStorage`` conformance check."""

from collections.abc import Sequence

from storage_conformance import check_raft_storage

from consensus.storage import MemoryRaftStorage, RaftStorage


def test_memory_storage_conforms() -> None:
    def factory(voters: Sequence[str]) -> RaftStorage:
        return MemoryRaftStorage(voters)

    check_raft_storage(factory)
