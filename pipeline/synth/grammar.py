"""German weather-forecast sentences with DGS-like gloss sequences (PHOENIX-2014T style).

A sentence is one stand-alone phrase (greeting, date announcement, outlook) or 1..``max_clauses``
clauses joined as weather presenters do (``und``, ``dabei``, ``aber``, ``während``, ``wobei``,
``weil`` ...). Each clause is built from constituents (time, place, phenomenon noun phrase,
predicate) drawn from the Zipf-weighted inventories of :mod:`pipeline.synth.vocabulary`, and is
realised twice from the same choices:

- German: verb-second main clauses whose first position is the time, the place or the subject
  (``topic_p``), verb-final subordinate clauses (``aufzieht`` vs ``ziehen ... auf``), inflected
  adjectives, articles, prepositions, copulas, ``es gibt`` and unsigned fillers (``filler_p``);
  every concept may use a paraphrase (``paraphrase_p``: ``bei hamburg``, ``rund um hamburg`` ->
  ``HAMBURG``).
- Glosses in DGS order: time, place, phenomenon (noun before adjective before intensifier),
  verb last; the place may come first (``gloss_place_first_p``); the signer adds signs without
  German words: pointing ``IX`` after a place (``ix_p``), repetition of the noun
  (``repeat_p``), classifiers ``CL-*`` (``classifier_p``), ``SEHR``/``VIEL`` (``intensifier_p``);
  some German adverbs and adjectives stay unsigned (``unsigned_p``).

So German -> glosses is many-to-many, and the open-class tails (towns, compounds) give the
singletons and dev/test out-of-vocabulary words of a real corpus. Everything draws from the
generator passed in: the corpus is identical for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.config import param
from pipeline.synth import vocabulary as V
from pipeline.synth.vocabulary import Concept, Inventory, Noun, Phrase, gloss_of, realise, table


@dataclass(frozen=True)
class TextConfig:
    """The text side of the synthetic corpus (params ``synthetic.text``)."""

    zipf_s: float = param(1.0, gt=0)  # Zipf exponent of open-class inventories (weight 1 / rank**s)
    place_zipf_s: float = param(1.5, gt=0)  # ... of the place inventory (hand-written + invented towns)
    extra_clause_p: float = param(0.5, ge=0, lt=1)  # chance of one more clause (geometric count)
    max_clauses: int = param(4, gt=0)  # clauses per sentence at most
    standalone_p: float = param(0.1, ge=0, le=1)  # share of stand-alone phrases (greetings, dates)
    paraphrase_p: float = param(0.35, ge=0, le=1)  # a concept uses a non-canonical German phrasing
    topic_p: float = param(0.35, ge=0, le=1)  # German clause starts with the place/subject, not the time
    gloss_place_first_p: float = param(0.2, ge=0, le=1)  # glosses put the place before the time
    filler_p: float = param(0.15, ge=0, le=1)  # per clause: an unsigned German filler (auch, noch, ...)
    unsigned_p: float = param(0.1, ge=0, le=1)  # per German adverb/adjective: not signed
    ix_p: float = param(0.35, ge=0, le=1)  # per place: pointing IX added in the glosses only
    repeat_p: float = param(0.1, ge=0, le=1)  # per phenomenon: its sign repeated
    classifier_p: float = param(0.15, ge=0, le=1)  # per clause: a classifier gloss (CL-*) before the verb
    intensifier_p: float = param(0.15, ge=0, le=1)  # per adjective: SEHR/VIEL signed without German


EMPTY: Phrase = ([], [])


def _cat(*parts: Phrase) -> Phrase:
    words, glosses = [], []
    for w, g in parts:
        words += w
        glosses += g
    return words, glosses


# --- closed and hand-written inventories ----------------------------------------------------------
TIMES = table(
    """
    HEUTE = heute | am heutigen tag | im laufe des tages
    MORGEN = morgen | am morgigen tag
    NACHT = in der nacht | heute nacht | in der kommenden nacht | nachts
    TAG = tagsüber | am tag | im tagesverlauf | im laufe des tages
    MORGEN FRUEH = morgen früh | am frühen morgen | morgens
    NACHMITTAG = am nachmittag | nachmittags | im laufe des nachmittags
    ABEND = am abend | abends | heute abend | in den abendstunden
    VORMITTAG = am vormittag | vormittags
    UEBERMORGEN = übermorgen
    SPAETER = später | im weiteren verlauf | danach | anschließend
    ZUERST = zunächst | anfangs | zu beginn | erst
    WOCHENENDE = zum wochenende | am wochenende | übers wochenende
    NEU WOCHE = in der neuen woche | in der nächsten woche | zu beginn der neuen woche
    NACHT ZWEITE HAELFTE = in der zweiten nachthälfte | gegen morgen
    BIS ABEND = bis zum abend | bis in den abend hinein
    MITTAG = am mittag | mittags | gegen mittag
    JETZT = jetzt | zurzeit | im moment | derzeit
    NOCH = noch | weiterhin | nach wie vor
    DANN = dann | danach
    ZUKUNFT = in den nächsten tagen | in den kommenden tagen
    BALD = bald | demnächst
    NACHT FRUEH = in den frühstunden | in den frühen morgenstunden
    MORGEN NACHMITTAG = morgen nachmittag
    MORGEN ABEND = morgen abend
    MORGEN VORMITTAG = morgen vormittag
    """,
    "time",
)
PRED_ADJ = table(
    """
    TROCKEN = trocken | niederschlagsfrei | regenfrei
    FREUNDLICH = freundlich | recht freundlich
    SONNE = sonnig | sonnenreich
    BEWOELKT = bewölkt | stark bewölkt | wolkig | bedeckt
    WECHSELHAFT = wechselhaft | unbeständig
    KLAR = klar | sternenklar
    NASS = nass | regnerisch
    GRAU = grau | trüb
    HEITER = heiter | heiter bis wolkig
    NEBEL = neblig | diesig
    WIND = windig | recht windig
    SCHWUEL = schwül | drückend
    UNGEMUETLICH = ungemütlich | nasskalt
    SCHOEN = schön | angenehm
    FREUNDLICH SONNE = freundlich und sonnig
    WOLKE SONNE WECHSEL = wechselnd bewölkt | wolkig mit sonnigen abschnitten
    STURM = stürmisch
    GLATT = glatt | spiegelglatt
    RUHIG = ruhig | ruhiger
    """,
    "state",
)
TEMP_ADJ = table(
    """
    WARM = warm | wärmer
    HEISS = heiß | sehr warm | hochsommerlich
    MILD = mild | milder
    KUEHL = kühl | kühler | frisch
    KALT = kalt | kälter
    FROST = frostig | eisig
    SOMMER = sommerlich | sommerlich warm
    WINTER = winterlich | winterlich kalt
    """,
    "temp",
)
ADVERBS = table(  # modifiers of a state: (German, gloss); unsigned ones have no gloss
    """
    MEISTENS = meist | meistens | überwiegend | größtenteils | vielfach
    UEBERALL = verbreitet | weitgehend | fast überall
    REGION = gebietsweise | regional | streckenweise
    TEIL = zum teil | teilweise | stellenweise
    VEREINZELT = vereinzelt | hier und da | örtlich
    IMMER WIEDER = immer wieder | wiederholt
    ZEITWEISE = zeitweise | zeitweilig | vorübergehend
    BESONDERS = vor allem | besonders | insbesondere
    SEHR = sehr | ziemlich | recht
    AUCH = auch | ebenfalls
    WEITER = weiterhin | weiter
    """,
    "adverb",
)
FILLERS = [["auch"], ["noch"], ["dann"], ["ja"], ["allerdings"], ["übrigens"], ["aber"], ["eher"],
           ["etwas"], ["ganz"], ["wieder"], ["schon"], ["nun"], ["also"], ["jedoch"], ["durchaus"],
           ["insgesamt"], ["wohl"], ["doch"]]  # fmt: skip
# Clause connectors: German words, glosses, subordinate (verb-final)?
CONNECTORS = [
    (["und"], [], False), (["und"], [], False), (["dabei"], [], False), (["aber"], ["ABER"], False),
    (["sonst"], ["SONST"], False), (["danach"], ["DANACH"], False), (["später"], ["SPAETER"], False),
    (["während"], [], True), (["wobei"], [], True), (["weil"], ["WARUM"], True), (["so", "dass"], [], True),
    (["bevor"], ["BEVOR"], True), (["nachdem"], ["DANACH"], True), (["außerdem"], ["AUCH"], False),
    (["ansonsten"], ["SONST"], False), (["doch"], ["ABER"], False), (["denn"], ["WARUM"], False),
]  # fmt: skip
PAST = {  # present -> preterite (sg, pl)
    "gibt": ("gab",), "fällt": ("fiel", "fielen"), "zieht": ("zog", "zogen"), "kommt": ("kam", "kamen"),
    "bildet": ("bildete", "bildeten"), "entwickelt": ("entwickelte", "entwickelten"),
    "breitet": ("breitete", "breiteten"), "ist": ("war", "waren"), "kann": ("konnte", "konnten"),
    "hält": ("hielt", "hielten"), "löst": ("löste", "lösten"), "lockert": ("lockerte", "lockerten"),
    "scheint": ("schien", "schienen"), "setzt": ("setzte", "setzten"), "zeigt": ("zeigte", "zeigten"),
    "lässt": ("ließ", "ließen"), "droht": ("drohte", "drohten"), "regnet": ("regnete",),
    "schneit": ("schneite",), "gewittert": ("gewitterte",), "nieselt": ("nieselte",), "stürmt": ("stürmte",),
    "friert": ("fror",), "blitzt": ("blitzte",),
}  # fmt: skip
_PAST_FORMS = {f for forms in PAST.values() for f in forms}
PAST_TIMES = table(
    """
    GESTERN = gestern | am gestrigen tag
    GESTERN NACHT = in der vergangenen nacht | letzte nacht | in der letzten nacht
    HEUTE = heute | heute früh | heute morgen
    VERGANGEN WOCHE = in der vergangenen woche | letzte woche
    VERGANGEN WOCHENENDE = am vergangenen wochenende | am letzten wochenende
    """,
    "past",
)
MODALS = [(("kann", "können"), "KOENNEN"), (("dürfte", "dürften"), "VIELLEICHT"), (("wird", "werden"), ""),
          (("soll", "sollen"), "SOLL"), (("könnte", "könnten"), "KOENNEN")]  # fmt: skip
CLASSIFIERS = ["CL-FLAECHE", "CL-ZIEHEN", "CL-KOMMEN", "CL-VERTEILEN"]  # signed only
_TOPIC_CONNECTORS = {"dabei", "sonst", "danach", "später", "außerdem", "ansonsten"}  # take the V2 first slot
OPENERS = [
    (["auch"], ["AUCH"]), (["ansonsten"], ["SONST"]), (["insgesamt"], []),
    (["im", "großen", "und", "ganzen"], []),
    (["nach", "wie", "vor"], ["NOCH"]), (["zunächst", "einmal"], ["ZUERST"]), (["alles", "in", "allem"], []),
]  # fmt: skip
# Predicates of a phenomenon: (finite sg, finite pl, separable particle / final words, reflexive,
# frame, gloss, categories). frame: subj (NP is the subject), gibt (es gibt + acc), mit (mit + dat
# ... zu rechnen), zu (es kommt zu + dat), bare (the verb alone: es regnet).
PREDICATES = [
    ("gibt", "gibt", "", False, "gibt", "", "precip cloud fog cold sun storm thunder"),
    ("fällt", "fallen", "", False, "subj", "", "precip"),
    ("zieht", "ziehen", "auf", False, "subj", "KOMMEN", "precip cloud thunder storm fog"),
    ("kommt", "kommen", "auf", False, "subj", "KOMMEN", "precip cloud thunder storm fog cold"),
    ("bildet", "bilden", "", True, "subj", "ENTSTEHEN", "cloud thunder fog cold"),
    ("entwickelt", "entwickeln", "", True, "subj", "ENTSTEHEN", "cloud thunder precip"),
    ("breitet", "breiten", "aus", True, "subj", "AUSBREITEN", "precip cloud fog"),
    ("zieht", "ziehen", "durch", False, "subj", "DURCHZIEHEN", "precip thunder storm"),
    ("ist", "sind", "möglich", False, "subj", "MOEGLICH", "precip thunder storm fog cold"),
    ("ist", "sind", "zu erwarten", False, "subj", "ERWARTEN", "precip thunder storm cold"),
    ("kann", "können", "auftreten", False, "subj", "KOENNEN", "precip thunder storm fog cold"),
    ("ist", "ist", "zu rechnen", False, "mit", "KOENNEN", "precip thunder storm fog cold"),
    ("kommt", "kommt", "", False, "zu", "", "precip thunder storm cold"),
    ("hält", "halten", "", True, "subj", "BLEIBEN", "fog cloud"),
    ("löst", "lösen", "auf", True, "subj", "AUFLOESEN", "fog cloud"),
    ("lockert", "lockern", "auf", False, "subj", "AUFLOCKERN", "cloud"),
    ("scheint", "scheinen", "", False, "subj", "SCHEINEN", "sun"),
    ("setzt", "setzen", "durch", True, "subj", "DURCHSETZEN", "sun"),
    ("zeigt", "zeigen", "", True, "subj", "ZEIGEN", "sun"),
    ("lässt", "lassen", "nach", False, "subj", "NACHLASSEN", "precip storm thunder"),
    ("droht", "drohen", "", False, "subj", "GEFAHR", "cold storm thunder"),
    ("regnet", "regnet", "", False, "bare", "REGEN", "precip"),
    ("schneit", "schneit", "", False, "bare", "SCHNEE", "precip"),
    ("gewittert", "gewittert", "", False, "bare", "GEWITTER", "thunder"),
    ("nieselt", "nieselt", "", False, "bare", "NIESELN", "precip"),
    ("stürmt", "stürmt", "", False, "bare", "STURM", "storm"),
    ("friert", "friert", "", False, "bare", "FROST", "cold"),
    ("blitzt", "blitzt", "und donnert", False, "bare", "BLITZ DONNER", "thunder"),
]  # fmt: skip
STANDALONE = table(
    """
    GUT ABEND LIEB ZUSCHAUER = guten abend liebe zuschauer | guten abend meine damen und herren
    SCHOEN ABEND NOCH = ihnen noch einen schönen abend | einen schönen abend noch
    MORGEN WIEDER TSCHUESS = tschüss und bis morgen | bis morgen
    SCHOEN TAG NOCH = einen schönen tag noch | haben sie einen schönen tag
    TSCHUESS = tschüss | auf wiedersehen
    GUT ABEND = guten abend | einen guten abend
    WETTER = und nun das wetter | das wetter | jetzt zum wetter
    JETZT WETTER WIE-AUSSEHEN = und nun die wettervorhersage | wie wird das wetter
    IX WETTER WIE-AUSSEHEN = so sieht das wetter aus | so wird das wetter
    SCHOEN WOCHENENDE = ein schönes wochenende | ein schönes wochenende wünsche ich ihnen
    MORGEN WETTER WECHSEL = morgen ändert sich das wetter | morgen stellt sich das wetter um
    DANKE = danke | vielen dank
    AUSSICHT = die weiteren aussichten | die aussichten
    ES-BEDEUTET = das bedeutet | das heißt
    AEHNLICH WETTER = ähnliches wetter | das wetter bleibt ähnlich
    NICHT VIEL AENDERN = nicht viel ändert sich | es ändert sich nicht viel
    """,
    "standalone",
)
TEMP_SUBJECTS = table(
    """
    TEMPERATUR = die temperaturen | die werte | die temperaturwerte
    HOCH TEMPERATUR = die höchstwerte | die höchsttemperaturen | die tageshöchstwerte | die maxima
    TIEF TEMPERATUR = die tiefstwerte | die tiefsttemperaturen | die nächtlichen tiefstwerte | die minima
    """,
    "temp",
)
WIND_ADJ = table(
    """
    SCHWACH = schwach | leicht
    MAESSIG = mäßig
    FRISCH = frisch
    STARK = stark | kräftig
    STURM = stürmisch
    LEBHAFT = lebhaft
    BOEEN = böig
    """,
    "wind",
)
SYSTEMS = table(  # pressure systems, fronts and air masses (subjects of clauses)
    """
    HOCH DRUCK = ein hoch | ein hochdruckgebiet | hoher luftdruck
    TIEF DRUCK = ein tief | ein tiefdruckgebiet | tiefer luftdruck
    KALT FRONT = eine kaltfront | die kaltfront
    WARM FRONT = eine warmfront | die warmfront
    LUFT FEUCHT = feuchte luft | feuchte luftmassen
    LUFT KALT = kalte luft | kaltluft | polarluft
    LUFT WARM = warme luft | warmluft | subtropische luft
    SCHWUEL LUFT = schwülwarme luft | feuchtwarme luft
    TIEF AUSLAEUFER = die ausläufer eines tiefs | ein tiefausläufer
    REGEN GEBIET = ein regengebiet | regenwolken
    """,
    "system",
)
SYSTEM_VERBS = [  # finite, particle, gloss, object frame
    ("bringt", "", "BRINGEN", "acc"), ("sorgt", "", "SORGEN", "für"), ("zieht", "heran", "KOMMEN", ""),
    ("strömt", "ein", "KOMMEN", ""), ("bestimmt", "", "BESTIMMEN", "wetter"), ("liegt", "", "", "über"),
    ("zieht", "durch", "DURCHZIEHEN", ""), ("erreicht", "", "ERREICHEN", "place"),
    ("gelangt", "", "KOMMEN", "nach"), ("beschert", "", "BRINGEN", "acc"),
]  # fmt: skip


@lru_cache(maxsize=8)
def inventories(s: float, place_s: float) -> dict[str, Inventory]:
    """The open-class inventories with Zipf exponents ``s`` and ``place_s`` (places; cached)."""
    places = (
        V.directions() + V.REGIONS[:8] + V.states()[:6] + V.rivers()[:3] + V.REGIONS[8:] + V.states()[6:]
        + V.LANDSCAPES[:12] + V.rivers()[3:] + V.COUNTRIES + V.LANDSCAPES[12:]
    )  # fmt: skip
    tail = V.towns()
    head = places[:40]
    ranked = head + _interleave(places[40:], tail)
    nouns = V.NOUNS + V.compounds()
    return {
        "place": Inventory(ranked, place_s),
        "time": Inventory(TIMES, s),
        "state": Inventory(PRED_ADJ, s),
        "temp_adj": Inventory(TEMP_ADJ, s),
        "adverb": Inventory(ADVERBS, s),
        "standalone": Inventory(STANDALONE, s),
        "noun": _NounInventory(nouns, s),
        "system": Inventory(SYSTEMS, s),
        "rare": Inventory(V.RARE, s),
        "name": Inventory([Concept(((n,),), (gloss_of(n),)) for n in V.SYSTEM_NAMES], s),
    }


def _interleave(a: list[Concept], b: list[Concept]) -> list[Concept]:
    """``a`` spread evenly over the first part of ``b`` (hand-written before invented names)."""
    out, j = [], 0
    for i, c in enumerate(a):
        while j < 3 * (i + 1) and j < len(b):
            out.append(b[j])
            j += 1
        out.append(c)
    return out + b[j:]


class _NounInventory(Inventory):
    """Weather nouns and compounds, Zipf-weighted; :meth:`pick_noun` filters by category."""

    def __init__(self, nouns: list[Noun], s: float) -> None:
        super().__init__([Concept(((n.word,),), n.gloss, n.cat) for n in nouns], s)
        self.nouns = nouns

    def pick_noun(self, rng: np.random.Generator, cats: str | None) -> Noun:
        for _ in range(50):
            noun = self.nouns[self.pick_index(rng)]
            if cats is None or noun.cat in cats.split():
                return noun
        return next(n for n in self.nouns if cats is None or n.cat in cats.split())


# --- constituents ---------------------------------------------------------------------------------
class _Ctx:
    """The generator, the config and the inventories of one sampling run."""

    def __init__(self, rng: np.random.Generator, cfg: TextConfig) -> None:
        self.rng, self.cfg, self.inv = rng, cfg, inventories(cfg.zipf_s, cfg.place_zipf_s)

    def p(self, prob: float) -> bool:
        return self.rng.random() < prob

    def choice(self, items: list):
        return items[int(self.rng.random() * len(items))]

    def concept(self, name: str) -> Phrase:
        return realise(self.inv[name].pick(self.rng), self.rng, self.cfg.paraphrase_p)


def time_expr(x: _Ctx) -> Phrase:
    """A time adverbial: a fixed expression, ``am <day>``, ``am <day>abend``, ``in der nacht zum <day>``."""
    r = x.rng.random()
    if r < 0.55:
        return x.concept("time")
    day = x.choice(V.DAYS)
    if r < 0.8:
        return ["am", day], [gloss_of(day)]
    if r < 0.9:
        part = x.choice(["abend", "nachmittag", "vormittag", "morgen"])
        return ["am", day + part], [gloss_of(day), gloss_of(part)]
    if r < 0.95:
        return ["in", "der", "nacht", "zum", day], [gloss_of(day), "NACHT"]
    day2 = x.choice(V.DAYS)
    return ["von", day, "bis", day2], [gloss_of(day), "BIS", gloss_of(day2)]


def place_expr(x: _Ctx) -> Phrase:
    """A place adverbial; sometimes ``im süden bayerns`` (-> ``BAYERN SUED``) or ``von X bis Y``."""
    r = x.rng.random()
    if r < 0.06:
        (w, adj, g), (name, gen, sg) = x.choice(V.DIRECTIONS), x.choice(V.STATES)
        if x.p(0.5):
            return ["im", w, *gen.split()], [sg, g]
        return ["im", adj + "en", name], [sg, g]
    if r < 0.12:  # relative to a town: "nördlich von kiel" / "im süden von kiel" -> KIEL NORD
        (w, adj, g), c = x.choice(V.DIRECTIONS), x.inv["place"].pick(x.rng)
        if c.tag == "town":
            t = c.forms[0][-1]
            return ([adj, "von", t] if x.p(0.5) else ["im", w, "von", t]), [*c.gloss, g]
    if r < 0.18:
        a, b = x.inv["place"].pick(x.rng), x.inv["place"].pick(x.rng)
        while b is a:
            b = x.inv["place"].pick(x.rng)
        return ["von", a.forms[0][-1], "bis", b.forms[0][-1]], [*a.gloss, "BIS", *b.gloss]
    w, g = x.concept("place")
    if x.p(x.cfg.ix_p):
        g = [*g, "IX"]
    return w, g


def noun_phrase(x: _Ctx, case: str, cats: str | None) -> tuple[Phrase, Noun]:
    """(Intensifier) (adjective) noun; glosses NOUN (ADJ) (INTENS); the noun may be repeated."""
    noun = x.inv["noun"].pick_noun(x.rng, cats)
    words, glosses = [noun.dative if case == "dat" else noun.word], list(noun.gloss)
    if x.p(x.cfg.repeat_p):
        glosses = [*glosses, *noun.gloss]
    adjs = _adjectives_for(noun.cat)
    if adjs and x.p(0.45):
        stem, gloss = adjs[min(int(x.rng.pareto(1.0) * 2), len(adjs) - 1)]
        ending = V.ENDINGS[case][noun.gender]
        if stem in V.COMPARATIVES and x.p(0.2):  # stärkere, kräftigeren: same gloss
            comp = V.COMPARATIVES[stem]
            stem = comp if x.p(0.6) else _superlative(comp)
        words = [stem + ending, *words]
        if not x.p(x.cfg.unsigned_p):
            glosses = [*glosses, gloss]
        if x.p(0.15):
            iw, ig = x.choice([(["sehr"], ["SEHR"]), (["zum", "teil"], ["TEIL"]), (["recht"], [])])
            words, glosses = [*iw, *words], [*glosses, *ig]
        elif x.p(x.cfg.intensifier_p):
            glosses = [*glosses, x.choice(["SEHR", "VIEL"])]
    if noun.gender == "f" and noun.word.endswith("sonne") and case != "dat":
        words = ["die", *words]
    return (words, glosses), noun


def _superlative(comparative: str) -> str:
    """``stärker`` -> ``stärkst``, ``leichter`` -> ``leichtest`` (stem before the ending)."""
    base = comparative[:-2]
    return base + ("est" if base.endswith(("t", "z", "s", "ß", "sch")) else "st")


@lru_cache(maxsize=16)
def _adjectives_for(cat: str) -> list[tuple[str, str]]:
    return [(stem, gloss) for stem, gloss, cats in V.ADJECTIVES if cat in cats.split()]


# --- clauses --------------------------------------------------------------------------------------
@dataclass
class Clause:
    """One clause before linearisation: German parts and glosses of each constituent."""

    time: Phrase
    place: Phrase
    subject: list[str]  # German subject (``es``, ``der wind``, a noun phrase) or []
    finite: list[str]  # finite verb (+ ``sich``)
    middle: list[str]  # objects, adverbs, predicate parts before the end
    end: list[str]  # separable particle / infinitive / participle (verb-final in German)
    core: list[str]  # glosses of the phenomenon and predicate, after time and place


def _linearise(x: _Ctx, c: Clause, sub: bool, topic: list[str] | None) -> Phrase:
    """German main (verb-second) or subordinate (verb-final) order; glosses time-place-core.

    ``topic``: words that take the first position of a main clause (``dabei``, ``sonst``);
    otherwise the time opens it, or with ``topic_p`` the place or the subject.
    """
    filler = x.choice(FILLERS) if x.p(x.cfg.filler_p) else []
    (tw, tg), (pw, pg), subj = c.time, c.place, c.subject
    if sub:
        refl = [w for w in c.finite if w == "sich"]
        verb, end = [w for w in c.finite if w != "sich"], list(c.end)
        if len(end) == 1 and end[0] in _PARTICLES:  # zieht ... auf -> aufzieht
            verb, end = [end[0] + verb[0], *verb[1:]], []
        words = [*refl, *subj, *filler, *tw, *pw, *c.middle, *end, *verb]
    else:
        if topic is not None:
            first = topic
        elif tw and not x.p(x.cfg.topic_p):
            first, tw = tw, []
        elif pw and x.p(0.6):
            first, pw = pw, []
        elif subj:
            first, subj = subj, []
        elif tw or pw:
            first, tw, pw = (tw, [], pw) if tw else (pw, tw, [])
        else:
            first = ["es"]
        words = [*first, *c.finite, *subj, *filler, *tw, *pw, *c.middle, *c.end]
    if pg and x.p(x.cfg.gloss_place_first_p):
        return words, [*pg, *tg, *c.core]
    return words, [*tg, *pg, *c.core]


_PARTICLES = {"auf", "durch", "aus", "nach", "ein", "heran"}


def _time_place(x: _Ctx, first: bool) -> tuple[Phrase, Phrase]:
    time = time_expr(x) if x.p(0.8 if first else 0.3) else EMPTY
    place = place_expr(x) if x.p(0.85) else EMPTY
    return time, place


def clause_phenomenon(x: _Ctx, first: bool) -> Clause:
    """Weather phenomenon + predicate: ``im süden ziehen kräftige gewitter auf``."""
    time, place = _time_place(x, first)
    fin_sg, fin_pl, end, refl, frame, vgloss, cats = x.choice(PREDICATES)
    vg = vgloss.split()
    if fin_sg in PAST and x.p(0.12):  # looking back: "gestern zogen gewitter auf" -> GESTERN ... VORBEI
        past = PAST[fin_sg]
        fin_sg, fin_pl = past[0], past[-1]
        time = realise(x.choice(PAST_TIMES), x.rng, x.cfg.paraphrase_p)
        vg = [*vg, "VORBEI"] if x.p(0.5) else vg
    cl_gloss = [x.choice(CLASSIFIERS)] if x.p(x.cfg.classifier_p) else []
    if frame == "bare":
        mod = x.concept("adverb") if x.p(0.4) else EMPTY
        mw, mg = mod if not x.p(x.cfg.unsigned_p) else (mod[0], [])
        return Clause(time, place, ["es"], [fin_sg], mw, end.split(), [*vg, *mg, *cl_gloss])
    case = {"subj": "nom", "gibt": "acc", "mit": "dat", "zu": "dat"}[frame]
    (nw, ng), noun = noun_phrase(x, case, cats)
    core = [*ng, *cl_gloss, *vg]
    if frame == "gibt":
        return Clause(time, place, ["es"], ["gibt"], nw, [], core)
    if frame == "mit":
        return Clause(time, place, [], ["ist"], ["mit", *nw], end.split(), core)
    if frame == "zu":
        return Clause(time, place, ["es"], ["kommt"], ["zu", *nw], [], core)
    pl = noun.gender == "pl"
    if (
        end in ("", *_PARTICLES) and fin_sg not in _PAST_FORMS and x.p(0.25)
    ):  # modal + infinitive: "können ... aufziehen"
        mw, mg = x.choice(MODALS)
        finite = [mw[1] if pl else mw[0]] + (["sich"] if refl else [])
        return Clause(time, place, nw, finite, [], [end + fin_pl], [*core, *mg.split()])
    finite = [fin_pl if pl else fin_sg] + (["sich"] if refl else [])
    return Clause(time, place, nw, finite, [], end.split(), core)


def clause_amount(x: _Ctx, first: bool) -> Clause:
    """Amounts: ``bis zu zwanzig liter pro quadratmeter``, ``böen bis hundert kilometer pro stunde``."""
    time, place = _time_place(x, first)
    r = x.rng.random()
    if r < 0.4:
        nw, ng = V.number(int(x.rng.integers(5, 50)))
        mid = ["bis", "zu", *nw, "liter", "pro", "quadratmeter"]
        return Clause(time, place, ["es"], ["fallen"], mid, [], ["REGEN", "BIS", *ng, "LITER"])
    if r < 0.7:
        nw, ng = V.number(int(x.rng.integers(2, 40)))
        mid = [*nw, "zentimeter" if x.p(0.7) else "zentimetern", "neuschnee"]
        return Clause(time, place, ["es"], ["gibt"], mid, [], ["SCHNEE", "NEU", *ng, "ZENTIMETER"])
    kw, kg = x.choice(SPEEDS)
    unit = x.choice([["kilometer", "pro", "stunde"], ["kilometern", "pro", "stunde"], ["stundenkilometern"]])
    (nw, ng), _ = noun_phrase(x, "nom", "storm")
    core = [*ng, "BIS", *kg, "KILOMETER", "STUNDE"]
    return Clause(time, place, nw, ["erreichen"], ["bis", "zu", *kw, *unit], [], core)


SPEEDS = [
    (["sechzig"], ["SECHZIG"]), (["siebzig"], ["SIEBZIG"]), (["achtzig"], ["ACHTZIG"]),
    (["neunzig"], ["NEUNZIG"]),
    (["hundert"], ["HUNDERT"]), (["hundertzwanzig"], ["HUNDERT", "ZWANZIG"]),
    (["hundertvierzig"], ["HUNDERT", "VIERZIG"]),
]  # fmt: skip


def clause_remark(x: _Ctx, first: bool) -> Clause:
    """A rare topic (the content-word tail): ``an der küste besteht sturmflutgefahr``."""
    time, place = _time_place(x, first)
    rw, rg = x.concept("rare")
    r = x.rng.random()
    if r < 0.3:
        return Clause(time, place, ["es"], ["gibt"], rw, [], rg)
    if r < 0.5:
        return Clause(time, place, rw, ["ist" if x.p(0.5) else "wird"], [], ["erwartet"], [*rg, "ERWARTEN"])
    if r < 0.65:
        return Clause(time, place, ["man"], ["muss"], ["mit", *rw], ["rechnen"], [*rg, "MUSS"])
    if r < 0.8:
        return Clause(time, place, ["wir"], ["haben"], rw, [], [*rg])
    return Clause(time, place, ["es"], ["geht"], ["um", *rw], [], [*rg, "THEMA"])


def clause_state(x: _Ctx, first: bool) -> Clause:
    """Copula + adjective: ``im norden bleibt es meist trocken`` -> ``NORD TROCKEN MEISTENS BLEIBEN``."""
    time, place = _time_place(x, first)
    r = x.rng.random()
    verb, vg = (["bleibt"], ["BLEIBEN"]) if r < 0.35 else (["wird"], ["WERDEN"]) if r < 0.6 else (["ist"], [])
    if x.p(0.1):
        verb = ["präsentiert", "sich", "das", "wetter"] if verb == ["ist"] else verb
    aw, ag = x.concept("temp_adj" if x.p(0.3) else "state")
    mw, mg = x.concept("adverb") if x.p(0.35) else EMPTY
    if x.p(x.cfg.unsigned_p):
        mg = []
    subj = x.choice([["es"], ["es"], ["es"], ["das", "wetter"], ["der", "himmel"]])
    sg = ["WETTER"] if subj == ["das", "wetter"] else ["HIMMEL"] if subj == ["der", "himmel"] else []
    if len(verb) > 1:  # präsentiert sich das wetter
        subj, sg = [], ["WETTER"]
    if len(aw) == 1 and verb != ["bleibt"] and x.p(0.2):  # es wird ein sonniger tag -> TAG SONNE
        nw, ng, gender = x.choice(DAY_NOUNS)
        adj = aw[0] + ("" if aw[0].endswith("e") else "e") + ("r" if gender == "m" else "")
        art = "ein" if gender == "m" else "eine"
        return Clause(time, place, subj, verb, [*mw, art, adj, nw], [], [*sg, ng, *ag, *mg, *vg])
    return Clause(time, place, subj, verb, [*mw, *aw], [], [*sg, *ag, *mg, *vg])


DAY_NOUNS = [("tag", "TAG", "m"), ("abend", "ABEND", "m"), ("nacht", "NACHT", "f"), ("woche", "WOCHE", "f"),
             ("nachmittag", "NACHMITTAG", "m"), ("wochenende", "WOCHENENDE", "n")]  # fmt: skip


def clause_temperature(x: _Ctx, first: bool) -> Clause:
    """``die höchstwerte liegen zwischen zwölf und achtzehn grad`` -> ``HOCH TEMPERATUR ZWOELF BIS ...``."""
    time, place = _time_place(x, first)
    sw, sg = realise(x.choice(TEMP_SUBJECTS), x.rng, x.cfg.paraphrase_p)
    lo = int(x.rng.integers(-15, 34))
    hi = lo + int(x.rng.integers(1, 9))
    (aw, ag), (bw, bg) = V.temperature(lo), V.temperature(min(hi, 45))
    grad = ["grad"] if x.p(0.85) else ["grad", "celsius"]
    r = x.rng.random()
    if r < 0.35:
        return Clause(time, place, sw, ["liegen"], ["zwischen", *aw, "und", *bw, *grad], [],
                      [*sg, *ag, "BIS", *bg, "GRAD"])  # fmt: skip
    if r < 0.55:
        return Clause(time, place, sw, ["steigen"], ["auf", *aw, "bis", *bw, *grad], [],
                      [*sg, "STEIGEN", *ag, "BIS", *bg, "GRAD"])  # fmt: skip
    if r < 0.7:
        return Clause(time, place, sw, ["sinken"], ["auf", *aw, *grad], [], [*sg, "SINKEN", *ag, "GRAD"])
    if r < 0.85:
        return Clause(time, place, sw, ["erreichen"], [*aw, "bis", *bw, *grad], [],
                      [*sg, *ag, "BIS", *bg, "GRAD"])  # fmt: skip
    tw, tg = x.concept("temp_adj")
    return Clause(time, place, ["es"], ["wird"], ["bei", *aw, *grad, *tw], [], [*tg, *ag, "GRAD"])


def clause_wind(x: _Ctx, first: bool) -> Clause:
    """``der wind weht mäßig bis frisch aus west`` -> ``WIND WEST MAESSIG BIS FRISCH``."""
    time, place = _time_place(x, first)
    aw, ag = realise(x.choice(WIND_ADJ), x.rng, x.cfg.paraphrase_p)
    if x.p(0.5):
        bw, bg = realise(x.choice(WIND_ADJ), x.rng, x.cfg.paraphrase_p)
        if bg != ag:
            aw, ag = [*aw, "bis", *bw], [*ag, "BIS", *bg]
    dw, _, dg = x.choice(V.DIRECTIONS)
    dword = dw[:-2] if dw.endswith("en") else dw
    r = x.rng.random()
    if r < 0.4:
        return Clause(time, place, ["der", "wind"], ["weht"], [*aw, "aus", dword], [], ["WIND", dg, *ag])
    if r < 0.6:
        mid = [*aw, "aus", dword + "lichen", "richtungen"]
        return Clause(time, place, ["der", "wind"], ["kommt"], mid, [], ["WIND", dg, *ag])
    if r < 0.8:
        adj = aw[-1] + V.ENDINGS["nom"]["m"]  # ein frischer westwind
        return Clause(time, place, ["es"], ["weht"], ["ein", adj, dword + "wind"], [], [dg, "WIND", *ag[-1:]])
    if r < 0.9:
        return Clause(time, place, ["der", "wind"], ["frischt"], [], ["auf"], ["WIND", "STARK", "WERDEN"])
    return Clause(time, place, ["der", "wind"], ["dreht"], [], ["auf", dword], ["WIND", dg, "DREHEN"])


def clause_system(x: _Ctx, first: bool) -> Clause:
    """``ein hoch bringt uns viel sonnenschein`` -> ``HOCH DRUCK SONNE VIEL BRINGEN``."""
    time, place = _time_place(x, first)
    sw, sg = x.concept("system")
    if x.p(0.3):  # a named system: "das tief kyrill" -> TIEF KYRILL
        kind = "tief" if x.p(0.6) else "hoch"
        name = x.inv["name"].pick(x.rng).forms[0][0]
        sw, sg = ["das", kind, name] if x.p(0.5) else [kind, name], [gloss_of(kind), gloss_of(name)]
    fin, particle, vg, frame = x.choice(SYSTEM_VERBS)
    vgl = vg.split()
    if frame in ("acc", "für"):
        (nw, ng), _ = noun_phrase(x, "acc", "precip cloud sun fog thunder")
        mid = ["uns", *nw] if frame == "acc" else ["für", *nw]
        return Clause(time, place, sw, [fin], mid, [], [*sg, *ng, *vgl])
    if frame == "über":
        cw, cg = realise(x.choice(V.COUNTRIES), x.rng, x.cfg.paraphrase_p)
        mid = ["über", *cw[1:]] if cw[0] == "über" else cw
        return Clause(time, place, sw, [fin], mid, [], [*sg, *cg, "IX"])
    if frame == "wetter":
        return Clause(time, place, sw, [fin], ["unser", "wetter"], [], [*sg, "WETTER", *vgl])
    if frame in ("place", "nach"):
        c = x.inv["place"].pick(x.rng)
        name, pg = c.forms[0][-1], list(c.gloss)
        mid = ["nach", name] if frame == "nach" else [name]
        return Clause(time, EMPTY, sw, [fin], mid, [], [*sg, *pg, *vgl])
    return Clause(time, place, sw, [fin], [], particle.split(), [*sg, *vgl])


CLAUSES: list[tuple[float, Callable[[_Ctx, bool], Clause]]] = [
    (0.40, clause_phenomenon), (0.25, clause_state), (0.12, clause_temperature), (0.08, clause_wind),
    (0.08, clause_system), (0.07, clause_remark), (0.04, clause_amount),
]  # fmt: skip
_CLAUSE_CUM = np.cumsum([w for w, _ in CLAUSES]) / sum(w for w, _ in CLAUSES)


def standalone(x: _Ctx) -> Phrase:
    """A greeting, an announcement or a date: ``die aussichten für montag den ersten mai``."""
    if x.p(0.35):
        day, month = x.choice(V.DAYS), x.choice(V.MONTHS)
        ow, og = V.ordinal(int(x.rng.integers(1, 32)))
        if x.p(0.5):
            return (["und", "nun", "die", "wettervorhersage", "für", "morgen", day, "den", *ow, month],
                    ["JETZT", "WETTER", "WIE-AUSSEHEN", gloss_of(day), *og, gloss_of(month)])  # fmt: skip
        words = ["die", "aussichten", "für", day, "den", *ow, month]
        return words, ["AUSSICHT", gloss_of(day), *og, gloss_of(month)]
    return x.concept("standalone")


def sample_sentence(
    rng: np.random.Generator, min_glosses: int = 1, max_glosses: int = 20, cfg: TextConfig | None = None
) -> tuple[str, str]:
    """One (German sentence, gloss sequence) pair with ``min_glosses..max_glosses`` glosses."""
    x = _Ctx(rng, cfg or TextConfig())
    for _ in range(1000):
        words, glosses = _sentence(x, max_glosses)
        if min_glosses <= len(glosses) <= max_glosses:
            return " ".join([*words, "."]), " ".join(glosses)
    raise ValueError(f"no sentence with {min_glosses}..{max_glosses} glosses in 1000 tries")


def _sentence(x: _Ctx, max_glosses: int) -> Phrase:
    if x.p(x.cfg.standalone_p):
        return standalone(x)
    words, glosses = [], []
    for k in range(x.cfg.max_clauses):
        if k and not x.p(x.cfg.extra_clause_p):
            break
        kind = CLAUSES[int(np.searchsorted(_CLAUSE_CUM, x.rng.random(), side="right"))][1]
        clause = kind(x, k == 0)
        if k == 0:
            ow, og = x.choice(OPENERS) if x.p(0.1) else (None, [])  # a presenter's opener
            w, g = _linearise(x, clause, False, ow)
            g = [*og, *g]
        else:
            cw, cg, sub = x.choice(CONNECTORS)
            topic = cw if cw[0] in _TOPIC_CONNECTORS else None
            w, g = _linearise(x, clause, sub, topic)
            w, g = (w if topic else [*cw, *w]), [*cg, *g]
        if k and len(glosses) + len(g) > max_glosses:
            break
        words, glosses = [*words, *w], [*glosses, *g]
    return words, glosses


def sample_corpus(
    rng: np.random.Generator,
    sizes: dict[str, int],
    min_glosses: int = 1,
    max_glosses: int = 20,
    text: TextConfig | None = None,
    retries: int = 20,
) -> dict[str, list[tuple[str, str]]]:
    """Sentences per split (in ``sizes`` order); later splits avoid exact duplicates of earlier ones.

    A later split's sentence is resampled up to ``retries`` times while it duplicates a
    sentence of an earlier split.
    """
    cfg = text or TextConfig()
    seen: set[str] = set()
    out: dict[str, list[tuple[str, str]]] = {}
    for split, n in sizes.items():
        rows = []
        for _ in range(n):
            text_, gloss = sample_sentence(rng, min_glosses, max_glosses, cfg)
            for _ in range(retries):
                if text_ not in seen:
                    break
                text_, gloss = sample_sentence(rng, min_glosses, max_glosses, cfg)
            rows.append((text_, gloss))
        seen.update(t for t, _ in rows)
        out[split] = rows
    return out
