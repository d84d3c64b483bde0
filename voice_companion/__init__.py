"""voice-companion: a local, private, voice-first AI companion.

Importing the package loads no audio library and no model: third-party engines live in
``voice_companion.engines`` and are imported lazily when a concrete engine is built.
"""

__version__ = "0.1.0"
