"""Static reference data for the generator: cities, stores, names, e-mail domains, vocabularies.

Plain tuples only, no randomness: the generator draws from these by index.
"""

from __future__ import annotations

import unicodedata

# -- geography ------------------------------------------------------------------------------
# (city, country ISO2, IANA time zone, weight in the base, number of shops there)
CITIES: tuple[tuple[str, str, str, float, int], ...] = (
    ("London", "GB", "Europe/London", 9.0, 3),
    ("Manchester", "GB", "Europe/London", 3.0, 1),
    ("Birmingham", "GB", "Europe/London", 2.5, 1),
    ("Bath", "GB", "Europe/London", 0.6, 0),
    ("Paris", "FR", "Europe/Paris", 8.0, 3),
    ("Lyon", "FR", "Europe/Paris", 2.5, 1),
    ("Marseille", "FR", "Europe/Paris", 2.0, 1),
    ("Annecy", "FR", "Europe/Paris", 0.5, 0),
    ("Berlin", "DE", "Europe/Berlin", 8.0, 3),
    ("Hamburg", "DE", "Europe/Berlin", 3.0, 1),
    ("Munich", "DE", "Europe/Berlin", 3.0, 1),
    ("Görlitz", "DE", "Europe/Berlin", 0.4, 0),
    ("Warsaw", "PL", "Europe/Warsaw", 8.0, 3),
    ("Kraków", "PL", "Europe/Warsaw", 3.5, 2),
    ("Gdańsk", "PL", "Europe/Warsaw", 2.5, 1),
    ("Łódź", "PL", "Europe/Warsaw", 2.0, 1),
    ("Zakopane", "PL", "Europe/Warsaw", 0.5, 0),
    ("Moscow", "RU", "Europe/Moscow", 8.0, 3),
    ("Saint Petersburg", "RU", "Europe/Moscow", 4.5, 2),
    ("Kazan", "RU", "Europe/Moscow", 1.5, 1),
    ("Yekaterinburg", "RU", "Asia/Yekaterinburg", 1.5, 1),
    ("Novosibirsk", "RU", "Asia/Novosibirsk", 1.2, 1),
    ("Suzdal", "RU", "Europe/Moscow", 0.3, 0),
    ("Madrid", "ES", "Europe/Madrid", 7.0, 3),
    ("Barcelona", "ES", "Europe/Madrid", 4.0, 2),
    ("Valencia", "ES", "Europe/Madrid", 2.0, 1),
    ("Segovia", "ES", "Europe/Madrid", 0.4, 0),
)
BIG3 = ("London", "Paris", "Berlin")
COUNTRIES = ("GB", "FR", "DE", "PL", "RU", "ES")
CURRENCY = "EUR"

# Mobile phone prefixes (E.164 country code + mobile lead digits) and subscriber-digit counts.
PHONE_FORMATS: dict[str, tuple[str, int]] = {
    "GB": ("+447", 9),
    "FR": ("+336", 8),
    "DE": ("+4915", 9),
    "PL": ("+485", 8),
    "RU": ("+79", 9),
    "ES": ("+346", 8),
}
# The share of iPhone owners per country (the rest use Android).
IOS_SHARE = {"GB": 0.50, "FR": 0.36, "DE": 0.36, "PL": 0.25, "RU": 0.30, "ES": 0.28}

EMAIL_DOMAINS: dict[str, tuple[str, ...]] = {
    "GB": (
        "gmail.com",
        "outlook.com",
        "yahoo.co.uk",
        "btinternet.com",
        "icloud.com",
        "hotmail.co.uk",
    ),
    "FR": ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr", "icloud.com"),
    "DE": ("gmail.com", "gmx.de", "web.de", "t-online.de", "outlook.de", "icloud.com"),
    "PL": ("gmail.com", "wp.pl", "onet.pl", "o2.pl", "interia.pl", "icloud.com"),
    "RU": ("mail.ru", "yandex.ru", "gmail.com", "rambler.ru", "bk.ru", "icloud.com"),
    "ES": ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es", "icloud.com"),
}

