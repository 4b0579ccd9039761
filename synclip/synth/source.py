"""The source photo of every synthetic person: scikit-image's astronaut, measured once.

Landmarks, face box and outlines of the photo (stored here, so that nothing runs a model
at import time), and the photo itself with its real lips painted out, plus soft skin,
hair, clothes and person masks (computed once and cached).  Every synthetic person is
this photo recoloured (:mod:`synclip.synth.looks`) and placed, moved and given a new mouth
in each frame (:mod:`synclip.synth.render`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

# ---------------------------------------------------------------------------------------------
# Measurements of skimage.data.astronaut() (512 x 512), taken once during development with
# mediapipe 0.10.21 and stored here so that nothing runs a model at import time:
# * landmarks: mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=True,
#   refine_landmarks=True) on the RGB image, pixel = landmark * 512;
# * face box: mediapipe.solutions.face_detection.FaceDetection(model_selection=0) relative
#   bounding box * 512 (model_selection=1 gives 173.7, 67.8, 277.6, 171.7);
# * person outline: mediapipe.solutions.selfie_segmentation (model 0) mask > 0.5, largest
#   contour, cv2.approxPolyDP(eps=2 px); the helmet on the table (bottom right) is cut off
#   by hand along the edge of the suit.
# tests/test_synth.py re-measures the mouth and the face box.
SOURCE_SIZE = (512, 512)  # (width, height)
#: Midpoint of the inner-lip landmarks 13 and 14: where the lips meet when closed.
MOUTH_CENTRE = (223.3, 146.7)
#: Distance between the mouth corners, landmarks 61 (201.8, 139.2) and 291 (245.0, 141.0).
MOUTH_WIDTH = 43.2
#: BlazeFace (model 0) box (x0, y0, x1, y1): the face box that the truth files report.
FACE_BOX = (177.6, 82.9, 272.9, 178.2)
#: Chin (landmark 152) and nose tip (landmark 1).
CHIN = (221.3, 177.4)
NOSE_TIP = (223.4, 130.0)
#: Top of the hair (from the person outline).
HEAD_TOP_Y = 15.0
#: Lower edge of the fringe across the forehead, read by eye off a 6x zoom of the photo.
HAIRLINE = ((178, 90), (182, 86), (186, 82), (193, 80), (200, 79), (210, 78), (220, 78),
            (230, 79), (240, 80), (248, 81), (255, 81), (260, 81), (264, 82), (270, 88))
#: Face oval, landmarks 10, 338, ..., 109 (mediapipe FACEMESH_FACE_OVAL in order).
FACE_OVAL = (
    (226, 72), (239, 73), (250, 75), (259, 78), (265, 84), (268, 91), (270, 98), (271, 107),
    (270, 115), (269, 124), (268, 134), (265, 144), (261, 153), (256, 159), (249, 165),
    (244, 170), (238, 174), (230, 177), (221, 177), (212, 176), (205, 172), (200, 167),
    (195, 162), (189, 155), (185, 148), (182, 139), (180, 129), (179, 119), (179, 110),
    (180, 101), (181, 93), (183, 86), (187, 79), (193, 75), (203, 72), (214, 71))
#: Outer lip contour, landmarks 61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321,
#: 405, 314, 17, 84, 181, 91, 146: painted out (inpainted) before any mouth is drawn.
LIPS_OUTER = (
    (201.8, 139.2), (204.0, 139.0), (207.2, 139.0), (211.2, 139.1), (217.1, 139.2),
    (223.6, 140.5), (230.2, 139.7), (236.1, 140.0), (240.0, 140.2), (242.9, 140.5),
    (245.0, 141.0), (242.5, 145.0), (239.2, 148.9), (234.7, 152.2), (229.2, 154.2),
    (222.7, 154.6), (216.2, 153.5), (210.8, 151.1), (206.7, 147.4), (203.9, 143.4))
PERSON_OUTLINE = (
    (198, 24), (188, 35), (164, 50), (154, 64), (156, 102), (180, 130), (183, 151), (180, 154),
    (164, 154), (141, 163), (137, 162), (118, 187), (114, 204), (97, 217), (85, 231), (72, 238),
    (44, 283), (27, 342), (23, 381), (17, 395), (8, 401), (10, 415), (5, 419), (4, 426),
    (0, 427), (0, 511), (372, 511), (372, 345), (367, 339), (366, 309), (369, 291),
    (356, 296), (339, 260), (307, 234), (291, 204), (273, 187), (262, 182), (257, 174),
    (258, 163), (267, 145), (293, 115), (301, 96), (299, 68), (289, 43), (275, 30), (238, 15))

FACE_CENTRE = ((FACE_BOX[0] + FACE_BOX[2]) / 2, (FACE_BOX[1] + FACE_BOX[3]) / 2)
FACE_WIDTH = FACE_BOX[2] - FACE_BOX[0]


# ---------------------------------------------------------------------------------------------
# the source photo: painted-out lips, skin / hair / clothes / person masks (computed once)


@dataclass(frozen=True)
class SourcePhoto:
    rgb: np.ndarray  # (512, 512, 3) float32 in [0, 1], lips inpainted
    skin: np.ndarray  # (512, 512) float32 soft masks in [0, 1]
    hair: np.ndarray
    clothes: np.ndarray
    alpha: np.ndarray


def _poly_mask(points: Sequence[Sequence[float]], size: tuple[int, int] = SOURCE_SIZE,
               ) -> np.ndarray:
    m = np.zeros((size[1], size[0]), np.uint8)
    pts = np.round(np.asarray(points, np.float64) * 16).astype(np.int32)
    cv2.fillPoly(m, [pts], 255, cv2.LINE_AA, 4)
    return m


@functools.lru_cache(maxsize=1)
def source_photo() -> SourcePhoto:
    from skimage import data as skdata

    img = skdata.astronaut()
    h, w = img.shape[:2]
    if (w, h) != SOURCE_SIZE:
        raise RuntimeError(f"unexpected astronaut image size {w}x{h}")
    # paint out the real (smiling, open) lips
    lips = _poly_mask(LIPS_OUTER)
    lips = cv2.dilate((lips > 0).astype(np.uint8) * 255,
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    img = cv2.inpaint(img, lips, 6, cv2.INPAINT_TELEA)
    rgb = img.astype(np.float32) / 255.0

    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)  # H 0-180, S, V 0-255
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]
    # Skin, inside the face oval and the neck: below the hairline on the forehead; at the
    # temples only pixels as light and unsaturated as skin; on the neck only skin hues
    # (not the black collar or the purple ring); elsewhere anything not black.  In the
    # eyes, everything but the eye whites and irises.  Specular highlights are skin.
    hairline = np.interp(np.arange(w), [p[0] for p in HAIRLINE], [p[1] for p in HAIRLINE])
    forehead_hair = (rows < hairline[None, :]) & (cols >= HAIRLINE[0][0]) & (
        cols <= HAIRLINE[-1][0])
    temples = (rows < 150) & ((cols < 188) | (cols > 262))
    temple_skin = np.clip((130.0 - sat) / 15.0, 0, 1) * np.clip((val - 115.0) / 20.0, 0, 1)
    skin_hue = (((hue <= 24) | (hue >= 165)) * np.clip((val - 40.0) / 25.0, 0, 1))
    skin_colour = np.where(rows >= 150, skin_hue, (val >= 45).astype(np.float32))
    skin_colour = np.where(temples, temple_skin, skin_colour)
    skin_colour = np.where(forehead_hair, 0.0, skin_colour)
    # whatever the hairline says, light unsaturated skin hues near the hair are skin
    clear_skin = (((hue <= 14) | (hue >= 170)) & (sat < 100) & (val > 165)).astype(np.float32)
    skin_colour = np.where(forehead_hair | temples, np.maximum(skin_colour, clear_skin),
                           skin_colour)
    eyes = np.zeros((h, w), np.uint8)
    for (x0, y0), (x1, y1) in (((195.2, 100.9), (213.3, 103.7)),
                               ((237.0, 104.9), (255.8, 104.3))):
        cv2.ellipse(eyes, (round((x0 + x1) / 2), round((y0 + y1) / 2)),
                    (round(abs(x1 - x0) / 2) + 3, 6), 0, 0, 360, 1, -1)
    eyeball = (eyes > 0) & (((sat < 50) & (val > 110) & (rows < 106)) | (val < 100))
    skin_colour = np.where(eyes > 0, (~eyeball).astype(np.float32), skin_colour)
    oval = _poly_mask(FACE_OVAL).astype(np.float32) / 255.0
    oval = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    neck = _poly_mask(((186, 140), (262, 140), (258, 176), (250, 192), (195, 192),
                       (186, 180))).astype(np.float32) / 255.0
    region = np.maximum(oval, neck)
    skin = cv2.GaussianBlur(skin_colour.astype(np.float32), (0, 0), 1.0) * region
    skin = np.maximum(skin, cv2.GaussianBlur(lips.astype(np.float32) / 255.0, (0, 0), 2.0))
    skin = np.clip(skin, 0.0, 1.0)

    alpha = _poly_mask(PERSON_OUTLINE).astype(np.float32) / 255.0
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
    head = (((cols - 226) / 80.0) ** 2 + ((rows - 95) / 88.0) ** 2 <= 1.0).astype(np.float32)
    head = cv2.GaussianBlur(head, (0, 0), 4.0)
    # hair: the rest of the head above the jaw, so that every head pixel gets the skin
    # gain, the hair gain or a mix adding up to one (the eyeballs keep their colours)
    eyeball_soft = cv2.GaussianBlur(eyeball.astype(np.float32), (0, 0), 0.8)
    above_jaw = np.clip((155.0 - rows) / 10.0, 0.0, 1.0)
    hair = head * alpha * (1.0 - skin) * (1.0 - eyeball_soft) * above_jaw
    clothes = np.clip(alpha - head, 0.0, 1.0) * (1.0 - skin)
    return SourcePhoto(rgb=rgb, skin=skin, hair=hair, clothes=clothes, alpha=alpha)
