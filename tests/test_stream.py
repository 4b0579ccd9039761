"""Streaming dub: the same frames as offline dubbing, drawn as the audio arrives, to a growing mp4 and an iterator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synclip import audio as A
from synclip import dub, media
from synclip.config import DataConfig
from synclip.dub import DubOptions, dub_video
from synclip.models.generator import Generator, GeneratorDims
from synclip.stream import LOOKAHEAD_MS, MelStream, Streamer, pcm_chunks, samples_needed


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    g = Generator(GeneratorDims(input_size=96, base_channels=4)).eval()
    for p in g.parameters():  # untrained weights draw near-constant crops; spread them so pixels depend on audio
        p.data.mul_(3.0)
    return g


class _Capture:
    """Stands in for media.VideoWriter: keeps the raw frames dub_video writes, before any encoding."""

    frames: list[np.ndarray] = []

    def __init__(self, path, width, height, **kw):
        _Capture.frames = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, frame):
        _Capture.frames.append(frame.copy())

    def close(self, audio=None, sample_rate=None):
        pass


def offline_frames(generator, video, audio, monkeypatch, tmp_path, detector) -> list[np.ndarray]:
    monkeypatch.setattr(dub.media, "VideoWriter", _Capture)
    dub_video(generator, video, audio, tmp_path / "offline.mp4", detector=detector)
    monkeypatch.undo()
    return _Capture.frames


def test_mel_rows_arrive_equal_to_the_whole_file_transform():
    rng = np.random.default_rng(3)
    wav = (rng.standard_normal(9000) * 0.2).astype(np.float32)  # 14.06 frames: ends mid-frame
    mel = MelStream()
    for piece in np.array_split(wav, [1, 700, 701, 3333, 8000]):  # odd sizes, an empty one
        mel.push(piece)
    frames = mel.finish()
    whole = A.log_mel(A.fit_to_frames(wav, frames))
    assert frames == 15 and mel.next_row == len(whole)
    assert torch.equal(mel.rows, whole)


def test_lookahead_is_what_the_window_reads():
    assert LOOKAHEAD_MS == 117.5
    # frame 10's window: mel rows round(3.2 * 8) = 26 .. 41; row 41 reads samples up to 41 * 200 + 400
    assert samples_needed(10) == 41 * 200 + 400


def test_stream_equals_offline_dub_frame_for_frame(generator, synth_dir, tmp_path, monkeypatch, detector):
    video, audio = synth_dir / "videos" / "synth_0000.mp4", synth_dir / "audios" / "synth_0001.wav"
    speech = media.read_audio(audio)
    wav = np.concatenate([speech, speech[:9000]])  # longer than the 2-s video (it bounces back), ends mid-frame
    path = tmp_path / "long.wav"
    media.write_wav(path, wav)
    wav = media.read_audio(path)
    want = offline_frames(generator, video, path, monkeypatch, tmp_path, detector)
    peak = float(A.log_mel(A.fit_to_frames(wav, len(want))).max())

    streamer = Streamer(generator, video, detector=detector, peak_db=peak)
    chunks = np.array_split(wav, np.arange(320, len(wav), 320))  # 20 ms pieces
    got = []
    for chunk in chunks:
        for f in streamer.push(chunk):
            assert f.needs_samples <= streamer.mel.received  # never drawn before its audio was there
            got.append(f)
    got += streamer.finish()
    assert [f.index for f in got] == list(range(len(want))) and len(want) == int(np.ceil(len(wav) / 640))
    diff = [np.abs(f.image.astype(int) - w.astype(int)).max() for f, w in zip(got, want)]
    assert max(diff) <= 1  # float rounding across batch shapes, at most one grey level
    assert all(f.face for f in got)
    assert np.array_equal(np.concatenate([f.audio for f in got])[:len(wav)], wav)
    moving = np.abs(want[10].astype(int) - want[30].astype(int))[120:].mean()
    assert moving > 0.5  # the frames do differ with the audio, so equality means something

    # Live scaling (the loudest level so far): from the clip's loudest row on, frames are the offline ones.
    live = list(Streamer(generator, video, detector=detector)(chunks))
    rows = A.log_mel(A.fit_to_frames(wav, len(want))).max(1).values
    loudest = int(rows.argmax())
    after = [f for f in live if A.mel_start(f.index - 2) > loudest]
    assert len(after) > 20
    assert max(np.abs(f.image.astype(int) - want[f.index].astype(int)).max() for f in after) <= 1


def test_photo_stream_and_pcm_from_a_pipe(generator, synth_dir, detector):
    import io

    import cv2

    frame = next(media.iter_frames(synth_dir / "videos" / "synth_0004.mp4"))
    photo = synth_dir.parent / "stream_face.png"
    cv2.imwrite(str(photo), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    wav = media.read_audio(synth_dir / "audios" / "synth_0004.wav")[:16000]
    pcm = io.BytesIO((np.clip(wav, -1, 1) * 32767).astype("<i2").tobytes() + b"\x01")  # a stray odd byte
    chunks = list(pcm_chunks(pcm, 640))
    assert sum(len(c) for c in chunks) == 16000
    frames = list(Streamer(generator, photo, detector=detector, data=DataConfig())(chunks))
    assert len(frames) == 25 and frames[0].image.shape == frame.shape


def test_growing_mp4_plays_while_written(generator, synth_dir, tmp_path, detector):
    from synclip.writer import GrowingWriter

    video, audio = synth_dir / "videos" / "synth_0002.mp4", synth_dir / "audios" / "synth_0002.wav"
    wav = media.read_audio(audio)
    out = tmp_path / "live.mp4"
    streamer = Streamer(generator, video, detector=detector, opts=DubOptions())
    with GrowingWriter(out, *streamer.size) as writer:
        for f in streamer(np.array_split(wav, np.arange(640, len(wav), 640))):
            writer.write(f.image, f.audio)
            if f.index == 37:  # 1.5 s in, still writing: the first second's fragment is on disk and plays
                assert out.exists()
                assert len(list(media.iter_frames(out))) >= 25
    info = media.probe_video(out)
    assert info.num_frames == 50 and info.has_audio
    assert abs(len(media.read_audio(out)) - len(wav)) <= 1024


def test_paced_source_keeps_real_time():
    import time

    from synclip.stream import paced

    wav = np.zeros(4000, np.float32)  # 250 ms
    t0 = time.perf_counter()
    got = list(paced(wav, 800))
    assert time.perf_counter() - t0 >= 0.24
    dues = [t for _, t in got]
    assert np.allclose(np.diff(dues), 0.05, atol=1e-6) and sum(len(p) for p, _ in got) == 4000


def test_cli_and_api_stream(generator, synth_dir, tmp_path, monkeypatch):
    import io
    import sys

    from synclip.checkpoint import save_checkpoint
    from synclip.cli import main
    from synclip.config import load_config
    from synclip.infer import LipSyncInference
    from synclip.models.syncnet import SyncDims, SyncExpert

    sd = SyncDims(input_size=96, hidden_dim=16, num_layers=2, base_channels=4)
    ck = tmp_path / "gen.pth"
    save_checkpoint(ck, kind="generator", config=load_config(None).to_dict(), dims=generator.dims.to_dict(),
                    state_dict=generator.state_dict(),
                    extra={"expert": {"dims": sd.to_dict(), "state_dict": SyncExpert(sd).state_dict()}})
    video, audio = synth_dir / "videos" / "synth_0003.mp4", synth_dir / "audios" / "synth_0003.wav"
    out = tmp_path / "file.mp4"
    assert main(["stream", "--checkpoint", str(ck), "--video", str(video), "--audio", str(audio), "--out", str(out),
                 "--fast", "--quiet"]) == 0
    assert media.probe_video(out).num_frames == 50

    wav = media.read_audio(audio)[:12800]  # 0.8 s as raw PCM on stdin
    pcm = (wav * 32767).astype("<i2").tobytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(pcm)))
    piped = tmp_path / "pipe.mp4"
    assert main(["stream", "--checkpoint", str(ck), "--video", str(video), "--audio", "-", "--out", str(piped),
                 "--quiet"]) == 0
    assert media.probe_video(piped).num_frames == 20

    model = LipSyncInference(ck, device="cpu")
    frames = list(model.stream(video, np.array_split(wav, 10)))
    assert [f.index for f in frames] == list(range(20)) and frames[0].image.shape[2] == 3


def test_background_sink_writes_every_frame_in_order_and_reports_a_failure():
    import threading

    from synclip.background import BackgroundSink

    written, threads = [], set()

    def write(frame):
        threads.add(threading.current_thread().name)
        written.append(frame)

    with BackgroundSink(write, depth=2) as sink:
        for k in range(20):
            sink(k)
    assert written == list(range(20)) and threads == {"synclip-sink"}  # all of them, in order, off the caller

    def broken(frame):
        raise OSError("disk full")

    sink = BackgroundSink(broken)
    sink(0)
    with pytest.raises(OSError, match="disk full"):
        sink.close()
