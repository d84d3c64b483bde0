"""Personas the user owns: TOML files and character cards, and which one is in use.

files.py    a persona file (TOML) read into a ``Persona`` and written back
cards.py    character cards (V2/V3) to personas and back
library.py  the shipped samples and the user's folder; use, install, export, remove
"""
