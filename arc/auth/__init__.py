"""Access control of the console and the API (REGULATION R5): users, sessions, grants, audit.

``models`` (roles, permissions, ``User``), ``passwords`` (argon2id), ``service``
(users, logging in), ``sessions``, ``grants`` (the R5 workflow), ``access``
(the access audit), ``totp``. See docs/access-control.md.
"""
