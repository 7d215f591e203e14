"""Weak-supervision labeller for the query models: intent and demand labels for a search text.

Lexicons come from the real catalogues in ../shared/data (brands from ESCI `product_brand` and
from the leading words of Home Depot and Amazon product titles; colours from ESCI
`product_color` plus a base list), patterns cover units and dimensions, model numbers, price,
comparison and pack phrases. The rules run in two modes:

- text only (`evidence=None`): what a rule system sees at serving time; this is the
  "rules on raw text" baseline of train/eval_query_model.py;
- with evidence: the products judged relevant to the query (Home Depot relevance >= 2.5, ESCI
  E rows) confirm or reject a text match (a lexicon brand the relevant products do not carry
  is dropped) and find what the lexicons miss (misspelt brands, a bare number that is a size in
  the relevant titles or their pack count, an audience implied by a toddler size).

The training labels are the evidence-mode labels, so the model is taught more than the rules can
see in the text. Class definitions and label counts: docs/query_models.md.

    from shopsense.query_labels import Evidence, QueryLabeller, build_lexicons
    labeller = QueryLabeller(build_lexicons("../shared/data"))
    labeller.label("dewalt 20v drill")                                   # text only
    labeller.label("milwakee drill", Evidence(titles=["Milwaukee M18 ..."]))
"""
from __future__ import annotations

import html
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from shopsense.query_models import DEMAND_LABELS, INTENT_LABELS

# Tokens keep decimals and fractions together ("1.9", "1/2") and split on everything else.
TOKEN = re.compile(r"[a-z0-9]+(?:[./][a-z0-9]+)*")

# Multi-word phrases are written with underscores.
BASE_COLOURS = """black white red green blue yellow orange purple pink brown grey gray beige ivory cream tan navy teal
turquoise aqua maroon burgundy gold silver bronze copper chrome nickel pewter charcoal khaki olive lavender lilac
violet magenta coral peach mint lime rust taupe espresso walnut cherry mahogany natural clear multicolor
multicolored transparent nude blush champagne ebony graphite slate indigo emerald ruby sapphire almond biscuit
bisque sand smoke oil_rubbed_bronze brushed_nickel satin_nickel polished_chrome off_white light_grey dark_grey
light_blue dark_blue rose_gold antique_brass matte_black satin matte glossy gloss metallic"""
STYLE_WORDS = """modern contemporary rustic farmhouse vintage antique traditional industrial transitional coastal
boho bohemian retro minimalist shabby_chic mid_century art_deco victorian colonial craftsman mission floral striped
plaid polka_dot camo camouflage leopard glitter ombre paisley geometric tuscan"""
MATERIALS = """wood wooden oak pine cedar maple birch teak bamboo mdf plywood metal steel stainless aluminum
aluminium iron cast_iron wrought_iron brass zinc titanium plastic pvc cpvc pex abs vinyl acrylic glass ceramic
porcelain marble granite quartz travertine stone concrete cement brick leather suede cotton linen wool silk
polyester nylon velvet microfiber fleece denim canvas jute sisal rubber silicone foam latex fiberglass resin wicker
rattan cork felt galvanized solid_wood hardwood composite"""
AUDIENCE = """kid kids child children childrens boy boys girl girls baby babies infant infants toddler toddlers youth
teen teens junior juniors men mens man male women womens woman ladies lady womans female unisex adult adults senior
seniors elderly pet pets dog dogs puppy cat cats kitten maternity petite mujer hombre nino ninos nina ninas
for_him for_her plus_size big_and_tall newborn"""
PRICE = re.compile(r"\$\s*\d|\b(?:under|below|less than|cheaper than)\s+\$?\d+|\b(?:cheap|cheaper|cheapest|inexpensive|"
                   r"affordable|budget|discount|discounted|clearance|sale|deal|deals|bargain|low price|price|"
                   r"prices|dollar|dollars|bucks)\b")
COMPARE = re.compile(r"\b(?:vs|versus|compare|comparison|compared|difference between|better than|best|top rated|"
                     r"best rated|highly rated|review|reviews|ratings|alternative|alternatives|cheapest|strongest|"
                     r"quietest|brightest|most powerful|which)\b|\b\w{3,} or \w{3,}\b")
