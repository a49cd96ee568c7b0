"""The planted behaviour group of every contact: the ground truth for persona discovery.

Written as ``groups`` (contact_id, group). A group is read off what the generator already
drew for the contact - nothing here draws anything, so no other value changes:

    no_purchase          the buyer class is "never bought"
    family_baby_toddler  buys for a child (interest "kids") who is under 3 at the end date:
                         baby food and toddler lines
    family_preschool     ... a child of 3 to 5: preschool lines
    family_school        ... a child of 6 or more: school lines
    electronics          interest "electronics" (phone and Apple accessories, phones)
    home_garden          interest "home"
    fashion              interest "fashion"
    car_care             interest "car"

Planted personas keep the group of what they were made to buy: a high-value woman buys
fashion (``fashion``), a baby-food family is a ``family_baby_toddler``, an apple fan is
``electronics``, a lapsing Home & Garden buyer ``home_garden``; the others follow their
interest. Kids' lines follow the child's age (see ``_orders._pick_skus``), so families are
grouped by the age band of the catalogue's kids departments the child is in at the end date.
Shop (offline) buying, loyalty and e-mail engagement are drawn independently of the group.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segmentum.data.generate import _reference as ref
from segmentum.data.generate._context import YEAR, Context
from segmentum.data.generate._people import APPLE, BABY, HVW, LAPS, NONE, People
from segmentum.data.generate._tables import SCHEMAS, contact_ids, take, vocab
from segmentum.data.generate._util import NEVER

__all__ = ["GROUPS", "behaviour_groups", "groups_table"]

GROUPS = (
    "no_purchase",
    "family_baby_toddler",
    "family_preschool",
    "family_school",
    "electronics",
    "home_garden",
    "fashion",
    "car_care",
)
_G = {name: i for i, name in enumerate(GROUPS)}
_BY_INTEREST = {
    "electronics": "electronics",
    "home": "home_garden",
    "fashion": "fashion",
    "car": "car_care",
}


def behaviour_groups(ctx: Context, P: People) -> np.ndarray:
    """The group code (index into ``GROUPS``) of each contact of the chunk."""
    by_interest = np.array([_G.get(_BY_INTEREST.get(i, ""), -1) for i in ref.INTERESTS])
    group = by_interest[P.interest]
    kids = P.interest == ref.INTERESTS.index("kids")
    age = np.where(P.child_birth < NEVER, (ctx.as_of - P.child_birth) / YEAR, 0.0)
    family = np.where(
        age < 3.0,
        _G["family_baby_toddler"],
        np.where(age < 6.0, _G["family_preschool"], _G["family_school"]),
    )
    group = np.where(kids, family, group)
    group = np.where(P.label == HVW, _G["fashion"], group)
    group = np.where(P.label == LAPS, _G["home_garden"], group)
    group = np.where(P.label == APPLE, _G["electronics"], group)
    group = np.where(P.label == BABY, _G["family_baby_toddler"], group)
    return np.where(P.cls == NONE, _G["no_purchase"], group).astype(np.int64)


def groups_table(ctx: Context, P: People) -> pa.Table:
    """(contact_id, group) for every contact of the chunk."""
    return pa.Table.from_arrays(
        [contact_ids(P.g0 + np.arange(P.n)), take(vocab(GROUPS), behaviour_groups(ctx, P))],
        names=SCHEMAS["groups"].names,
    )
