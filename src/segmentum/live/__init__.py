"""Live data: the intake log of tracked events, its de-duplication, how its messages become
workspace rows, and the saved segments that follow them.

    log.py          IntakeLog: the interface (append -> durable offsets, read, commit)
    segment_log.py  SegmentLog: the local default, segment files with fsync and group commit
    dedup.py        Deduplicator: messageIds already stored, per source, over >= 7 days
    spec.py         the Segment Spec: request bodies -> validated, time-corrected messages
    intake.py       Intake: de-duplicate, append, acknowledge only what is durable
    mapping.py      messages -> canonical rows (contacts, events, orders, order lines)
    identity.py     anonymous ids, their links to contacts, merges and held messages
    apply.py        apply a run of log records to the workspace (load_records, quarantine)

Live segments, kept up to date as data are stored:

    dependencies.py which saved segments a change can affect (tables, event types, fields)
    contact_eval.py the rules evaluated in Python for a few contacts, from their own rows
    timers.py       the next moment each contact's truth can change; table _live_timers
    engine.py       LiveSegments: changes, timers, full refreshes, triggers, failures
    freshness.py    per segment: watermark, lag, last full refresh and whether it agreed
    scheduler.py    timers, safety net, scores, campaigns inside segmentum serve, runs recorded
    metrics.py      the Prometheus metrics of /metrics
    alarms.py       log + metric + signed webhook when a segment lags or an evaluation fails
"""
