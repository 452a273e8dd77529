"""Guards and staff: who qualifies (R2), whether the centre is staffed for its customers (R1).

``staffing`` (表1 of 联网报警运营规范 §5.2 as data, compliance), ``eligibility``
(who counts: §5.1), ``assignment`` (which patrol guards to propose for an
alarm), all pure; ``models`` (what is given and shown), ``service`` (the
database, and the onboarding check ``arc.accounts`` calls), ``cli``
(``arc staff add | list | import``, ``arc rules staffing``).
"""
