"""The control socket: a unix socket in ``$XDG_RUNTIME_DIR`` (mode 0600, peer uid checked) that
takes push-to-talk, mute, say, stop, status and quit from the CLI or a desktop hotkey.

``protocol`` is the wire format, ``server`` the daemon's side (asyncio), ``client`` the CLI's
side (blocking).
"""
