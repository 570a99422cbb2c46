"""Engine on a tiny random exported model: cache == recompute, context-full swap, sampling under masks."""
import dataclasses

import numpy as np
import pytest

from livejam.engine import (Constraints, Engine, EventSampler, ModelError, NoteTracker, estimate_key,
                            key_pitch_mask, load_model, parse_key, pitch_class_histogram, sample_logits)
from livejam.events import COND_COLUMNS, COND_COUNTS, FIELDS
from livejam.harmony import chord_id, NO_CHORD, chord_tones


@pytest.fixture(scope="module")
def model_path(tiny_model):
    return tiny_model  # max_len 64: the context-full boundary comes quickly


@pytest.fixture(scope="module")
def model(model_path):
    return load_model(model_path)


def events(vocab, n, seed=0):
    rng = np.random.default_rng(seed)
    sizes = list(vocab.field_sizes)
    sizes[0] = vocab.n_parts  # no start markers inside
    return np.stack([rng.integers(0, size, n) for size in sizes], 1).astype(np.int64)


def all_logits(engine, row):
    return [engine.logits(k, row[list(COND_COLUMNS)]) for k in range(len(FIELDS))]


def test_cache_path_equals_full_recompute(model):
    ev = events(model.info.vocab, 40)
    a = Engine(model)
    for t in ev:
        a.feed(t)
    b = Engine(model)
    b.prefill(ev)  # one chunk
    c = Engine(model)
    c.prefill(ev[:7])
    c.prefill(ev[7:])
    assert a.pos == b.pos == c.pos == 41
    np.testing.assert_allclose(a.h, b.h, atol=1e-5)
    np.testing.assert_allclose(a.h, c.h, atol=1e-5)
    for la, lb in zip(all_logits(a, ev[0]), all_logits(b, ev[0])):
        np.testing.assert_allclose(la, lb, atol=1e-4)
    np.testing.assert_array_equal(a.tokens()[1:], ev)


@pytest.mark.parametrize("defer", [False, True])
def test_context_full_swap(model, defer):
    L = model.info.max_len
    ev = events(model.info.vocab, 3 * L, seed=1)
    e = Engine(model, window=24, defer_shadow=defer)
    for i, t in enumerate(ev):
        e.feed(t)
        if defer and i % 3 == 0 and i < 2 * L:  # idle only now and then, then never: feed keeps up
            e.idle(max_steps=2)
        assert e._shadow_pending() <= (1 if defer else 0)  # the swap folds at most one row into its run
        assert 1 <= e.pos <= L
    assert e.swaps >= 3
    ctx = e.tokens().copy()
    assert ctx[0, 0] == model.info.vocab.bos_part  # the window starts with a start event
    np.testing.assert_array_equal(ctx[1:], ev[-(len(ctx) - 1):])  # ... then the most recent events
    fresh = Engine(model)
    fresh.reset(start=False)
    fresh.prefill(ctx)
    np.testing.assert_allclose(e.h, fresh.h, atol=1e-5)


def test_prefill_longer_than_context(model):
    L = model.info.max_len
    ev = events(model.info.vocab, 2 * L + 5, seed=2)
    e = Engine(model, window=30)
    e.prefill(ev)
    ctx = e.tokens().copy()
    np.testing.assert_array_equal(ctx[1:], ev[-(len(ctx) - 1):])
    fresh = Engine(model)
    fresh.reset(start=False)
    fresh.prefill(ctx)
    np.testing.assert_allclose(e.h, fresh.h, atol=1e-5)


def generate(model, c, seed, n=40):
    e = Engine(model, window=24)
    s = EventSampler(model.info.vocab)
    notes = NoteTracker(model.info.vocab)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = s.sample(e, c, notes, rng)
        e.feed(t)
        notes.observe(t)
        out.append(t)
    return np.array(out), s


def test_reproducible_under_seed(model):
    c = Constraints(temperature=1.0, top_p=0.95)
    a, _ = generate(model, c, seed=7)
    b, _ = generate(model, c, seed=7)
    d, _ = generate(model, c, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, d)


