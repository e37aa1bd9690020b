"""RFC 9162 Merkle hashing: the frontier and the proofs agree with the recursive definition."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tongban.audit import merkle


def mth(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 §2.1.1 writes it, recursively, as the reference."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def leaves_of(size: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(size)]


def frontier_of(leaves: list[bytes]) -> list[bytes]:
    frontier: list[bytes] = []
    for size, data in enumerate(leaves):
        frontier = merkle.frontier_append(frontier, size, data)
    return frontier


def test_known_hashes_of_small_trees():
    # given the RFC's prefixes, computed by hand for one, two and three leaves
    a, b, c = b"a", b"b", b"c"
    la, lb, lc = (hashlib.sha256(b"\x00" + x).digest() for x in (a, b, c))
    ab = hashlib.sha256(b"\x01" + la + lb).digest()
    # then
    assert merkle.root([]) == hashlib.sha256(b"").digest()
    assert merkle.root([a]) == la
    assert merkle.root([a, b]) == ab
    assert merkle.root([a, b, c]) == hashlib.sha256(b"\x01" + ab + lc).digest()


@given(st.integers(min_value=1, max_value=300))
def test_frontier_root_equals_recursive_mth(size):
    # given
    leaves = leaves_of(size)
    # when
    frontier = frontier_of(leaves)
    # then: one subtree per set bit of the size, and the same root as the definition
    assert len(frontier) == bin(size).count("1")
    assert merkle.frontier_root(frontier) == mth(leaves)
    assert merkle.root(leaves) == mth(leaves)


@given(st.data())
def test_every_inclusion_proof_verifies(data):
    # given a random tree and a random leaf in it
    size = data.draw(st.integers(min_value=1, max_value=300))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    hashes = [merkle.leaf_hash(d) for d in leaves_of(size)]
    root = mth(leaves_of(size))
    # when
    path = merkle.inclusion_path(index, hashes)
    # then
    assert merkle.verify_inclusion(
        leaf_index=index, tree_size=size, leaf=hashes[index], path=path, root_hash=root
    )


@given(st.data())
def test_a_flipped_proof_fails(data):
    # given a valid proof for a tree of at least two leaves
    size = data.draw(st.integers(min_value=2, max_value=300))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    hashes = [merkle.leaf_hash(d) for d in leaves_of(size)]
    root = merkle.root_of_leaf_hashes(hashes)
    path = merkle.inclusion_path(index, hashes)
    # when one bit of one path hash is flipped
    which = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    flipped = bytearray(path[which])
    flipped[bit // 8] ^= 1 << (bit % 8)
    bad_path = [*path[:which], bytes(flipped), *path[which + 1 :]]
    # then
    assert not merkle.verify_inclusion(
        leaf_index=index, tree_size=size, leaf=hashes[index], path=bad_path, root_hash=root
    )


@given(st.data())
def test_a_proof_for_another_index_or_size_fails(data):
    # given
    size = data.draw(st.integers(min_value=2, max_value=300))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    hashes = [merkle.leaf_hash(d) for d in leaves_of(size)]
    root = merkle.root_of_leaf_hashes(hashes)
    path = merkle.inclusion_path(index, hashes)
    other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
    # then: the leaf at another position, or the right leaf claimed elsewhere, fails
    assert not merkle.verify_inclusion(
        leaf_index=index, tree_size=size, leaf=hashes[other], path=path, root_hash=root
    )
    assert not merkle.verify_inclusion(
        leaf_index=other, tree_size=size, leaf=hashes[index], path=path, root_hash=root
    )


def test_a_one_leaf_tree_has_an_empty_proof():
    leaf = merkle.leaf_hash(b"x")
    assert merkle.inclusion_path(0, [leaf]) == []
    assert merkle.verify_inclusion(leaf_index=0, tree_size=1, leaf=leaf, path=[], root_hash=leaf)


@pytest.mark.parametrize(("index", "size"), [(-1, 3), (3, 3), (0, 0)])
def test_an_index_outside_the_tree_is_refused(index, size):
    with pytest.raises(ValueError, match="outside a tree"):
        merkle.inclusion_ranges(index, size)
    assert not merkle.verify_inclusion(
        leaf_index=index, tree_size=size, leaf=b"", path=[], root_hash=b""
    )


def test_inclusion_ranges_follow_the_rfc_split():
    # given a tree of 7 leaves: split 4 | 3, then 2 | 1
    # then leaf 5's siblings, leaf up: leaf 4, leaf 6, leaves 0..3
    assert merkle.inclusion_ranges(5, 7) == [(4, 5), (6, 7), (0, 4)]
    assert merkle.inclusion_ranges(6, 7) == [(4, 6), (0, 4)]
