"""synclip: train and run lip-sync models offline (sync scores, audio-video offsets, dubbing)."""

from .config import Config, load_config
from .errors import (CheckpointError, ConfigError, DataError, MediaError, NoAudioError, NoFaceError,
                     SynclipError)

__version__ = "0.1.0"

__all__ = ["Config", "load_config", "SynclipError", "ConfigError", "MediaError", "NoAudioError",
           "NoFaceError", "DataError", "CheckpointError", "LipSyncInference", "__version__"]


def __getattr__(name: str):
    # The inference API pulls in torch models; import it only when asked for.
    if name == "LipSyncInference":
        from .infer import LipSyncInference

        return LipSyncInference
    raise AttributeError(name)
