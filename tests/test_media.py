"""Tests for synclip.media on synthetic media made in tmp_path (plus real clips when present)."""

from __future__ import annotations

import math
import os
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from synclip.errors import MediaError, NoAudioError
from synclip.media import (
    VideoWriter,
    iter_frames,
    probe_video,
    read_audio,
    read_image,
    write_video,
    write_wav,
)

SR = 16000
BITS = 8  # frame index is stamped as 8 black/white blocks: survives lossy coding exactly
BLOCK = 24
REAL = Path(__file__).resolve().parents[2] / "shared/data/real"


def stamped(index: int, width: int = BITS * BLOCK, height: int = 64) -> np.ndarray:
    """A frame whose top half encodes ``index`` in binary; a square moves in the bottom half."""
    img = np.full((height, width, 3), 40, np.uint8)
    for bit in range(BITS):
        if index >> bit & 1:
            img[: height // 2, bit * BLOCK : (bit + 1) * BLOCK] = 230
    x = (index * 3) % (width - 8)
    img[height // 2 + 4 : height // 2 + 12, x : x + 8] = (200, 30, 30)
    return img


def read_stamp(img: np.ndarray) -> int:
    half = img.shape[0] // 2
    bits = [img[4 : half - 4, b * BLOCK + 4 : (b + 1) * BLOCK - 4].mean() > 135 for b in range(BITS)]
    return sum(1 << b for b, on in enumerate(bits) if on)


def tone(freq_hz: float, seconds: float, rate: int = SR, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq_hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def peak_hz(audio: np.ndarray, rate: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.argmax(spectrum) * rate / audio.size)


def encode(path: Path, codec: str, frames: list[np.ndarray], fps: int = 25, rotation: int = 0,
           audio: np.ndarray | None = None, **options) -> Path:
    """Encode with PyAV directly, for codecs and containers VideoWriter does not make."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {k.replace("_", "-"): str(v) for k, v in options.items()}
        if rotation:
            stream.set_display_rotation(rotation)
        if audio is not None:  # every stream must exist before the first mux writes the header
            sound = out.add_stream("aac", rate=SR, layout="mono")
            frame = av.AudioFrame.from_ndarray(audio[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SR, 0, Fraction(1, SR)
            for packet in [*sound.encode(frame), *sound.encode(None)]:
                out.mux(packet)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def encode_audio(path: Path, codec: str, audio: np.ndarray, rate: int, layout: str = "stereo") -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        channels = np.repeat(audio[None, :], 2 if layout == "stereo" else 1, axis=0)
        frame = av.AudioFrame.from_ndarray(channels.astype(np.float32), format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_write_read_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    audio = tone(440.0, 2.0)
    assert write_video(path, (stamped(i) for i in range(50)), audio=audio) == 50
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]  # temp files are gone

    info = probe_video(path)
    assert (info.width, info.height, info.codec, info.has_audio, info.rotation) == (192, 64, "h264", True, 0)
    assert info.fps == 25.0 and abs(info.duration_s - 2.0) < 0.04 and info.num_frames == 50

    frames = list(iter_frames(path))
    assert len(frames) == info.num_frames
    assert frames[0].shape == (64, 192, 3) and frames[0].dtype == np.uint8
    assert [read_stamp(f) for f in frames] == list(range(50))  # 25 -> 25 fps: each frame once

    back = read_audio(path)
    assert back.dtype == np.float32 and back.ndim == 1
    assert 0 <= back.size - audio.size <= 1024  # AAC pads the last frame; priming is dropped
    back = back[: audio.size]
    assert abs(peak_hz(back) - 440.0) < 2.0
    # AAC at 128 kb/s keeps a pure tone nearly intact (after its ~0 ms alignment).
    assert np.corrcoef(back[1000:-1000], audio[1000:-1000])[0, 1] > 0.99


def test_resample_30fps_to_25_is_nearest_previous(tmp_path: Path) -> None:
    path = tmp_path / "src30.mp4"
    write_video(path, (stamped(i) for i in range(60)), fps=30)  # 2 s
    info = probe_video(path)
    assert info.fps == 30.0 and info.num_frames == 50
    got = [read_stamp(f) for f in iter_frames(path)]
    # Tick k at k/25 s shows source frame floor(k * 30 / 25): the one on screen at that time.
    assert got == [math.floor(k * 30 / 25) for k in range(50)]
    assert [read_stamp(f) for f in iter_frames(path, fps=30)] == list(range(60))
    assert [read_stamp(f) for f in iter_frames(path, fps=50)] == [math.floor(k * 30 / 50) for k in range(100)]


def test_resize_and_repeats_are_independent(tmp_path: Path) -> None:
    path = tmp_path / "src10.mp4"
    write_video(path, (stamped(i) for i in range(10)), fps=10)
    frames = list(iter_frames(path, size=(96, 32)))
    assert len(frames) == 25 and all(f.shape == (32, 96, 3) for f in frames)
    frames[0][:] = 0  # repeated ticks of one source frame must not share memory
    assert frames[1].max() > 0


@pytest.mark.parametrize(
    "name, codec, options",
    [
        ("c.mkv", "libx264", {}),
        ("c.mov", "libx264", {}),
        ("c.avi", "mpeg4", {"qscale": 2}),
        ("c.webm", "libvpx", {"deadline": "realtime", "crf": 10, "b": "1M"}),
        ("c.mp4", "libx265", {"preset": "ultrafast", "x265_params": "log-level=none"}),
    ],
)
def test_containers_and_codecs(tmp_path: Path, name: str, codec: str, options: dict) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    path = encode(tmp_path / name, codec, [stamped(i) for i in range(20)], **options)
    info = probe_video(path)
    assert info.num_frames == 20 and abs(info.duration_s - 0.8) < 1e-6
    assert [read_stamp(f) for f in iter_frames(path)] == list(range(20))


def test_mkv_with_longer_audio_counts_video_only(tmp_path: Path) -> None:
    # mkv gives no per-stream duration and the container's spans the 2 s of audio: the
    # video's own length (0.8 s) must come from its packet timestamps instead.
    path = encode(tmp_path / "a.mkv", "libx264", [stamped(i) for i in range(20)], audio=tone(440.0, 2.0))
    info = probe_video(path)
    assert info.has_audio and info.num_frames == 20 and abs(info.duration_s - 0.8) < 1e-6
    assert [read_stamp(f) for f in iter_frames(path)] == list(range(20))
    assert abs(read_audio(path).size - 2 * SR) <= 1024


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    img = np.zeros((32, 64, 3), np.uint8)
    img[:8, :8] = 255  # marker top-left of the stored picture
    path = encode(tmp_path / "rot.mp4", "libx264", [img] * 5, rotation=90)
    info = probe_video(path)
    assert (info.rotation, info.width, info.height) == (90, 32, 64)
    frame = next(iter_frames(path))
    # 90 degrees counter-clockwise carries the top-left corner to the bottom-left.
    assert frame.shape == (64, 32, 3) and frame[-8:, :8].mean() > 200 and frame[:8, :8].mean() < 50
    assert next(iter_frames(path, size=(16, 32))).shape == (32, 16, 3)


@pytest.mark.parametrize(
    "name, codec, rate",
    [("a.mp3", "libmp3lame", 44100), ("a.m4a", "aac", 44100), ("a.flac", "flac", 48000), ("a.ogg", "libopus", 48000)],
)
def test_read_audio_files(tmp_path: Path, name: str, codec: str, rate: int) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    path = encode_audio(tmp_path / name, codec, tone(1000.0, 1.5, rate), rate)
    audio = read_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - int(1.5 * SR)) < 2000
    assert abs(peak_hz(audio) - 1000.0) < 2.0
    # Both channels carry the 0.5 tone: an average keeps 0.5 (a -3 dB sum would give 0.71).
    assert 0.45 < np.abs(audio[2000:-2000]).max() < 0.55


def test_write_wav_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    audio = tone(300.0, 0.5, amp=0.9)
    audio[0], audio[1] = 1.5, -1.5  # out of range: clipped, not wrapped
    write_wav(path, audio)
    assert os.listdir(tmp_path) == ["t.wav"]
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SR)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert pcm[0] == 32767 and pcm[1] == -32767
    np.testing.assert_array_equal(pcm[2:], np.round(audio[2:] * 32767).astype(np.int16))
    back = read_audio(path)
    # FFmpeg reads s16 back as pcm / 32768 (we wrote x * 32767): 3e-5 relative plus rounding.
    np.testing.assert_allclose(back, np.clip(audio, -1, 1), atol=1e-4)


def test_read_image(tmp_path: Path) -> None:
    import cv2

    img = stamped(5)
    cv2.imwrite(str(tmp_path / "i.png"), img[:, :, ::-1])
    np.testing.assert_array_equal(read_image(tmp_path / "i.png"), img)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(MediaError, match="bad.png"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(MediaError, match="not found"):
        read_image(tmp_path / "none.png")


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    (tmp_path / "noise.mp3").write_bytes(np.random.default_rng(0).bytes(30000))
    cases = {"missing.mp4": "not found", "empty.mp4": "empty", "text.mp4": "not a readable",
             "noise.mp3": "not a readable"}
    for name, words in cases.items():
        for reader in (probe_video, iter_frames, read_audio):
            with pytest.raises(MediaError, match=words) as err:
                reader(tmp_path / name)
            assert name in str(err.value) and err.value.fix


def test_damaged_mp3(tmp_path: Path) -> None:
    good = encode_audio(tmp_path / "full.mp3", "libmp3lame", tone(1000.0, 3.0, 44100), 44100).read_bytes()
    (tmp_path / "half.mp3").write_bytes(good[: len(good) // 2])
    assert abs(read_audio(tmp_path / "half.mp3").size - 1.5 * SR) < 2000  # what is there is kept
    (tmp_path / "garbled.mp3").write_bytes(good[:600] + np.random.default_rng(2).bytes(20000))
    with pytest.raises(MediaError, match="garbled.mp3"):
        read_audio(tmp_path / "garbled.mp3")


def test_missing_streams(tmp_path: Path) -> None:
    silent = tmp_path / "silent.mp4"
    write_video(silent, [stamped(i) for i in range(5)])
    with pytest.raises(NoAudioError, match="no audio track") as err:
        read_audio(silent)
    assert "--audio" in err.value.fix
    sound = encode_audio(tmp_path / "sound.m4a", "aac", tone(440.0, 0.5), SR, layout="mono")
    with pytest.raises(MediaError, match="no video stream"):
        probe_video(sound)
    with pytest.raises(MediaError, match="no video stream"):
        iter_frames(sound)


def test_damaged_video_never_hangs(tmp_path: Path) -> None:
    path = encode(tmp_path / "d.mkv", "libx264", [stamped(i) for i in range(40)])
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = np.random.default_rng(1).bytes(400)
    path.write_bytes(bytes(data))
    try:
        frames = list(iter_frames(path))
    except MediaError:
        return
    assert 0 < len(frames) <= 41


def test_writer_into_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "out.mp4"
    with pytest.raises(MediaError, match="does not exist") as err:
        VideoWriter(target, 64, 64)
    assert "nope" in str(err.value) and "mkdir" in err.value.fix
    with pytest.raises(MediaError):
        write_wav(target.with_suffix(".wav"), tone(100.0, 0.1))
    assert os.listdir(tmp_path) == []


def test_writer_exception_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(target, 64, 48) as writer:
            for i in range(10):
                writer.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="no frames"):
        with VideoWriter(target, 64, 48) as writer:
            pass
    with pytest.raises(ValueError, match=r"\(48, 64, 3\) uint8"):
        with VideoWriter(target, 64, 48) as writer:
            writer.write(np.zeros((48, 65, 3), np.uint8))
    assert os.listdir(tmp_path) == []


def test_odd_size_is_padded(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 65, 47) as writer:
        assert writer.encoded_size == (66, 48)
        for i in range(3):
            writer.write(np.full((47, 65, 3), 128, np.uint8))
    assert (probe_video(path).width, probe_video(path).height) == (66, 48)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc to read resident memory")
def test_memory_is_flat_over_long_clips(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    base = np.full((360, 640, 3), 90, np.uint8)
    rss = {}

    def frames():
        for i in range(500):  # 20 s at 25 fps
            if i in (100, 499):
                rss[("write", i)] = _rss_mb()
            img = base.copy()
            img[100:160, i % 580 : i % 580 + 60] = 250
            yield img

    with VideoWriter(path, 640, 360, preset="ultrafast") as writer:
        for img in frames():
            writer.write(img)
        writer.close(audio=tone(220.0, 20.0))
    for i, _ in enumerate(iter_frames(path)):
        if i in (100, 499):
            rss[("read", i)] = _rss_mb()
    assert i == 499
    for stage in ("write", "read"):
        growth = rss[(stage, 499)] - rss[(stage, 100)]
        assert growth < 30, f"{stage}: resident memory grew {growth:.1f} MB from frame 100 to 500"


def _real_table() -> dict[str, float]:
    seconds = {}
    for line in (REAL / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].startswith(("video/", "audio/")):
            seconds[cells[1]] = float(cells[2])
    return seconds


@pytest.mark.skipif(not (REAL / "README.md").exists(), reason=f"real test media not present at {REAL}")
def test_real_media() -> None:
    table = _real_table()
    assert table, "README table of real media is empty"
    for rel, seconds in table.items():
        path = REAL / rel
        if rel.startswith("video/"):
            info = probe_video(path)
            assert abs(info.duration_s - seconds) < 0.1, rel
            count = 0
            for frame in iter_frames(path):
                assert frame.shape == (info.height, info.width, 3), rel
                count += 1
                if count == 50:
                    break
            assert count == 50, rel
        audio = read_audio(path)
        assert audio.dtype == np.float32 and audio.ndim == 1 and np.abs(audio).max() > 0.01, rel
        assert abs(audio.size / SR - seconds) < 0.1, f"{rel}: {audio.size / SR:.3f} s vs {seconds} s"


def test_audio_sampled_too_slowly_for_speech_is_refused_at_once(tmp_path: Path) -> None:
    """A wav declaring 1 Hz would resample to hours of 16 kHz audio; it is a clear error instead."""
    path = tmp_path / "slow.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1)
        w.writeframes(np.zeros(32000, np.int16).tobytes())
    with pytest.raises(MediaError, match="1 Hz") as err:
        read_audio(path)
    assert "slow.wav" in str(err.value) and "16 kHz" in str(err.value)
