"""The landmark-conditioned renderer: shape maps follow the landmarks, the model trains, files round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synclip.errors import CheckpointError
from synclip.mesh import LIPS_INNER, MOUTH_POINTS, NUM_LANDMARKS, make_template
from synclip.models.renderer import Renderer, RendererDims
from synclip.face import lower_face_mask
from synclip.render import (FitSettings, blanked, draw, fit, load_renderer, model_inputs, mouth_from_features,
                            render_loss, save_renderer, shape_map, to_tensor, with_input_mask)

SIZE = 64


def face_landmarks(seed: int = 0) -> np.ndarray:
    """(468, 3) points spread over the crop's lower half, as a mesh's mouth would be (crop units)."""
    rng = np.random.default_rng(seed)
    lm = np.empty((NUM_LANDMARKS, 3), np.float32)
    lm[:, 0] = rng.uniform(0.3, 0.7, NUM_LANDMARKS)
    lm[:, 1] = rng.uniform(0.6, 0.8, NUM_LANDMARKS)
    lm[:, 2] = rng.normal(0, 0.02, NUM_LANDMARKS)
    return lm


def tiny() -> Renderer:
    torch.manual_seed(0)
    return Renderer(RendererDims(input_size=SIZE, base_channels=4))


def test_shape_map_follows_the_landmarks():
    lm = face_landmarks()
    a = shape_map(lm, SIZE)
    assert a.shape == (3, SIZE, SIZE) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0 and a[0].max() > 0.5  # the lip lines are drawn
    moved = lm.copy()
    moved[:, 1] += 0.1  # the whole mouth 0.1 of the side (6.4 px) lower
    b = shape_map(moved, SIZE)
    rows = np.arange(SIZE)
    centre_a = (a[0].sum(1) * rows).sum() / a[0].sum()
    centre_b = (b[0].sum(1) * rows).sum() / b[0].sum()
    assert centre_b - centre_a == pytest.approx(6.4, abs=0.5)


def test_shape_map_opening_grows_with_the_inner_lips_apart():
    ring = np.linspace(0, 2 * np.pi, len(LIPS_INNER), endpoint=False)

    def opening(gap: float) -> float:
        lm = face_landmarks()
        lm[list(LIPS_INNER), 0] = 0.5 + 0.12 * np.cos(ring)  # an ellipse 0.24 wide, 2 * gap tall
        lm[list(LIPS_INNER), 1] = 0.7 + gap * np.sin(ring)
        return float(shape_map(lm, SIZE)[1].sum())

    assert opening(0.08) > 2.5 * opening(0.02) > 0


def test_no_landmarks_give_an_empty_map():
    lm = np.full((NUM_LANDMARKS, 3), np.nan, np.float32)
    assert not shape_map(lm, SIZE).any()


def test_renderer_keeps_the_upper_half_and_draws_the_lower():
    model = tiny().eval()
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    faces, shapes = model_inputs(crops, crops[::-1], np.stack([face_landmarks(1), face_landmarks(2)]))
    assert faces.shape == (2, 6, SIZE, SIZE) and shapes.shape == (2, 3, SIZE, SIZE)
    assert not faces[:, :3, SIZE // 2:].any()  # the target's lower half is blanked
    out = model(faces, shapes)
    assert out.shape == (2, 3, SIZE, SIZE)
    assert torch.equal(out[:, :, :SIZE // 2], to_tensor(crops)[:, :, :SIZE // 2])
    # A different shape map changes the drawn half: the condition reaches the output.
    other = model(faces, torch.roll(shapes, 8, dims=-2))
    assert (other[:, :, SIZE // 2:] - out[:, :, SIZE // 2:]).abs().max() > 1e-4


def test_a_paste_mask_renderer_sees_and_keeps_what_paste_back_never_replaces():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    lms = np.stack([face_landmarks(1), face_landmarks(2)])
    hidden = blanked(SIZE, "paste")
    pasted = lower_face_mask(SIZE) * 255 >= 0.5  # where paste-back can move a pixel by half a grey level
    # Everything paste-back shows in the lower half is hidden; the lower corners (background) are not.
    assert hidden[SIZE // 2:].numpy()[pasted[SIZE // 2:]].all()
    assert not hidden[:SIZE // 2].any() and not hidden[-1, 0] and not hidden[-1, -1] and hidden[-1, SIZE // 2]
    faces, shapes = model_inputs(crops, crops[::-1], lms, "paste")
    assert not faces[:, :3, hidden].any() and torch.equal(faces[:, :3, ~hidden], to_tensor(crops)[:, :, ~hidden])
    plain = tiny().eval()
    model = with_input_mask(plain, "paste")
    assert model.dims.input_mask == "paste" and not model.training
    out = model(faces, shapes)
    assert torch.equal(out[:, :, ~hidden], to_tensor(crops)[:, :, ~hidden])  # what it saw is the answer
    assert torch.equal(out[:, :, hidden], plain(faces, shapes)[:, :, hidden])  # the same weights draw the rest
    with pytest.raises(ValueError, match="input_mask"):
        with_input_mask(plain, "upper_half")


def smooth_crops(n: int) -> np.ndarray:
    """(n, SIZE, SIZE, 3) uint8 images made of soft blobs (learnable in a few steps, unlike pixel noise)."""
    import cv2

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (n, 8, 8, 3)).astype(np.uint8)
    return np.stack([cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC) for img in small])


@pytest.fixture
def one_thread():
    """One torch thread: a 64-px model gains nothing from more, and a busy machine makes them wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_few_steps_lower_the_loss(one_thread):
    model = tiny()
    crops = smooth_crops(4)
    lms = np.stack([face_landmarks(k) for k in range(4)])

    def sample(r, batch):
        return crops, crops[::-1], lms

    faces, shapes = model_inputs(crops, crops[::-1], lms)
    with torch.no_grad():  # train mode both times: batch norm on the batch's own statistics
        before = render_loss(model.train()(faces, shapes), to_tensor(crops))[0].item()
    curve = fit(model, sample, FitSettings(minutes=10.0, max_steps=20, batch=4, lr=3e-3, eval_every=10),
                report=lambda s: None)
    assert [p["step"] for p in curve] == [10, 20]
    with torch.no_grad():
        after = render_loss(model.train()(faces, shapes), to_tensor(crops))[0].item()
    assert after < 0.9 * before


