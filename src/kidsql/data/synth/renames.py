"""Renderings of a train domain under other identifiers, so that train cannot be solved by memorising names.

With one database per train domain, a small model learns the 24 train schemas' table and column names by heart
and writes them on dev ("band", "airline"), instead of copying names from the prompt. Each train domain is
therefore rendered several times (`render`): every identifier word is replaced, consistently across the whole
database, by one of its alternatives in `ALTERNATIVES` (`singer`/`vocalist`/`performer`, `age`/`years old`),
and the column order within each table is shuffled. Each rendering is its own database (`<domain>_vNN`), with
its own rows and its own questions, and questions use the natural words of *that* rendering's names, so the
question -> schema mapping stays learnable while the only way to write the right identifier is to read it from
the prompt. Dev domains are never renamed: they keep their own names and stay held out.

Rules for `ALTERNATIVES`: a key is one word of an identifier (identifiers are split at `_`, natural phrases at
spaces); an alternative is a word or a space-separated phrase (`years old` -> identifier `years_old`), never a
table name of a dev domain, so dev tables are still never seen in training.
"""

from __future__ import annotations

import random
from dataclasses import replace

from .domains import ColumnDef, DomainDef, TableDef

ALTERNATIVES: dict[str, tuple[str, ...]] = {
    # nouns that name tables (and the foreign keys that point at them)
    "account": ("deposit", "wallet"), "actor": ("cast member", "star"), "agent": ("broker", "realtor"),
    "airline": ("carrier", "air company"), "airport": ("airfield", "aerodrome"), "animal": ("creature", "beast"),
    "appointment": ("consultation", "booking slot"), "article": ("story", "report"), "author": ("writer", "novelist"),
    "band": ("group", "act"), "bike": ("bicycle", "cycle"), "book": ("volume", "title item"),
    "booking": ("reservation", "stay"), "branch": ("office", "agency"), "casting": ("role", "cast"),
    "chef": ("cook", "kitchen head"), "cinema": ("theater", "movie house"), "client": ("customer", "patron"),
    "club": ("team", "side"), "course": ("class", "module"), "customer": ("buyer", "shopper"),
    "department": ("division", "unit"), "device": ("gadget", "machine"), "doctor": ("physician", "medic"),
    "employee": ("worker", "staffer"), "enrollment": ("registration", "attendance record"),
    "faculty": ("college", "academy"), "farm": ("ranch", "estate"), "farmer": ("grower", "rancher"),
    "festival": ("fair", "fest"), "film": ("picture", "feature"), "flight": ("air trip", "route"),
    "footballer": ("soccer player", "athlete"), "game": ("fixture", "title"), "guest": ("visitor", "lodger"),
    "harvest": ("yield", "crop record"), "hotel": ("inn", "lodge"), "instructor": ("tutor", "coach"),
    "journalist": ("reporter", "writer"), "keeper": ("caretaker", "warden"), "lab": ("laboratory", "institute"),
    "lineup": ("billing", "slot"), "loan": ("borrowing", "checkout"), "member": ("subscriber", "affiliate"),
    "movie": ("feature", "picture"), "newspaper": ("daily", "paper"), "order": ("purchase", "shop order"),
    "paper": ("publication", "manuscript"), "participant": ("attendee", "trainee"), "patient": ("case", "sufferer"),
    "play": ("gaming", "usage"), "player": ("gamer", "user"), "port": ("harbour", "dock"),
    "product": ("item", "good"), "professor": ("lecturer", "academic"), "project": ("initiative", "program"),
    "property": ("estate", "listing"), "publisher": ("label", "studio house"), "restaurant": ("eatery", "bistro"),
    "review": ("critique", "rating entry"), "room": ("chamber", "suite unit"), "scientist": ("researcher", "scholar"),
    "screening": ("showing", "show"), "session": ("workout", "class slot"), "ship": ("vessel", "boat"),
    "station": ("dock site", "stand"), "student": ("learner", "undergraduate"), "studio": ("atelier", "workspace"),
    "technician": ("engineer", "support agent"), "ticket": ("issue", "incident"), "trainer": ("coach", "mentor"),
    "transfer": ("payment", "transaction"), "trip": ("ride", "journey"), "viewing": ("inspection", "showing"),
    "voyage": ("journey", "crossing"), "workshop": ("seminar", "course"), "zoo": ("animal park", "menagerie"),
    "item": ("line", "entry"), "record": ("log", "entry"), "unit": ("body", "section"),
    # column words
    "name": ("title", "label", "full name"), "age": ("years old", "years"), "city": ("town", "municipality"),
    "country": ("nation", "homeland"), "gender": ("sex",), "salary": ("pay", "wage", "income"),
    "price": ("cost", "amount charged"), "year": ("season", "yr"), "founded": ("established", "created"),
    "opening": ("inauguration", "launch"), "budget": ("funding", "allocation"), "rating": ("grade", "stars given"),
    "score": ("mark", "points"), "status": ("state", "standing"), "level": ("tier", "grade level"),
    "rank": ("seniority", "grade"), "date": ("day", "time"), "title": ("heading", "caption"),
    "genre": ("style", "kind"), "category": ("class", "section"), "language": ("tongue", "lang"),
    "weekday": ("day of week", "week day"), "minutes": ("duration", "length"), "duration": ("length", "runtime"),
    "distance": ("length", "range"), "capacity": ("size", "max visitors"), "area": ("size", "surface area"),
    "stock": ("inventory", "units in stock"), "quantity": ("amount", "count"), "total": ("sum", "grand total"),
    "payment": ("payment method", "paid by"), "balance": ("funds", "holdings"), "amount": ("sum", "value"),
    "fee": ("charge", "cost"), "nights": ("stay length", "night count"), "days": ("duration", "day count"),
    "hours": ("time", "hour count"), "pages": ("page count", "length"), "words": ("word count", "length"),
    "citations": ("times cited", "cites"), "goals": ("scored", "goal tally"), "attendance": ("crowd", "spectators"),
    "visitors": ("guests", "people"), "weather": ("conditions", "sky"), "position": ("role", "spot"),
    "floor": ("storey", "level"), "seats": ("covers", "places"), "stars": ("star rating", "class"),
    "screens": ("halls", "screen count"), "docks": ("slots", "bays"), "elevation": ("altitude", "height"),
    "depth": ("draught", "water depth"), "tonnage": ("capacity", "weight"), "tons": ("weight", "tonnes"),
    "calories": ("energy", "kcal"), "credits": ("points", "ects"), "grade": ("mark", "result"),
    "gpa": ("average", "grade average"), "commission": ("fee", "cut"), "circulation": ("print run", "readers"),
    "headline": ("title", "heading"), "nickname": ("pet name", "call name"), "species": ("kind", "animal type"),
    "specialty": ("field", "speciality"), "sport": ("discipline", "game type"), "cuisine": ("food style", "kitchen"),
    "crop": ("plant", "produce"), "cargo": ("freight", "load"), "platform": ("system", "device type"),
    "shift": ("rota", "duty"), "severity": ("urgency", "importance"), "priority": ("urgency", "importance"),
    "medium": ("technique", "material"), "instrument": ("plays", "main instrument"), "color": ("colour", "hue"),
    "address": ("street", "location"), "rooms": ("bedrooms", "room count"), "building": ("hall", "premises"),
    "population": ("inhabitants", "residents"), "birth": ("born",), "release": ("launch", "publication"),
    "publication": ("release", "print"), "built": ("construction", "made"), "departure": ("leaving", "sailing"),
    "hire": ("start", "joining"), "join": ("signup", "entry"), "installation": ("setup", "install"),
    "purchase": ("acquisition", "buying"), "opened": ("created", "started"), "formed": ("founded", "started"),
    "sold": ("sold count", "bought"), "tickets": ("admissions", "seats"), "spent": ("logged", "worked"),
    "working": ("active", "employed"), "home": ("base", "main"), "origin": ("departure", "source"),
    "start": ("begin", "first"), "check": ("arrival", "start"), "stage": ("set", "show"),
    "index": ("score",), "method": ("mode", "way"), "model": ("product model", "type"), "type": ("kind", "class"),
    "number": ("no", "code"), "weight": ("mass", "heft"), "h": ("hirsch",), "rate": ("percent", "share"),
    "millions": ("million", "mio"), "email": ("mail",),
}

