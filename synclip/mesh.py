"""Lip and jaw geometry from mediapipe's face mesh (468 landmarks; the weights ship inside the wheel).

The face mesh was trained by its makers on far more faces than synclip will ever see, so the shape of the
lips it reports transfers between people, cameras and lighting where a small pixel CNN trained on minutes
of footage does not. This module turns face crops into pose-free lip shapes:

1. ``FaceMesh.run`` : a square face crop (S, S, 3) -> (468, 3) landmarks in crop units (x, y in [0, 1] of
   the side; z on the same scale, as mediapipe reports it).
2. ``frontalise`` : a similarity transform (rotation, scale, shift; 3-D) fitted on points that do not move
   with speech (eye corners, nose, forehead, temples) maps each frame onto a template head, so head turns,
   nods and distance from the camera drop out.
3. ``lip_features`` : the frontalised lip and jaw points minus the clip's median shape, so what is left is
   how the mouth moves, not whose mouth it is. (T, LIP_FEATURES) float32, NaN rows where no mesh was found.
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 468
# Points that stay put while a person speaks: forehead, nose bridge and tip, eye corners, temples, cheekbones.
STABLE = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263, 130, 359, 127, 356, 234, 454, 70, 300,
          105, 334, 46, 276)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
JAW = (152, 148, 176, 149, 150, 377, 400, 378, 379, 136, 365, 172, 397)
MOUTH_POINTS = LIPS_OUTER + LIPS_INNER + JAW
LIP_FEATURES = 3 * len(MOUTH_POINTS)  # x, y, z of each mouth point
MESH_INPUT_PX = 192  # crops are resized to this before the mesh (its landmark model sees 192 px)


class FaceMesh:
    """mediapipe's face mesh on a sequence of square face crops of one person (tracking between frames).

    One object per face track: in tracking mode the mesh follows the face from frame to frame and only
    looks for it again when it is lost, which is faster and steadier than detecting every frame.
    """

    def __init__(self, min_confidence: float = 0.5):
        from mediapipe.python.solutions import face_mesh

        from .face import quiet_stderr

        with quiet_stderr():  # TFLite announces its CPU delegate on stderr
            self._mesh = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                                            min_detection_confidence=min_confidence,
                                            min_tracking_confidence=min_confidence)
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._found_one = False  # mediapipe warns on stderr (NORM_RECT...) when it first projects a face

    def run(self, crop: np.ndarray) -> np.ndarray | None:
        """crop (S, S, 3) uint8 RGB -> (468, 3) float32 landmarks in units of the crop's side, or None."""
        import cv2

        if crop.shape[0] != MESH_INPUT_PX:
            crop = cv2.resize(crop, (MESH_INPUT_PX, MESH_INPUT_PX), interpolation=cv2.INTER_AREA)
        if self._found_one:
            result = self._mesh.process(crop)
        else:
            from .face import quiet_stderr

            with quiet_stderr():
                result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        self._found_one = True
        lm = result.multi_face_landmarks[0].landmark
        return np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float32)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceMesh":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares scale s, rotation R (3, 3) and shift t with s * R @ src_i + t ~ dst_i (Umeyama, 1991).

    src, dst: (K, 3). No reflection is allowed (a mirrored face is not a pose).
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum() / max((a ** 2).sum() / len(src), 1e-12))
    return scale, rot, mu_d - scale * rot @ mu_s


def frame_poses(landmarks: np.ndarray, template: np.ndarray) -> dict[int, tuple[float, np.ndarray, np.ndarray]]:
    """{frame: (s, R, shift)} mapping each frame's stable points onto ``template`` (``similarity_fit``), for the
    frames of (T, 468, 3) landmarks that have a mesh."""
    return {t: similarity_fit(frame[list(STABLE)].astype(np.float64), template)
            for t, frame in enumerate(landmarks) if not np.isnan(frame[0, 0])}


def to_template(points: np.ndarray, pose: tuple[float, np.ndarray, np.ndarray]) -> np.ndarray:
    """(K, 3) points of one frame -> where they lie on the template, by that frame's pose (s, R, shift), as
    ``similarity_fit`` and ``frame_poses`` give it."""
    s, r, shift = pose
    return s * points @ r.T + shift


def from_template(points: np.ndarray, pose: tuple[float, np.ndarray, np.ndarray]) -> np.ndarray:
    """(K, 3) points on the template -> where they lie in the frame of that pose: ``to_template`` undone."""
    s, r, shift = pose
    return (points - shift) @ r / s


def frontalise(landmarks: np.ndarray, template: np.ndarray) -> np.ndarray:
    """(T, 468, 3) landmarks (NaN rows allowed) -> the same, each frame moved onto ``template`` (len(STABLE), 3)."""
    out = np.full_like(landmarks, np.nan, dtype=np.float32)
    for t, pose in frame_poses(landmarks, template).items():
        out[t] = to_template(landmarks[t], pose).astype(np.float32)
    return out


def make_template(landmarks: np.ndarray, iterations: int = 3) -> np.ndarray:
    """A template head from many frames (N, 468, 3): generalised Procrustes on the stable points.

    The template is centred and scaled so its stable points have unit RMS distance from their centre, which
    gives the lip features one scale for every face size.
    """
    frames = landmarks[~np.isnan(landmarks[:, 0, 0])][:, list(STABLE)].astype(np.float64)
    if not len(frames):
        raise ValueError("no frames with landmarks to build a template from")
    ref = frames[0] - frames[0].mean(0)
    for _ in range(iterations):
        aligned = []
        for f in frames:
            aligned.append(to_template(f, similarity_fit(f, ref)))
        ref = np.mean(aligned, 0)
        ref -= ref.mean(0)
        ref /= np.sqrt((ref ** 2).sum(1).mean())
    return ref.astype(np.float32)


def lip_features(landmarks: np.ndarray, template: np.ndarray) -> np.ndarray:
    """(T, 468, 3) landmarks of one clip -> (T, LIP_FEATURES) float32 mouth motion; NaN rows where no face.

    The clip's median frontalised mouth is subtracted: the rest-shape of a person's lips says who they are,
    not what they say, and removing it is what lets one model serve faces it has never seen.
    """
    mouth = frontalise(landmarks, template)[:, list(MOUTH_POINTS)]  # (T, P, 3)
    seen = ~np.isnan(mouth[:, 0, 0])
    if seen.any():
        mouth = mouth - np.median(mouth[seen], axis=0)
    return mouth.reshape(len(mouth), -1).astype(np.float32)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """(T, 468, 3) -> (T,) inner-lip gap (13 to 14) over mouth width (78 to 308): a scale-free opening."""
    gap = np.linalg.norm(landmarks[:, 13, :2] - landmarks[:, 14, :2], axis=-1)
    width = np.linalg.norm(landmarks[:, 78, :2] - landmarks[:, 308, :2], axis=-1)
    return gap / np.maximum(width, 1e-6)
