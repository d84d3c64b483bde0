"""Who the companion is: the persona the user owns, its files, cards, lore and voice.

::

    values.py       Persona and VoiceChoice, the values the code reads, and the system prompt
    files.py        a persona file (TOML) read into a Persona and written back
    card_format.py  Character Card V2/V3 as JSON and PNG: read, write, keep what we do not model
    cards.py        character cards to personas and back
    lorebook.py     a card's lorebook: which entries the last words bring up
    library.py      the shipped samples and the user's folder; use, install, export, remove
    voices.py       voice definitions (shipped and the user's) and how one is resolved
"""