# SQLite keywords and SQL function names: never a whole identifier (a table called `case` or a column `sum`
# would need quoting, and Spider-style parsers read them as keywords)
RESERVED = frozenset("""
abort action add after all alter always analyze and as asc attach autoincrement avg before begin between by
cascade case cast check collate column commit conflict constraint count create cross current current_date
current_time current_timestamp database default deferrable deferred delete desc detach distinct do drop each else
end escape except exclude exclusive exists explain fail filter first following for foreign from full generated glob
group groups having if ignore immediate in index indexed initially inner insert instead intersect into is isnull
join key last left like limit match materialized max min natural no not nothing notnull null nulls of offset on or
order others outer over partition plan pragma preceding primary query raise range recursive references regexp
reindex release rename replace restrict returning right rollback row rows savepoint select set sum table temp
temporary then ties to transaction trigger unbounded union unique update using vacuum value values view virtual
when where window with without
""".split())


def _alt(word: str, rng: random.Random) -> str:
    """The original word or one of its alternatives, uniformly."""
    options = (word,) + ALTERNATIVES.get(word, ())
    return options[rng.randrange(len(options))]


class _Renamer:
    """One consistent word map for one rendering: the same word becomes the same replacement everywhere."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.words = rng, {}

    def word(self, w: str) -> str:
        if w not in self.words:
            self.words[w] = _alt(w, self.rng)
        return self.words[w]

    def ident(self, name: str) -> str:
        return "_".join(self.word(w).replace(" ", "_") for w in name.split("_") if w)

    def phrase(self, natural: str) -> str:
        return " ".join(self.word(w) for w in natural.split())


def _try_render(dom: DomainDef, db_id: str, rng: random.Random) -> DomainDef | None:
    r = _Renamer(rng)
    tnames = {t.name: r.ident(t.name) for t in dom.tables}
    if len(set(tnames.values())) != len(tnames) or RESERVED & set(tnames.values()):
        return None
    tables = []
    for t in dom.tables:
        cols = [replace(c, name=r.ident(c.name), natural=r.phrase(c.natural),
                        arg=tnames[c.arg] if c.kind == "fk" else c.arg) for c in t.columns]
        names = {c.name for c in cols}
        if len(names) != len(cols) or len({c.natural for c in cols}) != len(cols) or RESERVED & names:
            return None
        keys, rest = [c for c in cols if c.kind == "id"], [c for c in cols if c.kind != "id"]
        rng.shuffle(rest)  # column order is not a thing to memorise either; the primary key stays first
        tables.append(TableDef(tnames[t.name], keys + rest, r.phrase(t.natural)))
    if len({t.natural for t in tables}) != len(tables):
        return None
    return DomainDef(db_id, tables)


def render(dom: DomainDef, k: int, seed: int) -> DomainDef:
    """Rendering `k` of a train domain: db_id `<domain>_vNN`, identifiers drawn from `ALTERNATIVES`.
    Deterministic in (seed, domain, k); a draw whose names collide within a table is redrawn."""
    db_id = f"{dom.db_id}_v{k:02d}"
    rng = random.Random(f"{seed}:rename:{db_id}")
    for _ in range(50):
        out = _try_render(dom, db_id, rng)
        if out is not None:
            return out
    return DomainDef(db_id, dom.tables)  # unreachable in practice: the original names never collide


def renderings(domains: list[DomainDef], n: int, seed: int) -> list[DomainDef]:
    """`n` renderings of every domain, interleaved (domain order within each round) so round-robin draws
    spread examples evenly over domains and renderings."""
    return [render(d, k, seed) for k in range(n) for d in domains]
