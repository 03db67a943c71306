"""Trust: who this node trusts, and with which keys.

Partners (added by card and a confirmed fingerprint, suspended, resumed, revoked; the agreement), their key
history and the revocations received (``partner_keys``, ``models``), this node's key files and card
(``keystore``, ``key_files``), and the protocol's Directory and History over the database (``directory``).

May import: ``node.exchange.models``, the node core, ``protocol``. Every other room stands on this one.
"""
