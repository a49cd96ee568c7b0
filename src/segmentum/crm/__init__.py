"""CRM sync: what a CRM sends in and what it reads back, over the REST API.

    sync       contact upserts and deals / stage changes from a CRM, through the file
               loader's validation and quarantine, answered record by record
    feeds      what changed since a cursor: segment entries and exits, consent events
    webhooks   subscriptions a CRM registers for entries / exits, delivered signed, in
               order, until acknowledged (a durable queue in the workspace)
"""
