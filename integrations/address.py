"""Shipping-address checks for address changes from a ticket. Pure: no ORM, no I/O.

The platforms accept almost any string, so an agent's typo ("DE " for the country, a
missing street) would ship a parcel into the void. `clean_address` catches what is
obviously undeliverable and answers per field; it does not pretend to verify that the
street exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def _words(text: str) -> list[str]:
    return text.split()


# ISO 3166-1 alpha-2, every officially assigned code, plus XK (Kosovo), which Shopify and
# most carriers use.
COUNTRY_CODES = frozenset(
    _words(
        """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS XK YE YT ZA ZM ZW
    """
    )
)

# Places without postal codes: a blank zip is fine there (Ireland's Eircode is optional).
NO_POSTCODE = frozenset(
    _words(
        """
    AE AG AO AW BF BI BJ BO BS BW BZ CD CF CG CI CK CM DJ DM ER FJ GD GH GM GQ GY HK IE JM KI
    KM KN KP LC ML MO MR MW NR NU QA RW SB SC SL SO SR ST SY TD TF TG TK TL TO TT TV UG VU YE ZW
    """
    )
)

# Postcode shapes for the countries most stores ship to. Others get a length check only.
POSTCODE_PATTERNS = {
    "US": (r"\d{5}(-\d{4})?", "5 digits, e.g. 78701"),
    "CA": (r"[A-Z]\d[A-Z] ?\d[A-Z]\d", "like K1A 0B1"),
    "GB": (r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}", "like SW1A 1AA"),
    "DE": (r"\d{5}", "5 digits"),
    "FR": (r"\d{5}", "5 digits"),
    "ES": (r"\d{5}", "5 digits"),
    "IT": (r"\d{5}", "5 digits"),
    "FI": (r"\d{5}", "5 digits"),
    "MX": (r"\d{5}", "5 digits"),
    "NL": (r"\d{4} ?[A-Z]{2}", "like 1012 AB"),
    "BE": (r"\d{4}", "4 digits"),
    "AT": (r"\d{4}", "4 digits"),
    "CH": (r"\d{4}", "4 digits"),
    "DK": (r"\d{4}", "4 digits"),
    "NO": (r"\d{4}", "4 digits"),
    "AU": (r"\d{4}", "4 digits"),
    "NZ": (r"\d{4}", "4 digits"),
    "SE": (r"\d{3} ?\d{2}", "like 113 51"),
    "PL": (r"\d{2}-\d{3}", "like 00-950"),
    "PT": (r"\d{4}-\d{3}", "like 1000-001"),
    "JP": (r"\d{3}-?\d{4}", "like 100-0001"),
    "BR": (r"\d{5}-?\d{3}", "like 01310-100"),
    "IN": (r"\d{6}", "6 digits"),
}

# Where carriers need the state or province to deliver.
REGIONS = {
    "US": frozenset(
        _words(
            """
        AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV
        NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI UM AA
        AE AP
        """
        )
    ),
    "CA": frozenset(_words("AB BC MB NB NL NS NT NU ON PE QC SK YT")),
    "AU": frozenset(_words("ACT NSW NT QLD SA TAS VIC WA")),
}

REGION_EXAMPLE = {"US": "TX", "CA": "ON", "AU": "NSW"}
FIELDS = (
    "name",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "zip",
    "country_code",
    "phone",
)
MAX_LENGTH = 255
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(raw: Mapping, key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    return " ".join(str(value).split())


def clean_address(raw: Mapping) -> tuple[dict[str, str], dict[str, str]]:
    """(address, errors): the address in our stored shape and one message per bad field.

    The shape is the one orders keep (`Order.shipping_address`): name, company, address1,
    address2, city, province (code where one exists), zip, country_code (ISO-2), phone.
    """
    address = {key: _text(raw, key) for key in FIELDS}
    errors: dict[str, str] = {}
    for key, value in address.items():
        if len(value) > MAX_LENGTH:
            errors[key] = f"At most {MAX_LENGTH} characters."
        elif _CONTROL.search(str(raw.get(key) or "").replace("\n", " ").replace("\t", " ")):
            errors[key] = "Remove the control characters."
    country = address["country_code"].upper()
    address["country_code"] = country
    if not address["name"]:
        errors.setdefault("name", "Who receives the parcel? Enter a name.")
    elif not _LETTER.search(address["name"]):
        errors.setdefault("name", "A name needs letters.")
    if not address["address1"]:
        errors.setdefault("address1", "Enter the street and house number.")
    elif len(address["address1"]) < 3 or not _LETTER.search(address["address1"]):
        errors.setdefault("address1", "This doesn't look like a street address.")
    if not address["city"]:
        errors.setdefault("city", "Enter the city.")
    elif not _LETTER.search(address["city"]):
        errors.setdefault("city", "A city name needs letters.")
    if not country:
        errors.setdefault("country_code", "Choose the country (two-letter code, e.g. DE).")
    elif country not in COUNTRY_CODES:
        errors.setdefault(
            "country_code",
            f"“{address['country_code']}” is not a country code: use ISO 3166 two letters, e.g. DE, US, GB.",
        )
    zip_code = address["zip"].upper()
    address["zip"] = zip_code
    if country in COUNTRY_CODES:
        if not zip_code and country not in NO_POSTCODE:
            errors.setdefault("zip", "Enter the postal code.")
        elif zip_code:
            pattern = POSTCODE_PATTERNS.get(country)
            if pattern and not re.fullmatch(pattern[0], zip_code):
                errors.setdefault("zip", f"“{zip_code}” is not a {country} postal code ({pattern[1]}).")
            elif not pattern and not re.fullmatch(r"[A-Z0-9][A-Z0-9 \-]{1,11}", zip_code):
                errors.setdefault("zip", f"“{zip_code}” doesn't look like a postal code.")
        regions = REGIONS.get(country)
        province = address["province"].upper()
        if regions is not None:
            if not province:
                errors.setdefault(
                    "province",
                    f"Carriers in {country} need the state or province (e.g. {REGION_EXAMPLE[country]}).",
                )
            elif province not in regions:
                errors.setdefault(
                    "province",
                    f"“{address['province']}” is not a {country} state or province code.",
                )
            else:
                address["province"] = province
    if address["phone"] and len(re.sub(r"\D", "", address["phone"])) < 6:
        errors.setdefault("phone", "A phone number needs at least 6 digits.")
    return address, errors


def split_name(name: str) -> tuple[str, str]:
    """("Dana", "Ruiz") for "Dana Ruiz": platforms that store first and last names apart."""
    parts = name.strip().rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], "")


def one_line(address: Mapping) -> str:
    """ "Calle Mayor 5, 28013 Madrid, ES" for timelines and summaries."""
    street = ", ".join(p for p in (address.get("address1"), address.get("address2")) if p)
    town = " ".join(p for p in (address.get("zip"), address.get("city")) if p)
    return ", ".join(p for p in (street, town, address.get("province"), address.get("country_code")) if p)