UNIT = (r"in|inch|inches|ft|feet|foot|cu|cubic|gal|gallon|gallons|qt|quart|oz|ounce|ounces|fl|lb|lbs|pound|pounds|"
        r"mm|cm|m|meter|meters|yd|yard|yards|sq|v|volt|volts|vac|amp|amps|a|ah|w|watt|watts|kw|btu|btus|gauge|ga|"
        r"psi|hp|mah|gb|tb|mb|mp|hz|ml|l|liter|liters|litre|mil|awg|gpm|gpf|cfm|rpm|tpi|grit|lumen|lumens|k|"
        r"ton|tons|piece|pc|ply|x")
UNIT_WORD = re.compile(rf"^(?:{UNIT})$")
UNIT_AFTER_NUMBER = re.compile(rf"\b\d+(?:[./]\d+)?\s?(?:{UNIT})\b")
GLUED_UNIT = re.compile(rf"^\d+(?:[./]\d+)?(?:{UNIT}|t)$")  # "20v", "2x4" handled below, "3t" (toddler size)
DIMENSION = re.compile(r"\b\d+(?:[./]\d+)?\s?x\s?\d+(?:[./]\d+)?(?:\s?x\s?\d+(?:[./]\d+)?)?\b")
FRACTION = re.compile(r"\b\d+/\d+\b|\b\d+\.\d+\b")
SIZE_WORDS = {"xs", "xxs", "xl", "xxl", "xxxl", "2xl", "3xl", "small", "medium", "large", "king", "queen", "twin",
              "full", "mini", "compact", "tall", "short", "wide", "narrow", "long", "size", "sizes", "slim", "thin",
              "thick", "heavy", "oversized", "deep", "shallow", "cal"}
KID_SIZE = re.compile(r"^\d{1,2}t$")
PACK = re.compile(r"\b\d+\s?(?:pk|pack|packs|count|ct|pcs|pieces|pairs|rolls|bags|bottles|cans|boxes|sheets)\b|"
                  r"\b(?:pack|set|box|case|bag|bundle|lot|pair) of \d+\b|\b(?:bulk|dozen|multipack|multi pack|"
                  r"value pack|pack|packs|pk|pair|pairs|bundle)\b")
TITLE_PACK = re.compile(r"\b(\d+)\s?(?:pack|pk|count|ct|piece|pieces|pc|pcs|pair|pairs)\b|"
                        r"\b(?:pack|case|box|bag|set) of (\d+)\b")
# A material followed by one of these is what the product works on ("wood screws"), not what it is made of.
PURPOSE_HEADS = {"glue", "stain", "stains", "filler", "cleaner", "polish", "screw", "screws", "bit", "bits", "blade",
                 "blades", "saw", "cutter", "sealer", "putty", "paint", "primer", "chisel", "file", "plane", "router",
                 "finish", "conditioner", "adhesive", "caulk", "drill", "cutting", "remover", "repair"}
STOPWORDS = {"the", "a", "an", "and", "or", "for", "with", "without", "of", "in", "on", "to", "by", "at", "from",
             "new", "set", "pack", "kit", "w", "no", "not", "is", "my", "your", "all", "de", "la", "el", "y", "para"}
# Title words that start many titles without being brands.
COMMON_WORD_TITLES = 20
GENERIC_TITLE_STARTS = {"replacement", "outdoor", "indoor", "universal", "premium", "professional", "pro", "heavy",
                        "deluxe", "large", "small", "mini", "round", "square", "decorative", "portable", "wireless",
                        "electric", "digital", "classic", "original", "genuine", "natural", "organic", "commercial",
                        "high", "super", "ultra", "home", "kids", "baby", "womens", "mens", "christmas", "halloween",
                        "magnetic", "solid", "double", "single", "self", "adjustable", "vintage", "modern", "plastic"}


def normalize_text(text: str) -> str:
    """Lower case without accents, HTML entities undone, feet/inch marks spelt out, apostrophes dropped
    ("men's" -> "mens"), '&' spelt 'and'."""
    text = unicodedata.normalize("NFKD", html.unescape(str(text)).lower())
    text = "".join(c for c in text if not unicodedata.combining(c)).replace("’", "'").replace("”", '"')  # ü -> u
    text = re.sub(r"(\d)\s?''|(\d)\s?\"", r"\1\2 in ", text)  # 6" and 6'' are inches
    text = re.sub(r"(\d)\s?'", r"\1 ft ", text).replace("'", "").replace("&", " and ")
    return " ".join(TOKEN.findall(text))


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(normalize_text(text))


