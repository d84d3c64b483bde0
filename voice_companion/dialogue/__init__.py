"""The dialogue core: persona, history, prompt assembly, sentence splitting.

Pure, synchronous, standard library only; the async stages drive it.
"""

from voice_companion.dialogue.dialogue import Dialogue
from voice_companion.dialogue.history import History, Turn
from voice_companion.dialogue.prompt import build_messages, estimate_tokens
from voice_companion.dialogue.sentences import SentenceSplitter, speakable
from voice_companion.memory.seam import MemoryStore, NoMemory, Recollection
from voice_companion.persona.values import Persona

__all__ = [
    "Dialogue",
    "History",
    "MemoryStore",
    "NoMemory",
    "Persona",
    "Recollection",
    "SentenceSplitter",
    "Turn",
    "build_messages",
    "estimate_tokens",
    "speakable",
]
