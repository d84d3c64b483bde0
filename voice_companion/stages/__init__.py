"""Async glue between engines: segment → listen → think → speak.

Stages call the synchronous engines in worker threads, one small unit at a time, so that
cancelling the turn task (barge-in, shutdown) lands between units.
"""
