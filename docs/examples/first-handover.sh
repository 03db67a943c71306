#!/usr/bin/env bash
# From an empty case list to a handover delivered to a partner, through the JSON API only.
#
# Needs: two nodes that are partners under an agreement (README, "Connecting two organisations"), a delivery
# worker running at the sending node ('ccm-node deliver'), and these variables:
#   GBG_URL    the sending node's address, e.g. http://127.0.0.1:8701
#   GBG_TOKEN  a counsellor's API token there ('ccm-node token create anna.lindqvist')
#   PARTNER    the receiving node's id, e.g. ba.cldd-sarajevo
# It prints the handover's status as it changes, and exits 0 once the partner's signed receipt is stored.
set -euo pipefail
: "${GBG_URL:?}" "${GBG_TOKEN:?}" "${PARTNER:?}"
AUTH="Authorization: Bearer $GBG_TOKEN"
JSON="Content-Type: application/json"
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# 1. Register the returnee's case (201; the answer holds its id and reference).
CASE=$(curl -sf -H "$AUTH" -H "$JSON" -X POST "$GBG_URL/api/v1/cases" -d '{
  "returnee": {"given_names": "Layla", "family_name": "Hassan", "date_of_birth": "1991-07-30",
               "languages": ["ar"]},
  "destination_country": "BA", "destination_locality": "Sarajevo"}' | field id)
echo "case $CASE"

# 2. One intake section: the first write of a section carries version 0 (If-Match: "0").
curl -sf -H "$AUTH" -H "$JSON" -H 'If-Match: "0"' -X PUT "$GBG_URL/api/v1/cases/$CASE/intake/work" \
     -d '{"text": "Ten years as a car mechanic.", "occupations": ["car mechanic"]}' > /dev/null

# 3. Record the returnee's consent: which categories may go to which partner, for what, until when.
CONSENT=$(curl -sf -H "$AUTH" -H "$JSON" -X POST "$GBG_URL/api/v1/cases/$CASE/consents" -d '{
  "recipients": ["'"$PARTNER"'"], "categories": ["identity", "contact", "work", "plan"],
  "purpose": "reintegration_support", "method": "written_signature", "valid_until": "2027-12-31",
  "language": "ar"}' | field id)
echo "consent $CONSENT"

# 4. See exactly what would leave the node (nothing is stored), then send it (202, status "queued").
curl -sf -H "$AUTH" "$GBG_URL/api/v1/cases/$CASE/handovers/preview?recipient=$PARTNER&consent_id=$CONSENT" \
     | field withheld
HANDOVER=$(curl -sf -H "$AUTH" -H "$JSON" -X POST "$GBG_URL/api/v1/cases/$CASE/handovers" \
     -d '{"recipient": "'"$PARTNER"'", "consent_id": "'"$CONSENT"'"}' | field id)
echo "handover $HANDOVER"

# 5. Follow it: queued, then delivered once the partner's signed receipt is stored (then accepted or declined).
for _ in $(seq 1 120); do
  STATUS=$(curl -sf -H "$AUTH" "$GBG_URL/api/v1/handovers/$HANDOVER" | field status)
  echo "status $STATUS"
  case "$STATUS" in delivered|accepted|declined) exit 0 ;; esac
  sleep 1
done
echo "not delivered after two minutes: is 'ccm-node deliver' running, and is the partner up?" >&2
exit 1
