"""voice-companion: a local, private, voice-first AI companion.

Importing the package loads no audio library and no model: third-party engines live in
``voice_companion.engines`` and are imported lazily when a concrete engine is built. It does
set the environment that keeps those libraries off the network (``stay_offline``), because
every engine module is imported after this one. A program that imports onnxruntime itself
should import this package first: onnxruntime reads ``ORT_DISABLE_TELEMETRY`` when it loads.
"""

import os

__version__ = "0.1.0"

TELEMETRY_OFF = {
    # onnxruntime (the voice, voice activity, the embedder) looks up
    # mobile.events.data.microsoft.com from C++ and keeps a device id and events under
    # ~/.cache/Microsoft/ unless this is set when its library loads. Neither
    # onnxruntime.disable_telemetry_events() nor DO_NOT_TRACK stops the look-ups.
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}
"""Set whatever the environment says: the companion never sends telemetry."""
OFFLINE = {
    # faster-whisper and the tokenizers resolve models through huggingface_hub; every model is
    # local (``local_files_only``), and these make the hub refuse to reach out regardless.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
"""Set unless the environment says otherwise (a program using this package may want the hub)."""


def stay_offline() -> None:
    """Put the settings that keep the engines' libraries off the network in ``os.environ``
    (they read them when they load). Done on import; entry points call it again."""
    os.environ.update(TELEMETRY_OFF)
    for name, value in OFFLINE.items():
        os.environ.setdefault(name, value)


stay_offline()
