"""The planted personas: their names, codes, shares of the base and the rules that find them.

Each label is planted in a few per cent of the generated contacts; ``ground_truth`` lists
who carries which label, and the segment ``rule`` (evaluated as of the end date, "last N
days" = the N days up to it) finds them with high precision and recall.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    name: str
    code: int
    share: float  # planted share of the base
    seed: str  # source article
    description: str
    rule: str


LABELS: tuple[Label, ...] = (
    Label(
        "apple_fan",
        1,
        0.03,
        "002",
        "Reads the newsletter on an iPhone and is into Apple: views iPhones, buys Apple, uses "
        "the iOS app or subscribed to web push on iOS. The audience for iPhone accessories.",
        'count(email_open, last 90 days) > 2 and count(email_open where device_os = "iOS", '
        'last 90 days) >= 1 and (count(product_view where category = "iPhones") > 5 or '
        'purchased(brand = "Apple") or exists(app_session where device_os = "iOS") or '
        'exists(web_push_subscribe where device_os = "iOS"))',
    ),
    Label(
        "new_one_item_buyer",
        2,
        0.025,
        "003",
        "Just signed up and bought one single item (often a car lamp cleaner); did not "
        "subscribe to the newsletter. Start the relationship via the preference centre.",
        "count(orders) = 1 and sum(order_items.quantity) = 1 and not email_opt_in",
    ),
    Label(
        "high_value_woman_big_city",
        3,
        0.02,
        "003",
        "A woman in London, Paris or Berlin who regularly spends at least 400 EUR a year.",
        'gender = "F" and city in ("London", "Paris", "Berlin") and '
        "sum(orders.total, last 365 days) >= 400",
    ),
    Label(
        "lapsing_home_garden",
        4,
        0.03,
        "003",
        "Casual, medium-value Home & Garden buyer whose purchase frequency is falling; uses "
        "the site search instead of browsing categories.",
        'rfm(levels=3).f = 2 and rfm(levels=3).m = 2 and purchased(category = "Home & Garden") '
        "and trend(orders, 90 days) < 0 and count(search, last 90 days) > "
        "count(category_view, last 90 days)",
    ),
    Label(
        "offline_regular_lapsed",
        5,
        0.02,
        "003",
        "Regular shop (offline) buyer who never bought online and suddenly stopped 3+ months "
        "ago, yet still opens the newsletter and browses the website: maybe moved away.",
        'count(orders where channel = "offline", between 365 and 90 days ago) >= 3 and '
        'count(orders where channel = "offline", last 90 days) = 0 and '
        'count(orders where channel = "online") = 0 and exists(email_open, last 30 days) '
        "and email_opt_in",
    ),
    Label(
        "baby_food_churned",
        6,
        0.025,
        "000",
        "Loyal big spender (top frequency and monetary) whose last baskets were mostly baby "
        "food and who stopped buying 9-11 months ago: the child has outgrown baby food.",
        "rfm(levels=3).f = 3 and rfm(levels=3).m = 3 and days_since(last order) > 180 "
        "and clv.prob_alive < 0.3",
    ),
    Label(
        "proposal_sent",
        7,
        0.015,
        "000",
        "Has a deal whose current funnel stage is proposal_sent: received a commercial "
        "proposal, not closed yet. A retargeting audience.",
        'deal.stage = "proposal_sent"',
    ),
    Label(
        "back_in_stock_watcher",
        8,
        0.02,
        "002",
        "Came back at least twice in the last 30 days to a product page while the product was "
        "out of stock (the view's in_stock property is false): tell them when it is back.",
        "count(product_view where in_stock = false, last 30 days) >= 2",
    ),
    Label(
        "inactive_subscriber",
        9,
        0.02,
        "002",
        "Used to open nearly every newsletter (70%+ of those sent from a year to four months "
        "ago), has opened none in the last 3 months, and is still subscribed.",
        "email_opt_in and count(email_send, between 365 and 120 days ago) >= 6 and "
        "count(email_open, between 365 and 120 days ago) >= "
        "0.7 * count(email_send, between 365 and 120 days ago) and no(email_open, last 90 days)",
    ),
)
BY_NAME = {lab.name: lab for lab in LABELS}
BY_CODE = {lab.code: lab for lab in LABELS}
# Every label but proposal_sent is one of mutually exclusive personas; proposal_sent is drawn
# independently of them.
EXCLUSIVE = tuple(lab for lab in LABELS if lab.name != "proposal_sent")
CODES = max(BY_CODE) + 1  # persona codes run 0 (background) .. CODES - 1
