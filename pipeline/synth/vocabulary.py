"""Word inventories of the synthetic weather-forecast language (the text side of ``synthetic``).

A :class:`Concept` is one gloss sequence with one or more German realisations (token tuples,
the canonical one first): synonyms and paraphrases map to the same glosses. An
:class:`Inventory` is a ranked list of concepts sampled with Zipf weights ``1 / rank**s``, so a
few concepts are frequent and a long tail is rare (singletons in train, out-of-vocabulary
tokens in dev/test). Hand-written lists form the head of each inventory (directions, federal
states, real towns, rivers and mountains, weather nouns, adjectives with their inflected
forms); procedurally generated German-like town names and weather compounds form the tail. All
inventories are fixed (independent of the corpus seed), like the sign lexicon. Gloss strings
are upper-case ASCII (``A-Z``, digits, ``-``): :func:`gloss_of` transliterates umlauts and ß.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

Phrase = tuple[list[str], list[str]]  # (German tokens, glosses)


def _words(text: str) -> list[str]:
    return text.split()


def gloss_of(word: str) -> str:
    """Upper-case ASCII gloss of a German word (``münchen`` -> ``MUENCHEN``)."""
    out = word.upper()
    for a, b in (("Ä", "AE"), ("Ö", "OE"), ("Ü", "UE"), ("ẞ", "SS"), ("ß", "SS"), (" ", "-")):
        out = out.replace(a, b)
    return "".join(c for c in out if c.isascii() and (c.isalnum() or c == "-"))


@dataclass(frozen=True)
class Concept:
    """One gloss sequence and its German realisations (canonical first)."""

    forms: tuple[tuple[str, ...], ...]
    gloss: tuple[str, ...]
    tag: str = ""  # a category (noun class, place kind, ...)


def table(text: str, tag: str = "") -> list[Concept]:
    """Concepts of a table with one ``GLOSSES = german one | german two`` per line."""
    out = []
    for line in text.strip().splitlines():
        glosses, forms = line.split("=")
        out.append(Concept(tuple(tuple(f.split()) for f in forms.split("|")), tuple(glosses.split()), tag))
    return out


class Inventory:
    """Concepts sampled with Zipf weights over their rank (list order)."""

    def __init__(self, concepts: list[Concept], s: float) -> None:
        self.concepts = concepts
        w = 1.0 / np.arange(1, len(concepts) + 1) ** s
        self.cum = list(np.cumsum(w / w.sum()))
        self.cum[-1] = 1.0

    def __len__(self) -> int:
        return len(self.concepts)

    def pick_index(self, rng: np.random.Generator) -> int:
        return bisect.bisect_right(self.cum, rng.random())

    def pick(self, rng: np.random.Generator) -> Concept:
        return self.concepts[self.pick_index(rng)]


def realise(c: Concept, rng: np.random.Generator, paraphrase_p: float) -> Phrase:
    """The canonical German form, or with ``paraphrase_p`` a uniformly chosen alternative."""
    if len(c.forms) > 1 and rng.random() < paraphrase_p:
        form = c.forms[1 + int(rng.random() * (len(c.forms) - 1))]
    else:
        form = c.forms[0]
    return list(form), list(c.gloss)


# --- numbers ----------------------------------------------------------------------------------
UNITS = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn",
         "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn", "achtzehn",
         "neunzehn", "zwanzig"]  # fmt: skip
ORDINALS = ["", "ersten", "zweiten", "dritten", "vierten", "fünften", "sechsten", "siebten", "achten",
            "neunten", "zehnten", "elften", "zwölften", "dreizehnten", "vierzehnten", "fünfzehnten",
            "sechzehnten", "siebzehnten", "achtzehnten", "neunzehnten", "zwanzigsten"]  # fmt: skip
TENS = {20: "zwanzig", 30: "dreißig", 40: "vierzig"}


def number(n: int) -> Phrase:
    """Cardinal 0..49; 21..49 are one German word but two glosses (``ZWANZIG EINS``)."""
    if n <= 20:
        return [UNITS[n]], [gloss_of(UNITS[n])]
    tens, unit = divmod(n, 10)
    word = TENS[tens * 10]
    if unit == 0:
        return [word], [gloss_of(word)]
    stem = "ein" if unit == 1 else UNITS[unit]
    return [f"{stem}und{word}"], [gloss_of(word), gloss_of(UNITS[unit])]


def ordinal(n: int) -> Phrase:
    """Dative ordinal 1..31 (``ersten`` .. ``einunddreißigsten``)."""
    if n <= 20:
        return [ORDINALS[n]], [gloss_of(ORDINALS[n][:-1])]
    if n == 30:
        return ["dreißigsten"], ["DREISSIGSTE"]
    tens, unit = divmod(n, 10)
    stem = "ein" if unit == 1 else UNITS[unit]
    return [f"{stem}und{TENS[tens * 10]}sten"], [gloss_of(TENS[tens * 10]), gloss_of(ORDINALS[unit][:-1])]


def temperature(n: int) -> Phrase:
    """Signed value: ``minus fünf`` -> ``MINUS FUENF``; ``ein`` before ``grad``."""
    w, g = number(abs(n))
    if abs(n) == 1:
        w = ["ein"]
    return (["minus", *w], ["MINUS", *g]) if n < 0 else (w, g)


DAYS = ["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"]
MONTHS = ["januar", "februar", "märz", "april", "mai", "juni", "juli", "august", "september",
          "oktober", "november", "dezember"]  # fmt: skip

# --- places ---------------------------------------------------------------------------------------
DIRECTIONS = [  # word, adjective stem, gloss
    ("norden", "nördlich", "NORD"), ("süden", "südlich", "SUED"), ("osten", "östlich", "OST"),
    ("westen", "westlich", "WEST"), ("nordwesten", "nordwestlich", "NORDWEST"),
    ("südosten", "südöstlich", "SUEDOST"), ("südwesten", "südwestlich", "SUEDWEST"),
    ("nordosten", "nordöstlich", "NORDOST"),
]  # fmt: skip
REGIONS = table(
    """
    MITTE = in der mitte | in der mitte deutschlands | im zentrum | in den mittleren landesteilen
    KUESTE = an den küsten | an der küste | im küstenbereich | direkt an der see
    NORD MEER = an der nordsee | an der nordseeküste | an der see
    OST MEER = an der ostsee | an der ostseeküste
    ALPEN = an den alpen | in den alpen | am alpenrand | im alpenvorland
    BERG = in den bergen | im bergland | in höheren lagen | auf den bergen
    MITTE BERG = in den mittelgebirgen | im mittelgebirge | in den höheren mittelgebirgslagen
    FLACH LAND = im flachland | im tiefland | in den niederungen
    DEUTSCH LAND UEBERALL = in ganz deutschland | überall | im ganzen land | bundesweit
    NORD HAELFTE = in der nordhälfte | in der nördlichen hälfte
    SUED HAELFTE = in der südhälfte | in der südlichen hälfte
    HIER = hier bei uns | bei uns | hierzulande
    REST = im rest des landes | in den übrigen landesteilen | sonst überall | im übrigen land
    TAL = in den tälern | in tallagen | im tal
    FLUSS = an den flüssen | entlang der flüsse | in flussnähe
    GRENZE = an der grenze | im grenzgebiet | entlang der grenze
    STADT = in den städten | in der stadt | in den großstädten
    NORD DEUTSCH LAND = in norddeutschland | im norden deutschlands
    SUED DEUTSCH LAND = in süddeutschland | im süden deutschlands
    OST DEUTSCH LAND = in ostdeutschland | im osten deutschlands
    WEST DEUTSCH LAND = in westdeutschland | im westen deutschlands
    """,
    "region",
)
STATES = [  # name, genitive, gloss
    ("bayern", "bayerns", "BAYERN"), ("sachsen", "sachsens", "SACHSEN"), ("berlin", "berlins", "BERLIN"),
    ("hessen", "hessens", "HESSEN"), ("thüringen", "thüringens", "THUERINGEN"),
    ("brandenburg", "brandenburgs", "BRANDENBURG"), ("niedersachsen", "niedersachsens", "NIEDERSACHSEN"),
    ("mecklenburg-vorpommern", "mecklenburg-vorpommerns", "MECKLENBURG"),
    ("baden-württemberg", "baden-württembergs", "BADEN-WUERTTEMBERG"),
    ("nordrhein-westfalen", "nordrhein-westfalens", "NORDRHEIN-WESTFALEN"),
    ("rheinland-pfalz", "von rheinland-pfalz", "RHEINLAND-PFALZ"),
    ("schleswig-holstein", "schleswig-holsteins", "SCHLESWIG-HOLSTEIN"),
    ("sachsen-anhalt", "sachsen-anhalts", "SACHSEN-ANHALT"), ("saarland", "saarlands", "SAARLAND"),
    ("hamburg", "hamburgs", "HAMBURG"), ("bremen", "bremens", "BREMEN"),
    ("deutschland", "deutschlands", "DEUTSCHLAND"),
]  # fmt: skip
LANDSCAPES = table(
    """
    HARZ = im harz | am harz | rund um den harz
    EIFEL = in der eifel | an der eifel
    SCHWARZ WALD = im schwarzwald | am schwarzwald
    ALLGAEU = im allgäu
    ERZGEBIRGE = im erzgebirge | am erzgebirge
    BAYERISCH WALD = im bayerischen wald
    SAUERLAND = im sauerland
    LAUSITZ = in der lausitz
    EMSLAND = im emsland
    ALB = auf der alb | auf der schwäbischen alb
    RHOEN = in der rhön | auf der rhön
    VOGTLAND = im vogtland
    UCKERMARK = in der uckermark
    MUENSTERLAND = im münsterland
    ODENWALD = im odenwald
    SPESSART = im spessart
    WESTERWALD = im westerwald
    TAUNUS = im taunus
    HUNSRUECK = im hunsrück
    FICHTELGEBIRGE = im fichtelgebirge
    THUERINGEN WALD = im thüringer wald
    ZUGSPITZE = auf der zugspitze | an der zugspitze
    FELDBERG = auf dem feldberg | am feldberg
    BROCKEN = auf dem brocken | am brocken
    BODENSEE = am bodensee | rund um den bodensee
    RUEGEN = auf rügen | auf der insel rügen
    SYLT = auf sylt | auf der insel sylt
    INSEL = auf den inseln | auf den nordseeinseln | auf den ostfriesischen inseln
    OSTFRIESLAND = in ostfriesland
    NIEDERRHEIN = am niederrhein
    OBERRHEIN = am oberrhein | im oberrheingraben
    FRANKEN = in franken | in unterfranken | in oberfranken | in mittelfranken
    OBERBAYERN = in oberbayern
    NIEDERBAYERN = in niederbayern
    SCHWABEN = in schwaben
    PFALZ = in der pfalz
    RUHRGEBIET = im ruhrgebiet | im ruhrpott
    ALTMARK = in der altmark
    PRIGNITZ = in der prignitz
    HOLSTEIN = in holstein
    VORPOMMERN = in vorpommern
    FLAEMING = im fläming
    """,
    "landscape",
)
RIVERS = [  # name, masculine (am ...) or feminine (an der ...)
    ("rhein", "m"), ("elbe", "f"), ("donau", "f"), ("main", "m"), ("oder", "f"), ("weser", "f"),
    ("mosel", "f"), ("neckar", "m"), ("saale", "f"), ("spree", "f"), ("havel", "f"), ("ems", "f"),
    ("isar", "f"), ("inn", "m"), ("lahn", "f"), ("ruhr", "f"), ("fulda", "f"), ("werra", "f"),
    ("lech", "m"), ("neiße", "f"), ("mulde", "f"), ("aller", "f"), ("leine", "f"), ("saar", "f"),
    ("nahe", "f"), ("regen", "m"), ("altmühl", "f"), ("peene", "f"), ("unstrut", "f"), ("eider", "f"),
]  # fmt: skip
COUNTRIES = table(
    """
    FRANKREICH = in frankreich | aus frankreich
    POLEN = in polen | aus polen
    TSCHECHIEN = in tschechien | aus tschechien
    OESTERREICH = in österreich
    SCHWEIZ = in der schweiz
    DAENEMARK = in dänemark | über dänemark
    NIEDERLANDE = in den niederlanden | in holland
    BELGIEN = in belgien
    SKANDINAVIEN = über skandinavien | in skandinavien
    ATLANTIK = über dem atlantik | vom atlantik
    BRITANNIEN = über den britischen inseln | über großbritannien
    RUSSLAND = über russland | aus russland
    MITTELMEER = über dem mittelmeer | vom mittelmeer
    ISLAND = bei island | über island
    BISKAYA = über der biskaya
    """,
    "country",
)
CITIES = _words(
    """
