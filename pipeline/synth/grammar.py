"""German weather-forecast grammar with DGS-like gloss sequences (PHOENIX-2014T style).

Every template builds a German sentence (lower-case, tokenised, final `` .``) and, from the
same choices, its gloss sequence in a DGS-like order: time before place before the
phenomenon, adjectives after their noun, verbs last. Articles, prepositions, copulas and
``es gibt`` stay unsigned; some German compounds map to several glosses
(``deutschland`` -> ``DEUTSCH LAND``) and some phrases to one hyphenated compound gloss
(``das bedeutet`` -> ``ES-BEDEUTET``). The mapping sentence -> glosses is deterministic given
the grammar choices, so a model can learn it from a few hundred sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Phrase = tuple[list[str], list[str]]  # (German tokens, glosses)


def _p(words: str, glosses: str) -> Phrase:
    return words.split(), glosses.split()


def _phrases(table: str) -> list[Phrase]:
    """The phrases of a table with one ``german words = GLOSSES`` per line."""
    return [_p(*line.split("=")) for line in table.strip().splitlines()]


# --- lexical inventories ---------------------------------------------------------------------
DAYS = [
    ("montag", "MONTAG"), ("dienstag", "DIENSTAG"), ("mittwoch", "MITTWOCH"),
    ("donnerstag", "DONNERSTAG"), ("freitag", "FREITAG"), ("samstag", "SAMSTAG"), ("sonntag", "SONNTAG"),
]  # fmt: skip
MONTHS = [
    ("januar", "JANUAR"), ("februar", "FEBRUAR"), ("märz", "MAERZ"), ("april", "APRIL"), ("mai", "MAI"),
    ("juni", "JUNI"), ("juli", "JULI"), ("august", "AUGUST"), ("september", "SEPTEMBER"),
    ("oktober", "OKTOBER"), ("november", "NOVEMBER"), ("dezember", "DEZEMBER"),
]  # fmt: skip
_UNITS = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn",
          "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn", "achtzehn",
          "neunzehn", "zwanzig"]  # fmt: skip
_UNIT_GLOSS = ["NULL", "EINS", "ZWEI", "DREI", "VIER", "FUENF", "SECHS", "SIEBEN", "ACHT", "NEUN",
               "ZEHN", "ELF", "ZWOELF", "DREIZEHN", "VIERZEHN", "FUENFZEHN", "SECHZEHN", "SIEBZEHN",
               "ACHTZEHN", "NEUNZEHN", "ZWANZIG"]  # fmt: skip
_ORD = ["", "ersten", "zweiten", "dritten", "vierten", "fünften", "sechsten", "siebten", "achten",
        "neunten", "zehnten", "elften", "zwölften", "dreizehnten", "vierzehnten", "fünfzehnten",
        "sechzehnten", "siebzehnten", "achtzehnten", "neunzehnten", "zwanzigsten"]  # fmt: skip
_ORD_GLOSS = ["", "ERSTE", "ZWEITE", "DRITTE", "VIERTE", "FUENFTE", "SECHSTE", "SIEBTE", "ACHTE",
              "NEUNTE", "ZEHNTE", "ELFTE", "ZWOELFTE", "DREIZEHNTE", "VIERZEHNTE", "FUENFZEHNTE",
              "SECHZEHNTE", "SIEBZEHNTE", "ACHTZEHNTE", "NEUNZEHNTE", "ZWANZIGSTE"]  # fmt: skip
_TENS = {20: ("zwanzig", "ZWANZIG"), 30: ("dreißig", "DREISSIG")}


def number(n: int) -> Phrase:
    """Cardinal 0..39 (``ein`` before ``grad``); 21..39 are one word but two glosses."""
    if n <= 20:
        return [_UNITS[n]], [_UNIT_GLOSS[n]]
    tens, unit = divmod(n, 10)
    word, gloss = _TENS[tens * 10]
    if unit == 0:
        return [word], [gloss]
    stem = "ein" if unit == 1 else _UNITS[unit]
    return [f"{stem}und{word}"], [gloss, _UNIT_GLOSS[unit]]


def ordinal(n: int) -> Phrase:
    """Dative ordinal 1..31 (``den sechsten``)."""
    if n <= 20:
        return [_ORD[n]], [_ORD_GLOSS[n]]
    if n == 30:
        return ["dreißigsten"], ["DREISSIGSTE"]
    tens, unit = divmod(n, 10)
    word, gloss = _TENS[tens * 10]
    stem = "ein" if unit == 1 else _UNITS[unit]
    return [f"{stem}und{word}sten"], [gloss, _ORD_GLOSS[unit]]


def temperature(n: int) -> Phrase:
    """Signed temperature value without unit: ``minus fünf`` -> ``MINUS FUENF``."""
    w, g = number(abs(n))
    if abs(n) == 1:
        w = ["ein"]
    return (["minus", *w], ["MINUS", *g]) if n < 0 else (w, g)


# Places: (German phrase, glosses). Compounds map to several glosses.
PLACES = _phrases(
    """
    im norden                 = NORD
    im süden                  = SUED
    im osten                  = OST
    im westen                 = WEST
    im nordwesten             = NORDWEST
    im nordosten              = NORDOST
    im südwesten              = SUEDWEST
    im südosten               = SUEDOST
    in der mitte              = MITTE
    an den küsten             = KUESTE
    an der nordsee            = NORD MEER
    an der ostsee             = OST MEER
    an den alpen              = ALPEN
    in den bergen             = BERG
    im bergland               = BERG REGION
    in bayern                 = BAYERN
    in sachsen                = SACHSEN
    in berlin                 = BERLIN
    in hessen                 = HESSEN
    in thüringen              = THUERINGEN
    in brandenburg            = BRANDENBURG
    am rhein                  = RHEIN
    an der elbe               = ELBE
    an der donau              = DONAU
    in der nordhälfte         = NORD HAELFTE
    in der südhälfte          = SUED HAELFTE
    im flachland              = FLACH LAND
    in ganz deutschland       = DEUTSCH LAND UEBERALL
    im schwarzwald            = SCHWARZ WALD
    in den mittelgebirgen     = MITTE BERG
    hier bei uns              = HIER
    im rest des landes        = REST
    in mecklenburg-vorpommern = MECKLENBURG
    in niedersachsen          = NIEDERSACHSEN
    """
)
DIRECTIONS = _phrases(
    """
    nord                         = NORD
    süd                          = SUED
    ost                          = OST
    west                         = WEST
    nordwest                     = NORDWEST
    nordost                      = NORDOST
    südwest                      = SUEDWEST
    südost                       = SUEDOST
    unterschiedlichen richtungen = VERSCHIEDEN RICHTUNG
    """
)
# Time expressions (German, glosses); "am <day>abend" is one word, two glosses.
TIMES_FIXED = _phrases(
    """
    heute                      = HEUTE
    morgen                     = MORGEN
    übermorgen                 = UEBERMORGEN
    in der nacht               = NACHT
    heute nacht                = HEUTE NACHT
    morgen früh                = MORGEN FRUEH
    am vormittag               = VORMITTAG
    am nachmittag              = NACHMITTAG
    am abend                   = ABEND
    tagsüber                   = TAGSUEBER
    im tagesverlauf            = TAG VERLAUF
    zum wochenende             = WOCHENENDE
    in der neuen woche         = NEU WOCHE
    später                     = SPAETER
    zunächst                   = ZUERST
    in der zweiten nachthälfte = NACHT ZWEITE HAELFTE
    bis zum abend              = BIS ABEND
    """
)
_DAY_PARTS = [("abend", "ABEND"), ("nachmittag", "NACHMITTAG"), ("vormittag", "VORMITTAG")]


def time_expr(rng: np.random.Generator) -> Phrase:
    """A time adverbial: fixed expression, ``am <day>`` or ``am <day>abend``."""
    r = rng.random()
    if r < 0.45:
        return TIMES_FIXED[rng.integers(len(TIMES_FIXED))]
    day, gday = DAYS[rng.integers(len(DAYS))]
    if r < 0.85:
        return ["am", day], [gday]
    part, gpart = _DAY_PARTS[rng.integers(len(_DAY_PARTS))]
    return ["am", day + part], [gday, gpart]


@dataclass(frozen=True)
class Noun:
    """A weather noun with its gender (m, f, n, pl), dative form, glosses and category."""

    word: str
    dative: str
    gender: str
    gloss: str
    cat: str  # precip | cloud | fog | cold | sun | storm


# Nouns: word | dative (plural) form | gender | glosses | category
NOUNS = [
    Noun(*(col.strip() for col in row.split("|")))
    for row in """
    regen           | regen            | m  | REGEN            | precip
    schnee          | schnee           | m  | SCHNEE           | precip
    schauer         | schauern         | pl | SCHAUER          | precip
    gewitter        | gewittern        | pl | GEWITTER         | precip
    schneeschauer   | schneeschauern   | pl | SCHNEE SCHAUER   | precip
    regenschauer    | regenschauern    | pl | REGEN SCHAUER    | precip
    gewitterschauer | gewitterschauern | pl | GEWITTER SCHAUER | precip
    schneeregen     | schneeregen      | m  | SCHNEE REGEN     | precip
    nieselregen     | nieselregen      | m  | NIESELN          | precip
    dauerregen      | dauerregen       | m  | DAUER REGEN      | precip
    hagel           | hagel            | m  | HAGEL            | precip
    schneefälle     | schneefällen     | pl | SCHNEE FALLEN    | precip
    wolken          | wolken           | pl | WOLKE            | cloud
    quellwolken     | quellwolken      | pl | QUELL WOLKE      | cloud
    nebel           | nebel            | m  | NEBEL            | fog
    hochnebel       | hochnebel        | m  | HOCH NEBEL       | fog
    dunst           | dunst            | m  | DUNST            | fog
    frost           | frost            | m  | FROST            | cold
    glätte          | glätte           | f  | GLATT            | cold
    bodenfrost      | bodenfrost       | m  | BODEN FROST      | cold
    sonnenschein    | sonnenschein     | m  | SONNE            | sun
    sonne           | sonne            | f  | SONNE            | sun
    sturmböen       | sturmböen        | pl | STURM            | storm
    orkanböen       | orkanböen        | pl | ORKAN            | storm
    böen            | böen             | pl | BOEEN            | storm
    """.strip().splitlines()
]
# Adjectives: stem | gloss | the noun categories they combine with.
ADJECTIVES = [
    (stem.strip(), gloss.strip(), set(cats.split()))
    for stem, gloss, cats in (
        row.split("|")
        for row in """
    kräftig   | KRAEFTIG | precip storm
    stark     | STARK    | cold fog precip storm
    leicht    | LEICHT   | cold precip
    heftig    | HEFTIG   | precip storm
    ergiebig  | ERGIEBIG | precip
    dicht     | DICHT    | cloud fog
    einzeln   | EINZELN  | cloud precip
    örtlich   | ORT      | cold fog precip
    schwer    | SCHWER   | precip storm
    dick      | DICK     | cloud
    zäh       | ZAEH     | fog
    mäßig     | MAESSIG  | cold precip
    strahlend | STRAHLEN | sun
    viel      | VIEL     | cloud
    hell      | HELL     | sun
    trüb      | TRUEB    | fog
    """.strip().splitlines()
    )
]
_ENDINGS = {  # strong declension: case -> gender -> ending
    "nom": {"m": "er", "f": "e", "n": "es", "pl": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "pl": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"},
}
INTENSIFIERS = _phrases(
    """
    sehr         = SEHR
    zum teil     = TEIL
    verbreitet   = UEBERALL
    gebietsweise = REGION
    vereinzelt   = VEREINZELT
    immer wieder = IMMER WIEDER
    meist        = MEISTENS
    vor allem    = BESONDERS
    hier und da  = MANCHMAL
    zeitweise    = ZEITWEISE
    """
)
PRED_ADJ = _phrases(
    """
    trocken     = TROCKEN
    freundlich  = FREUNDLICH
    sonnig      = SONNE
    bewölkt     = BEWOELKT
    wechselhaft = WECHSELHAFT
    klar        = KLAR
    nass        = NASS
    grau        = GRAU
    trüb        = TRUEB
    heiter      = HEITER
    neblig      = NEBEL
    windig      = WIND
    schwül      = SCHWUEL
    ungemütlich = UNGEMUETLICH
    schön       = SCHOEN
    """
)
TEMP_ADJ = _phrases(
    """
    warm       = WARM
    heiß       = HEISS
    mild       = MILD
    kühl       = KUEHL
    kalt       = KALT
    frostig    = FROST
    frisch     = FRISCH
    sommerlich = SOMMER
    winterlich = WINTER
    """
)
WIND_ADJ = _phrases(
    """
    schwach   = SCHWACH
    mäßig     = MAESSIG
    frisch    = FRISCH
    stark     = STARK
    stürmisch = STURM
    lebhaft   = LEBHAFT
    böig      = BOEEN
    """
)


def noun_phrase(rng: np.random.Generator, case: str, cats: set[str] | None = None) -> Phrase:
    """Optional intensifier + optional adjective + noun. Glosses: NOUN ADJ INTENS."""
    nouns = [n for n in NOUNS if cats is None or n.cat in cats]
    noun = nouns[rng.integers(len(nouns))]
    words = [noun.dative if case == "dat" else noun.word]
    glosses = noun.gloss.split()
    adjs = [a for a in ADJECTIVES if noun.cat in a[2]]
    if adjs and rng.random() < 0.6:
        stem, gloss, _ = adjs[rng.integers(len(adjs))]
        words = [stem + _ENDINGS[case][noun.gender], *words]
        glosses = [*glosses, gloss]
        if rng.random() < 0.25:
            iw, ig = INTENSIFIERS[rng.integers(2)]  # sehr / zum teil
            words, glosses = [*iw, *words], [*glosses, *ig]
    return words, glosses


def _pick(rng: np.random.Generator, items: list[Phrase]) -> Phrase:
    return items[rng.integers(len(items))]


def _opt(rng: np.random.Generator, items: list[Phrase], p: float) -> Phrase:
    return _pick(rng, items) if rng.random() < p else ([], [])


def _temp_range(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int]:
    a = int(rng.integers(lo, hi - 2))
    return a, int(min(hi, a + rng.integers(2, 9)))


def _s(words: list[str], glosses: list[str]) -> Phrase:
    return words, glosses


# --- sentence templates: each returns (German words in German order, glosses in DGS order) ----
def t_es_gibt(rng):
    (tw, tg), (lw, lg), (nw, ng) = time_expr(rng), _pick(rng, PLACES), noun_phrase(rng, "acc")
    iw, ig = _opt(rng, INTENSIFIERS[2:], 0.4)
    return _s([*tw, "gibt", "es", *lw, *iw, *nw], [*tg, *lg, *ng, *ig])


def t_ellipsis(rng):
    (tw, tg), (lw, lg), (nw, ng) = time_expr(rng), _pick(rng, PLACES), noun_phrase(rng, "nom")
    iw, ig = _opt(rng, INTENSIFIERS[2:], 0.5)
    return _s([*tw, *iw, *nw, *lw], [*tg, *lg, *ng, *ig])


def t_bleibt(rng):
    (lw, lg), (tw, tg), (aw, ag) = _pick(rng, PLACES), time_expr(rng), _pick(rng, PRED_ADJ)
    iw, ig = _opt(rng, INTENSIFIERS[2:], 0.4)
    return _s([*lw, "bleibt", "es", *tw, *iw, *aw], [*lg, *tg, *ag, *ig, "BLEIBEN"])


def t_wird(rng):
    (tw, tg), (lw, lg), (aw, ag) = time_expr(rng), _pick(rng, PLACES), _pick(rng, PRED_ADJ + TEMP_ADJ)
    return _s([*tw, "wird", "es", *lw, *aw], [*tg, *lg, *ag, "WERDEN"])


def t_temp_range(rng):
    lo, hi = _temp_range(rng, -12, 36)
    (aw, ag), (bw, bg) = temperature(lo), temperature(hi)
    (tw, tg), (lw, lg) = time_expr(rng), _pick(rng, PLACES)
    kind = rng.integers(3)
    if kind == 0:
        return _s(["die", "temperaturen", "steigen", *tw, *lw, "auf", *aw, "bis", *bw, "grad"],
                  [*tg, *lg, "TEMPERATUR", "STEIGEN", *ag, "BIS", *bg, "GRAD"])  # fmt: skip
    if kind == 1:
        return _s(["die", "höchstwerte", "liegen", *lw, "zwischen", *aw, "und", *bw, "grad"],
                  [*lg, "HOCH", "TEMPERATUR", *ag, "BIS", *bg, "GRAD"])  # fmt: skip
    return _s([*tw, "sinken", "die", "werte", *lw, "auf", *aw, "bis", *bw, "grad"],
              [*tg, *lg, "TEMPERATUR", "SINKEN", *ag, "BIS", *bg, "GRAD"])  # fmt: skip


def t_temp_adj(rng):
    n = int(rng.integers(-10, 38))
    band = 0 if n < 0 else 1 if n < 10 else 2 if n < 18 else 3 if n < 28 else 4
    choices = [TEMP_ADJ[i] for i in ((4, 5, 8), (3, 4), (2, 3, 6), (0, 2), (0, 1, 7))[band]]
    (nw, ng), (tw, tg), (aw, ag) = temperature(n), time_expr(rng), _pick(rng, choices)
    return _s([*tw, "wird", "es", "mit", *nw, "grad", *aw], [*tg, *ag, *ng, "GRAD"])


def t_frost(rng):
    n = int(rng.integers(1, 16))
    (nw, ng), (lw, lg) = temperature(-n), _pick(rng, PLACES)
    tw, tg = _pick(rng, TIMES_FIXED[3:6])
    return _s([*tw, "gibt", "es", *lw, "frost", "bis", *nw, "grad"], [*tg, *lg, "FROST", "BIS", *ng, "GRAD"])


def t_wind(rng):
    (aw, ag), (dw, dg) = _pick(rng, WIND_ADJ), _pick(rng, DIRECTIONS)
    if rng.random() < 0.5:
        bw, bg = _pick(rng, [a for a in WIND_ADJ if a[0] != aw])
        aw, ag = [*aw, "bis", *bw], [*ag, "BIS", *bg]
    lw, lg = _opt(rng, PLACES, 0.4)
    return _s(["der", "wind", "weht", *lw, *aw, "aus", *dw], [*lg, "WIND", *dg, *ag])


def t_storm(rng):
    (lw, lg), (tw, tg), (nw, ng) = _pick(rng, PLACES), time_expr(rng), noun_phrase(rng, "nom", {"storm"})
    return _s([*lw, "sind", *tw, *nw, "möglich"], [*tg, *lg, *ng, "MOEGLICH"])


def t_intro(rng):
    (dw, dg), (mw, mg) = DAYS[rng.integers(7)], MONTHS[rng.integers(12)]
    ow, og = ordinal(int(rng.integers(1, 32)))
    if rng.random() < 0.5:
        return _s(["und", "nun", "die", "wettervorhersage", "für", "morgen", dw, "den", *ow, mw],
                  ["JETZT", "WETTER", "WIE-AUSSEHEN", dg, *og, mg])  # fmt: skip
    return _s(["die", "aussichten", "für", dw, "den", *ow, mw], ["AUSSICHT", dg, *og, mg])


GREETINGS = _phrases(
    """
    guten abend liebe zuschauer    = GUT ABEND LIEB ZUSCHAUER
    ihnen noch einen schönen abend = SCHOEN ABEND NOCH
    tschüss und bis morgen         = MORGEN WIEDER TSCHUESS
    einen schönen tag noch         = SCHOEN TAG NOCH
    """
)


def t_greeting(rng):
    (tw, tg), (aw, ag) = time_expr(rng), _pick(rng, PRED_ADJ)
    stays = _s(["das", "wetter", "bleibt", "auch", *tw, *aw], [*tg, "WETTER", *ag, "BLEIBEN"])
    return _pick(rng, [*GREETINGS, stays])


def t_pressure(rng):
    kind = rng.integers(2)
    hw, hg = (["ein", "hoch"], ["HOCH", "DRUCK"]) if kind == 0 else (["ein", "tief"], ["TIEF", "DRUCK"])
    (tw, tg), (nw, ng) = time_expr(rng), noun_phrase(rng, "acc", {"precip", "cloud"} if kind else {"sun"})
    if rng.random() < 0.5:
        return _s([*tw, "bringt", "uns", *hw, *nw], [*tg, *hg, *ng, "BRINGEN"])
    return _s([*tw, "sorgt", *hw, "für", *nw], [*tg, *hg, *ng, "SORGEN"])


def t_meaning(rng):
    (nw, ng), (lw, lg) = noun_phrase(rng, "acc"), _opt(rng, PLACES, 0.5)
    return _s(["das", "bedeutet", *lw, *nw], ["ES-BEDEUTET", *lg, *ng])


CLOUD_VERBS = _phrases(
    """
    lösen sich die wolken auf  = WOLKE AUFLOESEN
    lockert es auf             = WOLKE AUFLOCKERN
    ziehen dichte wolken auf   = WOLKE DICHT KOMMEN
    scheint oft die sonne      = SONNE OFT SCHEINEN
    setzt sich die sonne durch = SONNE DURCHSETZEN
    zieht regen durch          = REGEN DURCHZIEHEN
    """
)


def t_clouds(rng):
    (tw, tg), (lw, lg) = time_expr(rng), _pick(rng, PLACES)
    verb = CLOUD_VERBS[rng.integers(len(CLOUD_VERBS))]
    return _s([*tw, *verb[0][:1], *lw, *verb[0][1:]], [*tg, *lg, *verb[1]])


def t_fallen(rng):
    (tw, tg), (lw, lg) = time_expr(rng), _pick(rng, PLACES)
    lo, hi = _temp_range(rng, 2, 31)
    (aw, ag), (bw, bg) = number(lo), number(hi)
    if rng.random() < 0.5:
        return _s([*tw, "fallen", *lw, *aw, "bis", *bw, "liter", "regen", "pro", "quadratmeter"],
                  [*tg, *lg, "REGEN", *ag, "BIS", *bg, "LITER"])  # fmt: skip
    nw, ng = noun_phrase(rng, "dat", {"precip"})
    return _s([*tw, "ist", *lw, "mit", *nw, "zu", "rechnen"], [*tg, *lg, *ng, "KOENNEN"])


def t_also(rng):
    (dw, dg), (aw, ag) = DAYS[rng.integers(7)], _pick(rng, PRED_ADJ)
    return _s(["auch", "am", dw, "ist", "es", *aw, "und", "ähnliches", "wetter"],
              [dg, "AUCH", "AEHNLICH", "WETTER", *ag])  # fmt: skip


def t_sonst(rng):
    (lw, lg), (nw, ng), (aw, ag) = _pick(rng, PLACES), noun_phrase(rng, "nom"), _pick(rng, PRED_ADJ)
    return _s([*lw, *nw, "sonst", "ist", "es", *aw], [*lg, *ng, "SONST", *ag])


TEMPLATES: list[Callable[[np.random.Generator], Phrase]] = [
    t_es_gibt, t_ellipsis, t_bleibt, t_wird, t_temp_range, t_temp_adj, t_frost, t_wind, t_storm,
    t_intro, t_greeting, t_pressure, t_meaning, t_clouds, t_fallen, t_also, t_sonst,
]  # fmt: skip


def sample_sentence(rng: np.random.Generator, min_glosses: int = 3, max_glosses: int = 8) -> tuple[str, str]:
    """One (German sentence, gloss sequence) pair with ``min_glosses..max_glosses`` glosses."""
    for _ in range(1000):
        words, glosses = TEMPLATES[rng.integers(len(TEMPLATES))](rng)
        if min_glosses <= len(glosses) <= max_glosses:
            return " ".join([*words, "."]), " ".join(glosses)
    raise ValueError(f"no sentence with {min_glosses}..{max_glosses} glosses in 1000 tries")


def sample_corpus(
    rng: np.random.Generator,
    sizes: dict[str, int],
    min_glosses: int = 3,
    max_glosses: int = 8,
    retries: int = 20,
) -> dict[str, list[tuple[str, str]]]:
    """Sentences per split (in ``sizes`` order); later splits avoid exact duplicates of earlier ones.

    A later split's sentence is resampled up to ``retries`` times while it duplicates a
    sentence of an earlier split (the grammar is finite, so a duplicate may remain).
    """
    seen: set[str] = set()
    out: dict[str, list[tuple[str, str]]] = {}
    for split, n in sizes.items():
        rows = []
        for _ in range(n):
            text, gloss = sample_sentence(rng, min_glosses, max_glosses)
            for _ in range(retries):
                if text not in seen:
                    break
                text, gloss = sample_sentence(rng, min_glosses, max_glosses)
            rows.append((text, gloss))
        seen.update(t for t, _ in rows)
        out[split] = rows
    return out
