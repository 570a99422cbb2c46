"""The Markov continuator: a normalised, smoothed baseline that also continues phrases."""
import math

import numpy as np
import pytest

from livejam.events import Note, Vocab, notes_to_events
from livejam.markov import MarkovContinuator

VOCAB = Vocab()


def scale_pattern(repeats: int = 8) -> np.ndarray:
    """A monophonic up-and-down scale, repeated: the most predictable music there is."""
    pitches = [60, 62, 64, 65, 67, 65, 64, 62] * repeats
    notes = [Note(i * 0.25, i * 0.25 + 0.2, p, 80) for i, p in enumerate(pitches)]
    return notes_to_events(notes, VOCAB)


def random_events(rng: np.random.Generator, n: int) -> np.ndarray:
    sizes = VOCAB.field_sizes
    return np.stack([rng.integers(0, VOCAB.n_parts, n), rng.integers(0, sizes[1], n),
                     rng.integers(0, sizes[2], n), rng.integers(0, sizes[3], n)], axis=1)


def test_each_field_distribution_sums_to_one_and_matches_log_probs():
    rng = np.random.default_rng(0)
    model = MarkovContinuator(VOCAB, max_order=3).fit([scale_pattern(), random_events(rng, 300)])
    for row in scale_pattern(2)[1:12].tolist():  # walk through a context, checking at every step
        prefix = tuple(row)
        lp = model.log_probs(row)
        for field, size in enumerate(VOCAB.field_sizes):
            probs = model.distribution(field, prefix[:field])
            assert probs.shape == (size,)
            assert probs.min() > 0.0
            assert probs.sum() == pytest.approx(1.0, abs=1e-9)
            assert math.log(probs[row[field]]) == pytest.approx(lp[field], abs=1e-9)
        model.observe(row)


def test_unseen_tokens_get_a_finite_log_probability():
    model = MarkovContinuator(VOCAB).fit([scale_pattern()])
    lp = model.log_probs((1, VOCAB.n_dt - 1, 127, VOCAB.n_vel - 1))
    assert np.all(np.isfinite(lp))
    empty = MarkovContinuator(VOCAB)
    uniform = -np.log(np.asarray(VOCAB.field_sizes, float))
    assert np.allclose(empty.log_probs((0, 3, 60, 10)), uniform)


def test_repeating_pattern_is_predicted_far_better_than_uniform():
    events = scale_pattern(16)
    uniform_nll = float(np.log(np.asarray(VOCAB.field_sizes, float)).sum())
    online = MarkovContinuator(VOCAB).nll(events)  # learning as it goes, nothing fitted
    assert online.shape == (4,)
    assert online.sum() < 0.25 * uniform_nll
    fitted = MarkovContinuator(VOCAB).fit([scale_pattern(8)]).nll(events)
    assert fitted.sum() < online.sum()
    assert fitted.sum() < 0.5  # nats per event on a pattern it has seen many times


def test_fitted_corpus_does_not_drown_what_the_session_learns():
    unrelated = MarkovContinuator(VOCAB).fit([random_events(np.random.default_rng(2), 3000)])
    online_only = MarkovContinuator(VOCAB).nll(scale_pattern(16)).sum()
    assert unrelated.nll(scale_pattern(16)).sum() < online_only + 0.3


def test_scoring_leaves_the_fitted_counts_alone():
    model = MarkovContinuator(VOCAB).fit([scale_pattern()])
    before = model.nll(scale_pattern(2))
    model.nll(random_events(np.random.default_rng(1), 500))
    assert np.allclose(model.nll(scale_pattern(2)), before)


def test_start_markers_reset_the_context_and_are_not_scored():
    events = scale_pattern(2)
    assert events[0, 0] == VOCAB.bos_part
    scores = MarkovContinuator(VOCAB).score(np.concatenate([events, events]))
    assert scores.shape == (2 * (len(events) - 1), 4)


def test_warm_prefix_is_learned_but_not_scored():
    model = MarkovContinuator(VOCAB)
    cold = model.nll(scale_pattern(2))
    warm = model.nll(scale_pattern(2), warm=scale_pattern(8))
    assert warm.sum() < cold.sum()
    assert len(model.score(scale_pattern(2), warm=scale_pattern(8))) == len(scale_pattern(2)) - 1


def test_sampling_is_deterministic_under_a_seed_and_continues_the_pattern():
    def generate(seed: int) -> list:
        model = MarkovContinuator(VOCAB).fit([scale_pattern()])
        for row in scale_pattern(1)[:9].tolist():  # a phrase ending mid-pattern
            model.push(row)
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(40):
            token = model.sample(rng, parts=(0,))
            model.push(token)
            out.append(token)
        return out

    first = generate(7)
    assert first == generate(7)
    # Pitches of the note-ons come from the learned scale, as a continuation should.
    assert {t[2] for t in first if t[3] > 0} <= {60, 62, 64, 65, 67}


def test_sample_respects_constraints_and_only_ends_sounding_notes():
    rng = np.random.default_rng(3)
    model = MarkovContinuator(VOCAB).fit([random_events(rng, 2000)])
    sounding = set()
    for _ in range(500):
        token = model.sample(rng, parts=(1,), pitch_range=(48, 72), max_polyphony=3, dt_bins=(2, 10))
        part, dt, pitch, vel = token
        assert part == 1 and 2 <= dt <= 10
        if vel == 0:
            assert pitch in sounding
            sounding.discard(pitch)
        else:
            assert 48 <= pitch <= 72 and pitch not in sounding
            sounding.add(pitch)
        assert len(sounding) <= 3
        model.push(token)


def test_impossible_constraint_falls_back_instead_of_failing():
    model = MarkovContinuator(VOCAB)
    token = model.sample(np.random.default_rng(0), pitch_range=(100, 90))  # empty range
    assert 0 <= token[2] < VOCAB.n_pitch


def test_out_of_vocabulary_tokens_are_rejected():
    with pytest.raises(ValueError):
        MarkovContinuator(VOCAB).observe((0, 0, 128, 1))
