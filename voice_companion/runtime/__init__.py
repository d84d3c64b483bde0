"""The conversation runtime: the one turn (``turn``), the session that decides what happens
next (``session``), its turn-taking policy (``turn_taking``), the daemon that supervises the
live tasks (``daemon``) and the runners of recordings and the text chat (``runner``)."""
