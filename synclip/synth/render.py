"""Drawing synthetic faces frame by frame: placement, head motion and the mouth.

``DrawnFace`` puts one person (the source photo of :mod:`synclip.synth.source`, recoloured
for an :class:`~synclip.synth.looks.Appearance`) into a cell of the frame, moves the head
along smooth curves and draws a new mouth of the given opening and width every frame,
dropping the jaw with it.  :func:`render_frames` and :func:`face_geometry` are the public
entry points (re-exported by :mod:`synclip.synth`).
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import cv2
import numpy as np

from ..audio import VIDEO_FPS
from ..errors import ConfigError, InputError
from .looks import Appearance, draw_background, person_layer, temperature_tint
from .source import (CHIN, FACE_BOX, FACE_CENTRE, FACE_WIDTH, HEAD_TOP_Y, MOUTH_CENTRE,
                           MOUTH_WIDTH)

DEFAULT_FRAME_SIZE = (320, 320)  # (width, height) of a one-face clip
DEFAULT_FRAME_SIZE_2 = (640, 320)  # of a two-face clip: two 320 x 320 cells side by side

_REF_CELL = 320.0  # motion amplitudes are in pixels of a 320-pixel-high cell


# ---------------------------------------------------------------------------------------------
# one face: placement, head motion, mouth drawing


def _motion_curves(app: Appearance, num_frames: int, cell_h: int,
                   rng: np.random.Generator | None) -> np.ndarray:
    """(num_frames, 4): dx px, dy px, scale factor - 1, roll degrees, as smooth curves."""
    if rng is None:
        rng = np.random.default_rng([0x40D, app.motion_seed])
    t = np.arange(num_frames) / float(VIDEO_FPS)
    px = 4.0 * cell_h / _REF_CELL * app.motion
    out = np.empty((num_frames, 4))
    for j, amp in enumerate((px, px, 0.03 * app.motion, 3.0 * app.motion)):
        f = rng.uniform(0.08, 0.45, 3)
        ph = rng.uniform(0, 2 * np.pi, 3)
        a = rng.uniform(0.4, 1.0, 3)
        a /= a.sum()
        out[:, j] = amp * (a[:, None] * np.sin(2 * np.pi * f[:, None] * t + ph[:, None])).sum(0)
    return out


class DrawnFace:
    """One person in a cell (a sub-rectangle of the frame) with per-frame transforms."""

    def __init__(self, app: Appearance, cell: tuple[int, int, int, int], num_frames: int,
                 rng: np.random.Generator | None = None):
        self.app = app
        self.cx0, self.cy0, self.cw, self.ch = cell
        s = app.face_size * self.ch / FACE_WIDTH
        self.sx = s * math.sqrt(app.face_aspect)
        self.sy = s / math.sqrt(app.face_aspect)
        fx = -1.0 if app.flip else 1.0
        cx = self.cw * (0.5 + app.position[0])
        # keep the whole head (hair included) in the cell: a cut-off head top makes
        # BlazeFace's full-range model miss large faces
        cy = max(self.ch * (0.46 + app.position[1]),
                 0.05 * self.ch + self.sy * (FACE_CENTRE[1] - HEAD_TOP_Y))
        # source -> cell, before head motion
        self.base = np.array([[fx * self.sx, 0.0, cx - fx * self.sx * FACE_CENTRE[0]],
                              [0.0, self.sy, cy - self.sy * FACE_CENTRE[1]]])
        self.face_centre_cell = (cx, cy)
        self.motion = _motion_curves(app, num_frames, self.ch, rng)
        self.num_frames = num_frames
        self.layer = person_layer(app)
        # colours of the mouth, lit like the skin around it
        proj_x = (MOUTH_CENTRE[0] - FACE_CENTRE[0]) / (FACE_WIDTH * 1.3)
        proj_y = (MOUTH_CENTRE[1] - FACE_CENTRE[1]) / (FACE_WIDTH * 1.3)
        a = math.radians(app.light_angle)
        light = app.brightness * (1.0 + app.light_strength * (proj_x * math.cos(a)
                                                              + proj_y * math.sin(a)))
        tint = temperature_tint(app) * light
        self.lip = _u8(np.asarray(app.lip_colour) * tint)
        self.lip_upper = _u8(np.asarray(app.lip_colour) * tint * 0.85)
        self.lip_line = _u8(np.asarray(app.lip_colour) * tint * 0.42)
        self.lip_edge = _u8(np.asarray(app.lip_colour) * tint * 0.8)
        self.lip_hi = _u8(np.minimum(np.asarray(app.lip_colour) * 1.1 + 0.02, 1.0) * tint)
        self.cavity = _u8(np.array([0.10, 0.03, 0.035]) * tint)
        self.tongue = _u8(np.array([0.50, 0.22, 0.25]) * tint)
        self.teeth = _u8(np.array([0.86, 0.84, 0.78]) * tint)

    def matrix(self, k: int) -> np.ndarray:
        """2x3 source -> cell affine of frame ``k`` (head motion about the face centre)."""
        dx, dy, ds, roll = self.motion[min(k, self.num_frames - 1)]
        cx, cy = self.face_centre_cell
        m = cv2.getRotationMatrix2D((cx, cy), -roll, 1.0 + ds)
        m[0, 2] += dx
        m[1, 2] += dy
        full = np.vstack([m, [0, 0, 1]]) @ np.vstack([self.base, [0, 0, 1]])
        return full[:2]

    def geometry(self, k: int) -> tuple[list[float], list[float]]:
        """Face box (x0, y0, x1, y1) and mouth centre (x, y) of frame ``k``, frame pixels."""
        m = self.matrix(k)
        x0, y0, x1, y1 = FACE_BOX
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]]) @ m.T
        mouth = np.array([MOUTH_CENTRE[0], MOUTH_CENTRE[1], 1.0]) @ m.T
        box = [corners[:, 0].min() + self.cx0, corners[:, 1].min() + self.cy0,
               corners[:, 0].max() + self.cx0, corners[:, 1].max() + self.cy0]
        return box, [mouth[0] + self.cx0, mouth[1] + self.cy0]

    def draw(self, frame: np.ndarray, k: int, opening: float, width: float) -> None:
        """Composite this person over ``frame`` (the background, modified in place) and
        draw the mouth of frame ``k``."""
        m = self.matrix(k)
        cell = frame[self.cy0:self.cy0 + self.ch, self.cx0:self.cx0 + self.cw]
        warped = cv2.warpAffine(self.layer, m, (self.cw, self.ch), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        alpha = warped[..., 3]
        inv = cv2.merge([255 - alpha] * 3)
        cell[...] = cv2.add(warped[..., :3], cv2.multiply(cell, inv, scale=1.0 / 255.0))
        self._draw_mouth(cell, m, opening, width)

    def _draw_mouth(self, img: np.ndarray, m: np.ndarray, opening: float, width: float) -> None:
        opening = float(np.clip(opening, 0.0, 1.0))
        width = float(np.clip(width, 0.0, 1.0))
        # local mouth frame: unit vectors of the source x / y axes in the cell
        ux = m[:, 0] * (-1.0 if self.app.flip else 1.0)  # keeps "right" = image right
        uy = m[:, 1]
        centre = m @ np.array([MOUTH_CENTRE[0], MOUTH_CENTRE[1], 1.0])
        sx = float(np.hypot(*m[:, 0]))
        w0 = MOUTH_WIDTH * self.app.mouth_size  # mouth width in source pixels
        hw = 0.5 * w0 * (0.62 + 0.5 * width)  # half width of the lips
        hwi = hw * 0.86  # half width of the opening
        cav = opening * 0.5 * w0  # height of the opening
        up, down = 0.3 * cav, 0.7 * cav  # the jaw carries the lower lip further
        tu, tl = 0.12 * w0, 0.16 * w0  # lip thickness

        # jaw drop: pull the chin down with the lower lip (before the mouth is drawn)
        jaw_px = down * 0.8 * float(np.hypot(*m[:, 1]))
        if jaw_px > 0.25:
            self._jaw(img, m, jaw_px, w0 * sx)

        n = 25
        x = np.linspace(-1.0, 1.0, n)
        e = np.sqrt(np.clip(1.0 - x * x, 0.0, 1.0))
        # outer edges of the lips (x in source px relative to the mouth centre)
        xo = x * hw
        bow = 1.0 - 0.28 * np.exp(-(x / 0.12) ** 2)  # cupid's bow dip in the middle
        top = -up * _inner(xo, hwi) - tu * (0.35 + 0.65 * e) * bow
        bottom = down * _inner(xo, hwi) + tl * (0.3 + 0.7 * e)
        # inner edges (the opening)
        xi = x * hwi
        inner_top = -up * e
        inner_bottom = down * e

        def pts(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
            p = centre[None, :] + xs[:, None] * ux[None, :] + ys[:, None] * uy[None, :]
            return np.round(p * 16.0).astype(np.int32)

        def fill(poly: np.ndarray, colour: tuple[int, int, int]) -> None:
            cv2.fillPoly(img, [poly], colour, cv2.LINE_AA, 4)

        left, right, zero = np.array([-hw]), np.array([hw]), np.zeros(1)
        # both lips as one shape, then the (darker) upper lip over it
        outer = np.concatenate([pts(xo, top), pts(xo[::-1], bottom[::-1])])
        fill(outer, self.lip)
        upper = np.concatenate([pts(xo, top), pts(right, zero),
                                pts(xi[::-1], inner_top[::-1]), pts(left, zero)])
        fill(upper, self.lip_upper)
        # highlight on the lower lip
        hx = x * hw * 0.45
        hl_c = down + tl * 0.55
        hl = np.concatenate([pts(hx, hl_c - 0.16 * tl * e), pts(hx[::-1], hl_c + 0.12 * tl * e)])
        fill(hl, self.lip_hi)
        # a darker border around the lips, and the line where they meet (seen when closed)
        cv2.polylines(img, [outer], True, self.lip_edge, 1, cv2.LINE_AA, 4)
        line = pts(np.concatenate([[-hw], xi, [hw]]), np.zeros(n + 2))
        thick = max(1, int(round(0.035 * w0 * sx)))
        cv2.polylines(img, [line], False, self.lip_line, thick, cv2.LINE_AA, 4)
        if cav * sx > 0.15:
            cavity = np.concatenate([pts(xi, inner_top), pts(xi[::-1], inner_bottom[::-1])])
            fill(cavity, self.cavity)
            if opening > 0.45:  # tongue: a low bump on the floor of a wide opening
                t = min((opening - 0.45) / 0.4, 1.0) * 0.3 * down
                tx = xi * 0.72
                floor = down * _inner(tx, hwi) * 0.97
                bump = t * np.sqrt(np.clip(1.0 - (tx / (0.72 * hwi)) ** 2, 0.0, 1.0))
                fill(np.concatenate([pts(tx, floor - bump), pts(tx[::-1], floor[::-1])]),
                     self.tongue)
            if opening > 0.28:  # upper teeth: a light band under the upper lip
                th = min((opening - 0.28) / 0.35, 1.0) * min(0.35 * cav, 0.11 * w0)
                tx = xi * 0.8
                tt = -up * np.sqrt(np.clip(1.0 - (tx / hwi) ** 2, 0.0, 1.0))
                teeth = np.concatenate([pts(tx, tt), pts(tx[::-1], (tt + th * e)[::-1])])
                fill(teeth, self.teeth)

    def _jaw(self, img: np.ndarray, m: np.ndarray, jaw_px: float, mouth_px: float) -> None:
        """Move the chin region down by ``jaw_px`` (smoothly fading out at the sides and
        below the chin) with cv2.remap on a small window."""
        mouth = m @ np.array([MOUTH_CENTRE[0], MOUTH_CENTRE[1], 1.0])
        chin = m @ np.array([CHIN[0], CHIN[1], 1.0])
        half_w = 1.05 * mouth_px
        top = mouth[1] - 0.1 * mouth_px
        full = mouth[1] + 0.3 * mouth_px
        chin_y = max(chin[1], full + 1.0)
        bottom = chin_y + 0.6 * mouth_px
        h, w = img.shape[:2]
        x0 = int(max(0, math.floor(mouth[0] - half_w)))
        x1 = int(min(w, math.ceil(mouth[0] + half_w)))
        y0, y1 = int(max(0, math.floor(top))), int(min(h, math.ceil(bottom)))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return
        xs = np.arange(x0, x1, dtype=np.float32)
        ys = np.arange(y0, y1, dtype=np.float32)
        hx = 0.5 + 0.5 * np.cos(np.pi * np.clip((xs - mouth[0]) / half_w, -1.0, 1.0))
        vy = np.interp(ys, [top, full, chin_y, bottom], [0.0, 1.0, 1.0, 0.0]).astype(np.float32)
        d = jaw_px * vy[:, None] * hx[None, :]
        map_x = np.broadcast_to(xs[None, :], d.shape).astype(np.float32)
        map_y = (ys[:, None] - d).astype(np.float32)
        roi = img[y0:y1, x0:x1]
        # sample from the whole image so the window edges read real pixels
        roi[...] = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)


def _inner(x: np.ndarray, hwi: float) -> np.ndarray:
    return np.sqrt(np.clip(1.0 - (x / hwi) ** 2, 0.0, 1.0))


def _u8(c: np.ndarray) -> tuple[int, int, int]:
    c = np.clip(np.asarray(c, np.float64) * 255.0, 0, 255)
    return (int(round(c[0])), int(round(c[1])), int(round(c[2])))


def check_frame_size(frame_size: Sequence[int], faces: int = 1) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in frame_size)
    except (TypeError, ValueError):
        raise ConfigError(f"frame_size must be (width, height), got {frame_size!r}") from None
    if w % 2 or h % 2 or h < 96 or w < 96 * faces:
        raise ConfigError(f"frame_size {w}x{h} is unusable",
                          fix=f"use even numbers, height >= 96 and width >= {96 * faces}")
    return w, h


def render_frames(app: Appearance, opening: Sequence[float], width: Sequence[float],
                  frame_size: Sequence[int] = DEFAULT_FRAME_SIZE,
                  rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Frames of one person whose mouth follows ``opening`` and ``width`` (per frame, [0, 1]).

    Yields (H, W, 3) uint8 RGB arrays, ``frame_size`` = (W, H) (even numbers).  Head motion
    comes from ``app.motion_seed`` unless ``rng`` is given; :func:`face_geometry` with the
    same arguments gives the face boxes and mouth centres of these frames.
    """
    w, h = check_frame_size(frame_size)
    opening = np.asarray(opening, np.float64)
    width = np.asarray(width, np.float64)
    if opening.shape != width.shape or opening.ndim != 1:
        raise InputError("opening and width must be 1-D arrays of the same length")
    face = DrawnFace(app, (0, 0, w, h), len(opening), rng)
    bg = draw_background(app, (w, h))
    for k in range(len(opening)):
        frame = bg.copy()
        face.draw(frame, k, opening[k], width[k])
        yield frame


def face_geometry(app: Appearance, num_frames: int,
                  frame_size: Sequence[int] = DEFAULT_FRAME_SIZE,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Face boxes ``(num_frames, 4)`` (x0, y0, x1, y1) and mouth centres ``(num_frames, 2)``
    in frame pixels, of the frames :func:`render_frames` draws with the same arguments."""
    w, h = check_frame_size(frame_size)
    face = DrawnFace(app, (0, 0, w, h), int(num_frames), rng)
    geo = [face.geometry(k) for k in range(int(num_frames))]
    return (np.array([g[0] for g in geo], np.float64).reshape(-1, 4),
            np.array([g[1] for g in geo], np.float64).reshape(-1, 2))


def render_scene(faces: Sequence[DrawnFace], tracks: Sequence[tuple[np.ndarray, np.ndarray]],
                  background: np.ndarray, num_frames: int) -> Iterator[np.ndarray]:
    for k in range(num_frames):
        frame = background.copy()
        for face, (o, w) in zip(faces, tracks):
            face.draw(frame, k, float(o[k]), float(w[k]))
        yield frame
