"""Protection at rest: the special-category columns are encrypted in the database with a data key held outside
it, so that a copy of ``node.db`` (and its WAL) or a ``pg_dump`` alone gives away none of them.

``keys.py`` the data key file (``DATA_DIR/keys/data.key``, or ``CCM_DATA_KEY_FILE``); ``cipher.py`` the
ciphertext format (XChaCha20-Poly1305, ``ccm1:<kid>:...``, bound to its table and column); ``types.py`` the
column types that encrypt and decrypt, with the key bound to the node's engine; ``startup.py`` loading and
checking the key at start; ``batches.py`` and ``rotation.py`` rewriting columns (migration 0012, rotation);
``models.py`` the ``data_keys`` table (key ids in use, never keys).

Encrypted (type, why):

- ``intake_sections.text``, ``.data`` — the intake: health, family, background, wishes, work.
- ``household_members.given_names``, ``.family_name`` — the household (family details).
- ``child_safeguards.guardian_name``, ``.guardian_relation``, ``.guardian_contact``, ``.child_views``,
  ``.best_interests_outcome`` — the child's views and best-interests outcome, the child's family.
- ``cases.contact_notes`` — free text about the returnee.
- ``case_stages.notes``, ``case_plans.milestones``, ``progress_notes.text`` — notes and plan text.
- ``interventions.provider``, ``.notes`` — a provider can name a clinic; notes are free text.
- ``consents.withdrawal_reason`` — the returnee's reason, free text.
- ``handovers.body`` (the received summary while pending), ``.reason`` (a decline's text), ``.answer`` (the
  adviser and first meeting), ``.close_outcome`` (may hold text).
- ``progress_updates.note``, ``.stage_changes``, ``.interventions``, ``.meetings``, ``.indicators``;
  ``partner_stages.note`` — progress text, sent and received.
- ``inbound_messages.inner`` — every received message in clear (summaries, notes), kept for non-repudiation.
- ``users.totp_secret`` — not the returnee's, but the staff's second factor: a stolen copy must not carry it
  (migration 0014).

Left in clear, and why:

- The returnee's names (``cases.given_names``, ``family_name``, native spellings), ``date_of_birth``, the case
  ``reference`` and ``case_name_tokens``: identity data, not special-category, and what staff search by (a
  prefix search on accent-folded tokens needs the tokens; a keyed blind index would allow exact matches only).
  A stolen copy reveals who has a case here, not their health or family.
- ``cases.phone``, ``email``, ``address``, ``sex_or_gender``, ``nationality``, ``languages``, destination:
  contact and identity data shown in lists, not special-category by themselves.
- Status, stage and category names, enumerations, dates, ids, hashes, flags: the queries filter and count on
  them, and they hold no text about the person.
- ``handovers.consent`` and ``custody``, ``consents`` (categories, recipients, purpose), withdrawals, erasure
  requests and tombstones: signed ids, scopes and hashes that other nodes' checks rely on; no free text.
- ``case_events.detail`` and ``audit_log.detail``: ids, field names and statuses by rule, never personal data.
- ``outbound_messages.envelope``: sealed to the partner already (encrypted for its key).
- Partners' cards and keys (public), users (staff: names, roles; passwords as argon2 hashes), web sessions
  (hashes).

Known limits: the length of a value shows (padding would hide it, at a cost); a ciphertext can be swapped
between two rows of the same column by someone who can write the database (the associated data binds table and
column, not the row).
"""

from .cipher import AtRestError
from .keys import ENV_KEY_FILE, DataKey, DataKeyError, DataKeys, load_data_keys
from .types import EncryptedBytes, EncryptedJSON, EncryptedText, bind_data_keys, data_keys_of

__all__ = ["ENV_KEY_FILE", "AtRestError", "DataKey", "DataKeyError", "DataKeys", "EncryptedBytes", "EncryptedJSON",
           "EncryptedText", "bind_data_keys", "data_keys_of", "load_data_keys"]
