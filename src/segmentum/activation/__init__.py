"""Activation: turning segments into action outside Segmentum.

    normalize   identifiers normalised the way ad platforms match them (e-mail, phone in
                E.164 via phonenumbers, names), SHA-256 - pure functions on plain values
    formats     the header and the row of each export format: csv, meta, google
    exports     segment -> audience file, full or changes since the last export, with a
                snapshot of every export in the workspace (tables exports, export_members)

    campaigns       campaign model, YAML files with located errors, the campaigns table
    cron            five-field cron schedules (pure)
    control_groups  stable hash buckets, global control epochs, recorded assignments
    plan            one outcome per audience contact: controls, consent, send time,
                    quiet hours, rendering, caps (plan_send; triggers call it too)
    runs            a campaign's send run: plan once, record, deliver
    uplift          Newcombe, Welch, bootstrap, MDE, CUPED, the verdict rule (pure)
    report          treatment vs control from the delivery log and the orders
    apply           a folder of campaign / trigger / segment / global-control files
    message, channels/, consent, caps, quiet_hours, delivery    the send layer
    content, send_time, recommend, triggers                     messages and triggers

    >>> from segmentum.activation import export_segment
    >>> export_segment(ws, "apple-fans", "google", "fans.csv", changes_since_last=True).added
"""

from segmentum.activation.exports import ExportResult, export_segment

__all__ = ["export_segment", "ExportResult"]
