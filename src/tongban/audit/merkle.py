"""Merkle tree hashing of RFC 9162 (Certificate Transparency 2.0), §2.1.

Pure functions over bytes, no Django. The audit log feeds each entry's hash in as leaf
data; checkpoints sign the tree head. A *frontier* is the list of roots of the perfect
subtrees that make up a tree of size n, largest (leftmost) first — one per set bit of n —
so appending a leaf and computing the root both cost O(log n) without rereading leaves.
"""

import hashlib
from collections.abc import Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH of a single leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves.

    Hashed level by level, promoting an unpaired last node unchanged: that builds exactly
    the RFC's left-perfect tree, iteratively, so a million leaves cost no deep recursion.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root(leaves: Iterable[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf data (not yet hashed)."""
    return root_of_leaf_hashes([leaf_hash(d) for d in leaves])


def frontier_append(frontier: list[bytes], size: int, data: bytes) -> list[bytes]:
    """Append one leaf to a tree of `size` leaves given by its frontier; return the new one.

    Like binary increment: each trailing set bit of `size` is a perfect subtree of the same
    height as the carry, so they merge.
    """
    merged = leaf_hash(data)
    result = list(frontier)
    while size & 1:
        merged = node_hash(result.pop(), merged)
        size >>= 1
    result.append(merged)
    return result


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """MTH of the tree whose perfect-subtree roots are `frontier` (largest first)."""
    if not frontier:
        return EMPTY_ROOT
    acc = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        acc = node_hash(subtree, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges [lo, hi) whose subtree roots form PATH(index, D[size]), leaf up.

    RFC 9162 §2.1.3.1 recurses into the half holding the leaf and emits the MTH of the
    other half; these are those other halves. Knowing them up front lets a caller stream
    the leaves once and hash each range with a frontier, in O(log n) memory.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def inclusion_path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) for leaf `index`, given all n leaf hashes, siblings from the leaf up."""
    return [root_of_leaf_hashes(hashes[lo:hi]) for lo, hi in inclusion_ranges(index, len(hashes))]


def verify_inclusion(
    *, leaf_index: int, tree_size: int, leaf: bytes, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `path` prove leaf hash `leaf` at `leaf_index` under the root?"""
    if leaf_index < 0 or leaf_index >= tree_size:
        return False
    fn, sn = leaf_index, tree_size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash
