"""Sans-I/O codecs for alarm signals: bytes in, typed events out, and back.

Nothing here opens a socket, reads the clock, touches a database or imports
``arc``. The current time, account keys and limits are passed in, so the same
code serves TCP, UDP and replayed captures, and tests are deterministic.
"""