berlin hamburg münchen köln frankfurt stuttgart düsseldorf dresden leipzig hannover nürnberg bremen
essen dortmund rostock kiel magdeburg erfurt potsdam schwerin mainz wiesbaden saarbrücken freiburg
augsburg regensburg passau würzburg kassel göttingen bielefeld münster osnabrück oldenburg emden
flensburg lübeck stralsund greifswald cottbus chemnitz zwickau görlitz halle jena weimar gera
aachen bonn koblenz trier karlsruhe mannheim heidelberg ulm konstanz ingolstadt bamberg bayreuth
hof coburg fulda gießen siegen paderborn wolfsburg braunschweig lüneburg cuxhaven wilhelmshaven
helgoland rosenheim kempten lindau garmisch berchtesgaden oberstdorf
"""
)
_STEMS = _words(
    """
alt bad bern bram brem dorn eich eisen els erl falk fels frei fried gern glad gold gras groß hal
ham hart hasel heil helm herm hild hoh holz horn hun kalt kirch klein kron lan lauen lind loh
mar mark meer mühl neu nord ober oster rad ram reich ried rod ros rot salz sand schön see sieg
sonn stein sten stock süd tann thal uhl unter wald wal warn wein weiß wend werd west wil wind
wolf wolken wurz zell
"""
)
_SUFFIXES = _words(
    """
