"""Synthetic talking heads with exact lip-sync ground truth, made from nothing downloaded.

One phoneme sequence drives both a formant voice and a drawn mouth on recoloured, re-lit, moving versions of
scikit-image's astronaut photo, so mouth and voice agree by construction. The modules, from the bottom up:

- :mod:`~synclip.synth.phones`: the phone inventory, random sentences, segments and the mouth track;
- :mod:`~synclip.synth.voice`: how the phones sound (a source-filter synthesiser);
- :mod:`~synclip.synth.source`: the photo's measurements and masks;
- :mod:`~synclip.synth.looks`: appearances (skin, hair, clothes, light, background);
- :mod:`~synclip.synth.render`: the per-frame renderer;
- :mod:`~synclip.synth.clips`: sentences + voice + renderer -> clips on disk with their truth.

The names below are the public surface; ``synth.make_clip``, ``synth.appearance`` etc.
"""

from .clips import (MARGIN_S, clip_content, make_audio, make_clip, make_dataset, silence_clip, silent_audio,
                    voice_for)
from .looks import BACKGROUNDS, RGB, Appearance, appearance
from .phones import (APPROXIMANT, CLOSED_MOUTH, FRICATIVE, NASAL, PAUSE, PAUSE_SYMBOL, PHONES, PLOSIVE, VOWEL,
                     VOWELS, Phone, Segment, clip_segments, make_sentence, mouth_track, shift_segments)
from .render import DEFAULT_FRAME_SIZE, DEFAULT_FRAME_SIZE_2, face_geometry, render_frames
from .source import (CHIN, FACE_BOX, FACE_CENTRE, FACE_OVAL, FACE_WIDTH, HAIRLINE, HEAD_TOP_Y, LIPS_OUTER,
                     MOUTH_CENTRE, MOUTH_WIDTH, NOSE_TIP, PERSON_OUTLINE, SOURCE_SIZE)
from .voice import Speaker, synthesize

__all__ = [
    # clips
    "MARGIN_S", "clip_content", "make_audio", "make_clip", "make_dataset", "silence_clip", "silent_audio",
    "voice_for",
    # looks and rendering
    "BACKGROUNDS", "RGB", "Appearance", "appearance", "DEFAULT_FRAME_SIZE", "DEFAULT_FRAME_SIZE_2",
    "face_geometry", "render_frames",
    # the source photo
    "CHIN", "FACE_BOX", "FACE_CENTRE", "FACE_OVAL", "FACE_WIDTH", "HAIRLINE", "HEAD_TOP_Y", "LIPS_OUTER",
    "MOUTH_CENTRE", "MOUTH_WIDTH", "NOSE_TIP", "PERSON_OUTLINE", "SOURCE_SIZE",
    # phones and voice
    "APPROXIMANT", "CLOSED_MOUTH", "FRICATIVE", "NASAL", "PAUSE", "PAUSE_SYMBOL", "PHONES", "PLOSIVE", "VOWEL",
    "VOWELS", "Phone", "Segment", "clip_segments", "make_sentence", "mouth_track", "shift_segments", "Speaker",
    "synthesize",
]
