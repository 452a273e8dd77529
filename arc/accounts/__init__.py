"""Accounts: the panels the centre serves, their keys sealed at rest.

``models`` (what is given and shown), ``service`` (the database, the receiver's
view), ``cache`` (the receiver's in-memory copy, following changes), ``cli``
(``arc account add | list | import``).
"""
