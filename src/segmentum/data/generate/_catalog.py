"""The product catalogue of the synthetic multi-category retailer, and fast samplers over it.

Kids' departments are age-targeted (baby food 0-12 months, toddler 12-36, preschool 36-72,
school 72-144); electronics has iPhones and Apple accessories (brand Apple) next to other
phones and accessories; plus Home & Garden, Car care and Fashion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# category, department, sku prefix, brands, product types:
#   (type name, price low, price high, target age min, max (months) or None, variants)
_KIDS_FOOD = ("HiPP", "Gerber", "Nestlé", "Heinz", "Bebivita", "Frutonyanya", "Ella's Kitchen")
_CATALOG: tuple = (
    (
        "Baby food",
        "Kids",
        "BF",
        _KIDS_FOOD,
        (
            ("Infant formula 800 g", 14, 28, 0, 6, ("Stage 1", "Comfort", "Organic")),
            ("Follow-on milk 800 g", 13, 26, 6, 12, ("Stage 2", "Organic")),
            (
                "Vegetable purée 125 g",
                0.9,
                1.9,
                4,
                8,
                ("carrot", "pumpkin", "sweet potato", "peas"),
            ),
            ("Fruit purée 125 g", 0.9, 1.9, 4, 8, ("apple", "pear", "banana", "mango")),
            ("Rice cereal 200 g", 2.5, 4.5, 4, 12, ("plain", "with fruit")),
            ("Meat & veg jar 190 g", 1.5, 2.9, 6, 12, ("chicken", "turkey", "beef", "fish")),
            ("Fruit pouch 100 g", 1.2, 2.2, 6, 12, ("berry", "apple-kiwi", "peach")),
            ("Porridge 250 g", 2.5, 5.5, 6, 12, ("oat", "multigrain", "buckwheat")),
            ("Finger snacks 50 g", 1.9, 3.5, 8, 12, ("corn puffs", "rice cakes", "biscuits")),
            ("Pasta dinner jar 220 g", 1.9, 3.2, 10, 12, ("bolognese", "lasagne", "veg risotto")),
        ),
    ),
    (
        "Toddler",
        "Kids",
        "TD",
        ("Fisher-Price", "LEGO Duplo", "Chicco", "Tommee Tippee", "Aptamil", "VTech"),
        (
            ("Growing-up milk 800 g", 11, 22, 12, 36, ("Stage 3", "Organic")),
            ("Toddler meal pouch", 1.5, 3.0, 12, 36, ("pasta", "risotto", "stew")),
            ("Stacking cups", 6, 15, 12, 24, ("rainbow", "animals")),
            ("Push-along walker", 25, 60, 12, 24, ("classic", "musical")),
            ("Shape sorter", 10, 25, 12, 36, ("wooden", "cube")),
            ("Building bricks set", 15, 70, 18, 36, ("farm", "zoo", "train")),
            ("Sippy cup", 5, 12, 12, 24, ("blue", "pink", "green")),
            ("Potty trainer", 12, 30, 18, 36, ("white", "blue")),
            ("Board book", 5, 12, 12, 36, ("animals", "colours", "bedtime")),
            ("Toddler shoes", 20, 45, 12, 36, ("size 20", "size 22", "size 24")),
        ),
    ),
    (
        "Preschool",
        "Kids",
        "PS",
        ("LEGO", "Playmobil", "Crayola", "Play-Doh", "Hape", "Ravensburger"),
        (
            ("Building set", 15, 90, 48, 72, ("fire station", "castle", "space")),
            ("Jigsaw puzzle 48 pcs", 8, 15, 36, 72, ("dinosaurs", "princesses", "vehicles")),
            ("Crayons 24-pack", 3, 8, 36, 72, ("classic", "washable")),
            ("Modelling dough set", 8, 25, 36, 72, ("kitchen", "animals")),
            ("Picture book", 6, 15, 36, 72, ("fairy tales", "space", "animals")),
            ("Balance bike", 45, 120, 36, 60, ("red", "blue")),
            ("Dress-up costume", 15, 35, 36, 72, ("pirate", "princess", "astronaut")),
            ("Doll", 12, 40, 36, 72, ("classic", "baby doll")),
            ("Toy car garage", 25, 70, 36, 72, ("city", "racing")),
            ("Kids' rain boots", 15, 30, 36, 72, ("yellow", "red", "blue")),
        ),
    ),
    (
        "School",
        "Kids",
        "SC",
        ("LEGO", "Pelikan", "Herlitz", "Staedtler", "Ravensburger", "Decathlon"),
        (
            ("School backpack", 35, 90, 72, 144, ("blue", "pink", "black")),
            ("Pencil case", 8, 25, 72, 144, ("filled", "empty")),
            ("Fountain pen", 8, 25, 84, 144, ("left-handed", "right-handed")),
            ("Science kit", 20, 55, 96, 144, ("chemistry", "crystals", "robotics")),
            ("Technic set", 30, 150, 96, 144, ("race car", "crane", "excavator")),
            ("Board game", 15, 45, 72, 144, ("strategy", "family", "quiz")),
            ("Kids' bicycle 24\"", 150, 320, 96, 144, ("mountain", "city")),
            ("Football", 10, 30, 72, 144, ("size 4", "size 5")),
            ("Children's novel", 7, 15, 84, 144, ("adventure", "mystery", "fantasy")),
            ("Lunch box", 8, 20, 72, 144, ("bento", "classic")),
        ),
    ),
    (
        "iPhones",
        "Electronics",
        "IP",
        ("Apple",),
        (
            ("iPhone 15 128 GB", 699, 799, None, None, ("black", "blue", "pink")),
            ("iPhone 16 128 GB", 849, 949, None, None, ("black", "white", "teal")),
            (
                "iPhone 16 Pro 256 GB",
                1199,
                1329,
                None,
                None,
                ("natural titanium", "black titanium"),
            ),
            ("iPhone 16e 128 GB", 599, 699, None, None, ("black", "white")),
            ("iPhone 17 256 GB", 949, 999, None, None, ("lavender", "black", "sage")),
            ("iPhone 17 Pro 256 GB", 1299, 1349, None, None, ("cosmic orange", "deep blue")),
            ("iPhone 17 Pro Max 512 GB", 1599, 1749, None, None, ("silver",)),
        ),
    ),
    (
        "Apple accessories",
        "Electronics",
        "AA",
        ("Apple",),
        (
            ("AirPods 4", 149, 199, None, None, ("standard", "ANC")),
            ("AirPods Pro 3", 249, 279, None, None, ("white",)),
            ("MagSafe Charger", 45, 55, None, None, ("1 m", "2 m")),
            ("USB-C Charge Cable", 19, 29, None, None, ("1 m", "2 m")),
            ("20W USB-C Power Adapter", 19, 25, None, None, ("EU plug", "UK plug")),
            (
                "Silicone Case with MagSafe",
                49,
                59,
                None,
                None,
                ("iPhone 16", "iPhone 17", "iPhone 17 Pro"),
            ),
            ("Clear Case with MagSafe", 49, 55, None, None, ("iPhone 16", "iPhone 17")),
            ("AirTag", 35, 39, None, None, ("1 pack",)),
            ("AirTag 4 pack", 119, 129, None, None, ("4 pack",)),
            ("Apple Watch Sport Band", 45, 49, None, None, ("midnight", "starlight", "storm blue")),
            ("EarPods (USB-C)", 19, 22, None, None, ("white",)),
        ),
    ),
    (
        "Phones",
        "Electronics",
        "PH",
        ("Samsung", "Xiaomi", "Google", "Motorola"),
        (
            ("Galaxy S25 256 GB", 899, 999, None, None, ("navy", "icyblue")),
            ("Galaxy A56 128 GB", 379, 449, None, None, ("graphite", "pink")),
            ("Redmi Note 14 128 GB", 199, 279, None, None, ("black", "green")),
            ("Xiaomi 15 256 GB", 799, 999, None, None, ("black", "white")),
            ("Pixel 10 128 GB", 799, 899, None, None, ("obsidian", "frost")),
            ("Moto G85 256 GB", 229, 299, None, None, ("cobalt", "grey")),
        ),
    ),
    (
        "Phone accessories",
        "Electronics",
        "PA",
        ("Samsung", "Xiaomi", "Anker", "Belkin", "Spigen", "JBL"),
        (
            ("Power bank 10000 mAh", 19, 49, None, None, ("black", "white")),
            ("USB-C cable 1 m", 7, 19, None, None, ("braided", "standard")),
            (
                "Phone case",
                12,
                35,
                None,
                None,
                ("Galaxy S25", "Redmi Note 14", "iPhone 16", "iPhone 17"),
            ),
            (
                "Screen protector 2-pack",
                8,
                20,
                None,
                None,
                ("Galaxy S25", "iPhone 16", "iPhone 17"),
            ),
            ("Wireless charger 15 W", 19, 45, None, None, ("pad", "stand")),
            ("Bluetooth earbuds", 29, 129, None, None, ("black", "white", "blue")),
            ("Car phone mount", 12, 35, None, None, ("vent", "dashboard", "MagSafe")),
            ("Smartwatch strap", 9, 25, None, None, ("silicone", "leather")),
        ),
    ),
    (
        "Home & Garden",
        "Home & Garden",
        "HG",
        ("Gardena", "Fiskars", "Kärcher", "Bosch", "Leifheit", "Compo", "Weber"),
        (
            ("Garden hose 20 m", 19, 59, None, None, ("classic", "flex")),
            ("Hose reel", 35, 90, None, None, ("wall", "mobile")),
            ("Pruning shears", 12, 45, None, None, ("bypass", "anvil")),
            ("Lawn seed 1 kg", 8, 19, None, None, ("shade", "sport", "universal")),
            ("Fertiliser 2.5 kg", 9, 24, None, None, ("lawn", "roses", "universal")),
            ("Pressure washer", 99, 349, None, None, ("K2", "K4", "K5")),
            ("Cordless lawn mower", 199, 499, None, None, ("32 cm", "37 cm")),
            ("Watering can 10 l", 9, 25, None, None, ("green", "grey")),
            ("Plant pot 30 cm", 6, 29, None, None, ("terracotta", "anthracite")),
            ("Garden gloves", 5, 15, None, None, ("S", "M", "L")),
            ("Charcoal barbecue", 89, 399, None, None, ("47 cm", "57 cm")),
            ("Solar garden lights 6-pack", 15, 39, None, None, ("warm", "cold")),
            ("Ironing board", 29, 79, None, None, ("S", "L")),
            ("Storage box 45 l", 9, 25, None, None, ("clear", "grey")),
            ("Bed linen set", 25, 79, None, None, ("cotton", "linen")),
            ("LED bulb 4-pack", 8, 19, None, None, ("E27", "E14")),
            ("Potting soil 40 l", 6, 14, None, None, ("universal", "cactus")),
            ("Rotary clothes dryer", 49, 129, None, None, ("40 m", "50 m")),
        ),
    ),
    (
        "Car care",
        "Car care",
        "CC",
        ("Turtle Wax", "Meguiar's", "Sonax", "Liqui Moly", "Osram", "Bosch"),
        (
            ("Headlight lamp cleaner", 8, 19, None, None, ("spray", "restoration kit")),
            ("Car shampoo 1 l", 6, 15, None, None, ("wash & wax", "pH neutral")),
            ("Microfibre cloths 5-pack", 7, 16, None, None, ("grey", "yellow")),
            ("Polish & wax", 12, 29, None, None, ("liquid", "paste")),
            ("Tyre shine", 8, 17, None, None, ("gel", "spray")),
            ("Interior cleaner", 7, 16, None, None, ("plastic", "upholstery")),
            ("Screenwash 5 l", 5, 12, None, None, ("summer", "winter -20°C")),
            ("Wiper blades", 15, 39, None, None, ("53 cm", "60 cm", "65 cm")),
            ("Engine oil 5W-30 5 l", 29, 59, None, None, ("longlife", "special")),
            ("Leather care", 10, 22, None, None, ("cleaner", "conditioner")),
            ("Car air freshener", 3, 8, None, None, ("vanilla", "new car", "ocean")),
        ),
    ),
    (
        "Fashion",
        "Fashion",
        "FA",
        ("Reserved", "Mango", "Levi's", "Adidas", "Nike", "Vero Moda", "Tommy Hilfiger"),
        (
            ("T-shirt", 9, 39, None, None, ("white", "black", "navy", "striped")),
            ("Jeans", 39, 119, None, None, ("slim", "straight", "wide")),
            ("Dress", 29, 129, None, None, ("midi", "maxi", "wrap")),
            ("Sneakers", 59, 159, None, None, ("white", "black", "grey")),
            ("Jacket", 59, 199, None, None, ("denim", "bomber", "rain")),
            ("Sweater", 29, 89, None, None, ("wool", "cotton")),
            ("Skirt", 25, 79, None, None, ("pleated", "mini")),
            ("Scarf", 12, 49, None, None, ("wool", "silk")),
            ("Handbag", 39, 249, None, None, ("tote", "crossbody", "clutch")),
            ("Coat", 99, 299, None, None, ("wool", "trench", "puffer")),
            ("Socks 3-pack", 7, 15, None, None, ("sport", "classic")),
        ),
    ),
)

CATEGORIES: tuple[str, ...] = tuple(c[0] for c in _CATALOG)
CAT = {name: i for i, name in enumerate(CATEGORIES)}
KIDS_CATEGORIES = ("Baby food", "Toddler", "Preschool", "School")
# SKUs per product type (per category), so the catalogue has ~1,500 SKUs.
_PER_TYPE = {
    "Baby food": 14,
    "Toddler": 12,
    "Preschool": 12,
    "School": 12,
    "iPhones": 3,
    "Apple accessories": 4,
    "Phones": 5,
    "Phone accessories": 10,
    "Home & Garden": 12,
    "Car care": 8,
    "Fashion": 28,
}
OUT_OF_STOCK_SHARE = 0.07

# Where a purchase/view line goes: one "kids" slot (resolved by the child's age) + the rest.
SLOTS = (
    "kids",
    "iPhones",
    "Apple accessories",
    "Phones",
    "Phone accessories",
    "Home & Garden",
    "Car care",
    "Fashion",
)
SLOT = {name: i for i, name in enumerate(SLOTS)}

SEARCH_QUERIES: dict[str, tuple[str, ...]] = {
    "Baby food": (
        "baby puree",
        "hipp organic",
        "infant formula",
        "follow on milk",
        "baby porridge",
    ),
    "Toddler": ("duplo", "sippy cup", "potty", "toddler shoes", "growing up milk"),
    "Preschool": ("lego", "puzzle", "balance bike", "play doh", "costume"),
    "School": ("school backpack", "pencil case", "science kit", "lego technic", "fountain pen"),
    "iPhones": ("iphone 17", "iphone 16 pro", "iphone", "iphone 17 pro max", "iphone 16e"),
    "Apple accessories": (
        "airpods",
        "magsafe charger",
        "airtag",
        "iphone case",
        "usb-c cable apple",
    ),
    "Phones": ("samsung galaxy", "redmi note", "pixel 10", "xiaomi 15", "moto g"),
    "Phone accessories": (
        "power bank",
        "screen protector",
        "wireless charger",
        "earbuds",
        "phone case",
    ),
    "Home & Garden": (
        "garden hose",
        "pruning shears",
        "lawn seed",
        "pressure washer",
        "fertiliser",
        "hose reel",
        "solar lights",
        "potting soil",
        "gardena",
        "barbecue",
    ),
    "Car care": ("lamp cleaner", "car shampoo", "wiper blades", "engine oil 5w30", "tyre shine"),
    "Fashion": ("dress", "jeans", "sneakers", "coat", "handbag"),
}


def slug(category: str) -> str:
    return category.lower().replace(" & ", "-").replace(" ", "-")


@dataclass(frozen=True)
class Catalog:
    """The product table as numpy columns plus precomputed samplers."""

    sku: np.ndarray  # str
    name: np.ndarray  # str
    category: np.ndarray  # int index into CATEGORIES
    department: np.ndarray  # str
    brand: np.ndarray  # str
    price_cents: np.ndarray  # int64
    in_stock: np.ndarray  # bool
    age_min: np.ndarray  # int64, -1 = not age-targeted
    age_max: np.ndarray  # int64, -1 = not age-targeted
    # sampler state
    cat_start: np.ndarray
    cat_count: np.ndarray
    pop_cum: np.ndarray  # category index + within-category cumulative popularity
    age_cover_start: np.ndarray  # per month 0..144: offset into age_cover
    age_cover_count: np.ndarray
    age_cover: np.ndarray  # SKU indices covering each month, concatenated
    is_apple: np.ndarray  # bool
    lamp_cleaners: np.ndarray  # SKU indices of headlight lamp cleaners (seed 003's new buyer)

    @property
    def size(self) -> int:
        return len(self.sku)

    def pick_in_category(self, cat: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A SKU index per row from category ``cat``, by popularity (u uniform in [0, 1))."""
        return np.searchsorted(self.pop_cum, cat + u, side="right")

    def pick_for_age(self, months: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A SKU index per row that is targeted at a child of ``months`` months."""
        m = np.clip(months, 0, 144).astype(np.int64)
        off = self.age_cover_start[m] + (u * self.age_cover_count[m]).astype(np.int64)
        return self.age_cover[off]

    def pick_uniform(self, pool: np.ndarray, u: np.ndarray) -> np.ndarray:
        return pool[(u * len(pool)).astype(np.int64)]


def build_catalog(rng: np.random.Generator) -> Catalog:
    """Draw the catalogue: ~1,500 SKUs, prices within each type's range, ~7% out of stock."""
    sku, name, cat, dep, brand, price, amin, amax = [], [], [], [], [], [], [], []
    # This loop runs once per SKU of a fixed ~1,500-row catalogue, not per contact.
    for ci, (category, department, prefix, brands, types) in enumerate(_CATALOG):
        per_type = _PER_TYPE[category]
        n = 0
        for tname, lo, hi, a0, a1, variants in types:
            k = per_type if len(brands) > 1 else len(variants)
            for j in range(k):
                b = brands[int(rng.integers(len(brands)))] if len(brands) > 1 else brands[0]
                v = variants[j % len(variants)]
                n += 1
                sku.append(f"{prefix}-{n:05d}")
                suffix = f" ({v})" if k > 1 or len(variants) > 1 else ""
                name.append(f"{b} {tname}{suffix}" if b != "Apple" else f"Apple {tname}{suffix}")
                cat.append(ci)
                dep.append(department)
                brand.append(b)
                p = np.exp(rng.uniform(np.log(lo), np.log(hi)))
                # shop-style prices: x.99 above 5, cents otherwise
                cents = round(p * 100) if p < 5 else int(np.floor(p)) * 100 + 99
                price.append(cents)
                amin.append(-1 if a0 is None else a0)
                amax.append(-1 if a1 is None else a1)
    sku_a = np.array(sku, dtype=object)
    cat_a = np.array(cat, dtype=np.int64)
    price_a = np.array(price, dtype=np.int64)
    in_stock = rng.random(len(sku)) >= OUT_OF_STOCK_SHARE
    amin_a = np.array(amin, dtype=np.int64)
    amax_a = np.array(amax, dtype=np.int64)

    ncat = len(CATEGORIES)
    cat_start = np.searchsorted(cat_a, np.arange(ncat))
    cat_count = np.bincount(cat_a, minlength=ncat)
    pop_cum = np.empty(len(sku), dtype=np.float64)
    for c in range(ncat):
        s, k = cat_start[c], cat_count[c]
        # Zipf-like popularity on a random order of the category's SKUs; cheaper sells more
        w = 1.0 / (rng.permutation(k) + 4.0) * (price_a[s : s + k] / 100.0) ** -1.0
        cum = np.cumsum(w) / w.sum()
        cum[-1] = 1.0
        pop_cum[s : s + k] = c + cum

    kids = np.flatnonzero(amin_a >= 0)
    starts, counts, cover = [], [], []
    for m in range(145):
        hit = kids[(amin_a[kids] <= m) & (m < np.maximum(amax_a[kids], amin_a[kids] + 1))]
        if m == 144:
            hit = kids[amax_a[kids] == 144]
        starts.append(len(cover))
        counts.append(len(hit))
        cover.extend(hit.tolist())
    assert min(counts) > 0, "every child age 0-144 months must have products"
    is_apple = np.array([b == "Apple" for b in brand])
    return Catalog(
        sku=sku_a,
        name=np.array(name, dtype=object),
        category=cat_a,
        department=np.array(dep, dtype=object),
        brand=np.array(brand, dtype=object),
        price_cents=price_a,
        in_stock=in_stock,
        age_min=amin_a,
        age_max=amax_a,
        cat_start=cat_start,
        cat_count=cat_count,
        pop_cum=pop_cum,
        age_cover_start=np.array(starts, dtype=np.int64),
        age_cover_count=np.array(counts, dtype=np.int64),
        age_cover=np.array(cover, dtype=np.int64),
        is_apple=is_apple,
        lamp_cleaners=np.flatnonzero(np.array(["lamp cleaner" in x for x in name])),
    )