def _lexicon(spec: str) -> set[str]:
    return {word.replace("_", " ") for word in spec.split()}


def _stem(token: str) -> str:
    """Crude plural folding, enough to match "lights" to "Light"."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("es") and token[-3] in "sxz":
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Levenshtein distance, cut off at `limit` (enough to tell a misspelling from another word)."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) >= limit:
            return limit
        previous = current
    return min(previous[-1], limit)


def _close(query_token: str, word: str) -> bool:
    """A misspelling of `word`: one edit for words of 4-6 letters, two from 7 letters; digits must match."""
    if len(query_token) < 4 or len(word) < 4 or _stem(query_token) == _stem(word) or any(
            c.isdigit() for c in query_token + word):
        return False
    allowed = 1 if len(word) <= 6 else 2
    return query_token[0] == word[0] and edit_distance(query_token, word, allowed + 1) <= allowed


def _find_phrases(tokens: list[str], lexicon: set[str], max_words: int) -> list[tuple[int, int, str]]:
    """Longest-first, non-overlapping matches of lexicon phrases: (start, end, phrase)."""
    found, taken = [], set()
    for length in range(min(max_words, len(tokens)), 0, -1):
        for start in range(len(tokens) - length + 1):
            span = range(start, start + length)
            phrase = " ".join(tokens[start:start + length])
            if phrase in lexicon and not taken.intersection(span):
                found.append((start, start + length, phrase))
                taken.update(span)
    return sorted(found)


def title_prefixes(title: str, max_words: int = 3) -> list[str]:
    """The first 1..max_words words of a title, stopping at the first number or stop word ("and" may join words:
    "black and decker")."""
    words = []
    for token in tokenize(title)[:max_words]:
        if token[0].isdigit() or (token in STOPWORDS and (token != "and" or not words)):
            break
        words.append(token)
    return [" ".join(words[:n]) for n in range(1, len(words) + 1) if words[n - 1] != "and"]


def brands_from_titles(titles: pd.Series, min_products: int = 3, min_start_share: float = 0.6) -> set[str]:
    """Brands as the title openings shared by several products that rarely occur later in a title.

    Shops put the brand first ("Simpson Strong-Tie 12-Gauge Angle", "Prada Candy By Prada ...");
    a common word ("Outdoor", "White") starts some titles but occurs in many more elsewhere. A longer
    opening replaces a shorter one only when nearly every title with the shorter one goes on with it
    ("simpson strong tie", not "westinghouse ceiling fan").
    """
    token_lists = [tokenize(t) for t in titles.dropna().drop_duplicates()]
    starts: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for tokens in token_lists:
        starts.update(title_prefixes(" ".join(tokens)))
        anywhere.update({" ".join(tokens[i:i + n]) for n in (1, 2, 3) for i in range(len(tokens) - n + 1)})
    attribute_words = COLOURS | MATERIAL_WORDS | STYLES | AUDIENCE_WORDS | SIZE_WORDS

    def plausible(prefix: str) -> bool:
        words = prefix.split()
        short_word = len(words) == 1 and len(prefix) <= 3
        # A colour may open a brand ("black and decker") but a brand does not end in an attribute word.
        generic = words[-1] in attribute_words or (len(words) == 1 and prefix in GENERIC_TITLE_STARTS)
        return (starts[prefix] >= (8 if short_word else min_products) and len(prefix) >= 2 and not generic
                and starts[prefix] / anywhere[prefix] >= min_start_share)

    brands: set[str] = set()
    for prefix in sorted((p for p in starts if plausible(p)), key=lambda p: len(p.split())):
        words = prefix.split()
        shorter = [" ".join(words[:n]) for n in range(len(words) - 1, 0, -1)]
        anchor = next((p for p in shorter if p in brands), None)
        # A longer opening is the brand's full name when nearly every title of the brand goes on with it, or when
        # it opens with generic words ("home decorators collection"); otherwise it is a product line or type.
        if anchor is not None and starts[prefix] < 0.8 * starts[anchor]:
            continue
        if anchor is None and shorter and plausible(shorter[0]):
            continue
        brands.add(prefix)
    # A short word cut off a longer brand ("char" of "char broil") is no brand by itself.
    return {b for b in brands if len(b) > 4 or not any(c.startswith(b + " ") and starts[c] >= 0.8 * starts[b]
                                                           for c in brands)}


COLOURS = _lexicon(BASE_COLOURS)
STYLES = _lexicon(STYLE_WORDS)
MATERIAL_WORDS = _lexicon(MATERIALS)
AUDIENCE_WORDS = _lexicon(AUDIENCE)


@dataclass
class Lexicons:
    """Brand and colour vocabularies read from the catalogues (the other lexicons are fixed lists above)."""

    brands: set[str]
    colours: set[str]
    common_words: set[str]  # words of many titles: a real word, never read as a misspelt colour or audience

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({k: sorted(v) for k, v in vars(self).items()}))

    @classmethod
    def from_json(cls, path: str | Path) -> "Lexicons":
        return cls(**{k: set(v) for k, v in json.loads(Path(path).read_text()).items()})


def build_lexicons(data_dir: str | Path) -> Lexicons:
    """Brands from ESCI product_brand and from Home Depot + Amazon title openings; colours from ESCI + BASE_COLOURS."""
    data_dir = Path(data_dir)
    esci = pd.read_csv(data_dir / "esci-fragments" / "exact_with_text.csv")
    titles = [pd.read_parquet(data_dir / "homedepot" / "judgments.parquet")["product_title"]]
    titles += [pd.read_parquet(p)["title"] for p in sorted((data_dir / "amazon-reviews").glob("*/items.parquet"))]
    titles = pd.concat(titles, ignore_index=True).drop_duplicates()
    brands = brands_from_titles(titles)
    word_titles = Counter(w for title in titles for w in set(tokenize(title)))
    common_words = {w for w, n in word_titles.items() if n >= COMMON_WORD_TITLES}
    brands |= {normalize_text(b) for b in esci["product_brand"].dropna() if len(normalize_text(b)) >= 2}
    # ESCI colour fields hold junk too ("A-black", "15pcs"): keep short, purely alphabetic values.
    esci_colours = {normalize_text(c) for c in esci["product_color"].dropna()}
    esci_colours = {c for c in esci_colours if 1 <= len(c.split()) <= 2 and c.replace(" ", "").isalpha() and len(c) >= 3}
    return Lexicons(brands=brands - COLOURS - MATERIAL_WORDS, colours=COLOURS | esci_colours,
                    common_words=common_words - brands)


@dataclass
class Evidence:
    """What the labeller may see beyond the query: the products judged relevant to it."""

    titles: list[str]
    brands: list[str] = field(default_factory=list)     # brand fields where the catalogue has them (ESCI)
    colours: list[str] = field(default_factory=list)    # colour fields (ESCI)


@dataclass
class QueryLabels:
    intent: str
    demand: list[str]
    reasons: list[str]  # one "slot:how:what" entry per decision, for tests, docs and debugging


class QueryLabeller:
    def __init__(self, lexicons: Lexicons):
        # "black and decker" is written "BLACK+DECKER" in titles: match brands with and without "and".
        self.brands = lexicons.brands | {b.replace(" and ", " ") for b in lexicons.brands} | {
            b.replace(" ", " and ") for b in lexicons.brands if len(b.split()) == 2}
        self.colours = lexicons.colours | STYLES
        self.common_words = lexicons.common_words
        self.max_brand_words = max((len(b.split()) for b in self.brands), default=1)

    def label(self, query: str, evidence: Evidence | None = None) -> QueryLabels:
        tokens = tokenize(query)
        text = " ".join(tokens)
        reasons: list[str] = []
        view = _EvidenceView(evidence, self.brands) if evidence is not None and evidence.titles else None

        brand_spans = self._brands(tokens, view, reasons)
        brand_tokens = {i for start, end, _ in brand_spans for i in range(start, end)}
        free = [t if i not in brand_tokens else "" for i, t in enumerate(tokens)]  # brand words are not colours etc.
        demand = {"brand"} if brand_spans else set()
        if self._colour(free, view, reasons):
            demand.add("style_colour")
        specs = self._size_spec(free, text, view, reasons)
        if specs:
            demand.add("size_spec")
        if PRICE.search(text):
            demand.add("price")
            reasons.append(f"price:pattern:{PRICE.search(text).group(0)}")
        if self._material(free, view, reasons):
            demand.add("material")
        if self._quantity(free, specs, view, reasons):
            demand.add("quantity_pack")
        if self._audience(free, view, reasons):
            demand.add("audience")
        intent = self._intent(tokens, brand_spans, demand, view, reasons)
        return QueryLabels(intent=intent, demand=[d for d in DEMAND_LABELS if d in demand], reasons=reasons)

    def _brands(self, tokens, view, reasons) -> list[tuple[int, int, str]]:
        # "hp" after a number is horsepower, not the computer brand.
        spans = [s for s in _find_phrases(tokens, self.brands, self.max_brand_words)
                 if not (s[1] - s[0] == 1 and s[0] > 0 and tokens[s[0] - 1][0].isdigit() and UNIT_WORD.match(s[2]))]
        if view is None:
            reasons += [f"brand:lexicon:{p}" for _, _, p in spans]
            return spans
        # With judged products, a lexicon brand counts only if a relevant product carries it.
        confirmed = [s for s in spans if view.mentions(s[2])]
        reasons += [f"brand:confirmed:{p}" for _, _, p in confirmed]
        reasons += [f"brand:rejected:{span[2]}" for span in spans if span not in confirmed]
        taken = {i for start, end, _ in confirmed for i in range(start, end)}
        for start, end, phrase in _find_phrases(tokens, view.brands, self.max_brand_words):
            if not taken.intersection(range(start, end)):
                confirmed.append((start, end, phrase))
                taken.update(range(start, end))
                reasons.append(f"brand:relevant-product:{phrase}")
        for i, token in enumerate(tokens):
            # A word the relevant titles use themselves ("spray" for "Sprayit") is no misspelling of their brand.
            near = next((w for w in view.brand_words if _close(token, w)), None) \
                if i not in taken and _stem(token) not in view.title_words else None
            if near:
                confirmed.append((i, i + 1, near))
                reasons.append(f"brand:misspelt:{token}~{near}")
        return sorted(confirmed)

    def _colour(self, free, view, reasons) -> bool:
        matches = [p for _, _, p in _find_phrases(free, self.colours, 3)]
        if view is None:
            reasons += [f"style_colour:lexicon:{p}" for p in matches]
            return bool(matches)
        confirmed = [p for p in matches if view.mentions(p) or p in STYLES]
        near = [f"{t}~{w}" for t in free if t not in self.common_words for w in view.colour_words if _close(t, w)]
        reasons += [f"style_colour:confirmed:{p}" for p in confirmed] + [f"style_colour:misspelt:{n}" for n in near]
        return bool(confirmed or near)

    def _size_spec(self, free, text, view, reasons) -> list[str]:
        specs = [m.group(0) for pattern in (DIMENSION, UNIT_AFTER_NUMBER, FRACTION) for m in pattern.finditer(text)]
        specs += [t for t in free if t and (GLUED_UNIT.match(t) or t in SIZE_WORDS)]
        specs += [t for t in free if _is_model_number(t)]
        specs = list(dict.fromkeys(specs))
        reasons += [f"size_spec:pattern:{s}" for s in specs]
        if view is not None:
            # A bare number is a size when the relevant titles put a unit after it ("pvc pipe 6" -> "6 in. x 10 ft.").
            covered = set(" ".join(specs).replace("/", " ").split())
            sized = [t for t in free if t.isdigit() and t not in covered and view.has_unit_after(t)]
            reasons += [f"size_spec:unit-in-relevant-title:{t}" for t in sized]
            specs += sized
        return specs

    def _material(self, free, view, reasons) -> bool:
        matches = [(end, p) for _, end, p in _find_phrases(free, MATERIAL_WORDS, 2)
                   if end >= len(free) or free[end] not in PURPOSE_HEADS]
        if view is not None:
            matches = [(end, p) for end, p in matches if view.mentions(p)]
        reasons += [f"material:{'confirmed' if view else 'lexicon'}:{p}" for _, p in matches]
        return bool(matches)

    def _quantity(self, free, specs, view, reasons) -> bool:
        match = PACK.search(" ".join(t for t in free if t))
        if match:
            reasons.append(f"quantity_pack:pattern:{match.group(0)}")
            return True
        if view is not None:
            # A bare number that is the pack count of a relevant product ("lightbulbs 12" -> "(12-Pack)").
            covered = set(" ".join(specs).replace("/", " ").split())
            counts = [t for t in free if t.isdigit() and t not in covered and t in view.pack_counts]
            reasons += [f"quantity_pack:pack-count-in-relevant-title:{t}" for t in counts]
            return bool(counts)
        return False

    def _audience(self, free, view, reasons) -> bool:
        matches = [p for _, _, p in _find_phrases(free, AUDIENCE_WORDS, 3)]
        reasons += [f"audience:lexicon:{p}" for p in matches]
        if matches or view is None:
            return bool(matches)
        near = [f"{t}~{w}" for t in free if t not in self.common_words for w in view.audience_words if _close(t, w)]
        # A toddler size ("3t") means the shopper buys for a child when the relevant products say so.
        kid = [t for t in free if KID_SIZE.match(t)] if view.audience_words & {"toddler", "kids", "girls", "boys",
                                                                               "baby"} else []
        reasons += [f"audience:misspelt:{n}" for n in near] + [f"audience:kid-size:{k}" for k in kid]
        return bool(near or kid)

    def _intent(self, tokens, brand_spans, demand, view, reasons) -> str:
        distinct_brands = {p for _, _, p in brand_spans}
        brand_tokens = {i for start, end, _ in brand_spans for i in range(start, end)}
        compare = COMPARE.search(" ".join(t for i, t in enumerate(tokens) if i not in brand_tokens))  # "best barns"
        if compare:
            reasons.append(f"intent:compare:{compare.group(0)}")
            return "compare"
        content = [t for t in tokens if t not in STOPWORDS]
        slots = demand - {"price"}
        model_number = any(_is_model_number(t) for t in tokens)
        if model_number or (brand_spans and len(content) > len(" ".join(p for p in distinct_brands).split())) \
                or len(slots) >= 2:
            reasons.append("intent:purchase:" + ("model number" if model_number else
                                                 "brand + product" if brand_spans else "two demand slots"))
            return "purchase"
        if view is not None and len(content) >= 3 and view.one_title_covers(content):
            reasons.append("intent:purchase:query spells out one relevant product")
            return "purchase"
        if view is not None and view.single_brand and len(view.titles) >= 2:
            reasons.append(f"intent:purchase:relevant products all by {view.single_brand}")
            return "purchase"
        reasons.append("intent:browse:category-level query")
        return "browse"


def _is_model_number(token: str) -> bool:
    """Part/model numbers: letters and digits mixed ("d210", "usb2aub2ra1m") or a long digit run ("28915")."""
    if not token or GLUED_UNIT.match(token) or "/" in token or "." in token:
        return False
    has_digit, has_alpha = any(c.isdigit() for c in token), any(c.isalpha() for c in token)
    return (has_digit and has_alpha and len(token) >= 4) or (token.isdigit() and len(token) >= 5)


class _EvidenceView:
    """The relevant products of one query, pre-digested for the rules."""

    def __init__(self, evidence: Evidence, lexicon_brands: set[str]):
        self.titles = [normalize_text(t) for t in evidence.titles]
        self.text = " " + " | ".join(self.titles + [normalize_text(c) for c in evidence.colours]) + " "
        title_brands = [max((p for p in title_prefixes(t) if p in lexicon_brands), key=len, default=None)
                        for t in evidence.titles]
        field_brands = [normalize_text(b) for b in evidence.brands if normalize_text(b)]
        self.brands = {b for b in title_brands + field_brands if b}
        known = field_brands or title_brands
        self.single_brand = known[0] if known and known[0] and all(b == known[0] for b in known) else None
        # A brand's first word is its distinctive one ("feather" of "feather river doors").
        self.brand_words = {b.split()[0] for b in self.brands if len(b.split()[0]) >= 5}
        words = set(self.text.split())
        self.colour_words = {w for w in words if w in COLOURS}
        self.audience_words = {w for w in words if w in AUDIENCE_WORDS}
        self.stems = [{_stem(w) for w in t.split()} for t in self.titles]
        self.title_words = set().union(*self.stems)
        self.pack_counts = {a or b for a, b in TITLE_PACK.findall(self.text)}

    def mentions(self, phrase: str) -> bool:
        return f" {phrase} " in self.text or any(_stem(phrase) in stems for stems in self.stems)

    def has_unit_after(self, number: str) -> bool:
        return re.search(rf"(?<![\d./]){re.escape(number)}\s?(?:{UNIT})\b", self.text) is not None

    def one_title_covers(self, content: list[str]) -> bool:
        return any(all(_stem(t) in stems for t in content) for stems in self.stems)


__all__ = ["DEMAND_LABELS", "INTENT_LABELS", "Evidence", "Lexicons", "QueryLabeller", "QueryLabels",
           "build_lexicons", "normalize_text", "tokenize"]
