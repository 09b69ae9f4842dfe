"""numba's kernel cache is stamped with all kernel sources, not the entry file alone."""

from __future__ import annotations

from chain.kernels import cachekey, ed25519, edwards25519, sha256


def test_every_cached_kernel_is_stamped_with_the_digest_of_all_kernel_sources() -> None:
    assert cachekey.installed()
    kernels = [
        ed25519.verify_kernel,
        edwards25519.build_tables,
        sha256.sha256_many,
        sha256.merkle_root_words,
        sha256._compress,
    ]
    for kernel in kernels:
        cache = kernel._cache
        assert type(cache._impl.locator).__name__.startswith("Kernels"), kernel
        assert cache._cache_file._source_stamp == cachekey.DIGEST == cachekey.sources_digest()


def test_functions_outside_the_kernels_package_keep_numbas_own_locators() -> None:
    for locator in cachekey._LOCATORS:
        assert locator.from_function(test_cachekey_helper, __file__) is None


def test_cachekey_helper() -> None:
    """Also the subject of the test above: a function defined outside chain/kernels."""