def test_temperature_zero_is_argmax(model):
    c = Constraints(temperature=0.0, consistent=False)
    a, _ = generate(model, c, seed=1, n=10)
    b, _ = generate(model, c, seed=2, n=10)
    np.testing.assert_array_equal(a, b)
    e = Engine(model)
    tok = EventSampler(model.info.vocab).sample(e, c, NoteTracker(model.info.vocab), np.random.default_rng(0))
    for k in range(len(FIELDS)):
        lg = e.logits(k, tok[list(COND_COLUMNS)])
        if k == 0:
            lg = lg[:model.info.vocab.n_parts]  # the start marker is never sampled
        assert tok[k] == int(np.argmax(lg))


def test_masks_respected(model):
    v = model.info.vocab
    c = Constraints(temperature=1.5, parts=(1,), pitch_range=(60, 72), key="D:major", max_polyphony=2,
                    min_dt_bin=3, density=0.5)
    toks, sampler = generate(model, c, seed=3, n=120)
    assert not sampler.fallbacks, sampler.fallbacks
    in_key = key_pitch_mask("D:major")
    replay = NoteTracker(v)
    for part, dt, _, pitch, vel, _, _ in toks:
        assert part == 1 and dt >= 3
        sounding = replay.sounding[1]
        if vel > 0:
            assert pitch not in sounding and 60 <= pitch <= 72 and in_key[pitch]
            assert len(sounding) < 2
        else:
            assert pitch in sounding
        replay.observe((part, dt, 0, pitch, vel))
    assert (toks[:, 4] > 0).any() and (toks[:, 4] == 0).any()


def test_note_lengths(model):
    v = model.info.vocab
    c = Constraints(temperature=1.0, parts=(0,), min_note_ms=50, max_note_ms=600, max_polyphony=3)
    toks, _ = generate(model, c, seed=4, n=120)
    replay = NoteTracker(v)
    longest_dt_ms = v.max_dt_ticks * replay.ms_per_tick
    for t in toks:
        part, dt, _, pitch, vel = (int(x) for x in t[:5])
        if vel == 0:
            length = replay.time_ms + dt * replay.ms_per_tick - replay.sounding[part][pitch]
            assert length >= 50 or len(replay.sounding[part]) >= 3
        replay.observe(t)
        assert all(replay.time_ms - t0 <= 600 + longest_dt_ms for t0 in replay.sounding[part].values())


def test_impossible_constraints_fall_back(model):
    c = Constraints(parts=(9,), pitch_range=(130, 140), key="C:major", min_dt_bin=10_000, max_polyphony=0)
    toks, sampler = generate(model, c, seed=5, n=20)
    v = model.info.vocab
    assert (toks[:, 0] < v.n_parts).all() and (toks[:, 1] < v.n_dt).all()
    assert sampler.fallbacks["parts"] == 20 and sampler.fallbacks["range"] > 0 and sampler.fallbacks["min_dt"] == 20
    bad_key = Constraints(key="H:weird")
    generate(model, bad_key, seed=0, n=2)  # warns, does not raise


def test_sample_logits_unit():
    rng = np.random.default_rng(0)
    lg = np.array([0.0, 3.0, 1.0, 2.9], np.float32)
    allowed = np.array([True, True, True, False])
    assert sample_logits(lg, allowed, 0.0, 1.0, 0.0, rng) == 1
    assert {sample_logits(lg, allowed, 1.0, 0.01, 0.0, rng) for _ in range(50)} == {1}
    assert {sample_logits(lg, allowed, 1.0, 1.0, 0.5, rng) for _ in range(50)} == {1}
    draws = {sample_logits(lg, allowed, 5.0, 1.0, 0.0, rng) for _ in range(200)}
    assert draws == {0, 1, 2}
    nan = np.array([np.nan, np.nan], np.float32)
    assert sample_logits(nan, np.array([True, True]), 1.0, 0.9, 0.1, rng) in (0, 1)


def test_keys():
    assert parse_key("C:minor") == (0, "minor") and parse_key("bb") == (10, "major")
    with pytest.raises(ValueError):
        parse_key("X:major")
    assert key_pitch_mask("C:major")[[60, 62, 64, 65, 67, 69, 71]].all() and not key_pitch_mask("C:major")[61]
    c_major = pitch_class_histogram([60, 62, 64, 65, 67, 69, 71, 60, 64, 67, 60])
    assert estimate_key(c_major)[0] == "C:major"
    a_minor = pitch_class_histogram([57, 60, 64, 57, 59, 60, 62, 64, 65, 68, 57, 69, 64])
    assert estimate_key(a_minor)[0] == "A:minor"
    assert estimate_key(np.zeros(12)) == ("C:major", 0.0)