# -- people ---------------------------------------------------------------------------------
_F = {
    "GB": "Olivia Amelia Isla Ava Emily Sophie Grace Mia Poppy Ella Lily Jessica Charlotte Hannah "
    "Chloe Lucy Emma Sarah Rebecca Laura",
    "FR": "Emma Louise Jade Alice Chloé Léa Manon Camille Inès Sarah Juliette Léna Zoé Anna Clara "
    "Marie Élodie Céline Nathalie Margaux",
    "DE": "Emma Mia Hannah Sofia Lea Lena Anna Marie Lina Laura Julia Katharina Sabine Petra Jana "
    "Greta Clara Charlotte Johanna Ursula",
    "PL": "Zofia Julia Zuzanna Hanna Maja Lena Alicja Maria Oliwia Amelia Anna Katarzyna "
    "Małgorzata Agnieszka Magdalena Joanna Ewa Monika Natalia Aleksandra",
    "RU": "Анна Мария Елена Ольга Наталья Екатерина Татьяна Ирина Светлана Юлия Анастасия Дарья "
    "Ксения Полина Виктория Алина Марина Софья Алёна Вера",
    "ES": "Lucía Sofía Martina María Paula Julia Daniela Valeria Alba Emma Carmen Laura Ana Isabel "
    "Marta Elena Cristina Pilar Raquel Nuria",
}
_M = {
    "GB": "Oliver George Harry Jack Jacob Noah Charlie Thomas Oscar William James Henry Daniel "
    "Samuel Joseph Matthew Ben Alexander David Michael",
    "FR": "Gabriel Louis Raphaël Jules Adam Lucas Léo Hugo Arthur Nathan Théo Paul Thomas Nicolas "
    "Julien Antoine Maxime Pierre François Mathis",
    "DE": "Noah Leon Paul Ben Finn Elias Felix Lukas Jonas Maximilian Tobias Jan Stefan Michael "
    "Andreas Thomas Matthias Florian Jürgen Moritz",
    "PL": "Antoni Jan Jakub Aleksander Franciszek Szymon Filip Mikołaj Wojciech Kacper Piotr "
    "Krzysztof Tomasz Paweł Michał Marcin Łukasz Adam Marek Grzegorz",
    "RU": "Александр Дмитрий Максим Сергей Андрей Алексей Артём Илья Кирилл Михаил Никита Иван "
    "Егор Роман Владимир Павел Николай Олег Евгений Денис",
    "ES": "Hugo Martín Lucas Mateo Leo Daniel Alejandro Pablo Manuel Álvaro Javier José Antonio "
    "David Carlos Juan Francisco Miguel Sergio Jorge",
}
# Surnames as "masculine/feminine" where the language inflects them.
_LAST = {
    "GB": "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Wood Harris Clarke Patel O'Brien",
    "FR": "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefèvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Mercier Dupont",
    "DE": "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch "
    "Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann "
    "Lange",
    "PL": "Nowak/Nowak Kowalski/Kowalska Wiśniewski/Wiśniewska Wójcik/Wójcik Kowalczyk/Kowalczyk "
    "Kamiński/Kamińska Lewandowski/Lewandowska Zieliński/Zielińska Szymański/Szymańska "
    "Woźniak/Woźniak Dąbrowski/Dąbrowska Kozłowski/Kozłowska Jankowski/Jankowska Mazur/Mazur "
    "Kwiatkowski/Kwiatkowska Krawczyk/Krawczyk Piotrowski/Piotrowska Grabowski/Grabowska "
    "Nowakowski/Nowakowska Pawłowski/Pawłowska",
    "RU": "Иванов/Иванова Смирнов/Смирнова Кузнецов/Кузнецова Попов/Попова Васильев/Васильева "
    "Петров/Петрова Соколов/Соколова Михайлов/Михайлова Новиков/Новикова Фёдоров/Фёдорова "
    "Морозов/Морозова Волков/Волкова Алексеев/Алексеева Лебедев/Лебедева Семёнов/Семёнова "
    "Егоров/Егорова Павлов/Павлова Козлов/Козлова Степанов/Степанова Николаев/Николаева",
    "ES": "García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín Jiménez "
    "Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez "
    "Vázquez Ramos",
}

