"""Split: 70/15/15 from SHA-256 of the id, independent of order, process and machine."""

from __future__ import annotations

import hashlib

import numpy as np

from specsift.preprocess.split import assign_split, hash_uniform


def test_fractions_are_70_15_15_within_binomial_noise():
    ids = np.arange(39627000000000000, 39627000000000000 + 20000)
    split = assign_split(ids)
    for name, fraction in (("train", 0.70), ("validation", 0.15), ("test", 0.15)):
        sigma = np.sqrt(fraction * (1 - fraction) / ids.size)
        assert abs(np.mean(split == name) - fraction) < 4 * sigma


def test_split_depends_only_on_the_id():
    ids = np.arange(1000, 1500)
    split = assign_split(ids)
    order = np.random.default_rng(0).permutation(ids.size)
    np.testing.assert_array_equal(assign_split(ids[order]), split[order])
    np.testing.assert_array_equal(assign_split(ids[:7]), split[:7])


def test_hash_is_sha256_of_the_id_text():
    digest = hashlib.sha256(b"39627305500168284").digest()
    assert hash_uniform([39627305500168284])[0] == int.from_bytes(digest[:8], "big") / 2**64
    assert hash_uniform([b"2M00001+0001 "])[0] == hash_uniform(["2M00001+0001"])[0]


def test_salt_draws_a_different_split():
    ids = np.arange(2000)
    assert np.mean(assign_split(ids) != assign_split(ids, salt="x")) > 0.2