def test_model_errors(tmp_path, model_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelError, match="not a loadable"):
        load_model(junk)
    err = None
    try:
        load_model(junk)
    except ModelError as e:
        err = str(e)
    assert "\n" not in err
    onnx = pytest.importorskip("onnx")  # the training extra's: the wrong models below are written with it
    proto = onnx.load(str(model_path))
    for prop in proto.metadata_props:
        if prop.key == "livejam.format_version":
            prop.value = "999"
    wrong = tmp_path / "wrong.onnx"
    onnx.save(proto, str(wrong))
    with pytest.raises(ModelError, match="format version 999"):
        load_model(wrong)
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match="not a livejam model"):
        load_model(bare)


def test_rewind(model):
    ev = events(model.info.vocab, 60, seed=9)
    e = Engine(model, window=20)
    e.prefill(ev[:55])
    e.rewind(40)
    e.prefill(ev[39:])
    ref = Engine(model, window=20)
    ref.prefill(ev)
    np.testing.assert_allclose(e.h, ref.h, atol=1e-5)
    for t in events(model.info.vocab, 30, seed=10):
        e.feed(t)
        ref.feed(t)
    np.testing.assert_allclose(e.h, ref.h, atol=1e-5)
    np.testing.assert_array_equal(e.tokens(), ref.tokens())


def test_open_engine(model_path, tmp_path):
    from livejam.engine import open_engine

    e = open_engine(model_path)
    assert e.pos == 1 and e.model.providers[-1] == "CPUExecutionProvider"
    with pytest.raises(ModelError):
        open_engine(tmp_path / "missing.onnx")


def chord_tone_rate(model, harmony: float, n: int = 300) -> float:
    """Share of sampled note-ons (under a chord) whose pitch is a tone of the chord sampled with them."""
    e = Engine(model)
    sampler, notes = EventSampler(model.info.vocab), NoteTracker(model.info.vocab)
    rng = np.random.default_rng(11)
    c = Constraints(temperature=1.0, parts=(1,), harmony=harmony, max_polyphony=64)
    e.prefill(events(model.info.vocab, 20, seed=12))
    hits = total = 0
    for _ in range(n):
        row = sampler.sample(e, c, notes, rng)  # the same context each time: draws differ only by rng
        if row[4] > 0 and row[2] != NO_CHORD:
            total += 1
            hits += int(row[3]) % 12 in chord_tones(int(row[2]))
    assert total > 50
    return hits / total


def test_harmony_leans_note_ons_to_the_sampled_chord(model):
    off, on = chord_tone_rate(model, 0.0), chord_tone_rate(model, 1.0)
    assert off < 0.5 < on  # an untrained model: chance (3-4 of 12 pitch classes) without the lean


def test_a_given_chord_is_the_events_chord_and_sounding_notes_outside_it_lean_to_end(model):
    v = model.info.vocab
    e, sampler, notes = Engine(model), EventSampler(v), NoteTracker(v)
    rng = np.random.default_rng(5)
    e.prefill(events(v, 20, seed=13))
    c_major = chord_id(0, 0)
    for pitch in (61, 66):  # C# and F# sound in the machine's part: neither is a tone of C major
        notes.observe((1, 0, 0, pitch, 20, 0, 0))
    seen = []
    for harmony in (0.0, 1.0):
        ends = total = 0
        for _ in range(200):
            row = sampler.sample(e, Constraints(temperature=1.0, parts=(1,), harmony=harmony, max_polyphony=2),
                                 notes, rng, chord_for=lambda dt: c_major)
            assert row[2] == c_major  # the chord is given, never drawn
            total += 1
            ends += row[4] == 0  # polyphony full: only these two may end, so count how often one ends at all
        seen.append(ends / total)
    assert seen == [1.0, 1.0]  # full polyphony: every event is an end ...
    rates = []
    for harmony in (0.0, 1.0):
        hits = 0
        for _ in range(200):
            row = sampler.sample(e, Constraints(temperature=1.0, parts=(1,), harmony=harmony, max_polyphony=8),
                                 notes, rng, chord_for=lambda dt: c_major)
            hits += row[4] == 0 and int(row[3]) in (61, 66)
        rates.append(hits / 200)
    assert rates[1] > rates[0]  # ... and with room to play, the lean ends the off-chord notes more often


