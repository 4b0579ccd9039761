"""Domain errors. Each says what went wrong, with which file, and what to do next.

Library code raises these; the CLI prints them as one ``error: ...`` line and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path


class SynclipError(Exception):
    """Base class: ``str(err)`` is a complete sentence naming the cause and the fix."""

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        self.path = Path(path) if path is not None else None
        self.reason = message
        self.fix = fix
        text = f"{path}: {message}" if path is not None else message
        if fix:
            text = f"{text} ({fix})"
        super().__init__(text)


class InputError(SynclipError, ValueError):
    """An argument to a public function is out of range or of the wrong shape (a ValueError too, so code that
    caught the plain ValueError these used to be keeps working)."""


class ConfigError(SynclipError):
    """A config key or value is unknown or out of range."""


class MediaError(SynclipError):
    """A media file is missing, unreadable, empty or lacks the stream we need."""


class NoAudioError(MediaError):
    """A file has no audio stream (and no separate audio file was given)."""


class NoFaceError(SynclipError):
    """No face was found where one is needed."""


class DataError(SynclipError):
    """Prepared data is missing, stale or inconsistent."""


class CheckpointError(SynclipError):
    """A checkpoint is missing, truncated, of the wrong kind, or does not fit the model."""
