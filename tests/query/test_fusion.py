"""Hybrid fusion: each ranking's scores scaled to [0, 1] over its candidates, then averaged;
and the full-text query without English function words."""

from __future__ import annotations

import pytest

from ragidx.query.search import fuse, query_terms

# BM25 for an identifier: one chunk matches, far above nothing else.
IDENTIFIER_TEXT = [(7, 7.1)]
# Cosine for the same query: nothing means it, the best lie close together.
FLAT_VECTOR = [(1, 0.47), (2, 0.46), (3, 0.44), (7, 0.33), (4, 0.28)]


def test_a_chunk_in_both_rankings_beats_one_first_in_only_one() -> None:
    text = [(10, 9.0), (11, 8.0), (12, 1.0)]
    vector = [(20, 0.9), (11, 0.8), (13, 0.1)]
    scores = fuse([text, vector])
    assert max(scores, key=scores.__getitem__) == 11
    assert scores[11] == pytest.approx((7 / 8 + 7 / 8) / 2)
    assert scores[10] == scores[20] == pytest.approx(0.5)
    assert scores[12] == scores[13] == 0.0  # last in one ranking, absent from the other


def test_an_identifier_only_text_matches_outranks_the_vectors_best_guess() -> None:
    scores = fuse([IDENTIFIER_TEXT, FLAT_VECTOR])
    assert max(scores, key=scores.__getitem__) == 7
    assert scores[7] == pytest.approx((1 + (0.33 - 0.28) / (0.47 - 0.28)) / 2)


def test_scores_do_not_depend_on_each_rankings_scale() -> None:
    text = [(1, 3.0), (2, 2.0), (3, 0.5)]
    vector = [(2, 0.6), (4, 0.5), (1, 0.2)]
    scaled = [(cid, score * 40 + 7) for cid, score in text]
    assert fuse([scaled, vector]) == pytest.approx(fuse([text, vector]))


def test_one_ranking_empty_keeps_the_others_order_at_half_weight() -> None:
    vector = [(5, 0.9), (6, 0.5), (7, 0.1)]
    scores = fuse([[], vector])
    assert scores == pytest.approx({5: 0.5, 6: 0.25, 7: 0.0})
    assert fuse([vector, []]) == scores


def test_a_single_candidate_or_all_tied_count_in_full() -> None:
    assert fuse([[(3, 0.2)]]) == {3: 1.0}
    assert fuse([[(1, 2.5), (2, 2.5), (3, 2.5)]]) == {1: 1.0, 2: 1.0, 3: 1.0}
    assert fuse([[(3, -4.0)], [(3, 0.0), (4, -1.0)]]) == {3: 1.0, 4: 0.0}


def test_one_ranking_alone_is_its_own_min_max_scale() -> None:
    assert fuse([[(1, 0.8), (2, 0.6), (3, 0.4)]]) == pytest.approx({1: 1.0, 2: 0.5, 3: 0.0})


def test_nothing_to_fuse() -> None:
    assert fuse([]) == {}
    assert fuse([[], []]) == {}


def test_the_full_text_query_leaves_function_words_out() -> None:
    assert query_terms("How do I restart the worker?") == ["restart", "worker"]
    assert query_terms("what is compute_backoff_delay") == ["compute_backoff_delay"]
    assert query_terms("the TW-E4031 of it") == ["tw-e4031"]
    # Where nothing else is left, the function words are the query.
    assert query_terms("The Who") == ["the", "who"]
    assert query_terms("它的 the") == ["它 的"]
