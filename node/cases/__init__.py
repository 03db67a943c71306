"""The case domain: what a counsellor records at intake and what both case workers follow afterwards.

- ``models``: the tables; ``schemas``/``fields`` (requests) and ``outputs`` (responses): the API's marshmallow
  schemas; ``codes``: ISO 3166 and ISO 4217 code lists.
- ``access``: which cases a member of staff may see (one place); ``concurrency``: versions, If-Match, ETags.
- Services (session + actor + time in, no commit): ``services`` (cases, household), ``sections`` (intake
  sections, plan), ``stages``, ``consent`` (consent records, child safeguards), ``progress`` (interventions,
  notes), ``timeline``, ``search``, ``reports``, ``export``.
- ``views`` and ``record_views``: the ``/api/v1`` routes.
- ``demo``, ``demo_rows``, ``demo_names``: synthetic demo cases.
"""