_LATIN = (
    "a",
    "b",
    "v",
    "g",
    "d",
    "e",
    "e",
    "zh",
    "z",
    "i",
    "y",
    "k",
    "l",
    "m",
    "n",
    "o",
    "p",
    "r",
    "s",
    "t",
    "u",
    "f",
    "kh",
    "ts",
    "ch",
    "sh",
    "shch",
    "-",
    "y",
    "-",
    "e",
    "yu",
    "ya",
)
_CYR = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", _LATIN, strict=True))
_SPECIAL = {"ł": "l", "Ł": "L", "ß": "ss", "ø": "o", "æ": "ae", "'": "", "-": ""}


def ascii_name(text: str) -> str:
    """Lower-case ASCII form of a name for e-mail addresses (transliterates Cyrillic)."""
    out = []
    for ch in text.lower():
        if ch in _CYR:
            t = _CYR[ch]
            out.append("" if t == "-" else t)
        elif ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        else:
            out.append(ch)
    folded = unicodedata.normalize("NFKD", "".join(out))
    return "".join(c for c in folded if c.isascii() and c.isalnum())


def first_names(country: str, gender: str) -> tuple[str, ...]:
    return tuple((_F if gender == "F" else _M)[country].split())


def last_names(country: str, gender: str) -> tuple[str, ...]:
    words = _LAST[country].split()
    return tuple(w.split("/")[0 if gender == "M" else 1] if "/" in w else w for w in words)


# -- acquisition channels (seed 001: contest-acquired contacts churn fast) ------------------
# name, share, P(ever buys), mean purchasing lifetime in days, P(e-mail opt-in),
# e-mail open-rate multiplier, retention group
CHANNELS: tuple[tuple[str, float, float, float, float, float, str], ...] = (
    ("organic", 0.25, 0.86, 720.0, 0.45, 1.00, "loyal"),
    ("ads", 0.22, 0.80, 420.0, 0.40, 0.90, "medium"),
    ("popup", 0.14, 0.62, 360.0, 0.92, 0.80, "medium"),
    ("contest", 0.12, 0.30, 45.0, 0.88, 0.35, "fast_churn"),
    ("referral", 0.09, 0.88, 900.0, 0.50, 1.10, "loyal"),
    ("offline_store", 0.18, 0.97, 800.0, 0.38, 0.90, "loyal"),
)
CHANNEL_NAMES = tuple(c[0] for c in CHANNELS)

# -- interests: what a contact mostly buys and browses --------------------------------------
INTERESTS = ("kids", "electronics", "home", "fashion", "car")
INTEREST_SHARES = (0.30, 0.17, 0.23, 0.20, 0.10)

LOYALTY_TIERS = ("none", "silver", "gold")
NEWSLETTER_TOPICS = {
    "kids": "kids",
    "electronics": "electronics",
    "home": "home_garden",
    "fashion": "fashion",
    "car": "car_care",
}

DEVICE_OS = ("iOS", "Android", "Windows", "macOS")
SOURCES = ("email", "web", "app", "push")
EVENT_TYPES = (
    "email_send",
    "email_open",
    "email_click",
    "page_view",
    "product_view",
    "category_view",
    "search",
    "app_session",
    "web_push_subscribe",
)

PIPELINES = ("corporate_gifts", "wholesale")
DEAL_STAGES = ("lead", "qualified", "proposal_sent", "negotiation", "won", "lost")

GENERIC_URLS = (
    "/",
    "/sale",
    "/new-arrivals",
    "/account",
    "/cart",
    "/stores",
    "/delivery",
    "/blog/garden-calendar",
    "/blog/first-foods-guide",
    "/blog/iphone-tips",
    "/loyalty",
    "/preferences",
)

MAIL_CLIENTS = {
    "iOS": ("Apple Mail", "Gmail"),
    "Android": ("Gmail", "Samsung Email"),
    "Windows": ("Outlook", "Chrome"),
    "macOS": ("Apple Mail", "Safari"),
}
BROWSERS = {
    "iOS": ("Safari",),
    "Android": ("Chrome", "Samsung Internet"),
    "Windows": ("Chrome", "Edge", "Firefox"),
    "macOS": ("Safari", "Chrome"),
}
APP_SCREENS = ("home", "catalog", "product", "cart", "profile", "loyalty_card")
APP_VERSIONS = ("4.8.2", "5.0.1", "5.1.0")
REFERRERS = ("direct", "google", "newsletter", "instagram", "facebook", "yandex")
VIEW_LISTS = ("category", "search", "recommendations", "home")
CLICK_LINKS = ("cta", "product", "banner")
