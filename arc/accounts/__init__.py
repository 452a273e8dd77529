"""Accounts: the panels the centre serves, their keys sealed at rest.

``models`` (what is given and shown), ``service`` (the database, the receiver's
view), ``cache`` (the receiver's in-memory copy, following changes), ``cli``
(``arc account add | list | import``); the site behind an account: ``sites``
(address, position, beat, zones, keyholders, open hours in the database),
``schedule`` (open hours: the syntax and "open at"), ``site_cli`` (``arc
account site | zone | keyholders | schedule | show``).
"""
