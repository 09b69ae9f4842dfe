"""The signer and verifier a PBFT replica is given (Castro-Liskov TOCS 2002 §3: every
message is signed; we use Ed25519 through ``chain.signing``)."""

from __future__ import annotations

from pbft_harness import key

from chain import signing
from consensus.pbft_signing import Ed25519Signer, Ed25519Verifier
from tests.factories import count_verify_batches


def test_verify_accepts_the_signer_and_nothing_else() -> None:
    ver = Ed25519Verifier({"a": signing.public_key_bytes(key("a"))}, cache_max=2)
    sig = Ed25519Signer(key("a")).sign(b"m")
    assert ver.verify("a", b"m", sig)
    assert not ver.verify("a", b"n", sig)
    assert not ver.verify("b", b"m", sig)  # unknown replica
    assert not ver.verify("a", b"m", Ed25519Signer(key("b")).sign(b"m"))
    assert not ver.verify("a", b"m", b"short")
    assert len(ver._cache) <= 2  # bounded
    assert ver.verify("a", b"m", sig)  # still right after eviction


def test_prime_verifies_in_one_batch_and_gives_the_same_verdicts(monkeypatch) -> None:
    keys = {n: signing.public_key_bytes(key(n)) for n in ("a", "b")}
    good = [("a", b"m1", Ed25519Signer(key("a")).sign(b"m1"))]
    good.append(("b", b"m2", Ed25519Signer(key("b")).sign(b"m2")))
    bad = [("a", b"m2", good[0][2]), ("b", b"m1", b"short")]
    unknown = ("c", b"m1", Ed25519Signer(key("c")).sign(b"m1"))
    ver = Ed25519Verifier(keys)
    batches = count_verify_batches(monkeypatch)
    assert ver.prime([*good, *bad, unknown, good[0]]) == 4  # unknown and repeat skipped
    assert batches == [4]
    assert ver.prime(good) == 0  # remembered
    verdicts = [ver.verify(*c) for c in (*good, *bad, unknown)]
    assert verdicts == [True, True, False, False, False]
    assert batches == [4]  # the core's checks found them remembered
    fresh = Ed25519Verifier(keys)
    assert [fresh.verify(*c) for c in (*good, *bad, unknown)] == verdicts


def test_membership_prime_covers_what_signed_ok_checks() -> None:
    from consensus.pbft_certs import Membership
    from consensus.pbft_messages import Commit, Kind, Prepare, statement_bytes

    names = ["a", "b", "c", "d"]
    ver = Ed25519Verifier({n: signing.public_key_bytes(key(n)) for n in names})
    members = Membership(names, ver, log_window=8)

    def vote(cls: type, n: str, seq: int, signer: str | None = None):
        kind = Kind.PREPARE if cls is Prepare else Kind.COMMIT
        stmt = statement_bytes(kind, 0, seq, b"d" * 32, n)
        return cls(0, seq, b"d" * 32, n, Ed25519Signer(key(signer or n)).sign(stmt))

    votes = [vote(Prepare, "b", 1), vote(Commit, "c", 1), vote(Prepare, "d", 1, signer="a")]
    outsider = vote(Prepare, "e", 1)
    assert members.prime([*votes, outsider]) == 3
    assert len(ver._cache) == 3
    assert [members.signed_ok(v) for v in (*votes, outsider)] == [True, True, False, False]
    assert len(ver._cache) == 3  # every verdict came from the batch
    assert members.prime(votes[:1]) == 0  # one alone is left to signed_ok