def test_save_load_round_trip(tmp_path):
    model = with_input_mask(tiny().eval(), "paste")
    path = tmp_path / "renderer.pth"
    save_renderer(path, model, step=7)
    back = load_renderer(path)
    assert back.dims == model.dims and back.dims.input_mask == "paste"
    crops = np.random.default_rng(0).integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
    lm = face_landmarks()[None]
    assert np.array_equal(draw(model, crops, crops, lm), draw(back, crops, crops, lm))
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_renderer(tmp_path / "bad.pth")


def test_mouth_from_features_undoes_the_pose():
    """Lip features of a posed clip, put back with mouth_from_features, land on the clip's own mouth points."""
    from synclip.mesh import lip_features

    rng = np.random.default_rng(0)
    base = face_landmarks(3)
    frames = []
    for t in range(6):  # the same head turned, scaled and moved a little, its mouth opening a little more
        f = base.copy()
        f[list(MOUTH_POINTS), 1] += 0.004 * t
        angle = 0.05 * t
        rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        frames.append(((1 + 0.02 * t) * f @ rot.T + rng.normal(0, 0.01, 3)).astype(np.float32))
    clip = np.stack(frames)
    template = make_template(clip)
    back = mouth_from_features(clip, lip_features(clip, template), template)
    assert np.abs(back - clip).max() < 1e-4


def test_mouth_weight_is_high_on_the_lips_only():
    from synclip.render import MOUTH_WEIGHT, mouth_weight

    lm = face_landmarks()
    lm[:, 0] = 0.5 + 0.6 * (lm[:, 0] - 0.5)  # a mouth in the crop's middle third, far from the corners
    w = mouth_weight(torch.from_numpy(shape_map(lm, SIZE))[None])
    assert w.shape == (1, 1, SIZE, SIZE)
    assert w[0, 0, 0, 0] == 1.0  # far from the mouth: the plain weight
    assert w.max() == pytest.approx(1.0 + MOUTH_WEIGHT)


