"""Audio values, sources and sinks. Every piece of audio carries its sample rate."""

from voice_companion.audio.chunk import AudioChunk

__all__ = ["AudioChunk"]
