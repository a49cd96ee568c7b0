"""Privacy: erasing a contact everywhere, and keeping the erased out.

    tombstones   salted hashes of an erased contact's id, e-mail and phone; loads and tracked
                 messages carrying them are suppressed until the person is readmitted
    erase        erase_contact(): every table and file the workspace owns, an audit record
    files        the workspace's files rewritten without a contact: the intake log, the
                 export files it wrote, the outbox
    compact      the workspace file copied afresh, so no freed page keeps erased values

    >>> from segmentum.privacy import erase_contact, readmit
    >>> erase_contact(ws, "C0000042", by="support")        # the audit record, as a dict
    >>> readmit(ws, email="ann@example.com", reason="signed up again", by="support")
"""

from segmentum.privacy.erase import erase_contact
from segmentum.privacy.tombstones import readmit

__all__ = ["erase_contact", "readmit"]