def test_detail_loss_prefers_a_sharp_copy_to_a_blurred_one():
    """A copy with its texture moved by a pixel keeps the truth's detail; a blurred copy loses it. The detail
    term ranks the moved copy better, though a per-pixel L1 ranks them the other way round."""
    import cv2

    from synclip.render import detail_loss

    rng = np.random.default_rng(0)
    texture = np.clip(128 + rng.normal(0, 40, (2, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    truth = to_tensor(texture)
    moved = torch.roll(truth, 1, dims=-1)
    blurred = to_tensor(np.stack([cv2.GaussianBlur(img, (0, 0), 1.5) for img in texture]))
    w = torch.ones(2, 1, SIZE, SIZE)
    assert (blurred - truth).abs().mean() < (moved - truth).abs().mean()
    assert detail_loss(moved, truth, w) < detail_loss(blurred, truth, w)
    assert detail_loss(truth, truth, w) < 1e-3 < detail_loss(blurred, truth, w)


def posed_clip(frames: int = 24) -> np.ndarray:
    """(T, 468, 3) one head, turned, scaled and moved a little more each frame, its mouth opening by t."""
    base = face_landmarks(3)
    out = []
    for t in range(frames):
        f = base.copy()
        f[list(LIPS_INNER)[:10], 1] += 0.002 * t  # the lower inner lip drops: the opening is the frame's own
        angle = 0.01 * t
        rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        out.append(((1 + 0.005 * t) * f @ rot.T + 0.002 * t).astype(np.float32))
    return np.stack(out)


def test_swap_sampler_gives_each_frame_another_frames_mouth_on_its_own_pose():
    from synclip.mesh import STABLE
    from synclip.render_data import FaceClip, Frames

    lms = posed_clip()
    crops = np.zeros((len(lms), SIZE, SIZE, 3), np.uint8)
    crops[:, 0, 0, 0] = np.arange(len(lms))  # each crop says which frame it is
    frames = Frames([FaceClip("c", crops, lms)], reference_gap=5)
    targets, refs, swapped = frames.swap_sampler()(np.random.default_rng(0), 16)
    for target, ref, lm in zip(targets, refs, swapped):
        i, r = int(target[0, 0, 0]), int(ref[0, 0, 0])
        assert abs(i - r) >= 5
        assert np.array_equal(lm[list(STABLE)], lms[i, list(STABLE)])  # the frame's own head and pose
        # the mouth is another frame's: undo frame i's pose and find which frame's mouth it is
        gaps = [np.linalg.norm(lm[list(LIPS_INNER)] - posed_mouth(lms, i, j)) for j in range(len(lms))]
        donor = int(np.argmin(gaps))
        assert abs(donor - i) >= 5 and gaps[donor] < 1e-4


def posed_mouth(lms: np.ndarray, i: int, j: int) -> np.ndarray:
    """Frame j's inner lips carried onto frame i's pose (the clip's poses are known here: see posed_clip)."""
    def pose(t):
        a = 0.01 * t
        return 1 + 0.005 * t, np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]), 0.002 * t

    (si, ri, ti), (sj, rj, tj) = pose(i), pose(j)
    frontal = (lms[j, list(LIPS_INNER)] - tj) @ rj / sj
    return si * frontal @ ri.T + ti


def test_lip_reader_learns_where_the_mouth_is(one_thread):
    """Crops with a dark mouth drawn where the landmarks put it: the reader beats always guessing the mean."""
    import cv2

    from synclip.models.lip_reader import LipReader
    from synclip.render import fit_reader, reader_error

    rng = np.random.default_rng(0)
    lms = np.repeat(face_landmarks(1)[None], 64, 0)
    crops = np.full((64, SIZE, SIZE, 3), 200, np.uint8)
    for k in range(64):
        dx, dy = rng.uniform(-0.1, 0.1, 2)
        lms[k, list(MOUTH_POINTS), 0] += dx
        lms[k, list(MOUTH_POINTS), 1] += dy * 0.5
        cx, cy = lms[k, list(MOUTH_POINTS), :2].mean(0) * SIZE
        cv2.ellipse(crops[k], (int(cx), int(cy)), (8, 3), 0, 0, 360, (40, 20, 20), -1)
    torch.manual_seed(0)
    reader = LipReader(SIZE, base_channels=8)

    def sample(r, batch):
        idx = r.integers(0, 48, batch)
        return crops[idx], crops[idx], lms[idx]

    curve = fit_reader(reader, sample, steps=120, batch=16, lr=3e-3, report=lambda s: None)
    assert curve[-1]["step"] == 120
    mean_guess = np.linalg.norm(lms[48:, list(MOUTH_POINTS), :2] - lms[:48, list(MOUTH_POINTS), :2].mean(0),
                                axis=-1).mean() * SIZE
    assert reader_error(reader, crops[48:], lms[48:]) < 0.6 * mean_guess


def test_shape_term_needs_a_reader_and_swaps_and_reports_both_errors(one_thread):
    from synclip.models.lip_reader import LipReader

    model, crops = tiny(), smooth_crops(4)
    lms = np.stack([face_landmarks(k) for k in range(4)])

    def sample(r, batch):
        return crops[:batch], crops[::-1][:batch], lms[:batch]

    with pytest.raises(ValueError, match="lip reader"):
        fit(model, sample, FitSettings(max_steps=1, batch=4, shape_weight=1.0), report=lambda s: None)
    reader = LipReader(SIZE, base_channels=4)
    before = {k: v.clone() for k, v in reader.state_dict().items()}
    curve = fit(model, sample, FitSettings(max_steps=2, batch=4, eval_every=2, shape_weight=0.05),
                report=lambda s: None, reader=reader, swap=sample)
    assert curve[-1]["shape_px"] > 0 and curve[-1]["swapped_shape_px"] > 0
    assert all(torch.equal(v, reader.state_dict()[k]) for k, v in before.items())  # the reader stays frozen
