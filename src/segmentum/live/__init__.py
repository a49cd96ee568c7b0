"""Live data: the intake log of tracked events, its de-duplication, and how its messages
become workspace rows.

    log.py          IntakeLog: the interface (append -> durable offsets, read, commit)
    segment_log.py  SegmentLog: the local default, segment files with fsync and group commit
    dedup.py        Deduplicator: messageIds already stored, per source, over >= 7 days
    spec.py         the Segment Spec: request bodies -> validated, time-corrected messages
    intake.py       Intake: de-duplicate, append, acknowledge only what is durable
    mapping.py      messages -> canonical rows (contacts, events, orders, order lines)
    identity.py     anonymous ids, their links to contacts, merges and held messages
    apply.py        apply a run of log records to the workspace (load_records, quarantine)
"""
