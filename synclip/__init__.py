"""synclip: train and run lip-sync models offline (sync scores, audio-video offsets, dubbing)."""

from .config import Config, load_config
from .errors import (CheckpointError, ConfigError, DataError, InputError, MediaError, NoAudioError, NoFaceError,
                     SynclipError)

__version__ = "0.1.0"

__all__ = ["Config", "load_config", "SynclipError", "ConfigError", "MediaError", "NoAudioError",
           "NoFaceError", "DataError", "CheckpointError", "InputError", "LipSyncInference", "dub_video",
           "DubOptions", "__version__"]


def __getattr__(name: str):
    # The inference and dubbing API pulls in torch models; import it only when asked for.
    if name == "LipSyncInference":
        from .infer import LipSyncInference

        return LipSyncInference
    if name in ("dub_video", "DubOptions"):
        from . import dub

        return getattr(dub, name)
    raise AttributeError(name)
