"""The words of the administrator's exchange pages (node, partners, deliveries) for stored codes: partner
statuses, key states, and the delivery worker's error codes "in words, not a code". A code missing here is
worded by its kind (an HTTP status, a refusal by the partner's node) and never shown bare."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

PARTNER_STATUS_NAMES = {"active": _l("Active"), "suspended": _l("Suspended"), "revoked": _l("Revoked"),
                        "key_revoked": _l("Not trusted: it revoked its key")}
KEY_STATE_NAMES = {"current": _l("Current"), "overlap": _l("Retired, still accepted"),
                   "retired": _l("Retired, no longer accepted"), "revoked": _l("Revoked")}
REVOCATION_REASONS = {"compromised": _l("compromised"), "superseded": _l("superseded"), "retired": _l("retired")}
TRUSTED_BY = {"fingerprint": _l("fingerprint checked by an administrator"),
              "rotation": _l("announced by the partner, signed with its previous key")}
SECTION_NAMES = {"failing": _l("Failing, being retried"), "pending": _l("Waiting to be sent"),
                 "parked": _l("Paused"), "undeliverable": _l("Given up")}
MESSAGE_TYPE_NAMES = {"handover": _l("Handover"), "handover_accepted": _l("Handover accepted"),
                      "handover_declined": _l("Handover declined"), "progress_update": _l("Progress update"),
                      "consent_withdrawn": _l("Consent withdrawn"), "erasure_confirmed": _l("Erasure confirmed"),
                      "case_closed": _l("Case closed"), "forward": _l("Forwarded case"),
                      "key_rotated": _l("Key announcement"), "custody_notice": _l("Custody notice")}
#: outcomes of a bundle (or receipts bundle) import
IMPORT_OUTCOMES = {"accepted": _l("Received"), "duplicate": _l("Received before"), "refused": _l("Refused"),
                   "delivered": _l("Now marked delivered"), "already_delivered": _l("Delivered before"),
                   "not_pending": _l("Not waiting here")}

DELIVERY_ERRORS = {
    "connection_failed": _l("The partner's node could not be reached (its server is down or not answering)."),
    "timeout": _l("The partner's node did not answer in time."),
    "no_answer": _l("The partner's node gave no answer."),
    "address_refused": _l("The partner's address is on a private or local network, which this node does not "
                          "connect to."),
    "bad_url": _l("The partner's address is not a valid web address."),
    "incomplete_answer": _l("The partner's node answered, but its answer was incomplete."),
    "bad_receipt": _l("The partner's receipt could not be verified, so delivery is paused."),
    "internal_error": _l("An error on this node while sending; it is retried."),
    "partner_revoked": _l("The partner was revoked: the message will not be sent."),
    "envelope_expired": _l("The message expired before it could be delivered."),
    "retry_horizon": _l("Delivery was given up after trying for too long."),
    "unknown_sender": _l("The partner's node does not know this node as a partner (not added there, or "
                         "suspended)."),
    "unknown_key": _l("The partner's node does not know this node's current key (it has not taken a key "
                      "change yet)."),
    "revoked_key": _l("The partner's node holds this node's key as revoked."),
    "bad_signature": _l("The partner's node could not verify this node's signature."),
    "decryption_failed": _l("The partner's node could not open the message (keys do not match)."),
    "wrong_recipient": _l("The message was addressed to another node."),
    "expired": _l("The partner's node found the message expired."),
    "not_yet_valid": _l("The partner's node found the message not yet valid (check the clocks)."),
    "broken_chain": _l("The partner's node is missing an earlier message of the same thread."),
    "unknown_agreement": _l("The partner's node does not know the data-sharing agreement."),
    "outside_consent": _l("The partner's node found the message outside the returnee's consent."),
    "consent_invalid": _l("The partner's node found the consent not valid."),
}

CARD_FETCH_ERRORS = {
    "not_http": _l("Give an address starting with https:// (or http://)."),
    "address_refused": _l("This address is on a private, loopback or link-local network: this node does not "
                          "connect to it."),
    "unreachable": _l("The card could not be fetched: the address does not answer."),
    "http_error": _l("The card could not be fetched: the server answered with an error."),
    "too_large": _l("This is too large to be a node card."),
    "too_slow": _l("The card could not be fetched in time."),
    "unreadable": _l("The card could not be read."),
}


def delivery_error(code: str | None) -> str:
    """A stored delivery error code in words."""
    if not code:
        return ""
    if code in DELIVERY_ERRORS:
        return str(DELIVERY_ERRORS[code])
    if code.startswith("http_") and code[5:].isdigit():
        status = int(code[5:])
        if status >= 500:
            return _("The partner's node had an error (HTTP %(status)s); it is retried.", status=status)
        return _("The partner's node refused the message (HTTP %(status)s).", status=status)
    return _("The partner's node refused the message.")


def fingerprint_groups(fingerprint: str) -> list[str]:
    """The fingerprint in the groups it is read out in (12 groups of 5 digits)."""
    return fingerprint.split()


def label_helpers() -> dict[str, Any]:
    """What the exchange templates use."""
    return {"partner_status_names": PARTNER_STATUS_NAMES, "key_state_names": KEY_STATE_NAMES,
            "revocation_reasons": REVOCATION_REASONS, "trusted_by_names": TRUSTED_BY,
            "section_names": SECTION_NAMES, "message_type_names": MESSAGE_TYPE_NAMES,
            "import_outcomes": IMPORT_OUTCOMES, "delivery_error": delivery_error,
            "fingerprint_groups": fingerprint_groups}
