"""Drives sf-sim with the real simple-salesforce (pinned 1.12.10); prints one JSON object.

simple-salesforce hard-codes https:// URLs. sf-sim serves plain http, so this script uses the
documented workaround: after constructing the client it rewrites the `https://` base URLs
(`sf.base_url` and each SFType's `base_url`) to `http://`, and follows `nextRecordsUrl` with
`query_more(locator, identifier_is_url=False)` (which builds the URL from `base_url`).
Env: SF_INSTANCE_URL, SF_ACCESS_TOKEN.
"""
import json
import os

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

inst = os.environ["SF_INSTANCE_URL"]
sf = Salesforce(instance_url=inst, session_id=os.environ["SF_ACCESS_TOKEN"], version="62.0")
sf.base_url = sf.base_url.replace("https://", "http://")


def sobject(name):
    t = getattr(sf, name)
    t.base_url = t.base_url.replace("https://", "http://")
    return t


out = {}
# 1. Query across pages.
res = sf.query("SELECT Id, LastName FROM Lead ORDER BY LastName")
records = list(res["records"])
total = res["totalSize"]
pages = 1
while not res["done"]:
    locator = res["nextRecordsUrl"].rsplit("/", 1)[1]
    res = sf.query_more(locator, identifier_is_url=False)
    assert res["totalSize"] == total
    records.extend(res["records"])
    pages += 1
out["queried"] = len(records)
out["pages"] = pages
out["api_usage"] = list(sf.api_usage["api-usage"])

# 2. CRUD via SFType.
lead = sobject("Lead")
created = lead.create({"LastName": "鈴木", "Company": "株式会社PY", "Phone": "06-1234-5678"})
out["created"] = created["success"] and len(created["id"]) == 18
out["update_status"] = lead.update(created["id"], {"Phone": "06-0000-0000"})
out["got_phone"] = lead.get(created["id"])["Phone"]
out["delete_status"] = lead.delete(created["id"])

# 3. Collections and composite through restful().
coll = sf.restful("composite/sobjects", method="POST", json={
    "allOrNone": False,
    "records": [{"attributes": {"type": "Contact"}, "LastName": "A"}, {"attributes": {"type": "Contact"}}],
})
out["collection"] = [r["success"] for r in coll]
comp = sf.restful("composite", method="POST", json={"compositeRequest": [
    {"method": "GET", "url": "/services/data/v62.0/query?q=SELECT+Id+FROM+Lead+LIMIT+1", "referenceId": "q"},
    {"method": "GET", "url": "/services/data/v62.0/sobjects/Lead/@{q.records[0].Id}", "referenceId": "g"},
]})
out["composite"] = [r["httpStatusCode"] for r in comp["compositeResponse"]]

# 4. Search.
out["search"] = len(sf.search("FIND {0312345678} IN PHONE FIELDS RETURNING Lead(Id)")["searchRecords"])

# 5. Errors parsed into simple-salesforce's exception types.
try:
    lead.create({"LastName": "no company"})
    out["error"] = "none"
except SalesforceMalformedRequest as e:
    out["error"] = e.content[0]["errorCode"]
bad = Salesforce(instance_url=inst, session_id="invalid", version="62.0")
bad.base_url = bad.base_url.replace("https://", "http://")
try:
    bad.query("SELECT Id FROM Lead")
    out["expired"] = "none"
except SalesforceExpiredSession as e:
    out["expired"] = e.content[0]["errorCode"]

print(json.dumps(out))