def sampled_onsets(model, grid: float, phase0: int | None, n: int = 300) -> list[int]:
    """Tick (from the first event's beat) of each of n events sampled and fed back in turn, as the
    performer does on a virtual clock; the beat phase is told the sampler when `phase0` is not None."""
    v = model.info.vocab
    e, sampler, notes = Engine(model), EventSampler(v), NoteTracker(v)
    rng = np.random.default_rng(5)
    tick, out = 0, []
    for _ in range(n):
        phase = None if phase0 is None else (phase0 + tick) % v.ticks_per_beat
        row = sampler.sample(e, Constraints(parts=(1,), grid=grid, beat_phase=phase, max_polyphony=64), notes, rng)
        tick += int(row[1])
        out.append(tick)
        e.feed(row)
        notes.observe(row)
    return out


def test_grid_leans_onsets_to_the_sixteenths_of_the_beat(model):
    tpb = model.info.vocab.ticks_per_beat

    def on_grid(ticks, phase0):
        return np.mean([(phase0 + t) % (tpb // 4) == 0 for t in ticks])

    for phase0 in (0, 1):  # the first event on a 16th, and one tick after it
        off = on_grid(sampled_onsets(model, 0.0, phase0), phase0)
        on = on_grid(sampled_onsets(model, 1.0, phase0), phase0)
        assert on > off + 0.2 and on > 0.8, (phase0, off, on)
    # free time (no beat phase): no grid to lean to, the same draws as without the control
    assert sampled_onsets(model, 1.0, None, 60) == sampled_onsets(model, 0.0, None, 60)


def test_grid_bias_favours_sixteenths_then_triplets():
    from livejam.engine.sampling import GRID_NATS, TRIPLET_SHARE, grid_bias
    from livejam.events import Vocab

    b = grid_bias(Vocab(), 1.0, 1)  # the last event one tick into its beat (12 ticks a beat)
    assert b[2] == b[5] == b[11] == GRID_NATS  # onsets on ticks 3, 6, 12 (the next beat)
    assert b[3] == b[7] == TRIPLET_SHARE * GRID_NATS  # ticks 4 and 8: 8th-note triplets
    assert b[0] == b[1] == b[4] == 0.0  # ticks 1, 2, 5: neither
    assert np.all(grid_bias(Vocab(), 0.0, 1) == 0.0)


# --- the fast paths keep the plain results -----------------------------------------------------

def plain_sample_logits(logits, allowed, temperature, top_p, min_p, rng):
    """The sampler as first written (np.* calls, nan_to_num every time): the reference of the fast one."""
    idx = np.flatnonzero(allowed)
    z = np.nan_to_num(logits[idx].astype(np.float64), nan=-1e30, posinf=1e30, neginf=-1e30)
    best = int(np.argmax(z))
    if temperature <= 0.0 or len(idx) == 1:
        return int(idx[best])
    p = np.exp((z - z[best]) / temperature)
    if min_p > 0.0:
        p[p < min_p] = 0.0
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        c = np.cumsum(p[order])
        keep = int(np.searchsorted(c, top_p * c[-1])) + 1
        p[order[keep:]] = 0.0
    c = np.cumsum(p)
    if not c[-1] > 0.0:
        return int(idx[best])
    j = int(np.searchsorted(c, rng.random() * c[-1], side="right"))
    return int(idx[min(j, len(idx) - 1)])


def test_sample_logits_draws_as_the_plain_version():
    gen = np.random.default_rng(3)
    for trial in range(3000):
        n = int(gen.choice([2, 3, 33, 97, 128, 181]))
        lg = (gen.standard_normal(n) * gen.choice([0.1, 2.0, 30.0])).astype(np.float32)
        if trial % 7 == 0:
            lg[gen.integers(0, n, 2)] = gen.choice([np.nan, np.inf, -np.inf])
        if trial % 11 == 0:
            lg[:] = lg[0]  # ties everywhere
        allowed = gen.random(n) < gen.choice([0.05, 0.5, 1.0])
        allowed[gen.integers(0, n)] = True
        args = (float(gen.choice([0.0, 0.3, 1.0, 2.0])), float(gen.choice([1.0, 0.95, 0.5])),
                float(gen.choice([0.0, 0.05])))
        seed = int(gen.integers(1 << 30))
        ra, rb = np.random.default_rng(seed), np.random.default_rng(seed)
        assert sample_logits(lg, allowed, *args, ra) == plain_sample_logits(lg, allowed, *args, rb), trial
        assert ra.random() == rb.random()  # the same number of draws
        if allowed.all():
            rc = np.random.default_rng(seed)
            assert sample_logits(lg, None, *args, rc) == plain_sample_logits(lg, allowed, *args, np.random.default_rng(seed))


def test_heads_bound_once_equal_plain_runs(model):
    """engine.logits runs each head graph on bound buffers: the same numbers as a run with a feed dict."""
    e = Engine(model)
    ev = events(model.info.vocab, 30, seed=4)
    for t in ev:
        e.feed(t)
        cond = t[list(COND_COLUMNS)]
        for k, sess in enumerate(model.heads):
            feed = {"h": e.h.copy()}
            if k:
                feed["cond"] = np.ascontiguousarray(cond[None, :COND_COUNTS[k]])
            ref = sess.run(None, feed)[0][0]
            np.testing.assert_array_equal(e.logits(k, cond), ref)


def test_live_context_cap(model):
    """Engine(context=N) swaps at N events (window kept) and stays equal to a fresh prefill of its events."""
    L = 40
    ev = events(model.info.vocab, 200, seed=13)
    e = Engine(model, context=L, window=16, defer_shadow=True)
    assert e.window == 16 and e.max_len == model.info.max_len > L
    for i, t in enumerate(ev):
        e.feed(t)
        if i % 2:
            e.idle(max_steps=1)
        assert 1 <= e.pos <= L
    assert e.swaps >= 4
    ctx = e.tokens().copy()
    np.testing.assert_array_equal(ctx[1:], ev[-(len(ctx) - 1):])
    fresh = Engine(model)
    fresh.reset(start=False)
    fresh.prefill(ctx)
    np.testing.assert_allclose(e.h, fresh.h, atol=1e-5)
    assert Engine(model, context=L).window == L // 2
    for bad in (2, model.info.max_len + 1):
        with pytest.raises(ValueError):
            Engine(model, context=bad)


def test_open_engine_caps_the_live_context(model_path):
    from livejam.engine import LIVE_CONTEXT, live_context, open_engine

    e = open_engine(model_path)
    assert e.context == min(e.max_len, LIVE_CONTEXT) and e.window == e.context // 2
    assert open_engine(model_path, context=32).context == 32
    assert live_context(1024) == LIVE_CONTEXT and live_context(256) == 256 and live_context(1024, 300) == 300


class CountingEngine:
    """An Engine that counts the head runs the sampler asks for."""

    def __init__(self, engine):
        self.engine, self.calls = engine, []

    def logits(self, k, cond=None):
        self.calls.append(k)
        return self.engine.logits(k, cond)


def test_a_field_with_one_choice_runs_no_head(model):
    v = model.info.vocab
    e = CountingEngine(Engine(model))
    sampler, notes = EventSampler(v), NoteTracker(v)
    rng = np.random.default_rng(2)
    c = Constraints(parts=(1,), max_polyphony=1)  # one part; one sounding note: the next is its note-off
    offs = 0
    for _ in range(60):
        e.calls.clear()
        row = sampler.sample(e, c, notes, rng)
        assert 0 not in e.calls  # the part is given
        if notes.count(1) == 1:  # the only choice: end the sounding note, velocity 0
            assert row[4] == 0 and 4 not in e.calls
            offs += 1
        e.engine.feed(row)
        notes.observe(row)
    assert offs > 10


def test_estimate_key_matches_pearson_correlations():
    """The 24 correlations in one product: the same key and r as np.corrcoef per rotated profile."""
    from livejam.engine.keys import KK_MAJOR, KK_MINOR, NOTE_NAMES

    rng = np.random.default_rng(0)
    for _ in range(500):
        hist = rng.poisson(rng.uniform(0.2, 5), 12).astype(float)
        if hist.sum() <= 0 or np.allclose(hist, hist[0]):
            continue
        rs = {f"{NOTE_NAMES[t]}:{mode}": float(np.corrcoef(hist, np.roll(prof, t))[0, 1])
              for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)) for t in range(12)}
        key, r = estimate_key(hist)
        assert r == pytest.approx(max(rs.values()), abs=1e-12)
        assert rs[key] == pytest.approx(r, abs=1e-12)  # the best (an exact tie may name either)


def test_deferred_rows_run_as_one_prefill_at_the_next_use(model):
    """defer() queues rows; any use runs them first, with the state of feeding them one by one."""
    ev = events(model.info.vocab, 60, seed=14)
    a, b = Engine(model, context=40, window=16), Engine(model, context=40, window=16)
    for i, t in enumerate(ev):
        a.feed(t)
        b.defer(t)
        if i % 7 == 6:  # a burst of 7, then a read
            assert b.queued == 7
            for k in range(len(FIELDS)):
                np.testing.assert_allclose(b.logits(k, t[list(COND_COLUMNS)]), a.logits(k, t[list(COND_COLUMNS)]),
                                           atol=1e-4)
            assert b.queued == 0
    assert b.queued == 60 % 7 and b.pos == a.pos and b.queued == 0  # pos runs the queue too
    np.testing.assert_array_equal(b.tokens(), a.tokens())
    assert a.swaps >= 1 and b.swaps >= 1  # the bursts crossed the context-full boundary
    np.testing.assert_allclose(b.h, a.h, atol=1e-5)
    b.defer(ev[0])
    b.reset()
    assert b.queued == 0 and b.pos == 1


class CountingRuns:
    """Counts backbone runs (steps, chunks, shadow steps) through the session both contexts share."""

    def __init__(self, engine, monkeypatch):
        self.runs = 0
        sess = engine.model.backbone
        run = sess.run_with_iobinding

        def counted(binding, *a):
            self.runs += 1
            return run(binding, *a)

        monkeypatch.setattr(sess, "run_with_iobinding", counted)


@pytest.mark.parametrize("defer", [False, True])
def test_the_pair_step_keeps_both_contexts_as_single_steps_do(model, defer):
    """A batched backbone steps the main context and its shadow in one run (B = 2); the state and
    every head's logits stay those of single steps (an older file with B fixed at 1), across swaps."""
    assert model.batched, "the committed tiny model is exported with a symbolic batch"
    ev = events(model.info.vocab, 300, seed=21)
    paired = Engine(model, context=64, window=32, defer_shadow=defer)
    single = Engine(dataclasses.replace(model, batched=False), context=64, window=32, defer_shadow=defer)
    assert paired._pair is not None and single._pair is None
    for i, t in enumerate(ev):
        for e in (paired, single):
            e.feed(t)
            if defer and i % 5 == 0:
                e.idle()
        np.testing.assert_allclose(paired.h, single.h, atol=1e-5)
    assert paired.swaps == single.swaps >= 4
    np.testing.assert_array_equal(paired.tokens(), single.tokens())
    for la, lb in zip(all_logits(paired, ev[0]), all_logits(single, ev[0])):
        np.testing.assert_allclose(la, lb, atol=1e-4)


def test_no_feed_runs_the_backbone_more_than_twice(model, monkeypatch):
    """Without idle() between feeds (dense playing), the shadow's upkeep is spread one step per feed
    and the swap folds the last row into its own run: every feed is one or two runs, never three. Once
    the shadow has opened, a feed steps both contexts in one run (the pair step): two runs only for
    the feed that opens the shadow, once a swap."""
    ev = events(model.info.vocab, 400, seed=15)
    e = Engine(model, context=64, window=32, defer_shadow=True)
    count = CountingRuns(e, monkeypatch)
    most = twice = 0
    for t in ev:
        count.runs = 0
        e.feed(t)
        most = max(most, count.runs)
        twice += count.runs == 2
    assert most == 2 and e.swaps >= 10 and twice <= e.swaps + 1
    ctx = e.tokens().copy()
    fresh = Engine(model)
    fresh.reset(start=False)
    fresh.prefill(ctx)
    np.testing.assert_allclose(e.h, fresh.h, atol=1e-5)
    for t in ev[:100]:  # with idle() between feeds (the performer waiting), one run each
        e.idle(max_steps=4)
        count.runs = 0
        e.feed(t)
        assert count.runs == 1
