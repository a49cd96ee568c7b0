"""Activation: turning segments into action outside Segmentum.

    normalize   identifiers normalised the way ad platforms match them (e-mail, phone in
                E.164 via phonenumbers, names), SHA-256 - pure functions on plain values
    formats     the header and the row of each export format: csv, meta, google
    exports     segment -> audience file, full or changes since the last export, with a
                snapshot of every export in the workspace (tables exports, export_members)

    >>> from segmentum.activation import export_segment
    >>> export_segment(ws, "apple-fans", "google", "fans.csv", changes_since_last=True).added
"""

from segmentum.activation.exports import ExportResult, export_segment

__all__ = ["export_segment", "ExportResult"]