burg berg dorf feld hausen heim ingen stadt bach au furt rode kirchen hagen stedt leben ow itz
brück wald tal hofen beck born bruck hain horst kamp lohe münde rath see weiler zell
"""
)


@lru_cache(maxsize=1)
def town_names(n: int = 4000) -> list[str]:
    """Real cities first, then ``n`` German-like invented names (fixed generator, not the seed)."""
    rng = np.random.default_rng(2014)
    names, seen = list(CITIES), set(CITIES)
    while len(names) < len(CITIES) + n:
        name = _STEMS[rng.integers(len(_STEMS))] + _SUFFIXES[rng.integers(len(_SUFFIXES))]
        if rng.random() < 0.12:
            name = ("bad " if rng.random() < 0.5 else "neu") + name
        if name not in seen:
            seen.add(name)
            names.append(name.replace("bad ", "bad-"))
    return names


def _town_adj(t: str) -> str:
    """``münchen`` -> ``münchener``, ``kiel`` -> ``kieler`` (the town adjective)."""
    return t + ("r" if t.endswith("e") else "er")


def towns() -> list[Concept]:
    """Town concepts: ``in X`` and paraphrases (``bei X``, ``rund um X``, ``im raum X``) -> ``X``."""
    return [
        Concept(
            (
                ("in", t),
                ("bei", t),
                ("rund", "um", t),
                ("im", "raum", t),
                ("im", "großraum", t),
                ("im", _town_adj(t), "raum"),
                ("in", "der", "gegend", "um", t),
            ),
            (gloss_of(t),),
            "town",
        )  # fmt: skip
        for t in town_names()
    ]


def rivers() -> list[Concept]:
    out = []
    for r, g in RIVERS:
        at = ("am", r) if g == "m" else ("an", "der", r)
        along = ("entlang", "des", r + "s") if g == "m" else ("entlang", "der", r)
        gl = (gloss_of(r),) if r != "regen" else ("FLUSS", "REGEN")
        out.append(Concept((at, along, (*at, "entlang")), gl, "river"))
    return out


def states() -> list[Concept]:
    return [Concept((("in", n), ("im", "land", n)), (g,), "state") for n, _, g in STATES]


def directions() -> list[Concept]:
    """``im norden`` / ``im nördlichen deutschland`` / ``im norden des landes`` ... -> ``NORD``."""
    return [
        Concept(
            (
                ("im", w),
                ("im", adj + "en", "deutschland"),
                ("im", w, "des", "landes"),
                ("in", "den", adj + "en", "landesteilen"),
                (adj, "davon"),
                ("im", adj + "en", "bereich"),
            ),
            (g,),
            "direction",
        )  # fmt: skip
        for w, adj, g in DIRECTIONS
    ]


# --- weather nouns and compounds -------------------------------------------------------------------
@dataclass(frozen=True)
class Noun:
    """A weather noun: nominative/accusative, dative form, gender (m f n pl), glosses, category."""

    word: str
    dative: str
    gender: str
    gloss: tuple[str, ...]
    cat: str  # precip | cloud | fog | cold | sun | storm | thunder


def _nouns(text: str) -> list[Noun]:
    out = []
    for row in text.strip().splitlines():
        word, dat, gender, gloss, cat = (c.strip() for c in row.split("|"))
        out.append(Noun(word, dat, gender, tuple(gloss.split()), cat))
    return out


NOUNS = _nouns(
    """
    regen           | regen            | m  | REGEN            | precip
    schauer         | schauern         | pl | SCHAUER          | precip
    gewitter        | gewittern        | pl | GEWITTER         | thunder
    wolken          | wolken           | pl | WOLKE            | cloud
    sonnenschein    | sonnenschein     | m  | SONNE            | sun
    nebel           | nebel            | m  | NEBEL            | fog
    schnee          | schnee           | m  | SCHNEE           | precip
    frost           | frost            | m  | FROST            | cold
    sonne           | sonne            | f  | SONNE            | sun
    niederschläge   | niederschlägen   | pl | REGEN            | precip
    sturmböen       | sturmböen        | pl | STURM            | storm
    regenschauer    | regenschauern    | pl | REGEN SCHAUER    | precip
    schneeschauer   | schneeschauern   | pl | SCHNEE SCHAUER   | precip
    gewitterschauer | gewitterschauern | pl | GEWITTER SCHAUER | thunder
    böen            | böen             | pl | BOEEN            | storm
    glätte          | glätte           | f  | GLATT            | cold
    schneeregen     | schneeregen      | m  | SCHNEE REGEN     | precip
    nieselregen     | nieselregen      | m  | NIESELN          | precip
    sprühregen      | sprühregen       | m  | NIESELN          | precip
    hochnebel       | hochnebel        | m  | HOCH NEBEL       | fog
    dunst           | dunst            | m  | DUNST            | fog
    dauerregen      | dauerregen       | m  | DAUER REGEN      | precip
    hagel           | hagel            | m  | HAGEL            | thunder
    bodenfrost      | bodenfrost       | m  | BODEN FROST      | cold
    nachtfrost      | nachtfrost       | m  | NACHT FROST      | cold
    schneefälle     | schneefällen     | pl | SCHNEE FALLEN    | precip
    quellwolken     | quellwolken      | pl | QUELL WOLKE      | cloud
    wolkenfelder    | wolkenfeldern    | pl | WOLKE FELD       | cloud
    orkanböen       | orkanböen        | pl | ORKAN            | storm
    sturm           | sturm            | m  | STURM            | storm
    glatteis        | glatteis         | n  | GLATT EIS        | cold
    reif            | reif             | m  | REIF             | cold
    aufheiterungen  | aufheiterungen   | pl | AUFLOCKERUNG     | sun
    auflockerungen  | auflockerungen   | pl | AUFLOCKERUNG     | sun
    lücken          | lücken           | pl | LOCH             | sun
    wolkenlücken    | wolkenlücken     | pl | WOLKE LOCH       | sun
    starkregen      | starkregen       | m  | STARK REGEN      | precip
    unwetter        | unwettern        | pl | UNWETTER         | thunder
    graupel         | graupel          | m  | GRAUPEL          | precip
    eisregen        | eisregen         | m  | EIS REGEN        | cold
    tau             | tau              | m  | TAU              | fog
    frühnebel       | frühnebel        | m  | FRUEH NEBEL      | fog
    nebelfelder     | nebelfeldern     | pl | NEBEL FELD       | fog
    nebelbänke      | nebelbänken      | pl | NEBEL FELD       | fog
    blitze          | blitzen          | pl | BLITZ            | thunder
    windböen        | windböen         | pl | WIND BOEEN       | storm
    """
)
# Compound parts for the procedural tail: German stem (first part), gloss, category.
_FIRST = [
    ("regen", "REGEN", "precip"), ("schnee", "SCHNEE", "precip"), ("gewitter", "GEWITTER", "thunder"),
    ("sturm", "STURM", "storm"), ("wind", "WIND", "storm"), ("nebel", "NEBEL", "fog"),
    ("frost", "FROST", "cold"), ("wolken", "WOLKE", "cloud"), ("sonnen", "SONNE", "sun"),
    ("hagel", "HAGEL", "thunder"), ("nacht", "NACHT", "cold"), ("früh", "FRUEH", "fog"),
    ("abend", "ABEND", "cloud"), ("höhen", "HOCH", "storm"), ("berg", "BERG", "cloud"),
    ("tal", "TAL", "fog"), ("küsten", "KUESTE", "storm"), ("dauer", "DAUER", "precip"),
    ("niesel", "NIESELN", "precip"), ("schauer", "SCHAUER", "precip"), ("eis", "EIS", "cold"),
    ("nord", "NORD", "storm"), ("süd", "SUED", "cloud"), ("west", "WEST", "precip"), ("ost", "OST", "cold"),
    ("morgen", "MORGEN", "fog"), ("winter", "WINTER", "cold"), ("sommer", "SOMMER", "sun"),
    ("herbst", "HERBST", "fog"), ("frühlings", "FRUEHLING", "sun"), ("kälte", "KALT", "cold"),
    ("hitze", "HEISS", "sun"), ("tages", "TAG", "sun"), ("gebirgs", "BERG", "precip"),
    ("schwül", "SCHWUEL", "thunder"), ("wärme", "WARM", "sun"), ("boden", "BODEN", "cold"),
    ("quell", "QUELL", "cloud"), ("schleier", "SCHLEIER", "cloud"), ("graupel", "GRAUPEL", "precip"),
    ("fluss", "FLUSS", "fog"), ("see", "SEE", "storm"), ("orkan", "ORKAN", "storm"),
    ("tau", "TAU", "cold"), ("staub", "STAUB", "storm"), ("luft", "LUFT", "cloud"),
    ("mittags", "MITTAG", "thunder"), ("wochenend", "WOCHENENDE", "sun"),
    ("mittelgebirgs", "MITTE BERG", "fog"), ("alpen", "ALPEN", "precip"), ("nordsee", "NORD MEER", "storm"),
    ("ostsee", "OST MEER", "storm"), ("feucht", "FEUCHT", "precip"), ("tropen", "TROPEN", "sun"),
    ("polar", "POLAR", "cold"), ("atlantik", "ATLANTIK", "precip"), ("sahara", "SAHARA", "sun"),
    ("flachland", "FLACH LAND", "fog"), ("starkregen", "STARK REGEN", "precip"), ("platz", "PLATZ", "precip"),
    ("dauerfrost", "DAUER FROST", "cold"), ("schwüle", "SCHWUEL", "thunder"),
    ("hochdruck", "HOCH DRUCK", "sun"), ("tiefdruck", "TIEF DRUCK", "precip"),
]  # fmt: skip
_SECOND = [  # singular, plural / dative plural, gender, gloss
    ("front", "fronten", "f", "FRONT"), ("gebiet", "gebiete", "n", "GEBIET"),
    ("feld", "felder", "n", "FELD"), ("zone", "zonen", "f", "ZONE"), ("band", "bänder", "n", "BAND"),
    ("neigung", "neigungen", "f", "NEIGUNG"), ("gefahr", "gefahren", "f", "GEFAHR"),
    ("schauer", "schauer", "pl", "SCHAUER"), ("wetter", "wetter", "n", "WETTER"),
    ("luft", "luft", "f", "LUFT"), ("lage", "lagen", "f", "LAGE"), ("phase", "phasen", "f", "PHASE"),
    ("wolken", "wolken", "pl", "WOLKE"), ("böen", "böen", "pl", "BOEEN"), ("regen", "regen", "m", "REGEN"),
    ("nebel", "nebel", "m", "NEBEL"), ("fälle", "fällen", "pl", "FALLEN"), ("dunst", "dunst", "m", "DUNST"),
    ("wirbel", "wirbeln", "pl", "WIRBEL"), ("tief", "tiefs", "n", "TIEF"), ("hoch", "hochs", "n", "HOCH"),
    ("zellen", "zellen", "pl", "ZELLE"), ("risiko", "risiko", "n", "RISIKO"),
    ("grenze", "grenzen", "f", "GRENZE"), ("streifen", "streifen", "pl", "STREIFEN"),
    ("walze", "walzen", "f", "WALZE"), ("gebiete", "gebieten", "pl", "GEBIET"),
    ("felder", "feldern", "pl", "FELD"), ("fronten", "fronten", "pl", "FRONT"),
    ("wolke", "wolke", "f", "WOLKE"), ("schicht", "schichten", "f", "SCHICHT"),
    ("nest", "nester", "n", "NEST"), ("dauer", "dauer", "f", "DAUER"),
]  # fmt: skip


@lru_cache(maxsize=1)
def compounds() -> list[Noun]:
    """All first x second weather compounds (``gewitterfront`` -> ``GEWITTER FRONT``), fixed order."""
    known = {n.word for n in NOUNS}
    pairs = list(itertools.product(_FIRST, _SECOND))
    order = np.random.default_rng(2018).permutation(len(pairs))
    out = []
    for i in order:
        (a, ga, cat), (b, pl, gender, gb) = pairs[i]
        if a == b or ga == gb or a + b in known:
            continue
        dat = a + pl + ("n" if gender == "pl" and not pl.endswith(("n", "s")) else "")
        out.append(Noun(a + b, dat, gender, (*ga.split(), *gb.split()), cat))
    return out


# Attributive adjectives: stem, gloss, categories; strong endings per case and gender below.
ADJECTIVES = [
    (stem, gloss, cats.strip())
    for stem, gloss, cats in (
        row.split(None, 2)
        for row in """
    kräftig       KRAEFTIG   precip storm thunder
    stark         STARK      cold fog precip storm thunder
    leicht        LEICHT     cold precip
    heftig        HEFTIG     precip storm thunder
    ergiebig      ERGIEBIG   precip
    dicht         DICHT      cloud fog
    einzeln       EINZELN    cloud precip thunder
    örtlich       ORT        cold fog precip thunder
    schwer        SCHWER     storm thunder
    dick          DICK       cloud
    zäh           ZAEH       fog
    mäßig         MAESSIG    cold precip
    strahlend     STRAHLEN   sun
    viel          VIEL       cloud sun
    hell          HELL       sun
    trüb          TRUEB      fog cloud
    vereinzelt    VEREINZELT precip thunder fog
    teilweise     TEIL       precip fog
    gewittrig     GEWITTER   precip
    unwetterartig UNWETTER   precip thunder
    länger        LANG       sun precip
    kurz          KURZ       precip thunder
    schwach       SCHWACH    storm cold
    mild          MILD       cold
    streng        STRENG     cold
    gefährlich    GEFAHR     cold storm thunder
    anhaltend     DAUER      precip fog
    lokal         LOKAL      precip thunder fog
    tief          TIEF       cloud
    hoch          HOCH       cloud
    grau          GRAU       cloud
    nass          NASS       precip
    sommerlich    SOMMER     sun thunder
    winterlich    WINTER     cold precip
    zeitweilig    ZEIT       sun precip
    neu           NEU        precip cloud
    weiter        WEITER     precip cloud
    letzt         LETZTE     precip cloud
    kalt          KALT       precip
    frisch        FRISCH     storm
    stürmisch     STURM      storm
    böig          BOEEN      storm
    eisig         EIS        storm cold
    verbreitet    UEBERALL   precip fog cold
    """.strip().splitlines()
    )
]  # stem, gloss, the noun categories it combines with
COMPARATIVES = {
    "stark": "stärker", "kräftig": "kräftiger", "leicht": "leichter", "heftig": "heftiger",
    "dicht": "dichter", "schwer": "schwerer", "dick": "dicker", "hell": "heller", "kurz": "kürzer",
    "schwach": "schwächer",
    "mild": "milder", "kalt": "kälter", "frisch": "frischer", "hoch": "höher", "tief": "tiefer",
    "nass": "nasser", "ergiebig": "ergiebiger",
}  # fmt: skip
ENDINGS = {  # strong declension: case -> gender -> ending
    "nom": {"m": "er", "f": "e", "n": "es", "pl": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "pl": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"},
}

# Names the weather services give to highs and lows (``tief kyrill`` -> ``TIEF KYRILL``).
SYSTEM_NAMES = _words(
    """
    kyrill xaver emma lothar wiebke vivian anatol daria elon felix gisela helga ines jana kurt
    lena martin nora otto paula quentin rita susanne thomas ulla viktor wanda yvonne zeno
    axel berta christian dora egon frieda gerd hanna ingo jutta klaus luise manfred nadine olaf
    petra ralf sabine tobias uwe vera walter xenia yannick zora alfred bianca carsten doris emil
    franz greta heinz ida jürgen käthe ludwig marta norbert olga peter rosi stefan tanja ulrich
    verena werner anna bernd clara dieter elke fritz gabi hugo irma jakob karin lutz moritz nele
    oskar pia rudi selma theo ute volker wilma
    """
)
# Rare weather-domain concepts (the long tail of content words): glosses = German forms.
RARE = table(
    """
    HOCHWASSER = hochwasser | überschwemmungen | überflutungen
    LAWINE GEFAHR = lawinengefahr | erhöhte lawinengefahr
    POLLEN = pollenflug | pollen
    OZON = ozonwerte | hohe ozonwerte
    WALD BRAND GEFAHR = waldbrandgefahr | erhöhte waldbrandgefahr
    STURM FLUT = sturmflut | eine sturmflut
    UV STRAHLEN = uv-strahlung | starke uv-strahlung
    SAHARA STAUB = saharastaub | staub aus der sahara
    GLATTEIS GEFAHR = glatteisgefahr | gefahr von glatteis
    STAU WOLKE = staubewölkung | stauwolken
    FOEHN = föhn | föhnwind | föhnige effekte
    INVERSION = inversion | inversionswetterlage
    SMOG = smog | dunstglocke
    TROCKEN ZEIT = trockenheit | dürre | anhaltende trockenheit
    HITZE WELLE = hitzewelle | eine hitzewelle
    KAELTE WELLE = kältewelle | eine kältewelle
    NEU SCHNEE = neuschnee | frischer neuschnee
    SCHNEE DECKE = schneedecke | eine geschlossene schneedecke
    SCHNEE VERWEHUNG = schneeverwehungen | verwehungen
    EIS REGEN = gefrierender regen | eisregen
    RAUHREIF = raureif | rauhreif
    REGEN BOGEN = regenbogen | einen regenbogen
    WETTER LEUCHTEN = wetterleuchten
    WINDHOSE = windhose | tornado | eine windhose
    WASSER STAND = wasserstand | pegelstand | die pegel
    MOND = mond | vollmond
    STERN = sterne | sternenhimmel
    SONNE AUFGANG = sonnenaufgang
    SONNE UNTERGANG = sonnenuntergang
    SCHNEE SCHMELZE = schneeschmelze | tauwetter
    MATSCH = schneematsch | matsch
    REIF GLAETTE = reifglätte
    BLITZ EIS = blitzeis
    SCHAFSKAELTE = schafskälte
    EIS HEILIGE = eisheilige | die eisheiligen
    ALTWEIBERSOMMER = altweibersommer
    HUNDSTAGE = hundstage | die hundstage
    SIEBENSCHLAEFER = siebenschläfer
    WEISS WEIHNACHTEN = weiße weihnachten
    APRIL WETTER = aprilwetter | typisches aprilwetter
    BADE WETTER = badewetter | gutes badewetter
    GRILL WETTER = grillwetter
    SKI FAHREN = skiwetter | gute bedingungen zum skifahren
    WANDERN WETTER = wanderwetter
    STRASSE GLATT = glatte straßen | straßenglätte
    VERKEHR = verkehr | behinderungen im verkehr
    KREISLAUF BELASTUNG = kreislaufbelastung | belastung für den kreislauf
    BIO WETTER = biowetter
    LUFT DRUCK = luftdruck
    LUFT FEUCHTIGKEIT = luftfeuchtigkeit | feuchte
    SICHT = sichtweiten | die sicht
    WELLE = wellengang | hohe wellen
    SEEGANG = seegang | rauer seegang
    GEZEITEN = gezeiten | flut | ebbe
    NIEDRIG WASSER = niedrigwasser
    SCHLAMM = schlammlawinen | erdrutsche
    HAGEL KORN = hagelkörner | große hagelkörner
    STARK WIND = starkwind
    WIND STILLE = windstille | flaute
    FROST GRENZE = frostgrenze
    NULL GRAD GRENZE = nullgradgrenze
    SCHNEE FALL GRENZE = schneefallgrenze
    BAUM BLUETE = baumblüte | obstblüte
    ERNTE = ernte | erntewetter
    LANDWIRTSCHAFT = landwirtschaft | die bauern
    GARTEN = garten | gartenarbeit
    URLAUB = urlaub | ferien | urlauber
    FEIERTAG = feiertag | am feiertag
    OSTERN = ostern | über ostern | zu ostern
    PFINGSTEN = pfingsten | über pfingsten
    WEIHNACHTEN = weihnachten | an weihnachten
    SILVESTER = silvester | zum jahreswechsel
    KARNEVAL = karneval | fasching
    ADVENT = advent | adventswochenende
    FRUEHLING ANFANG = frühlingsanfang | kalendarischer frühlingsbeginn
    HERBST ANFANG = herbstanfang
    REKORD = rekord | neue rekordwerte | rekordtemperaturen
    DURCHSCHNITT = durchschnitt | im mittel | im schnitt
    NORMAL = normal | normalwerte
    STATISTIK = statistik | langjähriges mittel
    UNWETTER WARNUNG = unwetterwarnung | unwetterwarnungen
    WARNUNG = warnung | warnungen | wetterwarnung
    VORSICHT = vorsicht | achtung
    SATELLIT BILD = satellitenbild | auf dem satellitenbild
    RADAR = radarbild | auf dem radar
    KARTE = wetterkarte | auf der karte
    MESS STATION = messstation | wetterstationen
    HUBSCHRAUBER = hubschrauber
    FLUGHAFEN = flughafen | flugverkehr
    SCHIFF = schifffahrt | schiffe
    AUTOBAHN = autobahn | autobahnen
    BAHN = bahn | zugverkehr
    STROM = stromausfall | stromausfälle
    BAUM UMFALLEN = umgestürzte bäume | entwurzelte bäume
    DACH = dächer | abgedeckte dächer
    KELLER = vollgelaufene keller
    FEUERWEHR = feuerwehr | einsatzkräfte
    SCHADEN = schäden | sturmschäden
    KLIMA = klima | klimawandel
    ERWAERMUNG = erwärmung | erderwärmung
    GLETSCHER = gletscher
    WATT = wattenmeer | im watt
    DUENE = dünen
    HALLIG = halligen
    MOOR = moor | moore
    HEIDE = heide | lüneburger heide
    WEINBERG = weinberge | weinbau
    OBST = obst | obstbäume
    GETREIDE = getreide | felder
    PILZ = pilze | pilzsaison
    ZECKE = zecken
    MUECKE = mücken | mückenplage
    VOGEL ZUG = vogelzug | zugvögel
    LAUB = laub | herbstlaub
    NEBEL SCHWADEN = nebelschwaden
    DAEMMERUNG = dämmerung | abenddämmerung | morgendämmerung
    """,
    "rare",
) + table(
    """
    WOLKE DECKE = wolkendecke | eine geschlossene wolkendecke
    NEBEL AUFLOESEN = nebelauflösung
    WETTER UMSCHWUNG = wetterumschwung | einen wetterumschwung
    WETTER LAGE = wetterlage | großwetterlage
    OMEGA = omegalage | omega-hoch
    TROG = trog | höhentrog
    KEIL = hochkeil | zwischenhochkeil
    KONVERGENZ = konvergenzlinie | konvergenz
    SQUALL-LINIE = böenlinie | gewitterlinie
    SUPERZELLE = superzelle | superzellen
    HITZE GEWITTER = hitzegewitter | wärmegewitter
    STARK REGEN WARNUNG = starkregenwarnung
    FROST WARNUNG = frostwarnung
    STURM WARNUNG = sturmwarnung | sturmwarnungen
    GLAETTE WARNUNG = glättewarnung
    NEBEL WARNUNG = nebelwarnung
    HITZE WARNUNG = hitzewarnung
    TAU PUNKT = taupunkt
    VERDUNSTUNG = verdunstung
    GRUNDWASSER = grundwasser
    BODEN FEUCHT = bodenfeuchte | trockene böden
    WASSER TEMPERATUR = wassertemperatur | wassertemperaturen
    SCHNEE HOEHE = schneehöhe | schneehöhen
    SCHNEE KETTE = schneeketten
    WINTER REIFEN = winterreifen
    STREU DIENST = streudienst | räumdienste
    SONNE BRAND = sonnenbrand
    SONNE CREME = sonnencreme
    REGEN SCHIRM = regenschirm | den schirm
    JACKE = jacke | warme jacke
    MUETZE = mütze | schal und mütze
    HEIZUNG = heizung | heizkosten
    ERKAELTUNG = erkältung | erkältungswetter
    KOPF SCHMERZ = kopfschmerzen | wetterfühligkeit
    ALLERGIE = allergiker | allergie
    ASTHMA = asthmatiker
    HERZ = herzkranke | herz und kreislauf
    KIND = kinder | kinder und ältere
    SCHULE = schulferien | schulbeginn
    SPORT = sport im freien | sportler
    STADION = fußball | stadion
    FESTIVAL = festival | open-air
    MARKT = weihnachtsmarkt | weihnachtsmärkte
    OKTOBERFEST = oktoberfest | wiesn
    SCHNEE MANN = schneemann
    SCHLITTEN = schlittenfahren | rodeln
    EIS LAUFEN = eislaufen | schlittschuhlaufen
    SEE ZUGEFROREN = zugefrorene seen
    BADE SEE = badeseen | baggersee
    STRAND = strand | am strand
    SEGELN = segler | wassersportler
    FAEHRE = fähren | fährverkehr
    DEICH = deiche | deich
    HAFEN = hafen | häfen
    LEUCHTTURM = leuchtturm
    """,
    "rare2",
)
