"""Generator and dubbing plumbing with tiny untrained models: every input size, output length = audio length,
frames without a face untouched, photo input, and each bad input a clear error with nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synclip import audio as A
from synclip import media
from synclip.dub import DubOptions, dub_video, pingpong
from synclip.errors import InputError, MediaError, NoFaceError
from synclip.infer import LipSyncInference
from synclip.models.generator import Discriminator, Generator, GeneratorDims


@pytest.mark.parametrize("size", [96, 128, 192, 256])
def test_generator_and_discriminator_shapes(size):
    g = Generator(GeneratorDims(input_size=size, base_channels=4))
    out = g(torch.rand(2, 6, size, size), torch.rand(2, A.MEL_WINDOW, A.N_MELS))
    assert out.shape == (2, 3, size, size) and 0 <= out.min() and out.max() <= 1
    d = Discriminator(size, 4)
    assert d(out).shape[0] == 2


@pytest.mark.parametrize("size", [96, 128, 192, 256])
def test_lower_half_decoder_draws_what_the_full_one_draws(size, monkeypatch):
    """The finest decoder stages skip the upper half: the output must equal the whole-map computation, and the
    upper half must be the target's own pixels."""
    import synclip.models.generator as G

    torch.manual_seed(0)
    g = Generator(GeneratorDims(input_size=size, base_channels=4)).eval()
    faces, audio = torch.rand(2, 6, size, size), torch.rand(2, A.MEL_WINDOW, A.N_MELS)
    with torch.no_grad():
        fast = g(faces, audio)
        monkeypatch.setattr(G, "LOWER_ONLY_STAGES", 0)
        full = g(faces, audio)
    assert torch.allclose(fast, full, atol=1e-6)
    assert torch.equal(fast[:, :, : size // 2], faces[:, :3, : size // 2])


def test_pingpong_goes_forward_then_back():
    assert [pingpong(t, 4) for t in range(10)] == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert [pingpong(t, 1) for t in range(3)] == [0, 0, 0]


@pytest.fixture(scope="module")
def gen_model(tiny_generator):
    return LipSyncInference(tiny_generator, device="cpu")


def test_dub_lasts_as_long_as_the_audio(gen_model, synth_dir, tmp_path):
    video = synth_dir / "videos" / "synth_0000.mp4"  # 2 s
    speech = media.read_audio(synth_dir / "audios" / "synth_0001.wav")
    long_audio = tmp_path / "long.wav"
    media.write_wav(long_audio, np.concatenate([speech, speech[:8000]]))  # 2.5 s: the video must bounce back
    out = tmp_path / "dub.mp4"
    ok, _ = gen_model.sync_video_audio(video, long_audio, out)  # a generator checkpoint: "generate" by default
    assert ok
    info = media.probe_video(out)
    assert info.num_frames == int(np.ceil(2.5 * 25))
    assert abs(len(media.read_audio(out)) - 40000) <= 1024
    # The upper half of the face is never redrawn: it matches the source frame the output came from.
    src = list(media.iter_frames(video))
    outs = list(media.iter_frames(out))
    for t in (5, 55):  # forward, then bouncing back (frame 55 shows source frame 43)
        s = src[pingpong(t, len(src))]
        assert np.abs(outs[t][:60].astype(int) - s[:60].astype(int)).mean() < 4


def test_frames_without_a_face_pass_through(gen_model, synth_dir, tmp_path):
    frames = list(media.iter_frames(synth_dir / "videos" / "synth_0002.mp4"))
    h, w = frames[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    noise = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (w + h)], -1).astype(np.uint8)  # no face
    mixed = frames[:25] + [noise] * 25
    video = tmp_path / "mixed.mp4"
    media.write_video(video, mixed, audio=media.read_audio(synth_dir / "audios" / "synth_0002.wav"), crf=0)
    out = tmp_path / "out.mp4"
    gen_model.sync_video_audio(video, synth_dir / "audios" / "synth_0003.wav", out)
    got = list(media.iter_frames(out))
    assert np.abs(got[40].astype(int) - noise.astype(int)).mean() < 6  # untouched (up to re-encoding)


def test_photo_is_animated(gen_model, synth_dir, tmp_path):
    import cv2

    frame = next(media.iter_frames(synth_dir / "videos" / "synth_0004.mp4"))
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    out = tmp_path / "photo.mp4"
    ok, _ = gen_model.sync_video_audio(photo, synth_dir / "audios" / "synth_0004.wav", out)
    assert ok and media.probe_video(out).num_frames == 50


def test_bad_inputs_are_clear_errors_and_leave_nothing(gen_model, synth_dir, tmp_path):
    video = synth_dir / "videos" / "synth_0005.mp4"
    silent = tmp_path / "silent.wav"
    media.write_wav(silent, np.zeros(32000, np.float32))
    with pytest.raises(MediaError, match="no sound"):
        gen_model.sync_video_audio(video, silent, tmp_path / "a.mp4")
    rng = np.random.default_rng(1)
    noface = tmp_path / "noface.png"
    import cv2

    cv2.imwrite(str(noface), rng.integers(0, 255, (120, 120, 3), dtype=np.uint8))
    with pytest.raises(NoFaceError, match="noface.png"):
        dub_video(gen_model.generator, noface, synth_dir / "audios" / "synth_0005.wav", tmp_path / "b.mp4")
    with pytest.raises(MediaError, match="does not exist"):
        dub_video(gen_model.generator, video, synth_dir / "audios" / "synth_0005.wav", tmp_path / "missing" / "c.mp4")
    with pytest.raises(InputError, match="presenter model"):  # a presenter's option, not silently ignored
        dub_video(gen_model.generator, video, synth_dir / "audios" / "synth_0005.wav", tmp_path / "d.mp4",
                  opts=DubOptions(mouth_motion=1.5))
    with pytest.raises(InputError, match="out of range"):
        DubOptions(mouth_motion=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noface.png", "silent.wav"]
    ok, _ = gen_model.sync_video_audio(video, silent, tmp_path / "quiet.mp4", options=DubOptions(allow_silence=True))
    assert ok


def test_resize_static_and_box_options(gen_model, synth_dir, tmp_path):
    from synclip.dub import FrameSource
    from synclip.face import square_boxes

    video, speech = synth_dir / "videos" / "synth_0006.mp4", synth_dir / "audios" / "synth_0006.wav"
    info = media.probe_video(video)
    nopad = (0, 0, 0, 0)  # pads are in output pixels, so they would not halve
    found = (gen_model.data_cfg, gen_model.detector)
    full = FrameSource(video, DubOptions(pads=nopad), *found).squares
    half = FrameSource(video, DubOptions(pads=nopad, resize_factor=2), *found).squares
    assert np.isfinite(full).all() and np.abs(half - full / 2).max() < 1.0  # the same face, in halved pixels
    out = tmp_path / "half.mp4"
    gen_model.sync_video_audio(video, speech, out, options=DubOptions(resize_factor=2))
    small = media.probe_video(out)
    assert (small.width, small.height) == (info.width // 4 * 2, info.height // 4 * 2)
    still = FrameSource(video, DubOptions(pads=nopad, static=True), *found)
    assert still.n == 1 and np.allclose(still.squares[0], full[0], atol=0.03 * full[0, 2])  # unsmoothed: close
    box = (40, 50, 140, 150)
    fixed = FrameSource(video, DubOptions(pads=nopad, box=box), *found).squares
    expected = square_boxes(np.asarray([box], np.float64), gen_model.data_cfg.face_pad, None)[0]
    assert fixed.shape == (info.num_frames, 3) and np.allclose(fixed, expected)


def test_prefetched_keeps_order_raises_in_the_caller_and_stops_when_closed():
    import threading

    from synclip.background import prefetched

    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise OSError("decoder died")

    it = prefetched(broken())
    assert next(it) == 1
    with pytest.raises(OSError, match="decoder died"):
        next(it)

    before = set(threading.enumerate())
    endless = prefetched(iter(int, 1), depth=2)  # never ends by itself
    next(endless)
    started = [t for t in threading.enumerate() if t not in before and t.name == "synclip-decode"]
    endless.close()
    assert len(started) == 1 and not started[0].is_alive()
